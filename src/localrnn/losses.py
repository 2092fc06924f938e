"""Losses: the global loss E (docs/network.md#global-loss) and LRA-diff's local losses
(docs/lra.md#normalize-and-the-local-losses). Every loss is a mean: over the batch for the
global loss, over all B x m entries for the local losses."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

__all__ = ["cross_entropy", "mse", "log_penalty", "global_loss", "local_loss", "LOCAL_LOSSES"]


def cross_entropy(out: jax.Array, y: jax.Array) -> jax.Array:
    """Mean over the batch of ``-sum_k y_k log softmax(out)_k`` (one-hot ``y``)."""
    return -jnp.mean(jnp.sum(y * jax.nn.log_softmax(out, axis=-1), axis=-1))


def mse(pred: jax.Array, target: jax.Array) -> jax.Array:
    """Mean over all entries of ``(pred - target)^2``."""
    return jnp.mean((pred - target) ** 2)


def log_penalty(pred: jax.Array, target: jax.Array) -> jax.Array:
    """Mean over all entries of ``log(1 + (pred - target)^2)``: the log-penalty (Cauchy) loss,
    the paper's eq. (8)."""
    return jnp.mean(jnp.log1p((pred - target) ** 2))


_GLOBAL: dict[str, Callable[[jax.Array, jax.Array], jax.Array]] = {
    "cross_entropy": cross_entropy,
    "mse": mse,
}

LOCAL_LOSSES: dict[str, Callable[[jax.Array, jax.Array], jax.Array]] = {
    "mse": mse,
    "log_penalty": log_penalty,
}


def global_loss(name: str) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """The global loss E by name: ``cross_entropy`` (classification) or ``mse`` (regression)."""
    try:
        return _GLOBAL[name]
    except KeyError:
        raise ValueError(f"unknown global loss {name!r}; allowed: {sorted(_GLOBAL)}") from None


def local_loss(name: str) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """A local loss L(z, zhat) by name: ``mse`` or ``log_penalty``."""
    try:
        return LOCAL_LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown local loss {name!r}; allowed: {sorted(LOCAL_LOSSES)}") from None
