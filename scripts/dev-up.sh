#!/usr/bin/env bash
# Starts the dev stack on 127.0.0.1: tansu (Kafka API, memory storage) and rivven-schema
# (Confluent-compatible registry). Installs what is missing. Idempotent: a second run starts nothing.
source "$(dirname "$0")/lib.sh"

start_broker() {
  if alive "$RUN/tansu.pid" || "$PY" "$ROOT/scripts/ready.py" kafka "$KAFKA_ADDR"; then
    log "broker already up on $KAFKA_ADDR"; return
  fi
  local bin; bin="$(tansu_bin)"
  log "starting tansu on $KAFKA_ADDR"
  setsid "$bin" broker --listener-url "tcp://$KAFKA_ADDR" --advertised-listener-url "tcp://$KAFKA_ADDR" \
    --storage-engine memory://tansu/ >"$RUN/tansu.log" 2>&1 </dev/null &
  echo $! >"$RUN/tansu.pid"
  wait_ready kafka "$KAFKA_ADDR" 30 || { log "broker not ready; see $RUN/tansu.log"; tail -20 "$RUN/tansu.log" >&2; exit 1; }
  log "broker ready"
}

start_registry() {
  if alive "$RUN/registry.pid" || "$PY" "$ROOT/scripts/ready.py" registry "$REGISTRY_URL"; then
    log "registry already up on $REGISTRY_URL"; return
  fi
  local bin; bin="$(rivven_bin)"
  log "starting rivven-schema on $REGISTRY_URL"
  setsid "$bin" serve --host 127.0.0.1 --port "$REGISTRY_PORT" >"$RUN/registry.log" 2>&1 </dev/null &
  echo $! >"$RUN/registry.pid"
  wait_ready registry "$REGISTRY_URL" 30 || { log "registry not ready; see $RUN/registry.log"; tail -20 "$RUN/registry.log" >&2; exit 1; }
  log "registry ready"
}

start_postgres() {
  # The recorder's tests and bench use the machine's PostgreSQL (trust auth) on 127.0.0.1:5432.
  if pg_isready -q -h 127.0.0.1 -p 5432; then log "postgres already up on 127.0.0.1:5432"; return; fi
  local version; version="$(pg_lsclusters --no-header 2>/dev/null | awk '$2 == "main" {print $1; exit}')"
  [ -n "$version" ] || { log "no PostgreSQL cluster found (pg_lsclusters); install postgresql"; exit 1; }
  log "starting PostgreSQL $version/main"
  pg_ctlcluster "$version" main start
  for _ in $(seq 1 100); do pg_isready -q -h 127.0.0.1 -p 5432 && { log "postgres ready"; return; }; sleep 0.1; done
  log "postgres not ready on 127.0.0.1:5432"; exit 1
}

start_redis() {
  # The Redis sink's tests start their own private redis-server (they stop it); `tickflow run`
  # with [redis] enabled and the bench use the machine's on 127.0.0.1:6379.
  command -v redis-server >/dev/null || { log "installing redis-server"; apt-get install -y -q redis-server >/dev/null; }
  if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then log "redis already up on 127.0.0.1:6379"; return; fi
  log "starting redis-server on 127.0.0.1:6379"
  redis-server --daemonize yes --port 6379 --bind 127.0.0.1 --save "" --appendonly no >/dev/null
  for _ in $(seq 1 100); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && { log "redis ready"; return; }; sleep 0.1; done
  log "redis not ready on 127.0.0.1:6379"; exit 1
}

start_broker
start_registry
start_postgres
start_redis
# Paths for tests that start their own throw-away instances (outage tests).
tansu_bin >"$RUN/tansu.path"
rivven_bin >"$RUN/rivven.path"
# A broker whose storage survives a restart (sqlite), for the no-loss restart tests.
tansu_durable_bin >"$RUN/tansu-durable.path"
