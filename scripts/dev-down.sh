#!/usr/bin/env bash
# Stops what dev-up.sh started (by PID); leaves anything it did not start alone.
source "$(dirname "$0")/lib.sh"
for name in tansu registry; do
  pidf="$RUN/$name.pid"
  if alive "$pidf"; then
    pid="$(cat "$pidf")"
    log "stopping $name (pid $pid)"
    kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidf"
done
