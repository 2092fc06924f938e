"""Smoothness of the loss (docs/analysis.md): the largest-magnitude eigenvalue of the Hessian of
E over all parameters, and the jump of E across one update.

Power iteration on Hessian-vector products ``Hv = d/de grad E(theta + e v)`` (forward over
reverse mode): ``v <- Hv / ||Hv||`` converges to the eigenvector of the eigenvalue of largest
magnitude; the eigenvalue, with its sign, is the Rayleigh quotient ``v^T H v``. Plain gradient
descent with step alpha is stable along that direction only while ``|lambda| < 2 / alpha``.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

__all__ = ["hvp", "top_hessian_eigenvalue", "loss_jump"]


def _vdot(a, b) -> jax.Array:
    return sum(jnp.vdot(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def hvp(loss_fn: Callable, params, v):
    """``H v``, H the Hessian of ``loss_fn`` at ``params`` (pytrees of the same structure)."""
    return jax.jvp(jax.grad(loss_fn), (params,), (v,))[1]


def top_hessian_eigenvalue(loss_fn: Callable, params, key: jax.Array, iters: int = 30) -> jax.Array:
    """The Hessian eigenvalue of largest magnitude, signed, after ``iters`` power iterations from a
    random start (``key``)."""
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(key, len(leaves))
    v = jax.tree.unflatten(tree, [jax.random.normal(k, a.shape, a.dtype) for k, a in zip(keys, leaves)])

    def normalized(w):
        n = jnp.sqrt(_vdot(w, w))
        return jax.tree.map(lambda a: a / n, w)

    v = jax.lax.fori_loop(0, iters, lambda _, w: normalized(hvp(loss_fn, params, w)), normalized(v))
    return _vdot(v, hvp(loss_fn, params, v))


def loss_jump(loss_fn: Callable, before, after) -> jax.Array:
    """``E(after) - E(before)``: how much one update raised the loss on a fixed set."""
    return loss_fn(after) - loss_fn(before)
