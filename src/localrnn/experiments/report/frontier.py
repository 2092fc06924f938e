"""The max-T frontier (docs/frontier.md): how far back in time each rule carries credit.

A frontier experiment is a curriculum (T = start, + step while solved) run for several
seeds per arm and task. From its ladders alone:

* per (task, arm): the highest T solved by each seed, their median and [min, max];
* per (task, arm, T): P(solved at T), the fraction of seeds whose ladder solved T, with
  a Wilson 95 % interval (:func:`wilson`). A ladder stops at its first failure, so a seed
  solves T exactly when its highest solved length is >= T. A ladder still climbing has not
  been judged at the lengths above its highest solved one: it is ``pending`` there, never
  counted as a failure, and the interval then spans every way the pending seeds can end;
* a figure of P(solved) against T, one panel per task, one line per arm, the readout-only
  control drawn dashed.

A ladder that solved ``max_length`` is censored: it might have gone further; the table
marks such a seed, and a ladder still climbing, ``>=``.
"""

from __future__ import annotations

import math
import statistics
from localrnn.experiments.curriculum import highest_solved
from localrnn.experiments.report.tables import Table, _arm_labels, _axis_order, _fmt_label
from localrnn.paper.numbers import PAPER_NOTES, format_paper_value, paper_value

__all__ = ["wilson", "frontier_data", "frontier_table", "frontier_figure", "first_separation", "SHOWN_LENGTHS"]

#: lengths whose P(solved) the table shows once more than ``MAX_SHOWN`` lengths >= 20 were run
#: (always with the longest length run)
SHOWN_LENGTHS = (20, 30, 40, 50, 100, 200)
MAX_SHOWN = 5


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


def _norm(v):
    return v.replace("-", "_") if isinstance(v, str) else v


def of_current_arm(labels: dict, spec: dict) -> bool:
    """Whether a ladder (its ``labels``) runs the settings an arm of ``spec`` with its label fixes now.
    A spec regenerated with new settings for an arm leaves the old settings' ladders in the store
    under the same label; they are no longer that arm's. A setting the labels do not record counts
    as matching, and so does a label no arm of ``spec`` has."""
    arms = [a for a in spec["arms"] if (a.get("label") or a["name"]) == labels.get("arm")]
    def matches(arm: dict) -> bool:
        return all(k not in labels or _norm(labels[k]) == _norm(v) for k, v in arm.get("fixed", {}).items())

    return not arms or any(matches(a) for a in arms)


def frontier_data(ladders: dict[str, list[dict]], spec: dict, max_length: int) -> list[dict]:
    """One dict per (task, arm), from the ladders that run the arm's current settings
    (:func:`of_current_arm`): seeds, per-seed highest T, median, min, max, censored seeds,
    unfinished ladders, the lengths any of its ladders ran (``lengths_run``), and ``p_solved``:
    ``[{length, solved, pending, n, p, lo, hi}]`` for every length of the curriculum up to
    ``max_length``. ``pending`` counts unfinished ladders below T; with pending seeds the
    interval is [Wilson lo of solved/n, Wilson hi of (solved + pending)/n]."""
    cur = spec.get("curriculum", {})
    start, step = cur.get("start", 10), cur.get("step", 10)
    lengths = list(range(start, max_length + 1, step))
    per: dict[tuple, dict[int, tuple[int, bool]]] = {}
    run: dict[tuple, set[int]] = {}
    for steps in ladders.values():
        lab = steps[0]["labels"]
        if not of_current_arm(lab, spec):
            continue
        key = (lab.get("task"), lab.get("arm"))
        per.setdefault(key, {})[lab.get("seed")] = (highest_solved(steps), _finished(steps, max_length))
        run.setdefault(key, set()).update(s["length"] for s in steps)
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
            pending = sum(h < T and not d for h, d in zip(highest, done))
            lo, hi = wilson(k, n)[0], wilson(k + pending, n)[1]
            p_solved.append({"length": T, "solved": k, "pending": pending, "n": n, "p": k / n,
                             "lo": lo, "hi": hi})
        out.append({"task": task, "arm": arm, "seeds": sorted(seeds), "highest": highest,
                    "median": statistics.median(highest), "min": min(highest), "max": max(highest),
                    "censored": sum(h >= max_length for h in highest), "unfinished": n - sum(done),
                    "finished": done, "max_length": max_length, "lengths_run": sorted(run[(task, arm)]),
                    "p_solved": p_solved})
    return out


def first_separation(a: dict, b: dict, min_length: int = 20) -> dict | None:
    """The first length T >= ``min_length`` where arm ``a``'s P(solved at T) interval lies wholly
    above arm ``b``'s (``a["lo"] > b["hi"]``; both entries of :func:`frontier_data`, pending seeds
    counted both ways), as ``{"length", "a", "b"}`` with the two ``p_solved`` entries; None if the
    intervals overlap at every length of the curriculum from ``min_length`` on."""
    b_at = {p["length"]: p for p in b["p_solved"]}
    for p in a["p_solved"]:
        q = b_at.get(p["length"])
        if p["length"] >= min_length and q is not None and p["lo"] > q["hi"]:
            return {"length": p["length"], "a": p, "b": q}
    return None


def _shown_lengths(data: list[dict]) -> list[int]:
    """The lengths >= 20 that some ladder ran (every length run if none is): all of them up to
    ``MAX_SHOWN``, else those in ``SHOWN_LENGTHS`` and the longest."""
    every = sorted({T for d in data for T in d["lengths_run"]})
    run = [T for T in every if T >= 20] or every
    if len(run) <= MAX_SHOWN:
        return run
    shown = [T for T in run if T in SHOWN_LENGTHS]
    return shown if run[-1] in shown else [*shown, run[-1]]


def _p_cell(p: dict | None) -> str:
    """``k/n [lo, hi]``; with pending seeds ``>=k/n (u pending) [lo, hi]``."""
    if p is None:
        return ""
    ci = f"[{p['lo']:.2f}, {p['hi']:.2f}]"
    if p["pending"]:
        return f">={p['solved']}/{p['n']} ({p['pending']} pending) {ci}"
    return f"{p['solved']}/{p['n']} {ci}"


def _seed_list(d: dict) -> str:
    return " ".join((">=" if h >= d["max_length"] or not done else "") + str(h)
                    for h, done in zip(d["highest"], d["finished"]))


def frontier_table(data: list[dict], spec: dict, title: str, budget_note: str | None) -> Table:
    """Per (task, arm): highest T per seed, median [min, max], P(solved) at a few lengths with
    Wilson 95 % intervals, and the published highest T where the paper reports one."""
    rep = spec.get("report", {})
    paper_key = rep.get("paper")
    paper_arm = {a.get("label") or a["name"]: a.get("paper_arm") for a in spec["arms"]}
    tried = sorted({T for d in data for T in d["lengths_run"]})
    shown = _shown_lengths(data)
    headers = ["task", "arm", "seeds", "highest T per seed", "median [min, max]",
               *[f"P(solved T={T}) [95 % CI]" for T in shown], "published"]
    rows = []
    for d in data:
        by_t = {p["length"]: p for p in d["p_solved"]}
        cells = [_p_cell(by_t.get(T)) for T in shown]
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
        notes.append(f"{unfinished} ladders not finished yet: their highest T is a lower bound (>=), and at "
                     "the lengths above it they are pending, not failed")
    if budget_note:
        notes.append(f"budget: {budget_note}")
    cur = spec.get("curriculum", {})
    notes.append(f"curriculum: T = {cur.get('start', 10)}, + {cur.get('step', 10)} while solved, up to "
                 f"{tried[-1] if tried else '-'}, {'warm' if cur.get('warm_start', True) else 'cold'} start; solved = zero "
                 "errors on the fixed validation set; 0 = not even the first length; >= = reached the "
                 "longest length tried, or still climbing")
    notes.append("P(solved T): seeds whose ladder solved T / seeds, with a Wilson 95 % interval; with "
                 "pending seeds, >=k/n and the interval from k/n's lower end to (k + pending)/n's upper end")
    if any(d.get("published") is not None for d in data):
        notes.append("published: the highest T the source papers report for that rule (one run, their "
                     "own protocol)")
        notes += PAPER_NOTES.get(paper_key or "", [])
    return Table(title, headers, rows, notes, data)


def frontier_figure(data: list[dict], path: str, title: str = "", control: str | None = None) -> str:
    """P(solved) against T with Wilson 95 % bands: one panel per task, one line per arm; the
    readout-only ``control`` dashed black. A line stops before the first length where a seed is
    pending. Writes ``path`` (PNG)."""
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
            known = []  # up to the first length where a seed is still pending
            for p in d["p_solved"]:
                if p["pending"]:
                    break
                known.append(p)
            Ts = [p["length"] for p in known]
            ps = [p["p"] for p in known]
            is_control = d["arm"] == control
            color = "black" if is_control else colors[d["arm"]]
            ax.plot(Ts, ps, marker="o", ms=3, lw=1.4, color=color, ls="--" if is_control else "-",
                    label=f"{d['arm']} (n={len(d['highest'])})" + (" [control]" if is_control else ""))
            ax.fill_between(Ts, [p["lo"] for p in known], [p["hi"] for p in known],
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

