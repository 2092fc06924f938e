"""The paper's reported numbers (SPEC section 6), as labelled entries.

Each entry is a dict of labels (the same labels the experiment specs give their
trials: ``task``, ``arm``, ``inner_steps``, ``length``, ``c0``, ``c1``) and a
``value``: accuracy in % (Tables I, IV) or the highest T solved (Table V,
``None`` = the paper's "-": never solved). A report shows the entry whose labels
all match a cell beside that cell.
"""

from __future__ import annotations

__all__ = ["PAPER", "paper_value"]

_T1 = {
    "temporal_order": {10: (99.84, 99.81, 99.84), 20: (84.02, 84.01, 84.02)},
    "temporal_order_3bit": {10: (99.74, 99.52, 99.39), 20: (71.09, 70.60, 68.42)},
    "random_permutation": {10: (50.90, 50.54, 50.93), 20: (51.06, 51.07, 51.23), 30: (50.91, 50.92, 50.98)},
}

_T5 = {
    "temporal_order": {"TPTT": 150, "BPTT": 120, "LRA-diff": 10, "LRA-diff (reg.)": 20},
    "temporal_order_3bit": {"TPTT": 150, "BPTT": 70, "LRA-diff": 10, "LRA-diff (reg.)": 10},
    "random_permutation": {"TPTT": 300, "BPTT": 70, "LRA-diff": None, "LRA-diff (reg.)": 80},
}

PAPER: dict[str, list[dict]] = {
    "table1": [{"task": task, "arm": "LRA-diff", "inner_steps": k, "length": t, "value": v}
               for task, by_t in _T1.items() for t, vals in by_t.items()
               for k, v in zip((10, 20, 30), vals)],
    "table4": [{"task": "temporal_order", "length": 20, "c0": 0.0, "c1": 0.1, "inner_steps": k, "value": 99.84}
               for k in (10, 20, 30)],
    "table5": [{"task": task, "arm": arm, "value": v}
               for task, by_arm in _T5.items() for arm, v in by_arm.items()],
}


def _eq(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return float(a) == float(b)
    return a == b


def paper_value(key: str | None, labels: dict) -> tuple[bool, float | None]:
    """``(found, value)`` of the paper entry under ``key`` whose labels all match ``labels``."""
    if not key or key not in PAPER:
        return False, None
    for entry in PAPER[key]:
        if all(k in labels and _eq(labels[k], v) for k, v in entry.items() if k != "value"):
            return True, entry["value"]
    return False, None
