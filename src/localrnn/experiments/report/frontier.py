"""The max-T frontier (docs/frontier.md): how far back in time each rule carries credit.

A frontier experiment is a curriculum (T = start, + step while solved) run for several
seeds per arm and task. From its ladders alone:

* per (task, arm): the highest T solved by each seed, their median and [min, max];
* per (task, arm, T): P(solved at T), the fraction of seeds whose ladder solved T, with
  a Wilson 95 % interval (:func:`wilson`). A ladder stops at its first failure, so a seed
  solves T exactly when its highest solved length is >= T;
* a figure of P(solved) against T, one panel per task, one line per arm, the readout-only
  control drawn dashed.

A ladder that solved ``max_length`` is censored: it might have gone further; the table
marks such a seed ``>=``.
"""

from __future__ import annotations

import math
import statistics
from localrnn.experiments.curriculum import highest_solved
from localrnn.experiments.report.tables import Table, _arm_labels, _axis_order, _fmt_label
from localrnn.paper.numbers import PAPER_NOTES, format_paper_value, paper_value

__all__ = ["wilson", "frontier_data", "frontier_table", "frontier_figure", "SHOWN_LENGTHS"]

#: lengths whose P(solved) the table shows (those the curriculum tried, and always its longest)
SHOWN_LENGTHS = (20, 50, 100, 200)


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials:
    (p + z^2/2n -+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n), p = k/n."""
    if n == 0:
        return math.nan, math.nan
    p = k / n
    d = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / d
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, centre - half), min(1.0, centre + half)


def _finished(steps: list[dict], max_length: int) -> bool:
    """A ladder is finished when its last step failed/diverged or solved ``max_length``."""
    last = max(steps, key=lambda s: s["step"])
    if last["status"] in ("failed", "diverged"):
        return True
    return last["status"] == "solved" and last["length"] >= max_length


def frontier_data(ladders: dict[str, list[dict]], spec: dict, max_length: int) -> list[dict]:
    """One dict per (task, arm): seeds, per-seed highest T, median, min, max, censored seeds,
    unfinished ladders, and ``p_solved``: ``[{length, solved, n, p, lo, hi}]`` for every length
    of the curriculum up to ``max_length``."""
    cur = spec.get("curriculum", {})
    start, step = cur.get("start", 10), cur.get("step", 10)
    lengths = list(range(start, max_length + 1, step))
    per: dict[tuple, dict[int, tuple[int, bool]]] = {}
    for steps in ladders.values():
        lab = steps[0]["labels"]
        key = (lab.get("task"), lab.get("arm"))
        per.setdefault(key, {})[lab.get("seed")] = (highest_solved(steps), _finished(steps, max_length))
    tasks = _axis_order(spec, "task")
    arms = _arm_labels(spec)
    out = []
    for task, arm in sorted(per, key=lambda k: (tasks.index(k[0]) if k[0] in tasks else len(tasks),
                                                 arms.index(k[1]) if k[1] in arms else len(arms), str(k))):
        seeds = per[(task, arm)]
        highest = [seeds[s][0] for s in sorted(seeds)]
        done = [seeds[s][1] for s in sorted(seeds)]
        n = len(highest)
        p_solved = []
        for T in lengths:
            k = sum(h >= T for h in highest)
            lo, hi = wilson(k, n)
            p_solved.append({"length": T, "solved": k, "n": n, "p": k / n, "lo": lo, "hi": hi})
        out.append({"task": task, "arm": arm, "seeds": sorted(seeds), "highest": highest,
                    "median": statistics.median(highest), "min": min(highest), "max": max(highest),
                    "censored": sum(h >= max_length for h in highest), "unfinished": n - sum(done),
                    "max_length": max_length, "p_solved": p_solved})
    return out


def _seed_list(d: dict) -> str:
    return " ".join((">=" if h >= d["max_length"] else "") + str(h) for h in d["highest"])


def frontier_table(data: list[dict], spec: dict, title: str, budget_note: str | None) -> Table:
    """Per (task, arm): highest T per seed, median [min, max], P(solved) at a few lengths with
    Wilson 95 % intervals, and the published highest T where the paper reports one."""
    rep = spec.get("report", {})
    paper_key = rep.get("paper")
    paper_arm = {a.get("label") or a["name"]: a.get("paper_arm") for a in spec["arms"]}
    tried = sorted({p["length"] for d in data for p in d["p_solved"]})
    shown = [T for T in SHOWN_LENGTHS if T in tried]
    if tried and tried[-1] not in shown:
        shown.append(tried[-1])
    headers = ["task", "arm", "seeds", "highest T per seed", "median [min, max]",
               *[f"P(solved T={T}) [95 % CI]" for T in shown], "published"]
    rows = []
    for d in data:
        by_t = {p["length"]: p for p in d["p_solved"]}
        cells = []
        for T in shown:
            p = by_t.get(T)
            cells.append("" if p is None else f"{p['solved']}/{p['n']} [{p['lo']:.2f}, {p['hi']:.2f}]")
        pub = ""
        if paper_arm.get(d["arm"]):
            found, pv = paper_value(paper_key, {"task": d["task"], "arm": paper_arm[d["arm"]]})
            pub = format_paper_value(pv) if found else ""
            d["published"] = pv if found else None
        med = f"{d['median']:g} [{d['min']}, {d['max']}]"
        rows.append([_fmt_label(d["task"]), d["arm"], str(len(d["highest"])), _seed_list(d), med, *cells, pub])
    notes = []
    unfinished = sum(d["unfinished"] for d in data)
    if unfinished:
        notes.append(f"{unfinished} ladders not finished yet: their highest T is a lower bound")
    if budget_note:
        notes.append(f"budget: {budget_note}")
    cur = spec.get("curriculum", {})
    notes.append(f"curriculum: T = {cur.get('start', 10)}, + {cur.get('step', 10)} while solved, up to "
                 f"{tried[-1] if tried else '-'}, {'warm' if cur.get('warm_start', True) else 'cold'} start; solved = zero "
                 "errors on the fixed validation set; 0 = not even the first length; >= = reached the "
                 "longest length tried")
    notes.append("P(solved T): seeds whose ladder solved T / seeds, with a Wilson 95 % interval")
    if any(d.get("published") is not None for d in data):
        notes.append("published: the highest T the source papers report for that rule (one run, their "
                     "own protocol)")
        notes += PAPER_NOTES.get(paper_key or "", [])
    return Table(title, headers, rows, notes, data)


def frontier_figure(data: list[dict], path: str, title: str = "", control: str | None = None) -> str:
    """P(solved) against T with Wilson 95 % bands: one panel per task, one line per arm; the
    readout-only ``control`` dashed black. Writes ``path`` (PNG)."""
    from localrnn.experiments.report.figures import _plt

    plt = _plt()
    tasks = list(dict.fromkeys(d["task"] for d in data))
    arms = list(dict.fromkeys(d["arm"] for d in data))
    fig, axes = plt.subplots(1, max(1, len(tasks)), figsize=(5.2 * max(1, len(tasks)), 4.2), squeeze=False,
                             sharey=True)
    cmap = plt.get_cmap("tab10")
    colors = {a: cmap(i % 10) for i, a in enumerate(x for x in arms if x != control)}
    for j, task in enumerate(tasks):
        ax = axes[0, j]
        for d in (d for d in data if d["task"] == task):
            Ts = [p["length"] for p in d["p_solved"]]
            ps = [p["p"] for p in d["p_solved"]]
            is_control = d["arm"] == control
            color = "black" if is_control else colors[d["arm"]]
            ax.plot(Ts, ps, marker="o", ms=3, lw=1.4, color=color, ls="--" if is_control else "-",
                    label=f"{d['arm']} (n={len(d['highest'])})" + (" [control]" if is_control else ""))
            ax.fill_between(Ts, [p["lo"] for p in d["p_solved"]], [p["hi"] for p in d["p_solved"]],
                            color=color, alpha=0.10, lw=0)
        ax.set_title(_fmt_label(task))
        ax.set_xlabel("sequence length T (time steps)")
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
        if j == 0:
            ax.set_ylabel("P(solved at T) (fraction of seeds; Wilson 95 % band)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.06 + 0.04 * math.ceil(len(labels) / 4), 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

