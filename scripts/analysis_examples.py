"""The README's analysis examples (docs/analysis.md): for each task family a run that fails and one
that succeeds at the same length, each analyzed by ``localrnn analyze``, with the verdict in words.

Three steps, each from files in the repository:

    python scripts/analysis_examples.py collect --store runs/frontier.db   # copy the cases' trials
        # (config, result, final parameters) from the frontier study into results/analysis_examples.jsonl
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
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPORT = os.path.join(ROOT, "results", "analysis_examples.jsonl")
OUT = os.path.join(ROOT, "docs", "analysis_examples")
README = os.path.join(ROOT, "README.md")
EXPERIMENT = "frontier:study"
#: analyze's settings for every case: per-sample measures on 100 validation samples, 16 of the
#: distractor symbols (random permutation has 98; the temporal orders 4)
SAMPLES, SYMBOLS = 100, 16

#: (case, task family, arm, task, length, seed): a failing and a succeeding run per family, at one T
CASES = [
    ("temporal-order-readout-T20", "temporal order", "readout", "temporal_order", 20, 0),
    ("temporal-order-lra-fixed-target-T20", "temporal order", "LRA-diff fixed-target", "temporal_order", 20, 0),
    ("random-permutation-lra-fixed-target-T10", "random permutation", "LRA-diff fixed-target",
     "random_permutation", 10, 0),
    ("random-permutation-bptt-T10", "random permutation", "BPTT", "random_permutation", 10, 0),
]


def collect(store_path: str) -> None:
    """Copy each case's trial (the frontier ladder's step at its length) with its final state."""
    from localrnn.config import TrainConfig
    from localrnn.experiments.export import export_jsonl
    from localrnn.experiments.store import Store

    with Store(store_path, create=False) as src:
        rows = src.trials(EXPERIMENT)
        picked = []
        for case, _, arm, task, length, seed in CASES:
            hit = [r for r in rows if r["labels"].get("arm") == arm and r["task"] == task
                   and r["length"] == length and r["labels"].get("seed") == seed
                   and r["status"] in ("solved", "failed")]
            if not hit:
                sys.exit(f"collect: {case}: no complete trial of {arm} on {task} T={length} seed {seed} "
                         f"in {EXPERIMENT} of {store_path}")
            t = hit[0]
            state = src.final_state(t["trial_id"])
            if state is None:
                sys.exit(f"collect: {case}: trial {t['trial_id']} has no stored state")
            picked.append((case, t, state, src.metrics(t["trial_id"])))
    with tempfile.TemporaryDirectory() as tmp:
        with Store(os.path.join(tmp, "s.db")) as dst:
            dst.add_experiment("analysis_examples", "examples", {
                "source": f"{EXPERIMENT} of {os.path.relpath(store_path, ROOT)}",
                "cases": [dict(zip(("case", "family", "arm", "task", "length", "seed"), c)) for c in CASES]})
            dst.register_trials("analysis_examples", [
                (t["trial_id"], TrainConfig(**t["config"]), {**t["labels"], "case": case}, t["init"])
                for case, t, _, _ in picked])
            dst.write_results([(t["trial_id"], {**t, "history": history}, state)
                               for _, t, state, history in picked])
            counts = export_jsonl(dst, EXPORT, params="all")
    print(f"collected {len(picked)} cases into {os.path.relpath(EXPORT, ROOT)} ({counts})")


def analyze(missing: bool = False) -> None:
    """``localrnn analyze`` on each case of the export: figures and analysis.json per case
    (``missing``: only the cases that have no analysis.json yet)."""
    from localrnn.analysis import analyze as measure
    from localrnn.analysis.figures import write_figures
    from localrnn.config import TrainConfig
    from localrnn.experiments.export import open_store

    with open_store(EXPORT) as st:
        rows = {r["labels"]["case"]: r for r in st.trials("analysis_examples")}
        for case, *_ in CASES:
            if missing and os.path.exists(os.path.join(OUT, case, "analysis.json")):
                continue
            t = rows[case]
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
             f"results/analysis_examples.jsonl: each run's final parameters from the frontier study "
             f"(`{EXPERIMENT}`, seed 0), analyzed on {SAMPLES} validation samples "
             f"({SYMBOLS} distractor symbols at most for the fixed points; no Hessian)."]
    family = None
    for case, fam, arm, task, length, seed in CASES:
        path = os.path.join(OUT, case, "analysis.json")
        if not os.path.exists(path):
            lines.append(f"- {arm} on {task} T={length}: not analyzed yet")
            continue
        with open(path) as f:
            r = json.load(f)
        if fam != family:
            lines += ["", f"**{fam.capitalize()}**", ""]
            family = fam
        m, g, a = r["memory"], r["gradient_flow"], r["attractors"]
        stable = {n: v["n_stable"] for n, v in a["inputs"].items()}
        lines.append(
            f"- **{arm}**, {task.replace('_', ' ')} T={length} ({r['source'].split('(')[1].split(')')[0]}): "
            f"verdict **{' + '.join(r['verdict']['names'])}**. rho(Whh) {m['W_radius']:.3g}; "
            f"||dE/dh_t|| at the first marker {g['marker_ratio_median']:.2g} of its value at the output "
            f"(median over samples); stable fixed points with input zero {stable.get('zero')}, mean input "
            f"{stable.get('mean')} (classes: {a['classes']}). "
            + " ".join(f"![{fig}](docs/analysis_examples/{case}/{fig})" for fig in r["figures"][:2]))
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
    c = sub.add_parser("collect", help="copy the cases from a frontier store into the export")
    c.add_argument("--store", required=True, help="the frontier study's store (runs/frontier.db)")
    a = sub.add_parser("analyze", help="analyze each case of the export")
    a.add_argument("--missing", action="store_true", help="only the cases not analyzed yet")
    r = sub.add_parser("readme", help="regenerate the README block")
    r.add_argument("--check", action="store_true", help="exit 1 if the block is stale; write nothing")
    args = p.parse_args(argv)
    if args.step == "collect":
        collect(args.store)
    elif args.step == "analyze":
        analyze(args.missing)
    else:
        return readme(args.check)
    return 0


if __name__ == "__main__":
    sys.exit(main())
