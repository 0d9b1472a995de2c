#!/usr/bin/env bash
# The venue framework must cost Binance nothing: builds the feed-parse benchmark of the code
# before the framework (BASE, default the last pre-framework commit) and of this tree, runs
# them interleaved (A B A B) on this machine, and prints each path's rate and the ratio.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
BASE="${TICKFLOW_BENCH_BASE:-64b481f}"
ROUNDS="${TICKFLOW_BENCH_ROUNDS:-2}"
# Its own target dir: the two trees are the same package, and would share build outputs.
WT="$ROOT/target/bench-base"
if [ ! -f "$WT/.base" ] || [ "$(cat "$WT/.base")" != "$BASE" ]; then
  rm -rf "$WT" && mkdir -p "$WT"
  git archive "$BASE" | tar -x -C "$WT"
  echo "$BASE" > "$WT/.base"
fi
FILTER='json_to'
out="$RUN/bench-ab"
mkdir -p "$out"
for r in $(seq 1 "$ROUNDS"); do
  log "round $r: before the framework ($BASE)"
  (cd "$WT" && CARGO_TARGET_DIR="$ROOT/target/bench-base-target" cargo bench -q --bench feed_parse -- --noplot "$FILTER") \
    > "$out/before.$r.txt" 2>&1
  log "round $r: this tree"
  cargo bench -q --bench feed_parse -- --noplot "$FILTER" > "$out/after.$r.txt" 2>&1
done
"$PY" - "$out" "$ROUNDS" <<'PY'
import re, sys, statistics
out, rounds = sys.argv[1], int(sys.argv[2])
unit = {"elem/s": 1, "Kelem/s": 1e3, "Melem/s": 1e6, "Gelem/s": 1e9}
def rates(path):
    got, name = {}, None
    for line in open(path):
        s = line.strip()
        if s.startswith(("trade/", "depth/")):
            name = s.split()[0] if "time:" not in s else s.split("time:")[0].strip()
        m = re.search(r"thrpt:\s*\[\S+ \S+ (\S+) (\S+)", s)
        if m and name:
            got[name] = float(m.group(1)) * unit[m.group(2)]
    return got
names, before, after = set(), {}, {}
for r in range(1, rounds + 1):
    for d, tag in ((before, "before"), (after, "after")):
        for k, v in rates(f"{out}/{tag}.{r}.txt").items():
            d.setdefault(k, []).append(v); names.add(k)
print(f"{'path':58} {'before msgs/s':>14} {'after msgs/s':>14} {'after/before':>12}")
for k in sorted(names):
    b, a = statistics.median(before.get(k, [0])), statistics.median(after.get(k, [0]))
    print(f"{k:58} {b:14,.0f} {a:14,.0f} {a / b if b else float('nan'):12.3f}")
print(f"(median of {rounds} interleaved rounds each; same machine, same run)")
PY
