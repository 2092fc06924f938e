"""Hyper-parameter choice from a grid experiment (docs/frontier.md).

Per (task, arm), each setting (a trial's labels without the seed) is ranked by, in order:
seeds solved (more is better), mean iterations to solve with an unsolved seed counted as its
full budget (fewer), mean best validation accuracy (higher), and the grid's order (earlier).
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["rank_settings", "choose_settings"]

_DONE = ("solved", "failed", "diverged")
#: labels that are not settings
_NOT_SETTINGS = ("seed", "arm", "rule", "task", "length")


def _setting(labels: dict) -> str:
    return json.dumps({k: v for k, v in labels.items() if k != "seed"}, sort_keys=True)


def rank_settings(trials: list[dict]) -> dict[tuple[str, str], list[dict]]:
    """``{(task, arm): [setting summaries, best first]}``; each summary has ``labels`` (without
    seed), ``solved``, ``seeds``, ``mean_iterations`` (unsolved = its max_iters), ``mean_accuracy``
    and ``complete`` (all its seeds finished)."""
    groups: dict[tuple[str, str], dict[str, list[dict]]] = {}
    for t in trials:  # the store lists trials in the order the spec planned them
        lab = t["labels"]
        groups.setdefault((lab["task"], lab["arm"]), {}).setdefault(_setting(lab), []).append(t)
    out = {}
    for key, settings in groups.items():
        rows = []
        for order, (s, ts) in enumerate(settings.items()):
            its = [t["iterations"] if t["status"] == "solved" else t["config"]["max_iters"] for t in ts]
            accs = [t["best_accuracy"] or 0.0 for t in ts]
            rows.append({"labels": json.loads(s), "solved": sum(t["status"] == "solved" for t in ts),
                         "seeds": len(ts), "mean_iterations": sum(its) / len(its),
                         "mean_accuracy": sum(accs) / len(accs), "order": order,
                         "complete": all(t["status"] in _DONE for t in ts)})
        rows.sort(key=lambda r: (-r["solved"], r["mean_iterations"], -r["mean_accuracy"], r["order"]))
        out[key] = rows
    return out


def choose_settings(trials: list[dict]) -> list[dict[str, Any]]:
    """The best setting per (task, arm) (:func:`rank_settings`), as ``{task, arm, settings, solved,
    seeds, mean_iterations, mean_accuracy, complete}``; ``settings`` are the labels that vary
    within the arm's grid."""
    out = []
    for (task, arm), rows in rank_settings(trials).items():
        varying = {k for k in rows[0]["labels"] if k not in _NOT_SETTINGS
                   and len({json.dumps(r["labels"].get(k)) for r in rows}) > 1}
        best = rows[0]
        out.append({"task": task, "arm": arm, "settings": {k: best["labels"][k] for k in sorted(varying)},
                    **{k: best[k] for k in ("solved", "seeds", "mean_iterations", "mean_accuracy")},
                    "complete": all(r["complete"] for r in rows)})
    return out
