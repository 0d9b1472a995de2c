#!/usr/bin/env python3
"""Reads criterion's output on stdin; prints, per group, each path's msgs/s beside the group's
plain serde_json typed parse "(limit)" measured in the same run, and their ratio."""
import re
import sys

UNIT = {"elem/s": 1, "Kelem/s": 1e3, "Melem/s": 1e6, "Gelem/s": 1e9}
rates, name = {}, None
for line in sys.stdin:
    sys.stderr.write(line)
    s = line.strip()
    m = re.match(r"^(\w+)/(.+?)(?:\s+time:.*)?$", s)
    if m and not s.startswith(("Benchmarking", "Found", "Warning")):
        name = (m.group(1), m.group(2).strip())
    t = re.search(r"thrpt:\s*\[\S+ \S+ (\S+) (\S+)", s)
    if t and name:
        rates[name] = float(t.group(1)) * UNIT[t.group(2)]
groups = sorted({g for g, _ in rates})
print(f"{'group':18} {'path':44} {'msgs/s':>12} {'limit msgs/s':>13} {'ratio':>6}")
for g in groups:
    limit = next((v for (gg, p), v in rates.items() if gg == g and "(limit)" in p), None)
    for (gg, p), v in sorted(rates.items()):
        if gg != g or "(limit)" in p:
            continue
        ratio = f"{v / limit:6.2f}" if limit else "     -"
        print(f"{g:18} {p:44} {v:12,.0f} {limit or 0:13,.0f} {ratio}")
