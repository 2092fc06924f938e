"""The README's analysis examples (docs/analysis.md): for each task family a run that fails and one
that succeeds at T = 20, each recorded along training (experiments/analysis_examples.toml, a
diagnostics experiment: the rule's per-lag cosine with BPTT and the smoothness series) and analyzed
by ``localrnn analyze``, with the verdict in words.

Three steps, each from files in the repository:

    localrnn sweep experiments/analysis_examples.toml --budget study --store runs/examples.db
    localrnn export results/analysis_examples.jsonl --store runs/examples.db \
        --experiment analysis_examples:study --params all        # runs, records and final parameters
    python scripts/analysis_examples.py analyze    # analyze each case from that export: figures and
        # analysis.json under docs/analysis_examples/<case>/
    python scripts/analysis_examples.py readme [--check]   # the README's ANALYSIS block from those

``analyze`` and ``readme`` need only the committed files.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPORT = os.path.join(ROOT, "results", "analysis_examples.jsonl")
OUT = os.path.join(ROOT, "docs", "analysis_examples")
README = os.path.join(ROOT, "README.md")
EXPERIMENT = "analysis_examples:study"
#: analyze's settings for every case: per-sample measures on 100 validation samples, 16 of the
#: distractor symbols (random permutation has 98; the temporal orders 4)
SAMPLES, SYMBOLS = 100, 16

#: (case, task family, arm of analysis_examples.toml): a failing and a succeeding run per family
CASES = [
    ("temporal-order-readout-T20", "temporal order", "readout, temporal order"),
    ("temporal-order-lra-fixed-target-T20", "temporal order", "LRA-diff fixed-target, temporal order"),
    ("random-permutation-lra-fixed-target-T20", "random permutation", "LRA-diff fixed-target, random permutation"),
    ("random-permutation-bptt-T20", "random permutation", "BPTT clip 1, random permutation"),
]


def analyze(missing: bool = False) -> None:
    """``localrnn analyze`` on each case of the export: figures and analysis.json per case
    (``missing``: only the cases that have no analysis.json yet)."""
    from localrnn.analysis import analyze as measure
    from localrnn.analysis.figures import write_figures
    from localrnn.config import TrainConfig
    from localrnn.experiments.export import open_store

    with open_store(EXPORT) as st:
        rows = {r["labels"]["arm"]: r for r in st.trials(EXPERIMENT)}
        for case, _, arm in CASES:
            if missing and os.path.exists(os.path.join(OUT, case, "analysis.json")):
                continue
            if arm not in rows:
                sys.exit(f"analyze: {case}: no trial of arm {arm!r} of {EXPERIMENT} in {EXPORT}")
            t = rows[arm]
            state = st.final_state(t["trial_id"])
            cfg = TrainConfig(**t["config"])
            print(f"{case}: analyzing trial {t['trial_id']} ({cfg.rule} on {cfg.task} T={cfg.length})", flush=True)
            result = measure(state["params"], cfg, samples=SAMPLES, max_symbols=SYMBOLS,
                             records=st.records(t["trial_id"]) or None, rule_state=state["rule_state"])
            result["source"] = (f"trial {t['trial_id']} of {EXPERIMENT} ({t['status']}, best "
                                f"{100 * t['best_accuracy']:.2f} %), results/analysis_examples.jsonl")
            folder = os.path.join(OUT, case)
            os.makedirs(folder, exist_ok=True)
            result["figures"] = [os.path.basename(p) for p in write_figures(result, folder)]
            with open(os.path.join(folder, "analysis.json"), "w") as f:
                json.dump(result, f, indent=1, sort_keys=True)


def block() -> str:
    """The README's ANALYSIS block from docs/analysis_examples/*/analysis.json."""
    lines = [f"`python scripts/analysis_examples.py analyze` (then `readme`) regenerates this block from "
             f"results/analysis_examples.jsonl (`{EXPERIMENT}`: hidden 100, 20,000 iterations, seed 0, the "
             f"frontier's settings, recorded every 1,000 iterations with the cosine against BPTT and the "
             f"smoothness series on 1,000 validation samples): each run's final network analyzed on "
             f"{SAMPLES} validation samples ({SYMBOLS} distractor symbols at most for the fixed points)."]
    family = None
    for case, fam, arm in CASES:
        path = os.path.join(OUT, case, "analysis.json")
        if not os.path.exists(path):
            lines.append(f"- {arm}: not analyzed yet")
            continue
        with open(path) as f:
            r = json.load(f)
        if fam != family:
            lines += ["", f"**{fam.capitalize()}**", ""]
            family = fam
        m, g, a = r["memory"], r["gradient_flow"], r["attractors"]
        stable = {n: v["n_stable"] for n, v in a["inputs"].items()}
        credit = (f"; the rule's per-lag cosine with BPTT at the first marker "
                  f"{r['credit']['cosine_at_first_marker']:.2g}" if r.get("credit") else "")
        shown = [f for f in r["figures"] if f in ("memory.png", "gradient_flow.png", "smoothness.png")]
        lines.append(
            f"- **{arm.split(',')[0]}**, {fam} T={r['config']['length']} "
            f"({r['source'].split('(')[1].split(')')[0]}): "
            f"verdict **{' + '.join(r['verdict']['names'])}**. rho(Whh) {m['W_radius']:.3g}; "
            f"||dE/dh_t|| at the first marker {g['marker_ratio_median']:.2g} of its value at the output "
            f"(median over samples){credit}; stable fixed points with input zero {stable.get('zero')}, mean "
            f"input {stable.get('mean')} (classes: {a['classes']}). "
            + " ".join(f"![{fig}](docs/analysis_examples/{case}/{fig})" for fig in shown))
        for reason in r["verdict"]["reasons"]:
            lines.append(f"  - {reason}")
    return "\n".join(lines)


def readme(check: bool) -> int:
    with open(README) as f:
        text = f.read()
    start, end = "<!-- ANALYSIS:BEGIN -->", "<!-- ANALYSIS:END -->"
    if start not in text or end not in text:
        print(f"README.md has no {start} ... {end} block", file=sys.stderr)
        return 1
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    new = f"{head}{start}\n{block()}\n{end}{tail}"
    if check:
        if new != text:
            print("README.md's ANALYSIS block is stale: run python scripts/analysis_examples.py readme",
                  file=sys.stderr)
            return 1
        return 0
    with open(README, "w") as f:
        f.write(new)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="step", required=True)
    a = sub.add_parser("analyze", help="analyze each case of the export")
    a.add_argument("--missing", action="store_true", help="only the cases not analyzed yet")
    r = sub.add_parser("readme", help="regenerate the README block")
    r.add_argument("--check", action="store_true", help="exit 1 if the block is stale; write nothing")
    args = p.parse_args(argv)
    if args.step == "analyze":
        analyze(args.missing)
    else:
        return readme(args.check)
    return 0


if __name__ == "__main__":
    sys.exit(main())
