"""The room profile: what the technician's calibration found and decided, loaded by the runtime.

Written by ``clinic-edge calibrate --write`` as ``room-profile.json`` beside the room's config file.
The runtime uses its client region (whose face is analysed) and, when present, the camera's
intrinsics; the check results are kept for the clinic's records.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edge.errors import ConfigError

PROFILE_NAME = "room-profile.json"
PROFILE_VERSION = 1


class _Profile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Region(_Profile):
    """A rectangle in normalised frame coordinates (0-1, origin top left)."""

    x: float = Field(ge=0.0, le=1.0)
    y: float = Field(ge=0.0, le=1.0)
    w: float = Field(gt=0.0, le=1.0)
    h: float = Field(gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _inside(self) -> Region:
        if self.x + self.w > 1.0 + 1e-9 or self.y + self.h > 1.0 + 1e-9:
            raise ValueError(f"region {self.x},{self.y} {self.w}x{self.h} reaches outside the frame")
        return self

    def contains(self, px: float, py: float, width: int, height: int) -> bool:
        """Whether the pixel (px, py) of a width x height frame lies in the region."""
        u, v = px / width, py / height
        return self.x <= u <= self.x + self.w and self.y <= v <= self.y + self.h

    @classmethod
    def parse(cls, text: str) -> Region:
        """From "x,y,w,h" (fractions of the frame)."""
        try:
            x, y, w, h = (float(p) for p in text.split(","))
        except ValueError:
            raise ConfigError(f"region must be x,y,w,h as fractions of the frame, got {text!r}") from None
        values = (x, y, w, h)
        if any(v > 1 for v in values) and all(0 <= v <= 100 for v in values):
            fractions = ",".join(f"{v / 100:g}" for v in values)
            raise ConfigError(
                f"region {text!r}: give x,y,w,h as fractions of the frame from 0 to 1, not percentages "
                f"(that is {fractions})"
            )
        try:
            return cls(x=x, y=y, w=w, h=h)
        except ValidationError as exc:
            raise ConfigError(
                f"region {text!r}: {exc.errors()[0]['msg']} (x,y,w,h are fractions of the frame)"
            ) from None


FULL_FRAME = Region(x=0.0, y=0.0, w=1.0, h=1.0)


class CheckResult(_Profile):
    name: str = Field(max_length=40)
    status: Literal["pass", "warn", "fail", "skip"]
    value: float | None
    unit: str = Field(max_length=16)
    threshold: str = Field(max_length=120, description="What pass means, in words.")
    action: str = Field(max_length=200, description="What the technician can do; empty on pass.")
    plain: str = Field(default="", max_length=120, description="The result in the technician's words.")


class Intrinsics(_Profile):
    """Pinhole camera matrix and distortion coefficients (OpenCV's model) at a frame size."""

    width: int = Field(gt=0)
    height: int = Field(gt=0)
    camera_matrix: list[list[float]] = Field(min_length=3, max_length=3)
    distortion: list[float] = Field(min_length=4, max_length=14)
    rms_error_px: float = Field(ge=0)


class RoomProfile(_Profile):
    profile_version: Literal[1] = 1
    created_at: str = Field(max_length=40)
    technician: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
    note: str = Field(default="", max_length=500, description="The technician's note about the room.")
    source: str = Field(max_length=300, description="The source calibrated, credentials removed.")
    client_region: Region = FULL_FRAME
    analysis_fps: int = Field(ge=1, le=30)
    microphone_gain_db: float = Field(default=0.0, ge=-60, le=60, description="Suggested change, 0 if none.")
    checks: list[CheckResult] = Field(default_factory=list)
    intrinsics: Intrinsics | None = None
    preview_saved: bool = Field(default=False, description="Whether a preview frame was saved with the report.")


def profile_path(config_path: Path) -> Path:
    return config_path.resolve().parent / PROFILE_NAME


def load_profile(path: Path) -> RoomProfile | None:
    """The profile at ``path``, or None when there is none.

    Raises:
        ConfigError: the file exists but is not a valid profile.
    """
    if not path.is_file():
        return None
    try:
        return RoomProfile.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"room profile {path} is unreadable: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(
            f"room profile {path} is invalid at {where}: {first['msg']}; run clinic-edge calibrate"
        ) from None


def save_profile(profile: RoomProfile, path: Path) -> None:
    tmp = path.with_suffix(".json.partial")
    tmp.write_text(profile.model_dump_json(indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
