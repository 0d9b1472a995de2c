#!/usr/bin/env bash
# `make run`: the replay pipeline (recorded exchange data -> feeds -> producers -> Kafka).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
exec cargo run --release -- run --config config/replay.toml
