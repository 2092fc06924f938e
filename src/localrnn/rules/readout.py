"""Readout-only control (docs/readout.md): only Why and by learn, from dE directly;
Wxh, Whh, bh keep their initial values
(on the diagonal cells: nu, theta, B; their record holds the loss only)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from localrnn.cells import SRNN, Cell
from localrnn.losses import global_loss
from localrnn.model import Params, final_state, readout_input
from localrnn.rules._base import NoOptions, Rule, RuleDef, zero_state
from localrnn.rules._credit import credit_record

__all__ = ["RULE"]


def _build(options: NoOptions, loss: str, record: bool, cell: Cell = SRNN) -> Rule:
    loss_fn = global_loss(loss)

    def step(params: Params, state, batch, hparams):
        x, y = batch
        z = readout_input(final_state(params, x, cell=cell), cell)
        e_val, (g_why, g_by) = jax.value_and_grad(
            lambda w, b: loss_fn(z @ w + b, y), argnums=(0, 1))(params.Why, params.by)
        zeros = jax.tree.map(jnp.zeros_like, params)
        grads = zeros._replace(Why=g_why, by=g_by)
        rec = {"loss": e_val}
        if record and not cell.diagonal:  # no recurrent update: every cosine is 0
            T = x.shape[0]
            lags = (jnp.zeros((T,) + params.Whh.shape, x.dtype), jnp.zeros((T,) + params.Wxh.shape, x.dtype),
                    jnp.zeros((T,) + params.bh.shape, x.dtype))
            rec.update(credit_record(params, batch, loss, grads, lags, cell))
        return grads, state, rec

    return Rule("readout", zero_state, step)


RULE = RuleDef(
    name="readout",
    summary="readout-only control: only Why, by learn (what the task gives away)",
    options=NoOptions,
    hparams={},
    build=_build,
    cells=("srnn", "leaky", "orthogonal", "diagonal", "diagonal-real"),
)
