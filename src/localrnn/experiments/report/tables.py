"""Paper-style tables from the results store alone (markdown, CSV, LaTeX, JSON).

Grid experiments (Tables I-IV): a cell is the best validation accuracy over the
experiment's other axes (learning rate, gamma, ...), taken per seed; with several
seeds the cell shows the mean and a 95 % confidence interval (Student t) over
seeds. Curriculum experiments (Table V): a cell is the highest T solved. The
paper's number is shown beside ours where it reports one; the readout-only
control (SPEC 3.5) is shown as its own rows beside the rules.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

from localrnn.experiments.report.paper import paper_value

__all__ = ["Table", "mean_ci", "grid_table", "ladder_table", "render"]

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


def _fmt_label(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, str):
        return v.replace("_", " ")
    if isinstance(v, float) and v.is_integer() and abs(v) >= 1:
        return str(int(v))
    return str(v)


def _fmt_cell(vals: list[float], scale: float, digits: int) -> str:
    if not vals:
        return ""
    m, ci = mean_ci(vals)
    s = f"{m * scale:.{digits}f}"
    if len(vals) > 1:
        s += f" ± {ci * scale:.{digits}f} (n={len(vals)})"
    return s


def _order(values: list, preferred: list) -> list:
    pos = {repr(v): i for i, v in enumerate(preferred)}
    return sorted(values, key=lambda v: (pos.get(repr(v), len(pos)), str(v)))


def _axis_order(spec, key: str) -> list:
    vals = []
    for src in [spec.get("fixed", {}), spec.get("grid", {})] + [a.get(s, {}) for a in spec["arms"]
                                                                 for s in ("fixed", "grid")]:
        v = src.get(key)
        for x in (v if isinstance(v, list) else [v] if v is not None else []):
            x = x.replace("-", "_") if isinstance(x, str) else x
            if x not in vals:
                vals.append(x)
    if key == "arm":
        vals = [a["name"] for a in spec["arms"]]
    return vals


def grid_table(trials: list[dict], spec: dict, title: str | None = None) -> Table:
    """Table of a grid experiment: rows by ``report.rows``, columns by ``report.columns``."""
    rep = spec.get("report", {})
    rows_by: list[str] = rep.get("rows", ["task", "arm"])
    col_by: str = rep.get("columns", "length")
    paper_key = rep.get("paper")
    control = rep.get("control")
    done = [t for t in trials if t["status"] in ("solved", "failed", "diverged")]
    pending = len(trials) - len(done)
    # best over the other axes, per (row, column, seed)
    best: dict[tuple, float] = {}
    for t in done:
        lab = t["labels"]
        key = (tuple(lab.get(r) for r in rows_by), lab.get(col_by), lab.get("seed"))
        acc = t["best_accuracy"] if t["status"] != "diverged" else 0.0
        best[key] = max(best.get(key, -1.0), acc or 0.0)
    row_keys = sorted({k[0] for k in best}, key=lambda rk: tuple(
        (_order_index(_axis_order(spec, r), v, control if r == "arm" else None), str(v))
        for r, v in zip(rows_by, rk)))
    cols = _order(list({k[1] for k in best}), _axis_order(spec, col_by))
    has_paper = {c: any(paper_value(paper_key, {**dict(zip(rows_by, rk)), col_by: c})[0] for rk in row_keys)
                 for c in cols}
    headers = list(rows_by)
    for c in cols:
        headers.append(f"{col_by}={_fmt_label(c)}" if col_by != "length" else f"T={_fmt_label(c)}")
        if has_paper[c]:
            headers.append(f"{headers[-1]} paper")
    rows, data = [], []
    for rk in row_keys:
        row = [_fmt_label(v) + (" (control)" if r == "arm" and v == control else "") for r, v in zip(rows_by, rk)]
        for c in cols:
            vals = [v for (r, cc, _), v in best.items() if r == rk and cc == c]
            row.append(_fmt_cell(vals, 100.0, 2))
            labels = {**dict(zip(rows_by, rk)), col_by: c}
            found, pv = paper_value(paper_key, labels)
            if has_paper[c]:
                row.append("" if not found else ("-" if pv is None else f"{pv:.2f}"))
            m, ci = mean_ci(vals)
            if vals:
                data.append({**labels, "accuracy_mean": m, "accuracy_ci95": ci, "seeds": len(vals),
                             "paper": pv if found else None})
        rows.append(row)
    notes = []
    if pending:
        notes.append(f"{pending} of {len(trials)} trials not complete yet")
    notes.append("cells: best validation accuracy (%) over the other grid axes"
                 + ("; mean ± 95 % CI over seeds" if any(d["seeds"] > 1 for d in data) else ""))
    return Table(title or spec.get("title") or spec["name"], headers, rows, notes, data)


def _order_index(order: list, v: Any, control: str | None) -> int:
    if control is not None and v == control:
        return len(order) + 1
    try:
        return order.index(v)
    except ValueError:
        return len(order)


def ladder_table(ladders: dict[str, list[dict]], spec: dict, title: str | None = None) -> Table:
    """Table V: highest T solved per (rows, arm), paper beside; every ladder listed in the notes."""
    rep = spec.get("report", {})
    rows_by: list[str] = [r for r in rep.get("rows", ["task"]) if r != "arm"]
    paper_key = rep.get("paper")
    per: dict[tuple, dict[Any, int]] = {}  # (row, arm) -> {seed: best over other axes}
    notes = []
    for name, steps in sorted(ladders.items(), key=lambda kv: str(kv[1][0]["labels"])):
        lab = steps[0]["labels"]
        top = _highest(steps)
        key = (tuple(lab.get(r) for r in rows_by), lab.get("arm"))
        seeds = per.setdefault(key, {})
        seeds[lab.get("seed")] = max(seeds.get(lab.get("seed"), 0), top)
        trail = ", ".join(f"T={s['length']} {s['status']}"
                          + (f" ({100 * s['best_accuracy']:.2f}%, {s['iterations']} it)"
                             if s.get("best_accuracy") is not None else "") for s in steps)
        other = {k: v for k, v in lab.items() if k not in ("arm", "rule", "seed", *rows_by)}
        notes.append(f"{lab.get('arm')} | {', '.join(_fmt_label(lab.get(r)) for r in rows_by)} | seed "
                     f"{lab.get('seed')} | {'warm' if steps[0]['warm_start'] else 'cold'} start"
                     + (f" | {other}" if other else "") + f": {trail}")
    arms = _order(list({k[1] for k in per}), [a["name"] for a in spec["arms"]])
    row_keys = sorted({k[0] for k in per}, key=lambda rk: tuple(
        (_order_index(_axis_order(spec, r), v, None), str(v)) for r, v in zip(rows_by, rk)))
    headers = list(rows_by)
    for a in arms:
        headers += [a, f"{a} paper"]
    rows, data = [], []
    for rk in row_keys:
        row = [_fmt_label(v) for v in rk]
        for a in arms:
            vals = list(per.get((rk, a), {}).values())
            if vals:
                m, ci = mean_ci(vals)
                row.append(f"{m:.0f}" if len(vals) == 1 else f"{m:.1f} ± {ci:.1f} (n={len(vals)})")
            else:
                row.append("")
            labels = {**dict(zip(rows_by, rk)), "arm": a}
            found, pv = paper_value(paper_key, labels)
            row.append("" if not found else ("-" if pv is None else str(pv)))
            if vals:
                data.append({**labels, "highest_solved_mean": m, "highest_solved_ci95": ci, "seeds": len(vals),
                             "paper": pv if found else None})
        rows.append(row)
    notes.insert(0, "cells: highest sequence length T solved (0 = not even the first); ladders:")
    return Table(title or spec.get("title") or spec["name"], headers, rows, notes, data)


def _highest(steps: list[dict]) -> int:
    from localrnn.experiments.curriculum import highest_solved

    return highest_solved(steps)


def render(table: Table, fmt: str = "markdown") -> str:
    """The table as ``markdown`` | ``csv`` | ``latex``."""
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(table.headers)
        w.writerows(table.rows)
        return buf.getvalue()
    if fmt == "latex":
        esc = lambda s: (s.replace("\\", "\\textbackslash{}").replace("_", "\\_").replace("%", "\\%")  # noqa: E731
                         .replace("&", "\\&").replace("±", "$\\pm$"))
        lines = ["\\begin{table}[ht]", "\\centering", f"\\caption{{{esc(table.title)}}}",
                 "\\begin{tabular}{" + "l" * len(table.headers) + "}", "\\hline",
                 " & ".join(esc(h) for h in table.headers) + " \\\\", "\\hline"]
        lines += [" & ".join(esc(c) for c in r) + " \\\\" for r in table.rows]
        lines += ["\\hline", "\\end{tabular}", "\\end{table}"]
        return "\n".join(lines) + "\n"
    if fmt != "markdown":
        raise ValueError(f"unknown format {fmt!r}; allowed: markdown, csv, latex")
    out = [f"### {table.title}", "", "| " + " | ".join(table.headers) + " |",
           "|" + "|".join("---" for _ in table.headers) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in table.rows]
    if table.notes:
        out.append("")
        out += [f"- {n}" if i else n for i, n in enumerate(table.notes)]
    return "\n".join(out) + "\n"
