"""Paper-style tables from the results store alone (markdown, CSV, LaTeX, HTML, JSON).

Grid experiments (Tables I-IV): a cell is the best validation accuracy over the
experiment's other axes (learning rate, gamma, ...), taken per seed; with several
seeds the cell shows the mean and a 95 % confidence interval (Student t) over
seeds. A run that diverged keeps the best accuracy it reached before its loss
became NaN/inf (as the published code reports it); a cell whose best came from
such a run is marked † and a cell solved in every seed ✓. Curriculum experiments
(Table V): a cell is the highest T solved. The paper's number (``localrnn.paper.
numbers``; ✓ = solved) is shown beside ours where it reports one; the readout-only
control (docs/network.md) is shown as its own rows beside the rules.
"""

from __future__ import annotations

import csv
import html
import io
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Sequence

from localrnn.paper.numbers import PAPER_NOTES, format_paper_value, paper_value

__all__ = ["Table", "Best", "mean_ci", "best_per_group", "common_labels", "grid_table", "ladder_table",
           "sensitivity_data", "sensitivity_table", "render", "html_table", "DIVERGED_MARK", "SOLVED_MARK"]

DIVERGED_MARK = "†"
SOLVED_MARK = "✓"
DIVERGED_NOTE = (f"{DIVERGED_MARK} the best accuracy was reached by a run that later diverged (non-finite loss "
                 "or parameters); it keeps the best it reached before diverging, as the published code reports it")
DONE = ("solved", "failed", "diverged")

# two-sided 95 % Student t quantiles by degrees of freedom
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
        10: 2.228, 12: 2.179, 15: 2.131, 20: 2.086, 30: 2.042}


def _t95(df: int) -> float:
    if df in _T95:
        return _T95[df]
    below = [k for k in _T95 if k <= df]
    return _T95[max(below)] if df < 30 else 1.96


def mean_ci(values: Sequence[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95 % confidence interval (0 for one value)."""
    n = len(values)
    if n == 0:
        return math.nan, math.nan
    m = sum(values) / n
    if n == 1:
        return m, 0.0
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1))
    return m, _t95(n - 1) * sd / math.sqrt(n)


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)
    data: list[dict] = field(default_factory=list)


@dataclass
class Best:
    """The best trial of a group: its accuracy, whether it diverged or solved, and the group's labels."""

    accuracy: float
    diverged: bool
    solved: bool


def best_per_group(trials: list[dict], key: Callable[[dict], Hashable]) -> dict[Hashable, Best]:
    """Best validation accuracy per ``key(labels)`` over the complete trials (diverged ones included
    with the best they reached before diverging); ties prefer a run that did not diverge."""
    best: dict[Hashable, Best] = {}
    for t in trials:
        if t["status"] not in DONE:
            continue
        k = key(t["labels"])
        cand = Best(t["best_accuracy"] or 0.0, t["status"] == "diverged", t["status"] == "solved")
        old = best.get(k)
        if old is None or (cand.accuracy, not cand.diverged) > (old.accuracy, not old.diverged):
            best[k] = Best(cand.accuracy, cand.diverged, cand.solved or (old is not None and old.solved))
        elif cand.solved:
            old.solved = True
    return best


def common_labels(trials: list[dict], key: Callable[[dict], Hashable]) -> dict[Hashable, dict]:
    """Per ``key(labels)``, the labels every complete trial of the group shares (same value)."""
    out: dict[Hashable, dict] = {}
    for t in trials:
        if t["status"] not in DONE:
            continue
        k = key(t["labels"])
        if k not in out:
            out[k] = dict(t["labels"])
        else:
            out[k] = {n: v for n, v in out[k].items() if n in t["labels"] and t["labels"][n] == v}
    return out


def _fmt_label(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, str):
        return v.replace("_", " ")
    if isinstance(v, float) and v.is_integer() and abs(v) >= 1:
        return str(int(v))
    return str(v)


def _fmt_cell(bests: list[Best], scale: float, digits: int) -> str:
    """Mean (± 95 % CI over seeds) of the best accuracies, with † (diverged) and ✓ (solved in every seed)."""
    if not bests:
        return ""
    m, ci = mean_ci([b.accuracy for b in bests])
    s = f"{m * scale:.{digits}f}"
    if len(bests) > 1:
        s += f" ± {ci * scale:.{digits}f} (n={len(bests)})"
    if all(b.solved for b in bests):
        s += f" {SOLVED_MARK}"
    if any(b.diverged for b in bests):
        s += f" {DIVERGED_MARK}"
    return s


def _order(values: list, preferred: list) -> list:
    pos = {repr(v): i for i, v in enumerate(preferred)}
    return sorted(values, key=lambda v: (pos.get(repr(v), len(pos)), str(v)))


def _arm_labels(spec: dict) -> list[str]:
    """The arms' report labels (``label``, else ``name``) in spec order, each once."""
    out: list[str] = []
    for a in spec["arms"]:
        lab = a.get("label") or a["name"]
        if lab not in out:
            out.append(lab)
    return out


def _axis_order(spec: dict, key: str) -> list:
    if key == "arm":
        return _arm_labels(spec)
    vals = []
    for src in [spec.get("fixed", {}), spec.get("grid", {})] + [a.get(s, {}) for a in spec["arms"]
                                                                 for s in ("fixed", "grid")]:
        v = src.get(key)
        for x in (v if isinstance(v, list) else [v] if v is not None else []):
            x = x.replace("-", "_") if isinstance(x, str) else x
            if x not in vals:
                vals.append(x)
    return vals


def _order_index(order: list, v: Any, control: str | None) -> int:
    if control is not None and v == control:
        return len(order) + 1
    try:
        return order.index(v)
    except ValueError:
        return len(order)


def _sorted_rows(keys, rows_by: list[str], spec: dict, control: str | None) -> list[tuple]:
    return sorted(set(keys), key=lambda rk: tuple(
        (_order_index(_axis_order(spec, r), v, control if r == "arm" else None), str(v))
        for r, v in zip(rows_by, rk)))


def _table_notes(trials: list[dict], data: list[dict], paper_key: str | None, shown_paper: bool,
                 budget_note: str | None, cell_note: str) -> list[str]:
    notes = []
    pending = len(trials) - sum(t["status"] in DONE for t in trials)
    if pending:
        notes.append(f"{pending} of {len(trials)} trials not complete yet")
    if budget_note:
        notes.append(f"budget: {budget_note}")
    notes.append(cell_note + ("; mean ± 95 % CI over seeds" if any(d["seeds"] > 1 for d in data) else ""))
    if any(d.get("diverged") for d in data):
        notes.append(DIVERGED_NOTE)
    if shown_paper:
        notes += PAPER_NOTES.get(paper_key or "", [])
    return notes


def grid_table(trials: list[dict], spec: dict, title: str | None = None, budget_note: str | None = None) -> Table:
    """Table of a grid experiment: rows by ``report.rows``, columns by ``report.columns``; the
    paper's value of a cell is looked up with the labels all the cell's trials share."""
    rep = spec.get("report", {})
    rows_by: list[str] = rep.get("rows", ["task", "arm"])
    col_by: str = rep.get("columns", "length")
    paper_key, control = rep.get("paper"), rep.get("control")

    def cell(lab: dict) -> tuple:
        return tuple(lab.get(r) for r in rows_by), lab.get(col_by)

    best = best_per_group(trials, lambda lab: (*cell(lab), lab.get("seed")))
    shared = common_labels(trials, cell)
    paper = {c: paper_value(paper_key, labels) for c, labels in shared.items()}
    row_keys = _sorted_rows([k[0] for k in best], rows_by, spec, control)
    cols = _order(list({k[1] for k in best}), _axis_order(spec, col_by))
    has_paper = {c: any(paper.get((rk, c), (False,))[0] for rk in row_keys) for c in cols}
    headers = list(rows_by)
    for c in cols:
        headers.append(f"{col_by}={_fmt_label(c)}" if col_by != "length" else f"T={_fmt_label(c)}")
        if has_paper[c]:
            headers.append(f"{headers[-1]} paper")
    rows, data = [], []
    for rk in row_keys:
        row = [_fmt_label(v) + (" (control)" if r == "arm" and v == control else "") for r, v in zip(rows_by, rk)]
        for c in cols:
            bests = [b for (r, cc, _), b in best.items() if r == rk and cc == c]
            row.append(_fmt_cell(bests, 100.0, 2))
            found, pv = paper.get((rk, c), (False, None))
            if has_paper[c]:
                row.append(format_paper_value(pv) if found else "")
            if bests:
                m, ci = mean_ci([b.accuracy for b in bests])
                data.append({**dict(zip(rows_by, rk)), col_by: c, "accuracy_mean": m, "accuracy_ci95": ci,
                             "seeds": len(bests), "solved": sum(b.solved for b in bests),
                             "diverged": sum(b.diverged for b in bests), "paper": pv if found else None})
        rows.append(row)
    notes = _table_notes(trials, data, paper_key, any(has_paper.values()), budget_note,
                         "cells: best validation accuracy (%) over the other grid axes; "
                         f"{SOLVED_MARK} = solved (in every seed)")
    return Table(title or spec.get("title") or spec["name"], headers, rows, notes, data)


def _ladder_note(lab: dict, steps: list[dict], rows_by: list[str]) -> str:
    trail = ", ".join(f"T={s['length']} {s['status']}"
                      + (f" ({100 * s['best_accuracy']:.2f}%, {s['iterations']} it)"
                         if s.get("best_accuracy") is not None else "") for s in steps)
    other = {k: v for k, v in lab.items() if k not in ("arm", "rule", "seed", *rows_by)}
    return (f"{lab.get('arm')} | {', '.join(_fmt_label(lab.get(r)) for r in rows_by)} | seed "
            f"{lab.get('seed')} | {'warm' if steps[0]['warm_start'] else 'cold'} start"
            + (f" | {other}" if other else "") + f": {trail}")


def ladder_table(ladders: dict[str, list[dict]], spec: dict, title: str | None = None,
                 budget_note: str | None = None) -> Table:
    """Table V: highest T solved per (rows, arm), paper beside; every ladder listed in the notes."""
    rep = spec.get("report", {})
    rows_by: list[str] = [r for r in rep.get("rows", ["task"]) if r != "arm"]
    paper_key = rep.get("paper")
    per: dict[tuple, dict[Any, int]] = {}  # (row, arm) -> {seed: best over other axes}
    ladder_notes = []
    for name, steps in sorted(ladders.items(), key=lambda kv: str(kv[1][0]["labels"])):
        lab = steps[0]["labels"]
        key = (tuple(lab.get(r) for r in rows_by), lab.get("arm"))
        seeds = per.setdefault(key, {})
        seeds[lab.get("seed")] = max(seeds.get(lab.get("seed"), 0), _highest(steps))
        ladder_notes.append(_ladder_note(lab, steps, rows_by))
    arms = _order(list({k[1] for k in per}), _arm_labels(spec))
    row_keys = _sorted_rows([k[0] for k in per], rows_by, spec, None)
    headers = list(rows_by)
    for a in arms:
        headers += [a, f"{a} paper"]
    rows, data = [], []
    for rk in row_keys:
        row = [_fmt_label(v) for v in rk]
        for a in arms:
            vals = list(per.get((rk, a), {}).values())
            m, ci = mean_ci(vals)
            row.append("" if not vals else f"{m:.0f}" if len(vals) == 1 else f"{m:.1f} ± {ci:.1f} (n={len(vals)})")
            labels = {**dict(zip(rows_by, rk)), "arm": a}
            found, pv = paper_value(paper_key, labels)
            row.append(format_paper_value(pv) if found else "")
            if vals:
                data.append({**labels, "highest_solved_mean": m, "highest_solved_ci95": ci, "seeds": len(vals),
                             "paper": pv if found else None})
        rows.append(row)
    notes = _table_notes([], data, paper_key, True, budget_note,
                         "cells: highest sequence length T solved (0 = not even the first)")
    notes += ["ladders:", *ladder_notes]
    return Table(title or spec.get("title") or spec["name"], headers, rows, notes, data)


def _highest(steps: list[dict]) -> int:
    from localrnn.experiments.curriculum import highest_solved

    return highest_solved(steps)


def sensitivity_data(trials: list[dict], x: str, lines: list[str]) -> list[dict]:
    """Figure 5's numbers per line (e.g. task, T) and value of ``x`` (lambda), x ascending.

    ``accuracy_mean``: best accuracy over the other axes (mean over seeds);
    ``relative_change`` = (acc(x) - acc(0)) / acc(0) (the paper's "relative change of accuracy
    with lambda", Figure 5; None without an x = 0 run); ``slope`` = (acc(x_i) - acc(x_{i-1})) /
    (x_i - x_{i-1}) between consecutive values (None for the first).
    """
    best = best_per_group(trials, lambda lab: (tuple(lab.get(k) for k in lines), lab.get(x), lab.get("seed")))
    data: list[dict[str, Any]] = []
    for line in sorted({k[0] for k in best}, key=str):
        xs = sorted({k[1] for k in best if k[0] == line})
        means = {}
        for xv in xs:
            bests = [b for k, b in best.items() if k[0] == line and k[1] == xv]
            m, ci = mean_ci([b.accuracy for b in bests])
            means[xv] = m
            data.append({**dict(zip(lines, line)), x: xv, "accuracy_mean": m, "accuracy_ci95": ci,
                         "seeds": len(bests), "solved": sum(b.solved for b in bests),
                         "diverged": sum(b.diverged for b in bests)})
        ref = next((m for xv, m in means.items() if xv == 0), None)
        for i, d in enumerate(data[-len(xs):]):
            d["relative_change"] = (d["accuracy_mean"] - ref) / ref if ref else None
            d["slope"] = (None if i == 0 else (d["accuracy_mean"] - means[xs[i - 1]]) / (xs[i] - xs[i - 1]))
    return data


def sensitivity_table(data: list[dict], x: str, lines: list[str], title: str) -> Table:
    """Figure 5 as a table: raw accuracy, relative change against x = 0, slope from the previous x."""
    pct = lambda v, d=2: "" if v is None else f"{100 * v:.{d}f}"  # noqa: E731
    headers = [*lines, x, "best accuracy (%)", "relative change vs 0 (%)", "slope (% points per unit)"]
    rows = [[*(_fmt_label(d.get(k)) for k in lines), _fmt_label(d[x]),
             pct(d["accuracy_mean"]) + (f" {SOLVED_MARK}" if d["solved"] == d["seeds"] else "")
             + (f" {DIVERGED_MARK}" if d["diverged"] else ""),
             pct(d["relative_change"], 3), pct(d["slope"], 3)] for d in data]
    notes = ["relative change = (acc(x) - acc(0)) / acc(0), best over the other axes (the paper's Figure 5); "
             "slope = (acc(x_i) - acc(x_i-1)) / (x_i - x_i-1)"]
    if any(d["diverged"] for d in data):
        notes.append(DIVERGED_NOTE)
    return Table(title, headers, rows, notes, data)


_LATEX = {"\\": "\\textbackslash{}", "_": "\\_", "%": "\\%", "&": "\\&", "±": "$\\pm$",
          SOLVED_MARK: "$\\checkmark$", DIVERGED_MARK: "$^\\dagger$"}


def _latex(s: str) -> str:
    return "".join(_LATEX.get(ch, ch) for ch in s)


_NUMERIC = re.compile(r"^([-+]?(\d|\.\d)|[✓†-]$)")


def _column_classes(table: Table) -> list[str]:
    """Per column: ``num`` where every filled cell is a number (or ✓ / † / -), ``paper`` for a paper column."""
    out = []
    for i, h in enumerate(table.headers):
        cells = [r[i] for r in table.rows if i < len(r) and r[i]]
        classes = (["num"] if cells and all(_NUMERIC.match(c) for c in cells) else []) \
            + (["paper"] if h.endswith(" paper") else [])
        out.append(f' class="{" ".join(classes)}"' if classes else "")
    return out


def html_table(table: Table, caption: bool = True) -> str:
    """The table alone as an HTML ``<table>`` (its title as ``<caption>`` unless ``caption`` is False);
    number columns have class ``num``, the paper's columns ``paper``."""
    cls = _column_classes(table)
    out = ['<table class="report">']
    if caption:
        out.append(f"<caption>{html.escape(table.title)}</caption>")
    out.append("<thead><tr>" + "".join(f"<th{c}>{html.escape(h)}</th>" for h, c in zip(table.headers, cls))
               + "</tr></thead>")
    out.append("<tbody>")
    out += ["<tr>" + "".join(f"<td{c}>{html.escape(v)}</td>" for v, c in zip(r, cls)) + "</tr>"
            for r in table.rows]
    out.append("</tbody></table>")
    return "\n".join(out) + "\n"


def render(table: Table, fmt: str = "markdown") -> str:
    """The table as ``markdown`` | ``csv`` | ``latex`` | ``html`` (✓ = solved, † = diverged; see the notes)."""
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(table.headers)
        w.writerows(table.rows)
        return buf.getvalue()
    if fmt == "latex":
        lines = ["\\begin{table}[ht]", "\\centering", f"\\caption{{{_latex(table.title)}}}",
                 "\\begin{tabular}{" + "l" * len(table.headers) + "}", "\\hline",
                 " & ".join(_latex(h) for h in table.headers) + " \\\\", "\\hline"]
        lines += [" & ".join(_latex(c) for c in r) + " \\\\" for r in table.rows]
        lines += ["\\hline", "\\end{tabular}"]
        lines += [f"\\par\\footnotesize {_latex(n)}" for n in table.notes if DIVERGED_MARK in n]
        lines += ["\\end{table}"]
        return "\n".join(lines) + "\n"
    if fmt == "html":
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in table.notes)
        return html_table(table) + (f'<ul class="notes">{notes}</ul>\n' if notes else "")
    if fmt != "markdown":
        raise ValueError(f"unknown format {fmt!r}; allowed: markdown, csv, latex, html")
    out = [f"### {table.title}", "", "| " + " | ".join(table.headers) + " |",
           "|" + "|".join("---" for _ in table.headers) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in table.rows]
    if table.notes:
        out.append("")
        out += [f"- {n}" if i else n for i, n in enumerate(table.notes)]
    return "\n".join(out) + "\n"
