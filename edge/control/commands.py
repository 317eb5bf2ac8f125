"""Control commands: small, strictly validated JSON documents.

``{"command": "start", "consent": {"method": "written", "recorded_by": "staff-17"}}`` starts a
session; a session never starts without consent recorded. ``pause`` stops analysis at once and
releases the camera and microphone; ``resume`` continues the same session; ``stop`` ends it;
``{"command": "explain", "seconds": 60}`` explains every window of the next minute;
``{"command": "erase", "session_id": ..., "requested_by": "staff-17", "confirm": "<first 8 of the id>"}``
erases a finished session (consent withdrawn).
Consent holds no names or free text: ``recorded_by`` is a staff identifier and ``reference`` a
pointer into the clinic's own consent records.

Every command carries ``issued_at`` (an ISO time with a zone). A command older than
``control.command_ttl_s`` (60 s), or issued that far in the future, is refused: a command that
waited in a queue or a broker's retained store does not act late. A start's consent time is the
consent's ``recorded_at``, or the command's ``issued_at``; consent recorded longer ago than
``control.consent_max_age_min`` is refused.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from edge.errors import EdgeError

MAX_COMMAND_BYTES = 1024
_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"


class CommandError(EdgeError):
    """A command was malformed, oversized or not allowed in the current state."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Consent(_Strict):
    method: Literal["verbal", "written", "electronic"] = Field(description="How the client consented.")
    recorded_by: str = Field(pattern=_ID, description="Staff identifier of who recorded the consent.")
    reference: str | None = Field(default=None, pattern=_ID, description="Id in the clinic's consent records.")
    recorded_at: AwareDatetime | None = Field(
        default=None, description="When consent was recorded (the command's issued_at when absent)."
    )


class _Command(_Strict):
    issued_at: AwareDatetime = Field(description="When the command was sent (ISO 8601 with a zone).")


class Start(_Command):
    command: Literal["start"]
    consent: Consent


class Pause(_Command):
    command: Literal["pause"]


class Resume(_Command):
    command: Literal["resume"]


class Stop(_Command):
    command: Literal["stop"]


class StatusQuery(_Command):
    command: Literal["status"]


class Explain(_Command):
    """Explain every window of the next ``seconds`` (face map, voice segments, word importances)."""

    command: Literal["explain"]
    seconds: int = Field(default=60, ge=1, le=3600)


class Erase(_Command):
    """Erase a finished session on request (the client withdrew consent): ``confirm`` repeats the
    first eight characters of its id, so that a mistyped or replayed id erases nothing."""

    command: Literal["erase"]
    session_id: str = Field(pattern=r"^[0-9a-f-]{36}$")
    requested_by: str = Field(pattern=_ID, description="Staff identifier of who asks, for the access log.")
    confirm: str = Field(max_length=36)

    @model_validator(mode="after")
    def _confirmed(self) -> Erase:
        if self.confirm.strip().lower() != self.session_id[:8]:
            raise ValueError(f"confirm must repeat the session id's first 8 characters ({self.session_id[:8]})")
        return self


Command = Annotated[Start | Pause | Resume | Stop | StatusQuery | Explain | Erase, Field(discriminator="command")]
_ADAPTER: TypeAdapter[Command] = TypeAdapter(Command)


def stamped(command: dict[str, object]) -> dict[str, object]:
    """``command`` with ``issued_at`` now, as a client sends it (kept when given)."""
    return {**command, "issued_at": command.get("issued_at") or _utc_now()}


def check_fresh(command: Command, now: datetime, ttl_s: float, consent_max_age_s: float) -> Command:
    """The command if it is neither stale nor from the future, with its consent time filled in.

    Raises:
        CommandError: stale, from the future, or (a start) with consent recorded too long ago.
    """
    age = (now - command.issued_at).total_seconds()
    if age > ttl_s:
        raise CommandError(f"stale command: issued {age:.0f} s ago (at most {ttl_s:.0f} s); send it again")
    if age < -ttl_s:
        raise CommandError(f"command issued {-age:.0f} s in the future: check the sender's clock")
    if isinstance(command, Start):
        recorded = command.consent.recorded_at or command.issued_at
        consent_age = (now - recorded).total_seconds()
        if consent_age > consent_max_age_s:
            raise CommandError(
                f"consent recorded {consent_age / 60:.0f} min ago (at most {consent_max_age_s / 60:.0f} min): "
                "record it again before starting"
            )
        if consent_age < -ttl_s:
            raise CommandError("consent recorded in the future: check the sender's clock")
        return command.model_copy(update={"consent": command.consent.model_copy(update={"recorded_at": recorded})})
    return command


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
