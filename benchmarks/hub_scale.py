"""The hub at scale: simulated rooms publish real-shaped summaries through a real mosquitto to 1, 2
and 4 ingest workers (``clinic-hub ingest`` processes sharing ``$share/bench/...``) writing to one
PostgreSQL, which the benchmark starts. Then the dashboard's pages over a database of 1 M sessions.

Measured, per worker count:
* stored summaries/s: a burst of ``--burst`` summaries published as fast as one process can, from
  the first publish to the last commit (read from the workers' ``clinic_hub_summaries_total``);
* publish -> committed delay p50/p95 at ``--rooms`` rooms each publishing one summary a second for
  ``--seconds`` (each summary's span ends when it is published; the workers' histogram
  ``clinic_hub_summary_lag_seconds`` measures commit minus span end);
and once: the dashboard's overview and site pages (p50/p95 of ``--page-requests`` requests, logged
in as an admin) with ``--sessions`` sessions released over a year of weeks; the single-process
``serve`` of the previous release as the baseline rate.

Usage: .venv/bin/python benchmarks/hub_scale.py [--burst 60000] [--rooms 1000] [--seconds 30]
       [--sessions 1000000] [--workers 1,2,4]
Writes benchmarks/results/hub-scale-<machine>.json and .md. Needs mosquitto and PostgreSQL (set-up
installs them). Bounded: every phase has a count and a time limit.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from results_io import machine, write_results

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
HUB = str(ROOT / ".venv" / "bin" / "clinic-hub")
PAGES = ("/", "/?grain=month", "/trends?level=room&grain=week", "/trends?level=site&grain=month", "/rooms")
BROKER_SETTINGS = ("max_queued_messages 1000000", "max_inflight_messages 0", "max_queued_bytes 0")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _toml(broker: int, url: str, metrics: int, web: int, group: str, dashboard_password: Path) -> str:
    return f"""client_id = "bench"
max_age_days = 3650
[mqtt]
host = "127.0.0.1"
port = {broker}
[database]
url = "{url}"
dashboard_password_file = "{dashboard_password}"
[ingest]
share_group = "{group}"
[web]
port = {web}
cookie_secure = false
[metrics]
port = {metrics}
"""


def _metric(port: int, name: str, label: str = "") -> dict[str, float]:
    """Samples of one metric from a worker's Prometheus endpoint (name{labels} -> value)."""
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    out = {}
    for line in body.splitlines():
        if line.startswith(name) and (not label or label in line):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def _stored(ports: list[int]) -> float:
    return sum(sum(_metric(p, "clinic_hub_summaries_total", 'result="stored"').values()) for p in ports)


def _lag_buckets(ports: list[int]) -> list[tuple[float, float]]:
    merged: dict[float, float] = {}
    for p in ports:
        for key, value in _metric(p, "clinic_hub_summary_lag_seconds_bucket").items():
            le = key.split('le="')[1].split('"')[0]
            bound = float("inf") if le == "+Inf" else float(le)
            merged[bound] = merged.get(bound, 0.0) + value
    return sorted(merged.items())


def _quantile(buckets: list[tuple[float, float]], q: float) -> float:
    """Prometheus' histogram_quantile: linear inside the bucket that holds the rank."""
    total = buckets[-1][1]
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return lower
            return lower + (bound - lower) * (rank - below) / max(count - below, 1e-9)
        lower, below = bound, count
    return lower


class Rooms:
    """Simulated rooms: a few MQTT connections publishing each room's summaries in order."""

    def __init__(self, broker: int, rooms: int, connections: int = 4) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.rooms = rooms
        self.seq = [0] * rooms
        self.sessions = [str(uuid.uuid4()) for _ in range(rooms)]
        self.clients = []
        for i in range(connections):
            c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"rooms-{i}")
            c.max_inflight_messages_set(1000)
            c.max_queued_messages_set(0)
            c.connect("127.0.0.1", broker)
            c.loop_start()
            self.clients.append(c)

    def payload(self, r: int, ended: dt.datetime) -> tuple[str, bytes]:
        from hub_helpers import summary

        self.seq[r] += 1
        seq = self.seq[r]
        s = summary("bench", f"r{r:04d}", f"dev-{r:04d}", seq, self.sessions[r], ended.date().isoformat())
        start = ended - dt.timedelta(seconds=s.span.end_s - s.span.start_s)
        span = s.span.model_copy(update={"started_at": start.isoformat(timespec="milliseconds")})
        return f"clinic/v1/bench/r{r:04d}/summary", s.model_copy(update={"span": span}).model_dump_json().encode()

    def publish(self, r: int, topic: str, payload: bytes) -> Any:
        return self.clients[r % len(self.clients)].publish(topic, payload, qos=1)

    def close(self) -> None:
        for c in self.clients:
            c.loop_stop()
            c.disconnect()


def _wait(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.2)


def ingest_run(pg: Any, broker: int, workers: int, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    db = f"scale_{workers}"
    bindir = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[0]
    port = pg.url.split(":")[-1].split("/")[0]
    subprocess.run([str(bindir / "createdb"), "-h", "127.0.0.1", "-p", port, "-U", "hub", db], check=True)
    url = pg.url.rsplit("/", 1)[0] + f"/{db}"
    subprocess.run(  # the schema, once, before the workers start
        [HUB, "--config", str(_config(tmp, broker, url, 0, f"w{workers}")), "release"], check=True, capture_output=True
    )
    ports = [_free_port() for _ in range(workers)]
    procs = []
    for i, mport in enumerate(ports):
        cfg = _config(tmp, broker, url, mport, f"w{workers}")
        with (tmp / f"worker-{workers}-{i}.log").open("w") as log:
            procs.append(subprocess.Popen([HUB, "--config", str(cfg), "ingest", "--worker", f"w{i}"], stderr=log))
    try:
        for p in ports:
            _wait(lambda p=p: _ok(p), 60, "a worker's metrics")
        time.sleep(1.0)  # the workers' subscriptions reach the broker (their connect log lines say so)
        rooms = Rooms(broker, args.rooms)
        now = dt.datetime.now(dt.timezone.utc)
        burst = [rooms.payload(i % args.rooms, now) for i in range(args.burst)]
        started = time.perf_counter()
        infos = [rooms.publish(i, t, p) for i, (t, p) in enumerate(burst)]
        for info in infos:
            info.wait_for_publish(timeout=300)
        _wait(lambda: _stored(ports) >= args.burst, 600, "the burst stored")
        rate = args.burst / (time.perf_counter() - started)
        before = _lag_buckets(ports)
        # Paced: each room one summary a second, spread over the second.
        t0 = time.perf_counter()
        sent = 0
        for second in range(args.seconds):
            for r in range(args.rooms):
                due = t0 + second + r / args.rooms
                pause = due - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                topic, payload = rooms.payload(r, dt.datetime.now(dt.timezone.utc))
                rooms.publish(r, topic, payload)
                sent += 1
        _wait(lambda: _stored(ports) >= args.burst + sent, 600, "the paced summaries stored")
        after = _lag_buckets(ports)
        delta = [(b, c - dict(before).get(b, 0.0)) for b, c in after]
        rooms.close()
        return {
            "workers": workers,
            "stored_per_s": round(rate, 1),
            "paced_rooms": args.rooms,
            "paced_summaries": sent,
            "lag_p50_ms": round(_quantile(delta, 0.5) * 1000, 1),
            "lag_p95_ms": round(_quantile(delta, 0.95) * 1000, 1),
        }
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=60)


def _ok(port: int) -> bool:
    try:
        _metric(port, "clinic_hub_summaries_total")
    except OSError:
        return False
    return True


def _config(tmp: Path, broker: int, url: str, metrics: int, group: str, web: int = 8080) -> Path:
    path = tmp / f"hub-{group}-{metrics}.toml"
    secret = tmp / "dashboard-password"
    secret.write_text("bench-dashboard-password\n", encoding="utf-8")
    path.write_text(_toml(broker, url, metrics, web, group, secret), encoding="utf-8")
    return path


def pages(pg: Any, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """The dashboard at ``--sessions`` released sessions: page times, logged in as an admin."""
    from hub_helpers import Browserless

    bindir = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[0]
    port = pg.url.split(":")[-1].split("/")[0]
    subprocess.run([str(bindir / "createdb"), "-h", "127.0.0.1", "-p", port, "-U", "hub", "pages"], check=True)
    url = pg.url.rsplit("/", 1)[0] + "/pages"
    web = _free_port()
    cfg = _config(tmp, _free_port(), url, 0, "pages", web=web)
    subprocess.run([HUB, "--config", str(cfg), "release"], check=True, capture_output=True)  # the schema
    fill = time.perf_counter()
    _fill_sessions(url, args.sessions)
    subprocess.run([HUB, "--config", str(cfg), "release"], check=True, capture_output=True)
    release_s = time.perf_counter() - fill
    password = "bench-password-1234"  # noqa: S105 - a throw-away account of the benchmark's database
    subprocess.run(
        [HUB, "--config", str(cfg), "user", "admin", "--role", "admin", "--password-stdin"],
        input=password + "\n",
        text=True,
        check=True,
        capture_output=True,
    )
    proc = subprocess.Popen([HUB, "--config", str(cfg), "dashboard"], stderr=subprocess.DEVNULL)
    try:
        client = Browserless(f"http://127.0.0.1:{web}")
        _wait(lambda: _up(client), 120, "the dashboard")
        status, _, body = client.get("/login")
        token = body.split('name="csrf" value="')[1].split('"')[0] if 'name="csrf"' in body else ""
        client.post("/login", {"username": "admin", "password": password, "csrf": token})
        times: dict[str, list[float]] = {}
        for path in PAGES:  # warm: templates compiled, the start-up release check done
            for _ in range(3):
                client.get(path)
        for path in PAGES:
            runs = []
            for _ in range(args.page_requests):
                t = time.perf_counter()
                status, _, _ = client.get(path)
                runs.append((time.perf_counter() - t) * 1000)
                if status != 200:
                    raise RuntimeError(f"{path}: HTTP {status}")
            times[path] = runs
            print(path, [round(t) for t in runs], flush=True)
        return {
            "sessions": args.sessions,
            "fill_and_release_s": round(release_s, 1),
            "pages": {
                p: {
                    "p50_ms": round(statistics.median(r), 1),
                    "p95_ms": round(sorted(r)[int(0.95 * (len(r) - 1))], 1),
                }
                for p, r in times.items()
            },
        }
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def _up(client: Any) -> bool:
    try:
        return bool(client.get("/login")[0] == 200)
    except OSError:
        return False


def _fill_sessions(url: str, count: int) -> None:
    """``count`` sessions over 52 closed weeks, 40 rooms in 4 sites, written with COPY (as ingest
    would leave them: one open part each)."""
    import psycopg

    from contract.classes import CLASSES
    from hub.periods import month_of, week_of
    from hub.store import FLAGS, sessions

    columns = [c.name for c in sessions.columns if c.name != "sealed_in"]
    today = dt.date.today()
    monday = today - dt.timedelta(days=today.weekday() + 7 * 2)
    with (
        psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn,
        conn.cursor() as cur,
        cur.copy(f"COPY sessions ({', '.join(columns)}) FROM STDIN") as copy,
    ):
        for i in range(count):
            day = monday - dt.timedelta(days=7 * (i % 52) + i % 5)
            site, room = f"s{i % 4}", f"r{i % 40}"
            label = CLASSES[i % len(CLASSES)]
            values: dict[str, Any] = {
                "session_id": str(uuid.UUID(int=i)),
                "part": 0,
                "site": "north" if site == "s0" else site,
                "room": room,
                "day": day.isoformat(),
                "week": week_of(day.isoformat()),
                "month": month_of(day.isoformat()),
                "windows": 600,
                "seconds": 1500.0,
                "face_coverage_sum": 480.0,
                "voiced_sum": 300.0,
                "prob_windows": 600,
                **{f"p_{c}": (420.0 if c == label else 60.0 / 7) for c in CLASSES},
                **{f"flag_{f}": 0 for f in FLAGS},
            }
            copy.write_row([values[c] for c in columns])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--burst", type=int, default=60000)
    parser.add_argument("--rooms", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--page-requests", type=int, default=50)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    from conftest import start_broker
    from hub_helpers import postgres

    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine(), "runs": []}
    keep = os.environ.get("HUB_SCALE_KEEP")  # a folder to keep the workers' logs in
    with tempfile.TemporaryDirectory() as tmp_name, postgres(Path(tmp_name)) as pg:
        tmp = Path(keep or tmp_name)
        tmp.mkdir(parents=True, exist_ok=True)
        for workers in (int(w) for w in args.workers.split(",") if w):
            broker = start_broker(tmp, extra=BROKER_SETTINGS)
            try:
                run = ingest_run(pg, broker.port, workers, args, tmp)
            finally:
                broker.stop()
            print(json.dumps(run), flush=True)
            results["runs"].append(run)
        if args.sessions:
            results["dashboard"] = pages(pg, args, tmp)
            print(json.dumps(results["dashboard"]), flush=True)
    write_results(args.out, "hub-scale", results, _markdown(results, args))
    return 0


def _markdown(results: dict[str, Any], args: argparse.Namespace) -> str:
    m = results["machine"]
    lines = [
        f"Machine: {m['cpus']} CPUs, {m['machine']}, Python {m['python']} ({results['date']}). mosquitto, "
        f"PostgreSQL, the simulated rooms and the workers all on this machine; QoS 1; batches of up to 500 "
        f"or 50 ms.",
        "",
        f"| ingest workers | stored summaries/s ({args.burst} burst) | vs 1 worker | "
        f"publish -> commit p50 / p95 at {args.rooms} rooms (ms) |",
        "| --- | --- | --- | --- |",
    ]
    base = results["runs"][0]["stored_per_s"] if results["runs"] else 1.0
    for r in results["runs"]:
        lines.append(
            f"| {r['workers']} | {r['stored_per_s']:.0f} | {r['stored_per_s'] / base:.2f} | "
            f"{r['lag_p50_ms']:.0f} / {r['lag_p95_ms']:.0f} |"
        )
    if "dashboard" in results:
        d = results["dashboard"]
        lines += [
            "",
            f"Dashboard at {d['sessions']:,} sessions (52 weeks, 40 rooms; filled and released in "
            f"{d['fill_and_release_s']:.0f} s), {args.page_requests} requests per page:",
            "",
            "| page | p50 (ms) | p95 (ms) |",
            "| --- | --- | --- |",
        ]
        for page, t in d["pages"].items():
            lines.append(f"| `{page}` | {t['p50_ms']:.0f} | {t['p95_ms']:.0f} |")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
