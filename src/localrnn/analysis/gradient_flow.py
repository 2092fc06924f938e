"""Gradient flow: how much of the loss's gradient reaches each step (docs/analysis.md).

Per sample b with its own loss E_b (the global loss on that sample alone),

    g_b(t) = ||dE_b/dh_t||,   t = 0 .. T-1,   lag = T-1-t,

by one backward pass (localrnn.rules._gradient). E is the batch mean, so dE_b/dh_t = B dE/dh_t[b].
The credit that reaches the first marker p_b (the first input that carries information) relative
to what the readout gives, ``g_b(p_b) / g_b(T-1)``, is what the vanishing-credit verdict reads.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from localrnn.cells import Cell
from localrnn.model import Params
from localrnn.rules._gradient import loss_and_hidden_grads

__all__ = ["hidden_grad_norms", "marker_ratio"]


@partial(jax.jit, static_argnames=("cell", "loss"))
def hidden_grad_norms(params: Params, cell: Cell, batch, loss: str) -> jax.Array:
    """``||dE_b/dh_t||`` (T, B) for every step t and sample b of ``batch = (x, y)``."""
    _, _, g_h = loss_and_hidden_grads(params, batch, loss, cell)
    return g_h.shape[1] * jnp.sqrt(jnp.sum(g_h * g_h, axis=-1))


def marker_ratio(norms: jax.Array, first: jax.Array) -> jax.Array:
    """Per sample, ``g_b(p_b) / g_b(T-1)`` from ``norms`` (T, B) and the first markers ``p`` (B,)."""
    at_marker = jnp.take_along_axis(norms, first[None, :], axis=0)[0]
    return at_marker / norms[-1]
