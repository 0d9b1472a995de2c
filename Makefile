# tickflow — the two commands that matter: `make run` and `make test`.
.PHONY: run test dev-up dev-down build lint bench soak schema-baseline clean

CARGO ?= cargo

## Start the local broker and schema registry, then the replay pipeline.
run: dev-up
	scripts/run.sh

## Install and start what is needed, lint, run every test, stop what was started.
test:
	scripts/test.sh

## Start tansu (:9092) and rivven-schema (:8081) on 127.0.0.1, installing them when missing.
dev-up:
	scripts/dev-up.sh

## Stop what dev-up started.
dev-down:
	scripts/dev-down.sh

build:
	$(CARGO) build --release

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets --all-features -- -D warnings

## Benchmarks (criterion + the pipeline load binary) against the dev stack.
bench: dev-up
	scripts/bench.sh

## The pipeline at a fixed rate for 60 min (TICKFLOW_SOAK_MINUTES), release: docs/soak.png.
soak: dev-up
	scripts/soak.sh

## Accept the current schemas as the new compatibility baseline (after a reviewed change).
schema-baseline:
	$(CARGO) run -q -- schemas baseline

clean: dev-down
	$(CARGO) clean
