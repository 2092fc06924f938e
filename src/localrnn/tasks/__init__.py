"""Task registry (docs/tasks.md).

A :class:`Task` bundles a generator with its sizes, its global loss and its
success test. ``TASKS`` maps the canonical name (``temporal_order``) to the task;
:func:`get_task` also accepts the command-line spelling (``temporal-order``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import jax
import jax.numpy as jnp

from localrnn.tasks import synthetic

__all__ = ["Task", "TASKS", "get_task", "validation_batch", "validation_set", "VALIDATION_CHUNK"]

#: the validation set is generated in chunks of this many samples (part of its definition)
VALIDATION_CHUNK = 1000


@dataclass(frozen=True)
class Task:
    """One task: sizes, generator, global loss and what counts as a correct answer."""

    name: str
    n_in: int
    n_out: int
    loss: str  # "cross_entropy" | "mse"
    min_length: int
    chance: float
    description: str
    generator: Callable

    @property
    def cli_name(self) -> str:
        return self.name.replace("_", "-")

    def sample(self, key: jax.Array, length: int, batch: int, dtype=jnp.float32):
        """A fresh batch ``(x (T, B, n), y (B, k))`` from ``key``."""
        if length < self.min_length:
            raise ValueError(f"{self.name}: length must be >= {self.min_length}, got {length}")
        x, y = self.generator(key, length, batch)
        return x.astype(dtype), y.astype(dtype)

    def correct(self, out: jax.Array, y: jax.Array) -> jax.Array:
        """Per-sample success (B,): argmax match, or squared error < 0.04 for regression."""
        if self.loss == "mse":
            return jnp.sum((out - y) ** 2, axis=-1) < 0.04
        return jnp.argmax(out, axis=-1) == jnp.argmax(y, axis=-1)


TASKS: dict[str, Task] = {
    t.name: t
    for t in [
        Task("temporal_order", 6, 4, "cross_entropy", 10, 0.25,
             "two bits at t in [T/10, 2T/10) and [T/2, T/2+T/10); 4 classes", synthetic.temporal_order),
        Task("temporal_order_3bit", 6, 8, "cross_entropy", 10, 0.125,
             "three bits at [T/10,2T/10), [0.3T,0.3T+T/10), [0.6T,0.6T+T/10); 8 classes",
             synthetic.temporal_order_3bit),
        Task("random_permutation", 100, 100, "cross_entropy", 2, 0.5,
             "recall the bit at t=0 after T-1 random symbols", synthetic.random_permutation),
        Task("adding", 2, 1, "mse", 10, math.nan,
             "mean of two marked values; correct when squared error < 0.04", synthetic.adding),
    ]
}


def get_task(name: str) -> Task:
    """Look a task up by canonical (``temporal_order``) or CLI (``temporal-order``) name."""
    key = name.replace("-", "_")
    if key not in TASKS:
        allowed = ", ".join(t.cli_name for t in TASKS.values())
        raise ValueError(f"unknown task {name!r}; allowed: {allowed}")
    return TASKS[key]


def validation_batch(task: Task, length: int, seed: int, index: int | jax.Array,
                     dtype=jnp.float32, draw: int | jax.Array | None = None):
    """Chunk ``index`` (VALIDATION_CHUNK samples) of the fixed validation set of ``seed``, or,
    given ``draw``, of the fresh set drawn for that validation (a different set for every draw)."""
    key = jax.random.fold_in(jax.random.PRNGKey(seed), index)
    if draw is not None:
        key = jax.random.fold_in(key, draw)
    return task.sample(key, length, VALIDATION_CHUNK, dtype)


def validation_set(task: Task, length: int, size: int = 10_000, seed: int = 1,
                   dtype=jnp.float32):
    """The whole fixed validation set ``(x (T, size, n), y (size, k))``, materialized.

    Training validates on the same samples chunk by chunk, regenerating them
    inside the compiled evaluation instead of holding them in memory.
    """
    chunks = [validation_batch(task, length, seed, i, dtype)
              for i in range(math.ceil(size / VALIDATION_CHUNK))]
    x = jnp.concatenate([c[0] for c in chunks], axis=1)[:, :size]
    y = jnp.concatenate([c[1] for c in chunks], axis=0)[:size]
    return x, y
