"""The outcome of one training run (a plain record, shared by the loop and checkpoints)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jax
import numpy as np

from localrnn.config import TrainConfig
from localrnn.model import Params

__all__ = ["RunResult"]

_INT_HISTORY_KEYS = ("iteration", "val_errors")


@dataclass
class RunResult:
    """Outcome of one config: status solved | failed | diverged | interrupted.

    ``best_accuracy`` / ``best_iteration``: the best validation before the run stopped; a
    diverged run keeps the best it reached before diverging. ``params`` / ``rule_state``: the
    final state (a diverged run's last finite one). ``records``: ``(iteration, {name: array})``
    when trained with ``record_every``.
    """

    config: TrainConfig
    status: str = "running"
    best_accuracy: float = 0.0
    best_iteration: int = 0
    iterations: int = 0
    seconds: float = 0.0
    stale: int = 0
    stop_reason: str = ""
    history: list[dict[str, float]] = field(default_factory=list)
    params: Params | None = None
    rule_state: Any = None
    records: list[tuple[int, dict[str, Any]]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The JSON summary of the CLI: status, best_accuracy, iterations, seconds, config."""
        return {
            "status": self.status, "best_accuracy": self.best_accuracy,
            "iterations": self.iterations, "best_iteration": self.best_iteration,
            "stop_reason": self.stop_reason,
            "seconds": round(self.seconds, 3), "run_id": self.config.run_id(),
            "config": self.config.model_dump(mode="json"),
        }

    def to_dict(self, keep_state: bool = False) -> dict[str, Any]:
        """Plain values for the results store (and for crossing a process boundary).

        With ``keep_state`` also ``params`` ({field: array}) and ``rule_state`` (its leaves in
        order), what a warm start continues from.
        """
        d = {"status": self.status, "best_accuracy": float(self.best_accuracy),
             "best_iteration": int(self.best_iteration), "iterations": int(self.iterations),
             "seconds": float(self.seconds), "stop_reason": self.stop_reason,
             "history": [{k: int(v) if k in _INT_HISTORY_KEYS else float(v) for k, v in h.items()}
                         for h in self.history]}
        if keep_state and self.params is not None:
            d["params"] = {k: np.asarray(getattr(self.params, k)) for k in self.params._fields}
            d["rule_state"] = [np.asarray(a) for a in jax.tree.leaves(self.rule_state)]
        return d
