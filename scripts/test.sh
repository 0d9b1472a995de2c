#!/usr/bin/env bash
# `make test`: bring the dev stack up (installing it when missing), lint, run all tests,
# and stop whatever this run started, even on failure.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
started_here=0
if ! alive "$RUN/tansu.pid" && ! alive "$RUN/registry.pid"; then started_here=1; fi
cleanup() { if [ "$started_here" = 1 ]; then "$ROOT/scripts/dev-down.sh"; fi; }
trap cleanup EXIT

"$ROOT/scripts/dev-up.sh"
export TICKFLOW_TANSU_BIN="$(cat "$RUN/tansu.path")"
export TICKFLOW_RIVVEN_BIN="$(cat "$RUN/rivven.path")"
export TICKFLOW_TANSU_DURABLE_BIN="$(cat "$RUN/tansu-durable.path")"

log "cargo fmt --check"
cargo fmt --check
log "cargo clippy --all-targets --all-features -- -D warnings"
cargo clippy --all-targets --all-features -- -D warnings
log "cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet
# `cargo test` alone runs the pure tests; the integration tests need the stack started above.
log "cargo test --features integration-tests"
cargo test --features integration-tests --no-fail-fast 2>&1 | tee "$RUN/test.log"
status=${PIPESTATUS[0]}
[ "$status" = 0 ] || exit "$status"
log "fuzzing the parsers briefly"
FUZZ_SECONDS="${FUZZ_SECONDS:-20}" "$ROOT/scripts/fuzz.sh"
