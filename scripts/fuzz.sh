#!/usr/bin/env bash
# Runs every fuzz target (fuzz/Cargo.toml's [[bin]]s: each venue's parser, the book
# sequencers) briefly, FUZZ_SECONDS each (default 30). cargo-fuzz needs a nightly
# toolchain; where none is installed this says so and exits 0 (the stable mutation test in
# tests/parse_robustness.rs still runs in every `make test`).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
secs="${FUZZ_SECONDS:-30}"
if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  log "no nightly toolchain: skipping cargo fuzz (stable mutation test covers the parsers)"
  exit 0
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  log "installing cargo-fuzz"
  cargo install cargo-fuzz --locked >&2
fi
# The nightly build of the fuzz targets (~10 min on 2 cores the first time) is kept under the
# cache, so a fresh clone on the same machine rebuilds only what changed.
# FUZZ_TARGETS (space-separated) runs only those.
targets="${FUZZ_TARGETS:-$(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^tickflow-fuzz$')}"
for target in $targets; do
  corpus="$RUN/fuzz-corpus/$target"
  mkdir -p "$corpus"
  cp -n fuzz/corpus/"$target"/* "$corpus/" 2>/dev/null || true
  log "fuzzing $target for ${secs}s"
  CARGO_TARGET_DIR="$CACHE/fuzz-target" cargo +nightly fuzz run "$target" "$corpus" -- -max_total_time="$secs" -max_len=4096 >"$RUN/fuzz-$target.log" 2>&1 \
    || { tail -40 "$RUN/fuzz-$target.log" >&2; exit 1; }
  grep -E 'Done [0-9]+ runs' "$RUN/fuzz-$target.log" | tail -1 >&2 || true
done
