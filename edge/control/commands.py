"""Control commands: small, strictly validated JSON documents.

``{"command": "start", "consent": {"method": "written", "recorded_by": "staff-17"}}`` starts a
session; a session never starts without consent recorded. ``pause`` stops analysis at once and
releases the camera and microphone; ``resume`` continues the same session; ``stop`` ends it;
``{"command": "explain", "seconds": 60}`` explains every window of the next minute.
Consent holds no names or free text: ``recorded_by`` is a staff identifier and ``reference`` a
pointer into the clinic's own consent records.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from edge.errors import EdgeError

MAX_COMMAND_BYTES = 1024
_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"


class CommandError(EdgeError):
    """A command was malformed, oversized or not allowed in the current state."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Consent(_Strict):
    method: Literal["verbal", "written", "electronic"] = Field(description="How the client consented.")
    recorded_by: str = Field(pattern=_ID, description="Staff identifier of who recorded the consent.")
    reference: str | None = Field(default=None, pattern=_ID, description="Id in the clinic's consent records.")
    recorded_at: str = Field(
        default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"), max_length=40
    )


class Start(_Strict):
    command: Literal["start"]
    consent: Consent


class Pause(_Strict):
    command: Literal["pause"]


class Resume(_Strict):
    command: Literal["resume"]


class Stop(_Strict):
    command: Literal["stop"]


class StatusQuery(_Strict):
    command: Literal["status"]


class Explain(_Strict):
    """Explain every window of the next ``seconds`` (face map, voice segments, word importances)."""

    command: Literal["explain"]
    seconds: int = Field(default=60, ge=1, le=3600)


Command = Annotated[Start | Pause | Resume | Stop | StatusQuery | Explain, Field(discriminator="command")]
_ADAPTER: TypeAdapter[Command] = TypeAdapter(Command)


def parse_command(raw: bytes) -> Command:
    """Validate one command.

    Raises:
        CommandError: naming what is wrong, never echoing the payload.
    """
    if len(raw) > MAX_COMMAND_BYTES:
        raise CommandError(f"command of {len(raw)} bytes exceeds the {MAX_COMMAND_BYTES}-byte limit")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise CommandError("command is not UTF-8 JSON") from None
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(document)"
        raise CommandError(f"invalid command at {where}: {first['msg']}") from None
