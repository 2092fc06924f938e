"""The output layer and the top target (Algorithm 1, lines 7-13; docs/lra.md).

``grad Why, grad by = dE/dWhy, dE/dby`` (line 7). Top target: ``hbar = h_{T-1}`` (line 8), then
``n_steps`` times ``D = dE(out(tanh(hbar)), y)/dhbar`` (line 10), ``hbar <- hbar - gamma D``
(lines 11, 12); ``hhat_{T-1} = hbar``. ``n_steps`` is K, or 1 in the printed reading (lines 9-13
never update hbar and recompute yhat from z, so every step repeats the first).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from localrnn.rules.lra._pass import Pass
from localrnn.rules.lra.regularizers import NoRegularizer

__all__ = ["output_gradients", "top_target"]

Rescale = Callable[[jax.Array, jax.Array], jax.Array]


def output_gradients(p: Pass, e_fn: Callable, reg: NoRegularizer, rescale: Rescale):
    """``(E, grad Why, grad by)``; ``rescale(g, c0)`` is Normalize (option (c)) or the identity."""
    e_val, (g_why, g_by) = jax.value_and_grad(
        lambda w, c: e_fn(p.zs[-1] @ w + c, p.y), argnums=(0, 1))(p.why, p.by)
    return e_val, rescale(reg.output_weights(p, g_why, e_fn), p.c0), g_by


def top_target(p: Pass, e_fn: Callable, reg: NoRegularizer, rescale: Rescale, n_steps: int):
    """``(hhat_{T-1}, D of the last step)``; ``rescale(D, c1)`` is Normalize (option (c)) or the
    identity."""
    d_e_dout = jax.grad(lambda out: e_fn(out, p.y))

    def step(_, carry):
        hbar, _ = carry
        th = jnp.tanh(hbar)
        g_e = d_e_dout(th @ p.why + p.by)
        mc = g_e @ p.why.T
        d = reg.top_step(p, mc * (1.0 - th * th), hbar, g_e, mc)
        d = rescale(d, p.c1)
        return hbar - p.gamma * d, d

    return jax.lax.fori_loop(0, n_steps, step, (p.hs[-1], jnp.zeros_like(p.hs[-1])))
