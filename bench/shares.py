#!/usr/bin/env python3
"""Each row of a bench/run.sh rows.tsv as a share of the same run's /health/live (same mode and
connections), against the goals of issue 19, and its tail as p99 over the mean.

Judging rows against the ceiling measured in the same run cancels the machine's drift between
hours. Usage: bench/shares.py bench/out/rows.tsv
"""
import sys

# endpoint -> (share of /health/live that makes it ten times the old backend, further goal)
GOALS = {
    "health-database": (0.25, None),
    "project-get": (0.18, 0.30),
    "project-list": (0.17, 0.25),
    "audit-trail": (0.10, None),
    "project-create": (0.04, None),
}
TAIL = 2.5  # p99 at most this many means, at 64 connections

rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1]) if line.strip()]
ceiling = {(r[0], r[3]): float(r[4]) for r in rows if r[1] == "health-live" and r[4]}

print("| mode | endpoint | conns | req/s | share of /health/live | goal (further) | met | p99 / mean |")
print("|---|---|---|---|---|---|---|---|")
for r in rows:
    mode, label, conns, rps = r[0], r[1], r[3], r[4]
    live = ceiling.get((mode, conns))
    if not rps or not live:
        continue
    share = float(rps) / live
    goal, further = GOALS.get(label, (None, None))
    goal_text = "" if goal is None else f"{goal:.2f}" + (f" ({further:.2f})" if further else "")
    met = "" if goal is None else ("yes" if share >= goal else "no")
    if further and share >= further:
        met = "yes, and the further goal"
    tail = ""
    if len(r) > 11 and r[11] and r[7]:
        ratio = float(r[7]) / float(r[11])
        tail = f"{ratio:.1f}" + (" (over 2.5)" if conns == "64" and ratio > TAIL else "")
    print(f"| {mode} | {label} | {conns} | {float(rps):,.0f} | {share:.3f} | {goal_text} | {met} | {tail} |")
