"""The outcome of one training run (a plain record, shared by the loop and checkpoints)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from localrnn.config import TrainConfig
from localrnn.model import Params

__all__ = ["RunResult"]


@dataclass
class RunResult:
    """Outcome of one config: status solved | failed | diverged | interrupted."""

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

    def summary(self) -> dict[str, Any]:
        """The JSON summary of the CLI: status, best_accuracy, iterations, seconds, config."""
        return {
            "status": self.status, "best_accuracy": self.best_accuracy,
            "iterations": self.iterations, "best_iteration": self.best_iteration,
            "stop_reason": self.stop_reason,
            "seconds": round(self.seconds, 3), "run_id": self.config.run_id(),
            "config": self.config.model_dump(mode="json"),
        }
