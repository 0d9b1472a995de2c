#!/usr/bin/env bash
# `make soak`: the whole pipeline at a fixed rate for TICKFLOW_SOAK_MINUTES (default 60), in
# release, against the dev stack; writes docs/soak.png and docs/soak.csv (tests/soak.rs).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
"$ROOT/scripts/dev-up.sh"
export TICKFLOW_TANSU_BIN="$(cat "$RUN/tansu.path")"
export TICKFLOW_RIVVEN_BIN="$(cat "$RUN/rivven.path")"
export TICKFLOW_SOAK_MINUTES="${TICKFLOW_SOAK_MINUTES:-60}"
export TICKFLOW_SOAK_PNG="${TICKFLOW_SOAK_PNG:-docs/soak.png}"
log "soak: ${TICKFLOW_SOAK_MINUTES} min, plot in $TICKFLOW_SOAK_PNG"
cargo test --release --features integration-tests --test soak -- --nocapture
