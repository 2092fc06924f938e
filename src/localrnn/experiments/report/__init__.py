"""Reports from the results store alone: tables (grid, curriculum) and figures.

:func:`make_report` reads the experiment's spec and results from the store and
returns a :class:`Report`: a rendered table, or the path of a written PNG, with
the numbers behind it as ``data``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from localrnn.experiments.report.figures import credit_figure, gradient_flow_figure, sensitivity_figure
from localrnn.experiments.report.frontier import (first_separation, frontier_data, frontier_figure, frontier_table,
                                                  wilson)
from localrnn.experiments.report.tables import (Table, grid_table, ladder_table, mean_ci, render,
                                                sensitivity_table)
from localrnn.paper.numbers import PAPER, paper_value

__all__ = ["Report", "make_report", "find_experiment", "Table", "grid_table", "ladder_table", "render",
           "first_separation", "frontier_data", "frontier_figure", "frontier_table", "wilson", "mean_ci",
           "gradient_flow_figure", "sensitivity_figure", "sensitivity_table", "PAPER", "paper_value"]


@dataclass
class Report:
    experiment: str
    kind: str  # table | figure
    text: str = ""
    path: str | None = None
    data: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    table: Table | None = None  # the table behind ``text`` (all but diagnostics), for other renderings (HTML)

    def as_json(self) -> dict[str, Any]:
        return {"experiment": self.experiment, "kind": self.kind, "path": self.path, "data": self.data,
                "notes": self.notes, "text": self.text}


def find_experiment(store, name: str, budget: str | None = None) -> str | None:
    """The stored experiment for ``name`` (``table1``, ``table1:quick`` ...), or None."""
    have = store.experiments()
    candidates = [name] if budget is None else [f"{name}:{budget}", f"{name}:{budget}:cold"]
    if budget is None and ":" not in name:
        candidates += [e for e in have if e.split(":")[0] == name]
    for c in candidates:
        if c in have:
            return c
    return None


def make_report(store, experiment: str, fmt: str = "markdown", out_dir: str = ".") -> Report:
    """Build the report of a stored ``experiment`` (see :func:`find_experiment`)."""
    exp = store.experiment(experiment)
    if exp is None:
        raise ValueError(f"no experiment {experiment!r} in the store {store.path}; "
                         f"stored: {', '.join(store.experiments()) or 'none'}")
    spec = exp["spec"]["spec"]
    kind = exp["kind"]
    title = spec.get("title") or spec["name"]
    budget = exp["spec"].get("budget", "")
    budget_note = (spec.get("budget", {}).get(budget) or {}).get("note")
    if kind == "frontier":
        return _frontier_report(store, experiment, exp, fmt, out_dir, title, budget, budget_note)
    if kind == "curriculum":
        table = ladder_table(store.ladders(experiment), spec, f"{title} [{budget}]", budget_note)
        return Report(experiment, "table", render(table, fmt), data=table.data, notes=table.notes, table=table)
    trials = store.trials(experiment)
    os.makedirs(out_dir, exist_ok=True)
    fname = os.path.join(out_dir, experiment.replace(":", "_") + ".png")
    if kind == "diagnostics":
        runs = []
        arm_order = [a.get("name") for a in spec.get("arms", [])]
        for t in sorted(trials, key=lambda t: arm_order.index(t["labels"].get("arm"))
                        if t["labels"].get("arm") in arm_order else len(arm_order)):
            if t["status"] not in ("solved", "failed", "diverged"):
                continue
            lab = t["labels"]
            label = f"{lab.get('arm')}\n{lab.get('task')} T={lab.get('length')} seed {lab.get('seed')}"
            runs.append((label, store.records(t["trial_id"])))
        figure = credit_figure if spec.get("report", {}).get("figure") == "credit" else gradient_flow_figure
        figure(runs, fname, f"{title} [{budget}]")
        notes = [] if runs else ["no recorded run in the store yet"]
        return Report(experiment, "figure", f"wrote {fname}", path=fname, notes=notes,
                      data=[{"trial_id": t["trial_id"], **t["labels"], "status": t["status"],
                             "best_accuracy": t["best_accuracy"]} for t in trials])
    rep = spec.get("report", {})
    if rep.get("x"):
        lines = rep.get("rows", ["task"])
        path, data = sensitivity_figure(trials, rep["x"], lines, fname, f"{title} [{budget}]")
        table = sensitivity_table(data, rep["x"], lines, f"{title} [{budget}]")
        return Report(experiment, "figure", f"wrote {path}\n\n" + render(table, fmt), path=path, data=data,
                      notes=table.notes, table=table)
    table = grid_table(trials, spec, f"{title} [{budget}]", budget_note)
    return Report(experiment, "table", render(table, fmt), data=table.data, notes=table.notes, table=table)


def _frontier_report(store, experiment: str, exp: dict, fmt: str, out_dir: str, title: str, budget: str,
                     budget_note: str | None) -> Report:
    """The frontier table (markdown/csv/latex) and its figure, written to ``out_dir``."""
    spec = exp["spec"]["spec"]
    max_length = exp["spec"].get("max_length") or spec.get("curriculum", {}).get("max_length", 300)
    data = frontier_data(store.ladders(experiment), spec, max_length)
    table = frontier_table(data, spec, f"{title} [{budget}]", budget_note)
    os.makedirs(out_dir, exist_ok=True)
    fname = os.path.join(out_dir, experiment.replace(":", "_") + ".png")
    control = spec.get("report", {}).get("control")
    frontier_figure(data, fname, f"{title} [{budget}]", control=control)
    return Report(experiment, "table", render(table, fmt) + f"\nwrote {fname}\n", path=fname, data=table.data,
                  notes=table.notes, table=table)
