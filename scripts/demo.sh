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
echo "Timeline stored in SQLite ($STATE/clinic-edge.db), read back by clinic-edge session show latest:"
"$ROOT/.venv/bin/clinic-edge" session show latest --config config/demo.toml
echo "  (the transcript is kept because config/demo.toml sets channels.words.store_transcript; it is never published)"
echo
SESSION=$("$ROOT/.venv/bin/clinic-edge" session list --config config/demo.toml --json \
  | "$ROOT/.venv/bin/python" -c "import json, sys; print(json.load(sys.stdin)[0]['id'])")
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
