"""TPTT with the original code's defaults on temporal order and random permutation (issue 4).

Run:  python scripts/tptt_baseline.py [--max-iters 100000]

Trains each config to solved or the iteration budget (patience off), beside
BPTT with the same optimizer and budget, writes results/tptt_baseline.json and
rewrites the README block between the TPTT-BASELINE markers. Same seeds give the
same numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

from localrnn.runtime import single_threaded_xla  # noqa: E402

single_threaded_xla()  # before JAX builds its CPU backend

from localrnn.config import TrainConfig  # noqa: E402
from localrnn.train import train_one  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = [("temporal_order", 10), ("temporal_order", 20), ("random_permutation", 10),
         ("random_permutation", 50)]
#: nmanchev/tptt defaults: Nesterov (0.9), alpha_i 0.1, alpha_f 0.01, alpha_g 0.001, no noise
TPTT = dict(rule="tptt", optimizer="nesterov", momentum=0.9, lr=0.01,
            hparams={"alpha_i": 0.1, "alpha_g": 0.001, "sigma": 0.0})
BPTT = dict(rule="bptt", optimizer="nesterov", momentum=0.9, lr=0.01)
READOUT = dict(rule="readout", optimizer="nesterov", momentum=0.9, lr=0.01)


def run(max_iters: int, seed: int) -> list[dict]:
    rows = []
    for task, length in CASES:
        for name, extra in (("tptt", TPTT), ("bptt", BPTT), ("readout", READOUT)):
            cfg = TrainConfig(task=task, length=length, batch=20, hidden=100, max_iters=max_iters,
                              patience=0, seed=seed, **extra)
            r = train_one(cfg)
            row = {"task": task, "T": length, "rule": name, **r.summary()}
            print(f"{name:8s} {task:20s} T={length:<4d} {r.status:9s} best {100 * r.best_accuracy:6.2f}% "
                  f"iters {r.iterations:>6d} ({r.seconds:.0f} s) {r.stop_reason}", flush=True)
            rows.append(row)
    return rows


def table(rows: list[dict], max_iters: int) -> str:
    lines = [f"Budget {max_iters:,} iterations, patience off, batch 20, hidden 100, Nesterov (momentum 0.9), "
             "lr (alpha_f) 0.01, seed 0; TPTT alpha_i 0.1, alpha_g 0.001, no noise. "
             "Regenerate: `python scripts/tptt_baseline.py`.", "",
             "| task | T | rule | status | best accuracy | iterations |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['task'].replace('_', ' ')} | {r['T']} | {r['rule']} | {r['status']} | "
                     f"{100 * r['best_accuracy']:.2f} % | {r['iterations']:,} |")
    return "\n".join(lines)


def write_readout(rows: list[dict], max_iters: int) -> None:
    os.makedirs(os.path.join(ROOT, "results"), exist_ok=True)
    with open(os.path.join(ROOT, "results", "tptt_baseline.json"), "w") as f:
        json.dump({"max_iters": max_iters, "rows": rows}, f, indent=1)
    readme = os.path.join(ROOT, "README.md")
    text = open(readme).read()
    block = f"<!-- TPTT-BASELINE:BEGIN -->\n{table(rows, max_iters)}\n<!-- TPTT-BASELINE:END -->"
    new, n = re.subn(r"<!-- TPTT-BASELINE:BEGIN -->.*?<!-- TPTT-BASELINE:END -->", block, text, flags=re.S)
    if n == 0:
        print("README has no TPTT-BASELINE markers; table not inserted", file=sys.stderr)
        print(block)
        return
    with open(readme, "w") as f:
        f.write(new)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--max-iters", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rows = run(args.max_iters, args.seed)
    write_readout(rows, args.max_iters)


if __name__ == "__main__":
    main()
