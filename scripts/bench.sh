#!/usr/bin/env bash
# `make bench`: criterion micro-benchmarks and the pipeline load run against the dev stack.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
cargo bench --bench encode -- --noplot
cargo bench --bench feed_parse -- --noplot 2>&1 | "$PY" scripts/criterion-ratios.py
# Every venue on the framework, beside a plain serde_json parse of the same input.
cargo bench --bench venues_parse -- --noplot 2>&1 | "$PY" scripts/criterion-ratios.py
for b in benches/venue_*.rs; do
  cargo bench --bench "$(basename "$b" .rs)" -- --noplot
done
# The framework must cost Binance nothing: the code before it, built and measured in this run;
# and the feed hardening (issue 18) likewise, against the code before it.
"$ROOT/scripts/bench-feed-ab.sh"
TICKFLOW_BENCH_BASE=2aafa35 "$ROOT/scripts/bench-feed-ab.sh"
# PostgreSQL rows/s: row-by-row INSERT, batched INSERTs, the recorder's binary COPY (ratios).
cargo bench --bench recorder_pg
# Redis updates/s with and without coalescing; the Kafka path with the Redis sink on vs off.
cargo bench --bench redis_sink
# A fresh broker: tansu keeps every record in memory, and a broker already holding earlier
# runs' data is slower, which would skew the pipeline figures run to run.
"$ROOT/scripts/dev-down.sh"
"$ROOT/scripts/dev-up.sh"
cargo bench --bench pipeline_load
# Cost as symbols grow: 10, 100 and 1 000 synthetic symbols through the whole service
# (CPU µs per message, RSS per symbol, each size beside the 10-symbol run).
cargo bench --bench scale
