"""The hub's ingest rate: summaries per second from simulated rooms through a real mosquitto into
SQLite and into PostgreSQL, against the ingest step alone (no broker) as the baseline.

Usage: .venv/bin/python benchmarks/hub_ingest.py [--rooms 8] [--per-room 500] [--repeats 3]
Writes benchmarks/results/hub-<machine>.json and .md. Needs mosquitto and PostgreSQL (set-up installs them).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from results_io import machine, write_results

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def _messages(rooms: int, per_room: int) -> list[tuple[str, bytes, int]]:
    from hub_helpers import summary

    out = []
    for r in range(rooms):
        session = str(uuid.uuid4())
        for seq in range(1, per_room + 1):
            if seq % 50 == 1:
                session = str(uuid.uuid4())
            s = summary("bench", f"r{r}", f"dev-{r}", seq, session, "2026-11-16")
            out.append((f"clinic/v1/bench/r{r}/summary", s.model_dump_json().encode(), r))
    return out


def direct(url: str, messages: list[tuple[str, bytes, int]]) -> float:
    from hub_helpers import hub_config

    from hub.ingest import Ingest
    from hub.metrics import HubMetrics
    from hub.service import open_database

    tmp = Path(tempfile.mkdtemp(prefix="hub-bench-"))
    engine = open_database(hub_config(tmp, 1883, url=url.replace("{tmp}", str(tmp))))
    ingest = Ingest(engine, HubMetrics())
    started = time.perf_counter()
    for topic, payload, _ in messages:
        ingest.handle(topic, payload)
    rate = len(messages) / (time.perf_counter() - started)
    engine.dispose()
    return rate


def through_broker(url: str, messages: list[tuple[str, bytes, int]], rooms: int) -> float:
    import paho.mqtt.client as mqtt
    from conftest import start_broker
    from hub_helpers import hub_config, running_hub, wait_for
    from paho.mqtt.enums import CallbackAPIVersion

    tmp = Path(tempfile.mkdtemp(prefix="hub-bench-"))
    broker = start_broker(tmp, extra=("max_queued_messages 200000",))  # as config/mosquitto/clinic-broker.conf
    try:
        config = hub_config(tmp, broker.port, url=url.replace("{tmp}", str(tmp)))
        with running_hub(config) as hub:
            clients = []
            for r in range(rooms):
                c = mqtt.Client(
                    callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"bench-{r}", protocol=mqtt.MQTTv5
                )
                c.max_inflight_messages_set(100)
                c.connect("127.0.0.1", broker.port)
                c.loop_start()
                clients.append(c)

            def send(r: int) -> None:
                infos = [clients[r].publish(t, p, qos=1) for t, p, room in messages if room == r]
                for info in infos:
                    info.wait_for_publish(timeout=120)

            stored = hub.ingest.metrics.summaries.labels("stored")
            base = stored._value.get()
            started = time.perf_counter()
            threads = [threading.Thread(target=send, args=(r,)) for r in range(rooms)]
            for t in threads:
                t.start()
            wait_for(lambda: stored._value.get() - base >= len(messages), timeout=600, what="all summaries stored")
            rate = len(messages) / (time.perf_counter() - started)
            for t in threads:
                t.join()
            for c in clients:
                c.loop_stop()
                c.disconnect()
        return rate
    finally:
        broker.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rooms", type=int, default=8)
    parser.add_argument("--per-room", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    from hub_helpers import postgres

    messages = _messages(args.rooms, args.per_room)
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "messages": len(messages),
        "rooms": args.rooms,
        "machine": machine(),
        "rates": {},
    }
    with tempfile.TemporaryDirectory() as pg_tmp, postgres(Path(pg_tmp)) as pg:
        for backend, url in (("sqlite", "sqlite:///{tmp}/hub.db"), ("postgresql", pg.url)):
            for mode in ("direct", "broker"):
                runs = []
                for i in range(args.repeats):
                    db_url = url if backend == "sqlite" else url.rsplit("/", 1)[0] + f"/bench_{mode}_{i}"
                    if backend == "postgresql":
                        import subprocess

                        bindir = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[0]
                        port = url.split(":")[-1].split("/")[0]
                        subprocess.run(
                            [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", port, "-U", "hub", f"bench_{mode}_{i}"],
                            check=True,
                        )
                    rate = (
                        direct(db_url, messages) if mode == "direct" else through_broker(db_url, messages, args.rooms)
                    )
                    runs.append(round(rate, 1))
                    print(f"{backend} {mode}: {rate:.0f} summaries/s", flush=True)
                results["rates"][f"{backend}-{mode}"] = {"median": statistics.median(runs), "runs": runs}
    m = results["machine"]
    lines = [
        f"Machine: {m['cpus']} CPUs, {m['machine']}, Python {m['python']} ({results['date']}); "
        f"{len(messages)} summaries from {args.rooms} simulated rooms, QoS 1, median of {args.repeats} runs.",
        "",
        "| database | ingest alone (summaries/s) | through mosquitto (summaries/s) | broker path / ingest alone |",
        "| --- | --- | --- | --- |",
    ]
    for backend in ("sqlite", "postgresql"):
        d, b = results["rates"][f"{backend}-direct"], results["rates"][f"{backend}-broker"]
        lines.append(
            f"| {backend} | {d['median']:.0f} ({min(d['runs']):.0f}-{max(d['runs']):.0f}) | "
            f"{b['median']:.0f} ({min(b['runs']):.0f}-{max(b['runs']):.0f}) | {b['median'] / d['median']:.2f} |"
        )
    lines.append("")
    write_results(args.out, "hub", results, "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
