"""Regenerate ``schema/summary-v<version>.json`` from the payload models: ``python -m edge.publish.write_schema``."""

from __future__ import annotations

import json
import sys

from edge.publish.payload import SCHEMA_PATH, json_schema

if __name__ == "__main__":
    SCHEMA_PATH.write_text(json.dumps(json_schema(), indent=2) + "\n", encoding="utf-8")
    sys.stdout.write(f"wrote {SCHEMA_PATH}\n")
