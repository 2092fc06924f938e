"""The numbers printed in Manchev & Garcia-Peraza-Herrera, "Can Local Representation Alignment
RNNs Solve Temporal Tasks?", Tables I-V, typed as printed (docs/paper.md).

The paper marks a solved cell with a check mark; a plain-text copy of the paper loses it and
the remaining numbers then look shifted one column left. Here a check mark is :data:`SOLVED`,
Table V's "-" (never solved) is :data:`NEVER`, and a cell the paper leaves blank has no
entry. Accuracies are in %, Table V's values are the highest sequence length T solved.

Each entry of :data:`PAPER` is a dict of labels -- the labels an experiment spec gives its
trials (``rule``, ``task``, ``length``, ``inner_steps``, ``local_loss``, ``c0``, ``c1``,
``arm``) -- and a ``value``; :func:`paper_value` finds the entry whose labels all match a
report cell. The tables are not mutually consistent (Table II says c = 1, yet its temporal
order T = 30 row matches Table I under neither loss); each is typed as printed.
"""

from __future__ import annotations

from typing import Any, Final, Union

__all__ = ["SOLVED", "NEVER", "PaperValue", "PAPER", "PAPER_NOTES", "paper_value", "format_paper_value"]

#: the paper's check mark: the problem was solved (zero validation errors)
SOLVED: Final = "solved"
#: Table V's "-": not solved even at the first length
NEVER: Final = None

PaperValue = Union[float, int, str, None]

S = SOLVED
K_VALUES = (10, 20, 30)

# Table I: LRA-diff, best accuracy over alpha, gamma; {task: {T: (K=10, K=20, K=30)}}.
# c0 = c1 = 1 is inferred: Table III's "normalization" half equals this table.
TABLE1 = {
    "temporal_order": {10: (S, S, S), 20: (99.84, 99.81, 99.84), 30: (84.02, 84.01, 84.02)},
    "temporal_order_3bit": {10: (S, S, S), 20: (99.74, 99.52, 99.39), 30: (71.09, 70.60, 68.42)},
    "random_permutation": {10: (50.90, 50.54, 50.93), 20: (51.06, 51.07, 51.23), 30: (50.91, 50.92, 50.98)},
}

# Table II: local loss (c0 = c1 = 1); {local loss: {task: {T: (K=10, K=20, K=30)}}}
TABLE2 = {
    "log_penalty": {
        "temporal_order": {10: (S, S, S), 20: (99.84, 99.81, 99.84), 30: (61.99, 79.66, 79.35)},
        "temporal_order_3bit": {10: (S, S, S), 20: (99.74, 99.52, 99.39), 30: (71.09, 70.60, 68.42)},
        "random_permutation": {10: (50.54, 50.54, 50.93), 20: (51.06, 51.08, 51.23), 30: (50.91, 50.91, 50.98)},
    },
    "mse": {
        "temporal_order": {10: (S, S, S), 20: (99.84, 99.81, 99.84), 30: (83.50, 82.32, 80.98)},
        "temporal_order_3bit": {10: (S, S, S), 20: (99.74, 99.52, 99.39), 30: (71.09, 70.60, 68.42)},
        "random_permutation": {10: (50.90, 50.54, 50.93), 20: (51.06, 51.07, 51.23), 30: (50.91, 50.92, 50.98)},
    },
}

# Table III: normalization; {c (= c0 = c1): {task: {T: (K=10, K=20, K=30)}}}
TABLE3 = {
    0.0: {
        "temporal_order": {10: (S, S, S), 20: (99.84, 99.81, 99.84), 30: (83.13, 81.45, 80.76)},
        "temporal_order_3bit": {10: (S, S, S), 20: (99.74, 99.52, 99.39), 30: (70.80, 69.44, 66.88)},
        "random_permutation": {10: (50.90, 50.54, 50.93), 20: (51.06, 51.07, 51.23), 30: (50.91, 50.92, 50.98)},
    },
    1.0: {
        "temporal_order": {10: (S, S, S), 20: (99.84, 99.81, 99.84), 30: (84.02, 84.01, 84.02)},
        "temporal_order_3bit": {10: (S, S, S), 20: (99.74, 99.52, 99.39), 30: (71.09, 70.60, 68.42)},
        "random_permutation": {10: (50.90, 50.54, 50.93), 20: (51.06, 51.07, 51.23), 30: (50.91, 50.92, 50.98)},
    },
}

# Table IV: temporal order T = 20, grid over alpha, gamma, c0, c1 in {0, 0.01, 0.1, 1};
# only the best setting is printed: alpha = 0.1, gamma = 0.01, c0 = 0, c1 = 0.1.
TABLE4_BEST = {"lr": 0.1, "target_step": 0.01, "c0": 0.0, "c1": 0.1}
TABLE4 = {10: 99.84, 20: 99.84, 30: 99.84}  # {K: accuracy}

# Table V: highest T solved in the curriculum (TPTT and BPTT quoted from Manchev & Spratling 2020)
TABLE5 = {
    "temporal_order": {"TPTT": 150, "BPTT": 120, "LRA-diff": 10, "LRA-diff (reg.)": 20},
    "temporal_order_3bit": {"TPTT": 150, "BPTT": 70, "LRA-diff": 10, "LRA-diff (reg.)": 10},
    "random_permutation": {"TPTT": 300, "BPTT": 70, "LRA-diff": NEVER, "LRA-diff (reg.)": 80},
}


def _by_task_length_k(cells: dict, **labels: Any) -> list[dict]:
    return [{"rule": "lra", **labels, "task": task, "length": t, "inner_steps": k, "value": v}
            for task, by_t in cells.items() for t, vals in by_t.items() for k, v in zip(K_VALUES, vals)]


PAPER: dict[str, list[dict]] = {
    "table1": _by_task_length_k(TABLE1, c0=1.0, c1=1.0),
    "table2": [e for loss, cells in TABLE2.items() for e in _by_task_length_k(cells, local_loss=loss)],
    "table3": [e for c, cells in TABLE3.items() for e in _by_task_length_k(cells, c0=c, c1=c)],
    "table4": [{"rule": "lra", "task": "temporal_order", "length": 20, "c0": TABLE4_BEST["c0"],
                "c1": TABLE4_BEST["c1"], "inner_steps": k, "value": v} for k, v in TABLE4.items()],
    "table5": [{"task": task, "arm": arm, "value": v} for task, by_arm in TABLE5.items() for arm, v in by_arm.items()],
}

#: what a report of each table says about the paper's column
PAPER_NOTES: dict[str, list[str]] = {
    "table1": ["paper: LRA-diff, reading and local loss not stated; c0 = c1 = 1 inferred (Table III's "
               "normalization half equals Table I); ✓ = solved"],
    "table2": ["paper: LRA-diff with c0 = c1 = 1, reading not stated; ✓ = solved"],
    "table3": ["paper: LRA-diff, c = 0 (no normalization) and c = 1, reading not stated; ✓ = solved"],
    "table4": ["paper: only the best setting is printed: alpha = 0.1, gamma = 0.01, c0 = 0, c1 = 0.1 "
               "reaches 99.84 for K = 10, 20, 30"],
    "table5": ["paper: TPTT and BPTT columns are quoted from Manchev & Spratling 2020; "
               "'-' = not solved even at T = 10"],
}


def _same(a: Any, b: Any) -> bool:
    numeric = (int, float)
    if isinstance(a, numeric) and isinstance(b, numeric) and not isinstance(a, bool) and not isinstance(b, bool):
        return float(a) == float(b)
    if isinstance(a, str) and isinstance(b, str):
        return a.replace("-", "_") == b.replace("-", "_")
    return a == b


def paper_value(key: str | None, labels: dict) -> tuple[bool, PaperValue]:
    """``(found, value)`` of the first entry of table ``key`` whose labels all appear in ``labels``
    with the same value; ``(False, None)`` when the paper reports nothing there."""
    for entry in PAPER.get(key or "", []):
        if all(k in labels and _same(labels[k], v) for k, v in entry.items() if k != "value"):
            return True, entry["value"]
    return False, None


def format_paper_value(value: PaperValue) -> str:
    """A paper cell as text: ``✓`` for solved, ``-`` for never solved, else the number."""
    if value == SOLVED:
        return "✓"
    if value is NEVER:
        return "-"
    return f"{value:.2f}" if isinstance(value, float) else str(value)
