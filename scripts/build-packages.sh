#!/usr/bin/env bash
# Build the Debian packages clinic-edge (the room: appliance, review and setup pages, backup) and
# clinic-hub (the clinic server) for this machine's architecture, into build/packages/.
#
# Each package carries the application in /opt/<package> with its own virtual environment, built
# here from requirements.lock (the exact versions the tests passed with) on the system Python (so
# GStreamer's gi bindings and, on a Jetson, TensorRT stay visible), its units, an example
# configuration installed as a conffile, and maintainer scripts that make the system user, keep data
# on remove and delete it on purge. clinic-edge also carries the signed model pack this checkout
# built (scripts/setup.sh) and the public key it is signed with.
#
# Usage: scripts/build-packages.sh [--only clinic-edge|clinic-hub] [--out DIR]
# (CLINIC_PACKAGE_VERSION overrides the version, <release>.<commits> by default.)
# Needs: scripts/setup.sh run first (the model pack), dpkg-deb, network access to the package index
# (or a warm pip cache).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/build/packages"
ONLY=""
while [ $# -gt 0 ]; do
  case "$1" in
    --only) ONLY="$2"; shift 2 ;;
    --out) OUT="$(realpath -m "$2")"; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
log() { printf '[packages] %s\n' "$*" >&2; }
command -v dpkg-deb >/dev/null || { log "dpkg-deb is missing (apt-get install dpkg-dev)"; exit 2; }

ARCH="$(dpkg --print-architecture)"
BASE="$(sed -n 's/^__version__ = "\([^"]*\)".*/\1/p' "$ROOT/clinic_common/__init__.py" | head -1)"
# Debian versions must grow from one build to the next: the release, then the commit count.
VERSION="${CLINIC_PACKAGE_VERSION:-$BASE.$(git -C "$ROOT" rev-list --count HEAD 2>/dev/null || echo 0)}"
PACK="$ROOT/build/models/pack"
PACK_KEY="$ROOT/build/keys/pack-signing.key.pub"
mkdir -p "$OUT"
WORK="$(mktemp -d "$OUT/.work-XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# The project as a wheel, built once for both packages.
log "building the clinic-edge wheel ($VERSION)"
[ -x "$ROOT/.venv/bin/python" ] || { log "no .venv: run scripts/setup.sh first"; exit 2; }
"$ROOT/.venv/bin/python" -m pip --disable-pip-version-check -q wheel --no-deps -w "$WORK/wheel" "$ROOT" >/dev/null
WHEEL="$(ls "$WORK"/wheel/clinic_edge-*.whl)"

LOCK=()
lock_tag="$(sed -n 's/^# Exact versions for \([^ ]* python[0-9.]*\).*/\1/p' "$ROOT/requirements.lock")"
here_tag="$(python3 -c 'import platform, sys; print(f"{platform.machine()} python{sys.version_info[0]}.{sys.version_info[1]}")')"
if [ "$lock_tag" = "$here_tag" ]; then
  LOCK=(-c "$ROOT/requirements.lock")
else
  log "requirements.lock is for $lock_tag, this is $here_tag: versions resolved afresh"
fi

# venv STAGE PREFIX EXTRA: a virtual environment that will live at PREFIX, built in STAGE/PREFIX.
venv() {
  local stage="$1" prefix="$2" extra="$3" env="$1$2/.venv"
  /usr/bin/python3 -m venv --system-site-packages "$env"
  "$env/bin/python" -m pip --disable-pip-version-check -q install "${LOCK[@]}" "$WHEEL[$extra]" \
    > "$WORK/pip-$extra.log" 2>&1 || { tail -n 30 "$WORK/pip-$extra.log" >&2; exit 1; }
  # Scripts and activation files name the environment's path: the installed one, not the stage.
  grep -rlF "$env" "$env/bin" | xargs -r sed -i "s#$env#$prefix/.venv#g"
  find "$env" -name '__pycache__' -prune -exec rm -rf {} +
  "$env/bin/python" -m compileall -q -d "$prefix/.venv" "$env/lib" >/dev/null 2>&1 || true
}

# control NAME DESCRIPTION DEPENDS RECOMMENDS STAGE
control() {
  local size
  size="$(du -sk "$5" | cut -f1)"
  mkdir -p "$5/DEBIAN"
  cat > "$5/DEBIAN/control" <<EOF
Package: $1
Version: $VERSION
Architecture: $ARCH
Maintainer: clinic-edge <clinic-edge@localhost>
Installed-Size: $size
Depends: $3
Recommends: $4
Section: misc
Priority: optional
Description: $2
EOF
}

# scripts NAME USER STATE CONFIG NEXT: maintainer scripts (user, data kept on remove, purged on purge).
scripts() {
  local stage="$1" user="$2" state="$3" config="$4" next="$5"
  cat > "$stage/DEBIAN/postinst" <<EOF
#!/bin/sh
set -e
if [ "\$1" = configure ]; then
  if ! getent passwd $user >/dev/null; then
    adduser --system --group --home $state --no-create-home --quiet $user
  fi
  for group in video audio; do
    if [ "$user" = clinic-edge ] && getent group \$group >/dev/null; then adduser --quiet $user \$group || true; fi
  done
  install -d -o $user -g $user -m 0700 $state
  install -d -o $user -g $user -m 0700 /var/backups/$user  # the backup timer's folder (kept on purge)
  chown root:$user $config && chmod 0750 $config
  find $config -maxdepth 1 -type f -name '*.toml' -exec chown root:$user {} + -exec chmod 0640 {} +
  if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
  if [ -s /run/$user.restart-after-upgrade ]; then
    units=\$(cat /run/$user.restart-after-upgrade)
    rm -f /run/$user.restart-after-upgrade
    systemctl start \$units || true
    echo "$user: upgraded to $VERSION and started again (the database migrates itself at start)"
  elif [ -z "\$2" ]; then
    cat <<'NEXT'
$next
NEXT
  fi
fi
exit 0
EOF
  cat > "$stage/DEBIAN/prerm" <<EOF
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "\$1" = remove ]; then
  systemctl stop $(cd "$stage/lib/systemd/system" && ls | tr '\n' ' ') 2>/dev/null || true
fi
exit 0
EOF
  cat > "$stage/DEBIAN/postrm" <<EOF
#!/bin/sh
set -e
if [ "\$1" = purge ]; then
  rm -rf $state $config
  if getent passwd $user >/dev/null; then deluser --quiet --system $user >/dev/null 2>&1 || userdel $user || true; fi
  if getent group $user >/dev/null; then delgroup --quiet --system $user >/dev/null 2>&1 || groupdel $user || true; fi
fi
if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
exit 0
EOF
  chmod 0755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/prerm" "$stage/DEBIAN/postrm"
  (cd "$stage" && find etc -type f 2>/dev/null | sed 's#^#/#') > "$stage/DEBIAN/conffiles"
}

# preinst of clinic-edge: refuses a database newer than this release reads (a downgrade too far),
# and on an upgrade waits for the session in progress to end before anything is replaced.
edge_preinst() {
  local stage="$1" schema="$2"
  cat > "$stage/DEBIAN/preinst" <<EOF
#!/bin/sh
set -e
SCHEMA=$schema
WAIT="\${CLINIC_EDGE_UPGRADE_WAIT_S:-14400}"
DB=/var/lib/clinic-edge/clinic-edge.db
CONFIG=/etc/clinic-edge/room.toml
if [ "\$1" = install ] || [ "\$1" = upgrade ]; then
  if [ -f "\$DB" ]; then
    have=\$(python3 -c 'import sqlite3, sys
c = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
print(c.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[0])' "\$DB" 2>/dev/null || echo 0)
    if [ "\$have" -gt "\$SCHEMA" ]; then
      echo "clinic-edge $VERSION reads database schema \$SCHEMA or older; \$DB is at schema \$have (a newer release wrote it)." >&2
      echo "Refused, nothing changed: install that release or newer, or restore a backup taken before the upgrade." >&2
      exit 1
    fi
  fi
fi
if [ "\$1" = upgrade ] && [ -x /usr/bin/clinic-edge ] && [ -f "\$CONFIG" ]; then
  waited=0
  while /usr/bin/clinic-edge control --config "\$CONFIG" status 2>/dev/null | grep -Eq 'state=(recording|paused|starting)'; do
    if [ "\$waited" -ge "\$WAIT" ]; then
      echo "clinic-edge: a session is still in progress after \$WAIT s; upgrade refused, nothing changed (try again later)" >&2
      exit 1
    fi
    if [ "\$waited" -eq 0 ]; then echo "clinic-edge: waiting for the session in progress to end (at most \$WAIT s)"; fi
    sleep 5
    waited=\$((waited + 5))
  done
  if [ -d /run/systemd/system ] && systemctl is-active --quiet clinic-edge.service; then
    systemctl stop clinic-edge.service
    echo clinic-edge.service > /run/clinic-edge.restart-after-upgrade
  fi
fi
exit 0
EOF
  chmod 0755 "$stage/DEBIAN/preinst"
}

build_edge() {
  [ -s "$PACK/pack.json" ] && [ -s "$PACK_KEY" ] || { log "no model pack in $PACK: run scripts/setup.sh first"; exit 2; }
  local stage="$WORK/clinic-edge" prefix=/opt/clinic-edge
  log "clinic-edge: virtual environment (the edge extra, locked versions)"
  venv "$stage" "$prefix" edge
  mkdir -p "$stage$prefix/models" "$stage/etc/clinic-edge/keys" "$stage/lib/systemd/system" "$stage/usr/bin"
  cp -a "$PACK" "$stage$prefix/models/pack"
  cp "$PACK_KEY" "$stage/etc/clinic-edge/keys/clinic-packs.pub"
  cp -a "$ROOT/docs" "$stage$prefix/docs"
  cp "$ROOT"/systemd/clinic-edge*.service "$ROOT"/systemd/clinic-edge*.timer "$stage/lib/systemd/system/"
  cp "$ROOT/config/room.example.toml" "$stage/etc/clinic-edge/room.toml"
  ln -s "$prefix/.venv/bin/clinic-edge" "$stage/usr/bin/clinic-edge"
  control clinic-edge "Privacy-preserving emotion analysis for a clinic room
 Watches the client's face and listens to the voice in a therapy room and gives the therapist a
 timeline of emotions that explains itself; raw video and audio never leave the process." \
    "python3 (>= 3.10), python3-venv, python3-gi, python3-gst-1.0, gir1.2-gstreamer-1.0, gir1.2-gst-plugins-base-1.0, gstreamer1.0-plugins-base, gstreamer1.0-plugins-good, gstreamer1.0-plugins-bad, gstreamer1.0-libav, gstreamer1.0-alsa, openssl, adduser, libgl1, libglib2.0-0" \
    "chromium, fonts-dejavu-core, mosquitto-clients, gstreamer1.0-pulseaudio, gstreamer1.0-plugins-ugly" \
    "$stage"
  edge_preinst "$stage" "$("$stage$prefix/.venv/bin/python" -c 'from edge.store.migrations import SCHEMA_VERSION; print(SCHEMA_VERSION)')"
  scripts "$stage" clinic-edge /var/lib/clinic-edge /etc/clinic-edge "clinic-edge is installed; the room is not analysing anything. Next:
  1. Edit /etc/clinic-edge/room.toml: [room] names, [capture] camera and microphone, [mqtt] broker.
  2. Check it: sudo -u clinic-edge clinic-edge doctor --config /etc/clinic-edge/room.toml
  3. Start the room (it waits in standby for a session with consent):
     systemctl enable --now clinic-edge
Set-up page, review page, backups: /opt/clinic-edge/docs/install.md"
  dpkg-deb --root-owner-group -Zxz -z1 --build "$stage" "$OUT/clinic-edge_${VERSION}_${ARCH}.deb" >/dev/null
  log "wrote $OUT/clinic-edge_${VERSION}_${ARCH}.deb"
}

# preinst of clinic-hub: on an upgrade, stops the hub's running units (the new code starts them in
# postinst; the database migrates itself then). A hub refuses at start a database newer than it reads.
hub_preinst() {
  cat > "$1/DEBIAN/preinst" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = upgrade ] && [ -d /run/systemd/system ]; then
  running=$(systemctl list-units --state=active --plain --no-legend 'clinic-hub*.service' | awk '{print $1}' | grep -v '^clinic-hub-backup' | tr '\n' ' ')
  if [ -n "$running" ]; then
    systemctl stop $running
    echo "$running" > /run/clinic-hub.restart-after-upgrade
  fi
fi
exit 0
EOF
  chmod 0755 "$1/DEBIAN/preinst"
}

build_hub() {
  local stage="$WORK/clinic-hub" prefix=/opt/clinic-hub
  log "clinic-hub: virtual environment (the hub extra, locked versions)"
  venv "$stage" "$prefix" hub
  mkdir -p "$stage/etc/clinic-hub" "$stage/lib/systemd/system" "$stage/usr/bin"
  cp -a "$ROOT/docs" "$stage$prefix/docs"
  for unit in "$ROOT"/systemd/clinic-hub*.service "$ROOT"/systemd/clinic-hub*.timer; do
    sed -e 's#/opt/clinic-edge/.venv/bin/clinic-hub#/opt/clinic-hub/.venv/bin/clinic-hub#' \
      -e 's#file:///opt/clinic-edge/docs#file:///opt/clinic-hub/docs#' "$unit" > "$stage/lib/systemd/system/$(basename "$unit")"
  done
  cp "$ROOT/config/hub.example.toml" "$stage/etc/clinic-hub/hub.toml"
  ln -s "$prefix/.venv/bin/clinic-hub" "$stage/usr/bin/clinic-hub"
  control clinic-hub "Clinic hub for clinic-edge rooms
 Aggregates the rooms' summaries for administrators, private by construction." \
    "python3 (>= 3.10), python3-venv, adduser" "postgresql, postgresql-client" "$stage"
  hub_preinst "$stage"
  scripts "$stage" clinic-hub /var/lib/clinic-hub /etc/clinic-hub "clinic-hub is installed and not running. Next:
  1. Edit /etc/clinic-hub/hub.toml: the broker, the database (PostgreSQL), the web address.
  2. Make the first administrator: sudo -u clinic-hub clinic-hub --config /etc/clinic-hub/hub.toml user add ...
  3. Start it: systemctl enable --now clinic-hub
Backups, upgrade: /opt/clinic-hub/docs/install.md; the hub: /opt/clinic-hub/docs/hub.md"
  dpkg-deb --root-owner-group -Zxz -z1 --build "$stage" "$OUT/clinic-hub_${VERSION}_${ARCH}.deb" >/dev/null
  log "wrote $OUT/clinic-hub_${VERSION}_${ARCH}.deb"
}

case "$ONLY" in
  "") build_edge; build_hub ;;
  clinic-edge) build_edge ;;
  clinic-hub) build_hub ;;
  *) log "--only takes clinic-edge or clinic-hub"; exit 2 ;;
esac
