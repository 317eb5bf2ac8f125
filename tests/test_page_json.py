"""Data embedded in the pages cannot end its ``<script>`` element: a transcript (or a room's name)
holding ``</script><meta http-equiv="refresh" ...>`` stays data, parsed back to the same text, in the
review page's real template."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import jinja2
import pytest

import edge.review
from clinic_common.html import script_json

HOSTILE = [
    '</script><meta http-equiv="refresh" content="0;url=https://attacker.example/">',
    "</SCRIPT >",
    "<!-- <script>",
    "Tom & Jerry > all",
    "line\u2028separator\u2029paragraph",
    "ordinary words, 'quoted' and \"double\"",
]


@pytest.mark.unit
@pytest.mark.parametrize("text", HOSTILE)
def test_script_json_round_trips_and_holds_no_markup(text: str) -> None:
    out = script_json({"said": text, "nested": [text]})
    assert json.loads(out) == {"said": text, "nested": [text]}
    for forbidden in ("<", ">", "&", "\u2028", "\u2029"):
        assert forbidden not in out


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.data: dict[str, str] = {}
        self._open: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._open = dict(attrs).get("id") if tag == "script" else None

    def handle_data(self, data: str) -> None:
        if self._open:
            self.data[self._open] = self.data.get(self._open, "") + data


@pytest.mark.unit
def test_a_hostile_transcript_stays_data_in_the_review_page() -> None:
    folder = Path(edge.review.__file__).parent / "templates"
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(folder), autoescape=True)
    timeline = {"moments": [{"said": text} for text in HOSTILE]}
    html = env.get_template("session.html").render(
        row={"id": "s1", "started_at": "2026-11-02T10:00:00"},
        timeline=script_json(timeline),
        report="",
        user={"csrf": "t"},
        room="room-a",
        request=None,
    )
    parsed = _Elements()
    parsed.feed(html)
    assert not [a for tag, a in parsed.tags if tag == "meta" and a.get("http-equiv")], "a meta element got in"
    assert json.loads(parsed.data["timeline-data"]) == timeline
