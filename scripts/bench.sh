#!/usr/bin/env bash
# `make bench`: criterion micro-benchmarks and the pipeline load run against the dev stack.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
cargo bench --bench encode -- --noplot
cargo bench --bench feed_parse -- --noplot
# A fresh broker: tansu keeps every record in memory, and a broker already holding earlier
# runs' data is slower, which would skew the pipeline figures run to run.
"$ROOT/scripts/dev-down.sh"
"$ROOT/scripts/dev-up.sh"
cargo bench --bench pipeline_load
