#!/usr/bin/env bash
# Set up (idempotent), then run the appliance on the bundled demo clip with a local MQTT broker,
# and show what was stored and published.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh

PORT=18883   # must match config/demo.toml
STATE="$ROOT/build/demo-state"
mkdir -p "$STATE"
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  echo "[demo] port $PORT is already in use; stop what listens there (config/demo.toml expects the demo broker)" >&2
  exit 1
fi
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$PORT" > "$STATE/mosquitto.conf"
mosquitto -c "$STATE/mosquitto.conf" >"$STATE/mosquitto.log" 2>&1 &
BROKER=$!
cleanup() { kill "${SUB:-}" "$BROKER" 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done

RECEIVED="$STATE/mqtt-received.txt"
mosquitto_sub -h 127.0.0.1 -p "$PORT" -t 'clinic/#' -v >"$RECEIVED" &
SUB=$!
sleep 0.3

"$ROOT/.venv/bin/clinic-edge" run --config config/demo.toml --source "file://$ROOT/build/demo/demo.mkv" \
  --consent written --consent-by demo-staff
sleep 0.5

echo
echo "Timeline stored in SQLite ($STATE/clinic-edge.db):"
"$ROOT/.venv/bin/python" - "$STATE/clinic-edge.db" <<'PY'
import json, sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
session = conn.execute("SELECT id FROM sessions ORDER BY started_at DESC LIMIT 1").fetchone()[0]
rows = conn.execute(
    "SELECT start_s, end_s, label, confidence, fused, voice, words, pulse, flags FROM windows "
    "WHERE session_id = ? ORDER BY idx",
    [session],
)
print(f"  {'window':>13}  {'emotion':<10} {'conf':>5}  {'from':<11} {'voiced':>6} {'arousal':>7} {'words':>5} {'pulse':>9}  flags")
for start, end, label, conf, fused, voice, words, pulse, flags in rows:
    v = json.loads(voice) if voice else {}
    w = json.loads(words) if words else {}
    p = json.loads(pulse) if pulse else {}
    said = sum(u["words"] for u in w.get("utterances", []))
    bpm = f"{p['bpm']:.0f} bpm" if p.get("bpm") else p.get("quality", "-")
    arousal = v.get("arousal")
    print(
        f"  {start:5.1f}-{end:5.1f} s  {label or '-':<10} {conf if conf is not None else 0:5.2f}  "
        f"{'+'.join(json.loads(fused or '[]')) or '-':<11} {v.get('voiced_ratio', 0):6.2f} "
        f"{arousal if arousal is not None else float('nan'):7.2f} {said:5d} {bpm:>9}  {', '.join(json.loads(flags)) or '-'}"
    )
print()
print("  Transcript (stored because config/demo.toml sets channels.words.store_transcript; never published):")
for start, end, text, label in conn.execute(
    "SELECT start_s, end_s, text, label FROM transcripts WHERE session_id = ? ORDER BY start_s", [session]
):
    print(f"  {start:5.1f}-{end:5.1f} s  [{label}] {text}")
PY
echo
SESSION=$("$ROOT/.venv/bin/python" -c "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT id FROM sessions ORDER BY started_at DESC LIMIT 1').fetchone()[0])" "$STATE/clinic-edge.db")
echo "Session report (clinic-edge report $SESSION --config config/demo.toml):"
"$ROOT/.venv/bin/clinic-edge" report "$SESSION" --config config/demo.toml --out "$STATE" | sed 's/^/  /'
if command -v chromium >/dev/null 2>&1; then
  PROFILE=$(mktemp -d)
  chromium --headless --no-sandbox --disable-gpu --user-data-dir="$PROFILE" --window-size=1100,3400 \
    --screenshot="$STATE/report.png" "file://$STATE/report-$SESSION.html" >/dev/null 2>&1 \
    && echo "  screenshot: $STATE/report.png"
  rm -rf "$PROFILE"
fi
echo
echo "Published on MQTT (127.0.0.1:$PORT), saved to $RECEIVED:"
echo "  $(grep -c '/summary ' "$RECEIVED") summaries on clinic/v1/demo-clinic/room-1/summary; status messages:"
grep '/status ' "$RECEIVED" | sed 's/^/  /'
echo "  first summary:"
grep -m1 '/summary ' "$RECEIVED" | cut -d' ' -f2- | "$ROOT/.venv/bin/python" -m json.tool | sed 's/^/    /'
