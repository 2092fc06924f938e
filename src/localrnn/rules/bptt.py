"""BPTT (docs/bptt.md): the exact gradient of E, optionally plus Pascanu's
vanishing-gradient regularizer (Pascanu, Mikolov & Bengio 2013, eq. 10)

    Omega = sum_{t=0}^{T-2} ( ||g_{t+1} dh_{t+1}/dh_t|| / ||g_{t+1}|| - 1 )^2,
    g_t = dE/dh_t (held constant),  g_{t+1} dh_{t+1}/dh_t = (g_{t+1} Whh^T) * (1 - tanh(h_t)^2)

with Frobenius norms over the batch matrix (a term is 0 when a norm is 0).
The rule returns grad E + lambda grad Omega; gradient-norm clipping is applied by
the training loop, for every rule alike. On the diagonal cells (localrnn.diagonal_cell) it is
autodiff of E through their forward pass, every parameter alike; Omega and the record's per-step
diagnostics are not defined there (reg_lambda != 0 is refused; the record holds the loss only).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from pydantic import BaseModel, ConfigDict, Field

from localrnn.cells import SRNN, Cell
from localrnn.losses import global_loss
from localrnn.model import Params, forward
from localrnn.rules._base import Hparam, Rule, RuleDef, zero_state
from localrnn.rules._credit import credit_record
from localrnn.rules._gradient import _hidden_states_perturbed, loss_and_hidden_grads
from localrnn.rules._norms import ratio_penalty

__all__ = ["pascanu_omega", "loss_and_hidden_grads", "RULE"]  # loss_and_hidden_grads: from _gradient


def pascanu_omega(params: Params, x: jax.Array, dE_dh: jax.Array, cell: Cell = SRNN) -> jax.Array:
    """Omega of the module docstring with ``dE_dh`` (T, B, m) given (held constant); on a leaky
    cell ``g_{t+1} dh_{t+1}/dh_t`` is its :meth:`Cell.pull`."""
    hs = _hidden_states_perturbed(params, x, jnp.zeros_like(dE_dh), cell)
    g_next = jax.lax.stop_gradient(dE_dh[1:])
    carried = cell.pull(params.Whh.T, g_next, jnp.tanh(hs[:-1]))
    return jnp.sum(jax.vmap(ratio_penalty)(carried, g_next))


class BPTTOptions(BaseModel):
    """Static options: ``regularize`` adds lambda * Omega (set automatically when lambda != 0)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    regularize: bool = Field(False, description="add lambda * Omega (on when reg_lambda != 0)")


def _diagonal_build(options: BPTTOptions, loss: str, cell: Cell) -> Rule:
    """BPTT on a diagonal cell: ``dE/dparams`` by autodiff through :func:`localrnn.model.forward`."""
    if options.regularize:
        raise ValueError(f"reg_lambda: Pascanu's regularizer is defined for the srnn | leaky | orthogonal "
                         f"cell only; the {cell.name} cell takes reg_lambda = 0")
    loss_fn = global_loss(loss)

    def step(params, state, batch, hparams):
        x, y = batch
        e_val, grads = jax.value_and_grad(lambda p: loss_fn(forward(p, x, cell=cell), y))(params)
        return grads, state, {"loss": e_val}

    return Rule("bptt", zero_state, step)


def _build(options: BPTTOptions, loss: str, record: bool, cell: Cell = SRNN) -> Rule:
    if cell.diagonal:
        return _diagonal_build(options, loss, cell)

    def step(params, state, batch, hparams):
        e_val, grads, g_h = loss_and_hidden_grads(params, batch, loss, cell)
        rec = {"loss": e_val}
        if options.regularize:
            om, g_om = jax.value_and_grad(pascanu_omega)(params, batch[0], g_h, cell)
            grads = jax.tree.map(lambda a, b: a + hparams["reg_lambda"] * b, grads, g_om)
            rec["omega"] = om
        if record:
            rec["dE_dh_norm"] = jnp.sqrt(jnp.sum(g_h ** 2, axis=(1, 2)))
            rec.update(credit_record(params, batch, loss, grads, "exact", cell))
        return grads, state, rec

    return Rule("bptt", zero_state, step)


RULE = RuleDef(
    name="bptt",
    summary="backpropagation through time (exact gradient; optional Pascanu regularizer)",
    options=BPTTOptions,
    hparams={"reg_lambda": Hparam(0.0, "weight lambda of Pascanu's regularizer Omega (0 = off)",
                                  switches="regularize")},
    build=_build,
    cells=("srnn", "leaky", "orthogonal", "diagonal", "diagonal-real"),
)
