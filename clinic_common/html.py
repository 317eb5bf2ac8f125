"""Data embedded in the products' pages.

JSON inside ``<script type="application/json">`` is read by the HTML parser before any script sees
it: a ``</script>`` in a value (a transcript, a room's name) would end the element and let the rest
be parsed as markup (a ``<meta http-equiv="refresh">`` passes any script-only CSP). :func:`script_json`
writes JSON that the parser cannot end early: ``<``, ``>`` and ``&`` as ``\\u`` escapes, and U+2028/
U+2029 too (line terminators inside JavaScript strings in older engines). ``JSON.parse`` reads the
same values back.
"""

from __future__ import annotations

import json
from typing import Any

_ESCAPES = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026", 0x2028: "\\u2028", 0x2029: "\\u2029"}


def script_json(value: Any) -> str:
    """``value`` as JSON that is safe inside a ``<script>`` element of an HTML page."""
    return json.dumps(value, ensure_ascii=False).translate(_ESCAPES)
