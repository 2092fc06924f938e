"""Regenerate the README's frontier blocks from the committed exports alone (docs/frontier.md).

    python scripts/readme_frontier.py [--check]

Blocks (between <!-- NAME:BEGIN --> and <!-- NAME:END --> in README.md):

* FRONTIER-SELECTION: progress of results/frontier_selection.jsonl and the setting chosen per arm
  and task so far;
* FRONTIER: `localrnn report frontier --store results/frontier.jsonl` (table; the figure is written
  to docs/frontier_study.png);
* PAPER-PROTOCOL: `localrnn report paper_protocol --store results/paper_protocol.jsonl`;
* TPTT-PROTOCOL: `localrnn report tptt_protocol --store results/tptt_protocol.jsonl`;
* CELLS: from the same export, each rule's frontier on each cell beside its frontier on the SRNN
  and beside that cell's readout, with the first length where their P(solved) intervals are apart;
* CREDIT: the late-training credit per lag of every rule from results/credit.jsonl (the figure,
  `localrnn report credit --store results/credit.jsonl`, is written to docs/credit_study.png).

An export that does not exist yet gives a block that says so and names the command that makes it.
``--check`` exits 1 if README.md is not what the exports give (nothing is written).
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from localrnn.experiments.export import open_store  # noqa: E402
from localrnn.experiments.report import Report, first_separation, make_report  # noqa: E402
from localrnn.experiments.selection import choose_settings  # noqa: E402

RESULTS = ROOT / "results"


def _selection() -> str:
    path = RESULTS / "frontier_selection.jsonl"
    if not path.exists():
        return "Not run yet: `localrnn sweep experiments/frontier_selection.toml --budget study`."
    spec = tomllib.loads((ROOT / "experiments" / "frontier_selection.toml").read_text())
    tasks, arms = spec["grid"]["task"], [a["name"] for a in spec["arms"]]
    with open_store(str(path)) as st:
        trials = [t for t in st.trials("frontier_selection:study") if t["labels"]["arm"] in arms]
    done = sum(t["status"] in ("solved", "failed", "diverged") for t in trials)
    lines = [f"Selection at T = 20 ({path.relative_to(ROOT)}): {done} of {len(trials)} trials complete "
             "(2 seeds per setting; hidden 100, 10,000 validation samples, <= 20,000 iterations, no early stop).",
             "", "| task | arm | chosen setting | seeds solved | mean iterations (unsolved = 20,000) "
             "| mean best accuracy (%) | selection |", "|---|---|---|---|---|---|---|"]
    chosen = sorted(choose_settings(trials), key=lambda c: (tasks.index(c["task"]), arms.index(c["arm"])))
    for c in chosen:
        setting = ", ".join(f"{k} = {v}" for k, v in c["settings"].items()) or "-"
        state = "complete" if c["complete"] else "in progress"
        if not c["complete"] and not any(t["status"] in ("solved", "failed", "diverged") for t in trials
                                         if t["labels"]["task"] == c["task"] and t["labels"]["arm"] == c["arm"]):
            lines.append(f"| {c['task'].replace('_', ' ')} | {c['arm']} | - | - | - | - | not started |")
            continue
        lines.append(f"| {c['task'].replace('_', ' ')} | {c['arm']} | {setting} | {c['solved']}/{c['seeds']} | "
                     f"{c['mean_iterations']:,.0f} | {100 * c['mean_accuracy']:.2f} | {state} |")
    lines += ["", "The regularized arms (lambda = 0.1) are not searched: each takes its base reading's chosen "
              "setting (scripts/frontier_spec.py)."]
    return "\n".join(lines)


_WRITE_FIGURES = True


def _report(export: str, name: str, command: str, figure: str | None = None) -> tuple[str, Report | None]:
    """The block of ``localrnn report NAME --store results/EXPORT``, and the report behind it (None
    while the export holds no such experiment)."""
    path = RESULTS / export
    if not path.exists():
        return f"Not run yet: `{command}`.", None
    with open_store(str(path)) as st:
        exp = next((e for e in st.experiments() if e.startswith(name + ":")), None)
        if exp is None:
            return f"{path.relative_to(ROOT)} holds no {name} experiment yet: `{command}`.", None
        trials = st.trials(exp)
        done = sum(t["status"] in ("solved", "failed", "diverged") for t in trials)
        progress = (None if done == len(trials) else
                    f"**In progress:** {done} of {len(trials)} trials of `{exp}` complete in "
                    f"{path.relative_to(ROOT)}; the cells below are partial (a cell's best is over the trials done).")
        with tempfile.TemporaryDirectory() as tmp:
            rep = make_report(st, exp, "markdown", tmp)
            if figure and rep.path and _WRITE_FIGURES:
                shutil.copyfile(rep.path, ROOT / "docs" / figure)
    text = rep.text.split("\nwrote ")[0].rstrip() + "\n"
    if progress:
        text = progress + "\n\n" + text
    if figure and rep.path:
        text += f"\n![{name}](docs/{figure})\n"
    return text.rstrip(), rep


CELLS = ("SRNN", "leaky", "diagonal", "orthogonal")


def _cell_of(label: str) -> tuple[str, str]:
    """("LRA-diff fixed-target", "leaky") from "LRA-diff fixed-target, leaky cell"; SRNN arms have no suffix."""
    base, _, cell = label.rpartition(", ")
    return (base, cell.removesuffix(" cell")) if cell.endswith(" cell") else (label, "SRNN")


def _frontier_cell(d: dict, srnn: dict | None, control: dict | None) -> str:
    """``median [min, max]``, then where its intervals clear the SRNN's same rule (up / down) and
    the cell's own readout (the first length from 20 where they are apart)."""
    text = f"{d['median']:g} [{d['min']}, {d['max']}]"
    if d["unfinished"]:
        text += f" ({d['unfinished']} unfinished)"
    notes = []
    k = lambda p: f"{p['solved']}/{p['n']}"  # noqa: E731
    if srnn is not None and srnn is not d:
        for sign, a, b in (("above", d, srnn), ("below", srnn, d)):
            if sep := first_separation(a, b):
                mine, theirs = (sep["a"], sep["b"]) if a is d else (sep["b"], sep["a"])
                notes.append(f"{sign} the SRNN's at T = {sep['length']} ({k(mine)} vs {k(theirs)})")
    if control is not None and control is not d:
        sep = first_separation(d, control)
        notes.append(f"beats its readout at T = {sep['length']} ({k(sep['a'])} vs {k(sep['b'])})" if sep
                     else "not apart from its readout")
    return "; ".join([text, *notes])


def _cells(frontier: Report | None) -> str:
    """The CELLS block from the frontier's report (its ``data`` is :func:`frontier_data`'s)."""
    if frontier is None:
        return "Not run yet: `localrnn frontier experiments/frontier.toml --budget study --executor process`."
    exp, data = frontier.experiment, frontier.data
    by = {(d["task"], *_cell_of(d["arm"])): d for d in data}
    bases = sorted(dict.fromkeys(base for (_, base, cell) in by if cell != "SRNN"), key=lambda b: b != "readout")
    tasks = list(dict.fromkeys(d["task"] for d in data))
    shown = {(t, b, c) for t in tasks for b in bases for c in CELLS} | {(t, b.split(" (")[0], "SRNN")
                                                                        for t in tasks for b in bases}
    counts = [len(d["highest"]) for d in data]
    usual = max(set(counts), key=counts.count)
    def who(d: dict) -> str:
        base, cell = _cell_of(d["arm"])
        return f"{'the SRNN' if cell == 'SRNN' else f'the {cell} cell'}'s {base} on {d['task'].replace('_', ' ')}"

    other = "; ".join(f"{who(d)} {len(d['highest'])}" for d in data
                      if len(d["highest"]) != usual and (d["task"], *_cell_of(d["arm"])) in shown)
    lines = [f"Highest T solved per seed as median [min, max] (`{exp}`, {usual} seeds" + (f"; {other}" if other else "")
             + "), and where the P(solved at T) Wilson intervals are apart: from the same rule on "
             "the SRNN (above / below) and from the cell's own readout, at the first such length from T = 20.",
             "", "| task | rule | " + " | ".join(CELLS) + " |", "|---|---|" + "---|" * len(CELLS)]
    for task in tasks:
        for base in bases:
            srnn = by.get((task, base.split(" (")[0], "SRNN"))
            row = []
            for cell in CELLS:
                d = by.get((task, base, cell))
                row.append("-" if d is None else _frontier_cell(d, srnn, by.get((task, "readout", cell))))
            lines.append(f"| {task.replace('_', ' ')} | {base} | " + " | ".join(row) + " |")
    lines += ["", "A row whose base reading differs on one cell (the diagonal cell's activity-loss reading) is "
              "compared with the same rule's SRNN arm. Intervals count a ladder still climbing both ways, so a "
              "separation shown here cannot be undone by the seeds still running."]
    return "\n".join(lines)


CREDIT_LAGS = (0, 2, 5, 10, 15)


def _credit() -> str:
    path = RESULTS / "credit.jsonl"
    if not path.exists():
        return "Not run yet: `localrnn sweep experiments/credit.toml --budget study`."
    import numpy as np

    with open_store(str(path)) as st:
        exp = next(e for e in st.experiments() if e.startswith("credit:"))
        spec = tomllib.loads((ROOT / "experiments" / "credit.toml").read_text())
        order = [a["name"] for a in spec["arms"]]
        trials = sorted(st.trials(exp), key=lambda t: order.index(t["labels"]["arm"]))
        head = " | ".join(f"lag {lag}" for lag in CREDIT_LAGS)
        lines = [f"Late in training (mean over the last quarter of the records), `{exp}`: cosine of the rule's "
                 "part with BPTT's at each lag, and in brackets the ratio of their norms ||U_t|| / ||G_t||.", "",
                 f"| rule | overall cosine | {head} | final accuracy (%) |",
                 "|---|---|" + "---|" * len(CREDIT_LAGS) + "---|"]
        for t in trials:
            rec = st.records(t["trial_id"])
            its, cos = rec["credit_cosine"]
            q = slice(-max(1, len(its) // 4), None)
            overall = float(np.nanmean(rec["credit_cosine_overall"][1][q]))
            T = cos.shape[1]
            cells = []
            for lag in CREDIT_LAGS:
                if np.all(np.isnan(cos[q, T - 1 - lag])):  # UORO: no split by lag
                    cells.append("-")
                    continue
                c = float(np.nanmean(cos[q, T - 1 - lag]))
                u = float(np.nanmean(rec["credit_norm"][1][q, T - 1 - lag]))
                g = float(np.nanmean(rec["bptt_credit_norm"][1][q, T - 1 - lag]))
                cells.append(f"{c:+.2f} ({u / g:.0e})")
            acc = 100 * (t["best_accuracy"] or 0.0)
            lines.append(f"| {t['labels']['arm']} | {overall:+.2f} | {' | '.join(cells)} | {acc:.2f} |")
        with tempfile.TemporaryDirectory() as tmp:
            rep = make_report(st, exp, "markdown", tmp)
            if rep.path and _WRITE_FIGURES:
                shutil.copyfile(rep.path, ROOT / "docs" / "credit_study.png")
    return "\n".join(lines) + "\n\n![credit against lag](docs/credit_study.png)"


def blocks() -> dict[str, str]:
    frontier, frontier_report = _report("frontier.jsonl", "frontier", "localrnn frontier experiments/frontier.toml "
                                        "--budget study --executor process", "frontier_study.png")
    return {
        "FRONTIER-SELECTION": _selection(),
        "FRONTIER": frontier,
        "CELLS": _cells(frontier_report),
        "CREDIT": _credit(),
        "PAPER-PROTOCOL": _report("paper_protocol.jsonl", "paper_protocol", "localrnn sweep "
                                  "experiments/paper_protocol.toml --budget paper --executor process")[0],
        "TPTT-PROTOCOL": _report("tptt_protocol.jsonl", "tptt_protocol", "localrnn sweep "
                                 "experiments/tptt_protocol.toml --budget study --executor process")[0],
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if README.md differs; write nothing")
    args = ap.parse_args(argv)
    global _WRITE_FIGURES
    _WRITE_FIGURES = not args.check
    readme = ROOT / "README.md"
    text = readme.read_text()
    new = text
    for name, body in blocks().items():
        pattern = re.compile(rf"<!-- {name}:BEGIN -->.*?<!-- {name}:END -->", re.S)
        if not pattern.search(new):
            print(f"README.md has no {name} block", file=sys.stderr)
            return 2
        new = pattern.sub(lambda m: f"<!-- {name}:BEGIN -->\n{body}\n<!-- {name}:END -->", new)
    if args.check:
        if new != text:
            print("README.md differs from what the exports give: run python scripts/readme_frontier.py",
                  file=sys.stderr)
            return 1
        return 0
    readme.write_text(new)
    print("README.md: frontier blocks regenerated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
