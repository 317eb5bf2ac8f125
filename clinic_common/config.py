"""Strict configuration models and reading them from TOML.

Every section derives from :class:`StrictModel` (unknown keys are errors, values immutable). After
validation, :func:`resolve_paths` makes every ``Path`` field in the whole tree relative to the
config file's folder; a field annotated :data:`CredentialPath` is a secret that, under systemd, is
read from ``$CREDENTIALS_DIRECTORY`` when a credential of that name was loaded.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError

from clinic_common.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 (JetPack 6)
    import tomli as tomllib


class StrictModel(BaseModel):
    """Base for every config section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class _Credential:
    """Marks a path field as a secret (see :func:`resolve_paths`)."""

    def __repr__(self) -> str:
        return "CREDENTIAL"


CREDENTIAL = _Credential()
CredentialPath = Annotated[Path, CREDENTIAL]
M = TypeVar("M", bound=BaseModel)


def describe(error: Any, example: str) -> str:
    """One line for one validation error: the key, the value and what is allowed."""
    key = ".".join(str(p) for p in error["loc"]) or "(top level)"
    msg = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return f"{key}: unknown key (check the spelling; see {example})"
    if error["type"] == "missing":
        return f"{key}: required but missing"
    return f"{key} = {error.get('input')!r}: {msg}"


def validate(
    model: type[M], data: Mapping[str, Any], *, what: str, example: str, context: Mapping[str, Any] | None = None
) -> M:
    """``model`` from parsed TOML (``context`` goes to the models' validators).

    Raises:
        ConfigError: naming every offending key, its value and what is allowed.
    """
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        lines = "\n  ".join(describe(e, example) for e in exc.errors())
        raise ConfigError(f"invalid {what}:\n  {lines}") from None


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """The parsed TOML document at ``path``.

    Raises:
        ConfigError: the file is missing, unreadable or not TOML.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{what} not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from None
    try:
        data: dict[str, Any] = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {what}: {path} is not valid TOML: {exc}") from None
    return data


def resolve(path: Path, base_dir: Path) -> Path:
    """``path`` with ``~`` expanded, relative to ``base_dir`` unless absolute."""
    path = path.expanduser()
    return path if path.is_absolute() else (base_dir / path).resolve()


def credential(path: Path, base_dir: Path, credentials: str | None) -> Path:
    """Under systemd (``credentials`` is ``$CREDENTIALS_DIRECTORY``) a secret file is read from the
    service's credentials when one of the same name was loaded (``LoadCredential=<name>:<path>``);
    a bare name always means a credential there. Otherwise like :func:`resolve`."""
    if credentials:
        loaded = Path(credentials) / path.name
        if loaded.is_file() or (not path.is_absolute() and len(path.parts) == 1):
            return loaded
    return resolve(path, base_dir)


def resolve_paths(model: M, base_dir: Path, credentials: str | None = None) -> M:
    """``model`` with every ``Path`` field, at any depth (sections, lists and maps of sections),
    resolved against ``base_dir``; :data:`CredentialPath` fields through :func:`credential`."""
    updates: dict[str, Any] = {}
    for name, extra in (model.__pydantic_extra__ or {}).items():  # sections a model allows beside its fields
        if isinstance(extra, BaseModel):
            resolved = resolve_paths(extra, base_dir, credentials)
            if resolved is not extra:
                updates[name] = resolved
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        secret = any(m is CREDENTIAL for m in field.metadata) or _marked(field.annotation)

        def one(v: Any, secret: bool = secret) -> Any:
            if isinstance(v, BaseModel):
                return resolve_paths(v, base_dir, credentials)
            if isinstance(v, Path):
                return credential(v, base_dir, credentials) if secret else resolve(v, base_dir)
            return v

        new = _map(value, one)
        if new is not value:
            updates[name] = new
    return model.model_copy(update=updates) if updates else model


def _marked(annotation: Any) -> bool:
    """Whether ``annotation`` holds a :data:`CredentialPath` (``CredentialPath | None`` hides it in a union)."""
    if get_origin(annotation) is Annotated:
        return any(m is CREDENTIAL for m in get_args(annotation)[1:])
    return any(_marked(a) for a in get_args(annotation))


def _map(value: Any, one: Callable[[Any], Any]) -> Any:
    if isinstance(value, (list, tuple)):
        items = [one(v) for v in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else type(value)(items)
    if isinstance(value, dict):
        mapped = {k: one(v) for k, v in value.items()}
        return value if all(mapped[k] is value[k] for k in value) else mapped
    return one(value)
