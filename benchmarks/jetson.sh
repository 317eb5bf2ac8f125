#!/usr/bin/env bash
# The benchmark suite on a Jetson (JetPack 6) with TensorRT, so a clinic can reproduce the device's
# figures: set up as on any machine, build a TensorRT engine on the device for every ONNX variant of
# the model pack (strongly typed: INT8 from the pack's Q/DQ graph, FP16 and FP32), then run the whole
# suite with the rooms using those engines. Results land in benchmarks/results/ named after the board
# (e.g. suite-nvidia-jetson-orin-nano-developer-kit-6cpu.md), beside the CPU machines' results.
#
# Usage: benchmarks/jetson.sh [suite arguments, e.g. --quick or --only models rooms]
#   ENGINES=DIR       where the engines go (default build/engines/<board>)
#   ROOM_CONFIG=FILE  the room config doctor checks first (default config/demo.toml)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
log() { printf '[jetson] %s\n' "$*" >&2; }

board="$( { tr -d '\0' </proc/device-tree/model; } 2>/dev/null || true)"
case "$board" in
  *Jetson*) log "device: $board" ;;
  *)
    log "this is not a Jetson (/proc/device-tree/model: '${board:-none}')."
    log "On another machine with an NVIDIA GPU: .venv/bin/python benchmarks/suite.py --engine-dir DIR"
    exit 2
    ;;
esac

./scripts/setup.sh
PY="$ROOT/.venv/bin/python"
if ! "$PY" -c 'import tensorrt' 2>/dev/null; then
  log "TensorRT's Python package is not visible to .venv: sudo apt install python3-libnvinfer (JetPack 6)"
  exit 2
fi
if ! "$PY" -c 'from cuda.bindings import runtime' 2>/dev/null; then
  log "installing the jetson extra: cuda-python (the room's TensorRT backend uses CUDA's runtime API through it)"
  "$PY" -m pip install -q -e ".[jetson]"
fi
.venv/bin/clinic-edge doctor --config "${ROOM_CONFIG:-config/demo.toml}" || log "doctor found problems (above)"

slug="$(printf '%s' "$board" | tr '[:upper:]' '[:lower:]' | sed -E 's/[^a-z0-9]+/-/g; s/^-|-$//g')"
ENGINES="${ENGINES:-$ROOT/build/engines/$slug}"
mkdir -p "$ENGINES"
for onnx in build/models/pack/*/*.onnx; do
  engine="$ENGINES/$(basename "${onnx%.onnx}").engine"
  if [ -s "$engine" ] && [ "$engine" -nt "$onnx" ]; then continue; fi
  log "engine for $onnx"
  # A model TensorRT cannot build is run by ONNX Runtime in the rooms (the backend chain falls back
  # and logs why); the suite still records everything else.
  .venv/bin/clinic-export engine --onnx "$onnx" --out "$engine" \
    || log "no engine for $onnx (see above); the rooms run it on ONNX Runtime"
done

exec "$PY" benchmarks/suite.py --engine-dir "$ENGINES" "$@"
