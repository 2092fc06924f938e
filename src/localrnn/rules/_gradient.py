"""The exact gradient of E and dE/dh_t for every t, by autodiff through the cell (shared by BPTT
and the credit diagnostic, localrnn.rules._credit)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from localrnn.cells import SRNN, Cell
from localrnn.losses import global_loss
from localrnn.model import Params, readout

__all__ = ["loss_and_hidden_grads"]


def _hidden_states_perturbed(params: Params, x: jax.Array, eps: jax.Array, cell: Cell = SRNN) -> jax.Array:
    """Pre-activations of ``cell`` with ``eps_t`` added to ``h_t``: d/d eps_t gives dE/dh_t."""
    u = x @ params.Wxh + params.bh
    whh = cell.recurrent(params)
    h0 = cell.first(u[0]) + eps[0]

    def step(h_prev, inp):
        u_t, e_t = inp
        h = cell.step(whh, h_prev, u_t) + e_t
        return h, h

    _, hs = jax.lax.scan(step, h0, (u[1:], eps[1:]))
    return jnp.concatenate([h0[None], hs], axis=0)


def loss_and_hidden_grads(params: Params, batch, loss: str = "cross_entropy", cell: Cell = SRNN):
    """``E``, ``dE/dparams`` and ``dE/dh_t`` for all t (T, B, m) in one backward pass, on ``cell``."""
    x, y = batch
    loss_fn = global_loss(loss)
    eps = jnp.zeros(x.shape[:2] + params.bh.shape, x.dtype)

    def objective(p, e):
        hs = _hidden_states_perturbed(p, x, e, cell)
        return loss_fn(readout(p, hs[-1]), y)

    e_val, (g_params, g_h) = jax.value_and_grad(objective, argnums=(0, 1))(params, eps)
    return e_val, g_params, g_h
