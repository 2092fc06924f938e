"""What the analysis needs to know of each task (docs/tasks.md): where the first piece of
information arrives, which inputs fill the delay (the distractors), and how many classes occur.

* temporal order (2 and 3 bits), random permutation: one-hot symbols; 0 and 1 carry the bits,
  2 .. n-1 are distractors. The first bit sits in [T//10, 2 T//10) (at 0 for random permutation).
* adding: channel 0 marks the two values, channel 1 holds a value U[0, 1] at every step; the
  delay's input is (0, v), its mean (0, 1/2). The target is a real number: no classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["TaskFacts", "task_facts"]


@dataclass(frozen=True)
class TaskFacts:
    """``marker_channels``: input channels that carry information; ``distractors``: the one-hot
    symbols of the delay (empty for adding); ``classes``: how many targets occur (None: regression)."""

    name: str
    n_in: int
    marker_channels: tuple[int, ...]
    distractors: tuple[int, ...]
    classes: int | None

    def first_marker(self, x: jax.Array) -> jax.Array:
        """Per sample (B,), the first step t whose input has a marker channel set, from ``x`` (T, B, n)."""
        hit = jnp.sum(x[..., list(self.marker_channels)], axis=-1) > 0
        return jnp.argmax(hit, axis=0)

    def first_marker_window(self, length: int) -> tuple[int, int]:
        """``[lo, hi)``: where the first marker can be at length T."""
        f = length // 10
        if self.name == "random_permutation":
            return 0, 1
        if self.name == "adding":
            return 0, f
        return f, 2 * f

    def constant_inputs(self, max_symbols: int | None = None) -> dict[str, np.ndarray]:
        """The constant inputs whose fixed points are sought: zero, each distractor symbol (the first
        ``max_symbols`` of them if given), and the mean distractor input."""
        out = {"zero": np.zeros(self.n_in)}
        if self.distractors:
            eye = np.eye(self.n_in)
            for s in self.distractors[:max_symbols]:
                out[f"symbol {s}"] = eye[s]
            out["mean"] = eye[list(self.distractors)].mean(axis=0)
        else:  # adding: no marker, the value channel at its mean
            out["mean"] = np.array([0.0, 0.5])
        return out


_FACTS = {
    "temporal_order": TaskFacts("temporal_order", 6, (0, 1), tuple(range(2, 6)), 4),
    "temporal_order_3bit": TaskFacts("temporal_order_3bit", 6, (0, 1), tuple(range(2, 6)), 8),
    "random_permutation": TaskFacts("random_permutation", 100, (0, 1), tuple(range(2, 100)), 2),
    "adding": TaskFacts("adding", 2, (0,), (), None),
}


def task_facts(task: str) -> TaskFacts:
    """The facts of ``task`` (canonical name); ValueError for a task the analysis does not know."""
    if task not in _FACTS:
        raise ValueError(f"task: the analysis knows {', '.join(_FACTS)}; got {task!r}")
    return _FACTS[task]
