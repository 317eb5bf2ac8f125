"""The room configuration's reference and example, written from the config models.

Each option's description, default, bounds and example value live once, in its field in
:mod:`edge.config.models` (``Field(description=..., examples=[...])``). From them this module
writes ``docs/configuration-reference.md`` (a table per section) and ``config/room.example.toml`` (every key
with its description above it; optional sections and keys without a value commented out);
``tests/test_config.py`` checks both files are what the models give. After changing a field:

    .venv/bin/python -m edge.config.reference --write
"""

from __future__ import annotations

import argparse
import json
import textwrap
import types
import typing
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from edge.config.channels import ChannelsConfig
from edge.config.models import AppConfig

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "docs" / "configuration-reference.md"
EXAMPLE = ROOT / "config" / "room.example.toml"
WIDTH = 100
SKIPPED = {"profile"}  # AppConfig fields that are not TOML (the room profile beside the file)

# Shown active in the example although they are optional: a room off the broker's machine needs TLS.
ACTIVE_OPTIONAL = {"mqtt.tls"}
# Optional keys the example sets (others with an example are shown commented out).
ACTIVE_KEYS = {"models.pack", "mqtt.tls.cert_file", "mqtt.tls.key_file"}
INLINE = "per channel"  # the model_config title of the tables written inline


@dataclass(frozen=True)
class Key:
    name: str
    field: FieldInfo
    optional: bool  # no value unless set (default None)

    @property
    def description(self) -> str:
        return " ".join((self.field.description or "").split())

    @property
    def default(self) -> Any:
        if self.field.default is PydanticUndefined:
            return None if self.field.default_factory is None else self.field.default_factory()  # type: ignore[call-arg]
        return self.field.default

    @property
    def required(self) -> bool:
        return self.field.is_required()

    @property
    def example(self) -> Any:
        """The value the example file shows: the field's example, else its default."""
        if self.field.examples:
            return self.field.examples[0]
        return self.default

    def bounds(self) -> str:
        parts = []
        for meta in self.field.metadata:
            for attr, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"), ("multiple_of", "multiple of")):
                value = getattr(meta, attr, None)
                if value is not None and isinstance(meta, annotated_types.BaseMetadata):
                    parts.append(f"{sign} {_number(value)}")
            if isinstance(meta, annotated_types.MaxLen):
                parts.append(f"at most {meta.max_length} characters")
        choices = _choices(self.field.annotation)
        if choices:
            parts.append(" | ".join(json.dumps(c) for c in choices))
        return ", ".join(parts)


@dataclass(frozen=True)
class Section:
    name: str  # dotted: "channels.words"
    doc: str
    keys: tuple[Key, ...]
    optional: bool  # the whole section is absent unless written
    array: bool = False  # [[name]]: a list of tables (the inference backends)
    variants: tuple[type[BaseModel], ...] = ()


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _choices(annotation: Any) -> list[Any]:
    found: list[Any] = []
    if get_origin(annotation) is Literal:
        return list(get_args(annotation))
    if get_origin(annotation) in (Union, types.UnionType):
        for arg in get_args(annotation):
            found += _choices(arg)
    return found


def _model_of(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The config model an annotation holds, and whether it may be absent (``X | None``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    if get_origin(annotation) in (Union, types.UnionType):
        models = [a for a in get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
        if len(models) == 1 and type(None) in get_args(annotation):
            return models[0], True
    return None, False


def _array_models(annotation: Any) -> tuple[type[BaseModel], ...]:
    """The models of a ``tuple[A | B, ...]`` field (a list of tables)."""
    if get_origin(annotation) is not tuple:
        return ()
    inner = get_args(annotation)[0]
    inner = get_args(inner)[0] if get_origin(inner) is typing.Annotated else inner
    options = get_args(inner) if get_origin(inner) in (Union, types.UnionType) else (inner,)
    return tuple(o for o in options if isinstance(o, type) and issubclass(o, BaseModel))


def sections(model: type[BaseModel] = AppConfig, prefix: str = "", optional: bool = False) -> Iterator[Section]:
    """Every TOML section under ``model``, depth first, in the models' field order."""
    keys: list[Key] = []
    nested: list[tuple[str, type[BaseModel], bool]] = []
    arrays: list[Section] = []
    for name, field in model.model_fields.items():
        if not prefix and name in SKIPPED:
            continue
        sub, maybe = _model_of(field.annotation)
        variants = _array_models(field.annotation)
        dotted = f"{prefix}.{name}" if prefix else name
        if sub is not None and not _inline(sub):
            nested.append((dotted, sub, maybe))
        elif variants:
            arrays.append(Section(dotted, field.description or "", (), optional=False, array=True, variants=variants))
        else:
            keys.append(Key(name, field, optional=field.default is None and not field.is_required()))
    if prefix:
        yield Section(prefix, " ".join((model.__doc__ or "").split()), tuple(keys), optional)
    for dotted, sub, maybe in nested:
        yield from sections(sub, dotted, optional or maybe)
    yield from arrays


def _inline(model: type[BaseModel]) -> bool:
    """Tables of one number per channel (fusion weights, temperatures) are written inline:
    ``weights = { face = 1.0, ... }``."""
    return model.model_config.get("title") == INLINE


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(round(value, 4)) if isinstance(value, float) else str(value)
    if isinstance(value, (str, Path)):
        return json.dumps(str(value))
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, BaseModel):
        value = value.model_dump()
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(str(value))


def _comment(text: str, indent: str = "") -> list[str]:
    return textwrap.wrap(text, WIDTH - len(indent) - 2, initial_indent=f"{indent}# ", subsequent_indent=f"{indent}# ")


def room_sections(registry: Iterable[Any] | None = None) -> list[Section]:
    """Every section of a room's file: the config models', then those of channels registered beside
    the product's that declare their own (``Channel.config_model``), after ``[channels.*]``."""
    if registry is None:
        from edge.channels.registry import default_registry  # noqa: PLC0415 - the channels sit above the config

        registry = default_registry()
    fixed = set(ChannelsConfig.model_fields)
    own = [
        Section(f"channels.{c.name}", " ".join((c.config_model.__doc__ or "").split()), keys(c.config_model), False)
        for c in registry
        if c.config_model is not None and c.name not in fixed
    ]
    out = list(sections())
    at = max(i for i, s in enumerate(out) if s.name.startswith("channels.")) + 1
    return out[:at] + own + out[at:]


def keys(model: type[BaseModel]) -> tuple[Key, ...]:
    return tuple(Key(n, f, optional=f.default is None and not f.is_required()) for n, f in model.model_fields.items())


def example_toml(registry: Iterable[Any] | None = None) -> str:
    out = [
        "# clinic-edge room configuration: copy to /etc/clinic-edge/room.toml and adjust.",
        "# Every key is checked at start; an unknown key or a value out of range stops the start with a",
        "# message naming the key, the value and what is allowed. Relative paths are resolved against the",
        "# folder of this file. Written by `python -m edge.config.reference --write` from the config models;",
        "# every option's bounds are in docs/configuration-reference.md.",
    ]
    for section in room_sections(registry):
        commented = section.optional and section.name not in ACTIVE_OPTIONAL
        out.append("")
        if section.array:
            out += _comment(section.doc)
            for variant in section.variants:
                first = variant is section.variants[0]
                prefix = "" if first else "# "
                out.append(f"{prefix}[[{section.name}]]")
                for name, field in variant.model_fields.items():
                    key = Key(name, field, optional=field.default is None and not field.is_required())
                    lines = [f"{prefix}{line}" if prefix else line for line in _comment(key.description)]
                    out += lines
                    out.append(f"{prefix}{name} = {toml_value(key.example)}")
            continue
        if section.doc:
            out += _comment(section.doc)
        if not section.keys:
            continue
        out.append(f"{'# ' if commented else ''}[{section.name}]")
        for key in section.keys:
            lines = _comment(key.description) if key.description else []
            value = key.example
            if value is None:
                raise ValueError(f"{section.name}.{key.name} has neither a default nor an example")
            off = commented or (key.optional and f"{section.name}.{key.name}" not in ACTIVE_KEYS)
            body = [*lines, f"{'# ' if off else ''}{key.name} = {toml_value(value)}"]
            out += [f"# {line}" if commented and not line.startswith("# ") else line for line in body]
    return "\n".join(out) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def reference_markdown(registry: Iterable[Any] | None = None) -> str:
    out = [
        "# Configuration reference",
        "",
        "Every key of a room's configuration (`/etc/clinic-edge/room.toml`), written from the config",
        "models by `python -m edge.config.reference --write` (a test checks this page and",
        "`config/room.example.toml` are current). How the file is read, checked and resolved:",
        "[Configuration](configuration.md).",
    ]
    for section in room_sections(registry):
        if not (section.keys or section.doc or section.array):
            continue
        brackets = ("[[", "]]") if section.array else ("[", "]")
        out += ["", f"## `{brackets[0]}{section.name}{brackets[1]}`", ""]
        if section.doc:
            out += [section.doc + (" Optional: absent unless written." if section.optional else ""), ""]
        elif section.optional:
            out += ["Optional: absent unless written.", ""]
        if section.array:
            for variant in section.variants:
                out += _table([Key(n, f, f.default is None) for n, f in variant.model_fields.items()])
                out.append("")
            continue
        if section.keys:
            out += _table(list(section.keys))
    return "\n".join(out).rstrip() + "\n"


def _table(keys: list[Key]) -> list[str]:
    rows = ["| key | default | allowed | what |", "| --- | --- | --- | --- |"]
    for key in keys:
        default = "required" if key.required else ("unset" if key.default is None else toml_value(key.default))
        rows.append(f"| `{key.name}` | `{_cell(default)}` | {_cell(key.bounds())} | {_cell(key.description)} |")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="write the reference and the example")
    args = parser.parse_args(argv)
    if args.write:
        REFERENCE.write_text(reference_markdown(), encoding="utf-8")
        EXAMPLE.write_text(example_toml(), encoding="utf-8")
        return 0
    print(example_toml(), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
