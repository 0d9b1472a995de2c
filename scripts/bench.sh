#!/usr/bin/env bash
# `make bench`: criterion micro-benchmarks and the pipeline load run against the dev stack.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
cargo bench --bench encode -- --noplot
cargo bench --bench feed_parse -- --noplot
cargo bench --bench pipeline_load
