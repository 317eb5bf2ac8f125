"""Regenerate ``schema/summary-v<version>.json``, ``schema/event-v1.json`` and ``schema/retract-v1.json``
from the payload models: ``python -m contract.write_schema``."""

from __future__ import annotations

import json
import sys

from contract.payload import (
    EVENT_SCHEMA_PATH,
    RETRACT_SCHEMA_PATH,
    SCHEMA_PATH,
    event_json_schema,
    json_schema,
    retract_json_schema,
)

if __name__ == "__main__":
    for path, schema in (
        (SCHEMA_PATH, json_schema()),
        (EVENT_SCHEMA_PATH, event_json_schema()),
        (RETRACT_SCHEMA_PATH, retract_json_schema()),
    ):
        path.write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")
        sys.stdout.write(f"wrote {path}\n")
