"""Machine time a study's exports record, per family of arms (docs/frontier.md#study-log).

    python scripts/study_budget.py results/frontier.jsonl results/frontier_selection.jsonl [--workers 2]

A job trains its configs as one vmapped program, so its wall time is its longest trial's
``seconds``; trials of one job share their structure key and the moment they were recorded.
Summed over jobs and divided by the workers that ran them side by side, that is the machine's
time, the unit of the study's budgets. It counts only trials that finished: a job cut short by
the end of a session and rerun in the next counts once, so this is a lower bound.

Families, by arm label: ``cells`` (an arm on a cell beyond the SRNN), ``zoo`` (the online and
feedback rules), ``paper`` (the paper's rules, BPTT and the readout on the SRNN).
"""

from __future__ import annotations

import argparse
import collections
import json

ZOO = ("SnAp-1", "UORO", "e-prop", "RFLO", "FA through time", "LRA-fdbk")


def family(arm: str) -> str:
    if arm.endswith(" cell") or " cell, " in arm:
        return "cells"
    return "zoo" if arm.startswith(ZOO) else "paper"


def hours(path: str, workers: int) -> dict[str, float]:
    rows = [json.loads(line) for line in open(path)]
    arms = {r["trial_id"]: r["labels"].get("arm", "") for r in rows if r.get("type") == "membership"}
    jobs: dict[tuple, float] = collections.defaultdict(float)
    for t in rows:
        if t.get("type") == "trial" and t.get("seconds") is not None:
            key = (family(arms.get(t["trial_id"], "")), t["structure_key"], round(t["updated"], 3))
            jobs[key] = max(jobs[key], t["seconds"])
    total: dict[str, float] = collections.defaultdict(float)
    for (fam, *_), seconds in jobs.items():
        total[fam] += seconds / workers / 3600
    return dict(total)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("exports", nargs="+", help="study exports (JSON lines)")
    ap.add_argument("--workers", type=int, default=2, help="workers that ran side by side (default 2)")
    args = ap.parse_args(argv)
    grand: dict[str, float] = collections.defaultdict(float)
    for path in args.exports:
        h = hours(path, args.workers)
        print(f"{path}: " + ", ".join(f"{f} {v:.2f} h" for f, v in sorted(h.items())))
        for f, v in h.items():
            grand[f] += v
    print("total: " + ", ".join(f"{f} {v:.2f} h" for f, v in sorted(grand.items())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
