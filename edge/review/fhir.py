"""A session for the clinic's record: an HL7 FHIR R4 transaction Bundle, built as plain resources and
validated by ``fhir.resources`` (its R4B models: Observation, DocumentReference, Device and Bundle are
the same in R4 and R4B), then checked for the codes FHIR fixes (statuses, bundle type).

What goes in: one Observation for the fused result and one per channel (the session's distribution
and coverage; the pulse as LOINC 8867-4 "Heart rate" in /min), one per disparity moment, a Device
(this appliance) and a DocumentReference carrying the report (PDF; the HTML where no PDF printer is
installed). Codes where they exist and fit (LOINC, UCUM, HL7's own code systems), plain text where
none does: there is no standard code for "share of windows classified happy by a face model". No
client identity: the clinic's record system attaches the subject; the consent reference recorded at
the start (a pointer into the clinic's own consent records) travels with the document to help it.
Words are never in the bundle, even where transcripts are kept.

Filing is a person's action (the page's button, ``clinic-edge session export-fhir``), never
automatic: :func:`edge.review.fhir_client.post_bundle` POSTs the bundle to the configured endpoint with the clinic's
credentials; both outcomes go to the access log.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError

from contract.classes import CLASSES
from edge import __version__
from edge.channels.registry import ChannelRegistry, default_registry
from edge.config.models import AppConfig
from edge.errors import EdgeError
from edge.report.data import SessionData, load_session
from edge.report.figures import SessionFigures
from edge.report.files import write_report
from edge.report.fusion import session_figures
from edge.report.render import LIMITS
from edge.store import Store

logger = logging.getLogger(__name__)

UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
HEART_RATE = ("8867-4", "Heart rate")
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
ID_SYSTEM = "urn:clinic-edge:session"
CONSENT_SYSTEM = "urn:clinic-edge:consent-reference"
_NAMESPACE = uuid.UUID("5b1f8a4e-3c2d-4e6f-9a7b-1c0d2e3f4a5b")  # stable ids: one export equals the next

# The codes FHIR R4 fixes for the elements used (fhir.resources checks types, not these bindings).
REQUIRED_CODES: dict[tuple[str, str], frozenset[str]] = {
    ("Bundle", "type"): frozenset({"transaction"}),
    ("Observation", "status"): frozenset(
        {"registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error", "unknown"}
    ),
    ("DocumentReference", "status"): frozenset({"current", "superseded", "entered-in-error"}),
    ("DocumentReference", "docStatus"): frozenset({"preliminary", "final", "amended", "entered-in-error"}),
    ("Device", "status"): frozenset({"active", "inactive", "entered-in-error", "unknown"}),
}


class FhirError(EdgeError):
    """The bundle could not be built or validated, or the record refused it (a person must act)."""


class FhirUnreachableError(FhirError):
    """The clinic's FHIR server could not be reached: trying again later may succeed."""

    exit_code = 3


@dataclass(frozen=True)
class Report:
    """The session's report as the document carries it."""

    content: bytes
    content_type: str  # application/pdf, or text/html without a PDF printer


def _uuid(session_id: str, what: str) -> str:
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, f'{session_id}/{what}')}"


def _at(session: SessionData, seconds: float) -> str:
    start = dt.datetime.fromisoformat(session.started_at)
    return (start + dt.timedelta(seconds=seconds)).isoformat(timespec="seconds")


def _percent(value: float) -> dict[str, Any]:
    return {"value": round(100 * value, 2), "unit": "%", "system": UCUM, "code": "%"}


def _text(text: str) -> dict[str, Any]:
    return {"text": text}


def _component(name: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"code": _text(name), **value}


class _Builder:
    def __init__(self, session: SessionData, f: SessionFigures, registry: ChannelRegistry) -> None:
        self.session = session
        self.f = f
        self.registry = registry
        self.device = _uuid(session.id, "device")
        self.issued = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        self.period = {"start": session.started_at, **({"end": session.ended_at} if session.ended_at else {})}

    def observation(self, what: str, code: dict[str, Any], **fields: Any) -> dict[str, Any]:
        return {
            "resourceType": "Observation",
            "identifier": [{"system": ID_SYSTEM, "value": f"{self.session.id}/{what}"}],
            "status": "final",
            "category": [{"text": "Emotion analysis (clinic-edge session summary)"}],
            "code": code,
            "effectivePeriod": self.period,
            "issued": self.issued,
            "device": {"reference": self.device},
            "note": [{"text": f"Not a diagnosis. {LIMITS[0]}"}],
            **fields,
        }

    def fused(self) -> dict[str, Any]:
        f = self.f
        top = f.labels[0][0] if f.labels else None
        components = [_component(f"windows labelled {label}", {"valueQuantity": _percent(s)}) for label, s in f.labels]
        components += [
            _component("windows uncertain (no label)", {"valueInteger": f.uncertain}),
            _component("windows mixed", {"valueInteger": f.mixed}),
            _component("windows analysed", {"valueInteger": f.windows}),
        ]
        value = {"valueCodeableConcept": _text(top)} if top else {"dataAbsentReason": {"text": "no window labelled"}}
        return self.observation(
            "fused",
            _text("Most frequent emotion over the session, fused from the channels (8 RAVDESS classes)"),
            component=components,
            method=_text(f"clinic-edge {__version__}: fusion of {', '.join(c.name for c in self.registry.voters)}"),
            **value,
        )

    def channel(self, name: str) -> dict[str, Any]:
        """A voting channel: its mean distribution over the windows where it was good, and coverage."""
        votes = [v for w in self.session.windows for v in self.registry.votes(w.channels) if v.name == name]
        good = [v.probs for v in votes if v.probs is not None and v.quality == "good"]
        cover = self.f.coverage[name]
        components = [
            _component("windows with input", {"valueQuantity": _percent(cover.present)}),
            _component("windows of good quality", {"valueQuantity": _percent(cover.good)}),
        ]
        if good:
            mean = [sum(p[i] for p in good) / len(good) for i in range(len(CLASSES))]
            components += [
                _component(f"mean probability {c}", {"valueQuantity": _percent(m)})
                for c, m in zip(CLASSES, mean, strict=True)
            ]
            top = CLASSES[max(range(len(CLASSES)), key=lambda i: mean[i])]
            value: dict[str, Any] = {"valueCodeableConcept": _text(top)}
        else:
            value = {"dataAbsentReason": {"text": f"the {name} channel had no window of good quality"}}
        return self.observation(
            f"channel/{name}",
            _text(f"Emotion estimate of the {name} channel over the session"),
            component=components,
            **value,
        )

    def pulse(self) -> dict[str, Any]:
        cover = self.f.coverage.get("pulse")
        components = (
            [_component("windows with a pulse reading", {"valueQuantity": _percent(cover.good)})] if cover else []
        )
        code = {"coding": [{"system": LOINC, "code": HEART_RATE[0], "display": HEART_RATE[1]}], "text": "Pulse"}
        method = _text("Remote photoplethysmography from the face (camera): a research measurement, not a medical one")
        bpm = self.f.pulse_bpm
        if bpm is None:
            return self.observation(
                "channel/pulse",
                code,
                method=method,
                component=components,
                dataAbsentReason={"text": "no window gave a reliable pulse"},
            )
        median, low, high = bpm
        per_min = {"unit": "/min", "system": UCUM, "code": "/min"}
        components += [
            _component("lowest window", {"valueQuantity": {"value": round(low, 1), **per_min}}),
            _component("highest window", {"valueQuantity": {"value": round(high, 1), **per_min}}),
        ]
        return self.observation(
            "channel/pulse",
            code,
            method=method,
            component=components,
            valueQuantity={"value": round(median, 1), **per_min},
        )

    def moment(self, i: int) -> dict[str, Any]:
        e = self.session.events[i]
        score = {"unit": "score (0-1)", "system": UCUM, "code": "1"}
        return {
            **self.observation(
                f"disparity/{i}",
                _text("Emotional disparity: two channels pointed in opposite directions for a while"),
                valueQuantity={"value": round(e.peak, 3), **score},
                component=[
                    _component(
                        "mean score", {"valueQuantity": {"value": round(e.mean, 3), "system": UCUM, "code": "1"}}
                    ),
                    _component("channels", {"valueString": f"{e.channels[0]} vs {e.channels[1]}"}),
                    _component("seconds into the session", {"valueString": f"{e.start_s:.0f}-{e.end_s:.0f}"}),
                ],
            ),
            "effectivePeriod": {"start": _at(self.session, e.start_s), "end": _at(self.session, e.end_s)},
        }

    def device_resource(self) -> dict[str, Any]:
        return {
            "resourceType": "Device",
            "identifier": [{"system": "urn:clinic-edge:device", "value": self.session.device_id}],
            "status": "active",
            "deviceName": [
                {
                    "name": f"clinic-edge room appliance {self.session.site}/{self.session.room}",
                    "type": "user-friendly-name",
                }
            ],
            "version": [{"value": __version__}],
        }

    def document(self, report: Report, consent_reference: str | None) -> dict[str, Any]:
        pdf = report.content_type == "application/pdf"
        related = (
            {"related": [{"identifier": {"system": CONSENT_SYSTEM, "value": consent_reference}}]}
            if consent_reference
            else {}
        )
        return {
            "resourceType": "DocumentReference",
            "identifier": [{"system": ID_SYSTEM, "value": f"{self.session.id}/report"}],
            "status": "current",
            "docStatus": "final",
            "type": _text("Session emotion analysis report (clinic-edge)"),
            "date": self.issued,
            "description": "Timeline, disparity moments, contributions, explanations, coverage and limits. "
            "Not a diagnosis.",
            "author": [{"reference": self.device}],
            "content": [
                {
                    "attachment": {
                        "contentType": report.content_type,
                        "data": base64.b64encode(report.content).decode("ascii"),
                        "title": f"session-report-{self.session.started_at[:10]}.{'pdf' if pdf else 'html'}",
                        "creation": self.issued,
                        "size": len(report.content),
                    }
                }
            ],
            "context": {"period": self.period, **related},
        }


def _entry(full_url: str, resource: dict[str, Any]) -> dict[str, Any]:
    return {"fullUrl": full_url, "resource": resource, "request": {"method": "POST", "url": resource["resourceType"]}}


def build_bundle(
    session: SessionData,
    config: AppConfig,
    report: Report,
    consent_reference: str | None = None,
    registry: ChannelRegistry | None = None,
) -> dict[str, Any]:
    """The session as a validated FHIR transaction Bundle (JSON-ready).

    Raises:
        FhirError: the bundle does not validate (a defect, named with the first error).
    """
    registry = registry if registry is not None else default_registry()
    f, _ = session_figures(session, config, registry)
    b = _Builder(session, f, registry)
    entries = [_entry(b.device, b.device_resource()), _entry(_uuid(session.id, "fused"), b.fused())]
    for channel in registry.voters:
        entries.append(_entry(_uuid(session.id, f"channel/{channel.name}"), b.channel(channel.name)))
    if "pulse" in registry.names:
        entries.append(_entry(_uuid(session.id, "channel/pulse"), b.pulse()))
    for i in range(len(session.events)):
        entries.append(_entry(_uuid(session.id, f"disparity/{i}"), b.moment(i)))
    entries.append(_entry(_uuid(session.id, "report"), b.document(report, consent_reference)))
    bundle = {
        "resourceType": "Bundle",
        "identifier": {"system": ID_SYSTEM, "value": session.id},
        "type": "transaction",
        "timestamp": b.issued,
        "entry": entries,
    }
    return validated(bundle)


def validated(bundle: dict[str, Any]) -> dict[str, Any]:
    """``bundle`` checked by the FHIR models and for the codes FHIR fixes, as JSON-ready data.

    Raises:
        FhirError: naming the first problem.
    """
    try:
        model = Bundle.model_validate(bundle)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise FhirError(f"the FHIR bundle does not validate at {where}: {first['msg']}") from None
    data: dict[str, Any] = json.loads(model.model_dump_json())
    problems = []
    resources = [("Bundle", data), *((e["resource"]["resourceType"], e["resource"]) for e in data.get("entry", []))]
    urls = {e["fullUrl"] for e in data.get("entry", [])}
    for kind, resource in resources:
        for (owner, element), allowed in REQUIRED_CODES.items():
            if owner == kind and element in resource and resource[element] not in allowed:
                problems.append(f"{kind}.{element} = {resource[element]!r}")
    for reference in _references(data):
        if reference.startswith("urn:uuid:") and reference not in urls:
            problems.append(f"reference {reference} resolves to no entry")
    if problems:
        raise FhirError("the FHIR bundle breaks FHIR's rules: " + "; ".join(problems))
    return data


def _references(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["reference"]] if isinstance(node.get("reference"), str) else []
        return found + [r for v in node.values() for r in _references(v)]
    if isinstance(node, list):
        return [r for v in node for r in _references(v)]
    return []


def report_for(path_html: Path, path_pdf: Path | None) -> Report:
    """The document's content: the PDF when one was printed, else the self-contained HTML."""
    if path_pdf is not None and path_pdf.is_file():
        return Report(path_pdf.read_bytes(), "application/pdf")
    return Report(path_html.read_bytes(), "text/html")


def session_bundle(config: AppConfig, session_id: str, registry: ChannelRegistry | None = None) -> dict[str, Any]:
    """The stored session as a validated bundle: its report printed (the PDF, or the HTML without a
    PDF printer) and the consent reference given at its start.

    Raises:
        ReportError: no such session; FhirError: the bundle does not validate.
    """
    db = config.storage.state_dir / config.storage.database
    written = write_report(config, session_id, registry=registry)
    pdf = next((path for path in written if path.suffix == ".pdf"), None)
    if pdf is None:
        logger.warning("no PDF printer (chromium): the bundle carries the report as HTML")
    store = Store(db, migrate_schema=False)
    try:
        reference = store.consent_reference(session_id)
    finally:
        store.close()
    return build_bundle(
        load_session(db, session_id, registry), config, report_for(written[0], pdf), reference, registry
    )
