"""Feedback alignment through time (docs/fa.md): BPTT whose backward recursion sends the
error through fixed random matrices instead of the transposed weights (Lillicrap, Cownden,
Tweed & Akerman 2016, "Random synaptic feedback weights support error backpropagation for
deep learning", Nature Communications 7:13276), applied to the unrolled SRNN.

In the row-vector notation of docs/network.md, with g = dE/dout (k columns, the batch-mean
loss, so g carries the 1/B):

    delta_{T-1} = (g B_y) * (1 - z_{T-1}^2)                B_y = Why^T, or F_y (k x m)
    delta_{t-1} = (delta_t F_hh) * (1 - z_{t-1}^2)         t = T-1 .. 1;  F_hh (m x m) for Whh^T
    grad Whh = sum_{t>=1} z_{t-1}^T delta_t,  grad Wxh = sum_t x_t^T delta_t,  grad bh = sum_{t,b} delta_t
    grad Why = z_{T-1}^T g,  grad by = sum_b g                              (exact)

F_hh is drawn like Whh (orthogonal), F_y like Why^T, once per run in ``init`` from the rule's
key; they are the rule state and never change. The step reads them from the state, so with
F_hh = Whh^T and F_y = Why^T put there the rule is BPTT exactly.

The helpers ``draw_output_feedback``, ``readout_error`` and ``output_signal`` are shared with
e-prop (:mod:`localrnn.rules.eprop`).
"""

from __future__ import annotations

from typing import Callable, Literal, NamedTuple

import jax
import jax.numpy as jnp
from pydantic import BaseModel, ConfigDict, Field

from localrnn.cells import SRNN, Cell
from localrnn.losses import global_loss
from localrnn.model import Params, hidden_states, orthogonal
from localrnn.rules._base import Rule, RuleDef
from localrnn.rules._credit import credit_record, lags_from_deltas, previous
from localrnn.rules.tptt import _gram_norms

__all__ = ["FAState", "draw_output_feedback", "readout_error", "output_signal", "fa_deltas", "RULE"]

Feedback = Literal["symmetric", "random"]


class FAState(NamedTuple):
    """Fixed feedback: ``F_hh`` (m, m) in place of Whh^T; ``F_y`` (k, m) in place of Why^T,
    or ``()`` when the output error goes back through Why^T."""

    F_hh: jax.Array
    F_y: jax.Array | tuple


def draw_output_feedback(key: jax.Array, params: Params) -> jax.Array:
    """``F_y`` (k, m): drawn as Why is (``orthogonal``, docs/network.md), transposed."""
    return orthogonal(key, params.Why.shape, params.Why.dtype).T


def readout_error(params: Params, z_last: jax.Array, y: jax.Array,
                  loss_fn: Callable[[jax.Array, jax.Array], jax.Array]):
    """``(E, g, grad Why, grad by)`` with ``g = dE/dout`` (B, k), from ``z_{T-1}`` (B, m)."""
    e_val, g = jax.value_and_grad(lambda o: loss_fn(o, y))(z_last @ params.Why + params.by)
    return e_val, g, z_last.T @ g, jnp.sum(g, axis=0)


def output_signal(params: Params, g: jax.Array, z_last: jax.Array, F_y) -> jax.Array:
    """``(g B_y) * (1 - z_{T-1}^2)`` with ``B_y = Why^T`` (``F_y = ()``) or ``F_y``: with Why^T this
    is delta_{T-1} = dE/dh_{T-1}."""
    back = g @ (params.Why.T if isinstance(F_y, tuple) else F_y)
    return back * (1.0 - z_last * z_last)


def fa_deltas(z: jax.Array, top: jax.Array, F_hh: jax.Array, cell: Cell = SRNN) -> jax.Array:
    """All deltas (T, B, m): ``delta_{T-1} = top``, ``delta_{t-1} = (delta_t F_hh) * (1 - z_{t-1}^2)``
    (on a leaky cell ``(1 - 1/tau) delta_t + (1/tau)(delta_t F_hh) * (1 - z_{t-1}^2)``, Cell.pull)."""
    def step(d_t, z_prev):
        d_prev = cell.pull(F_hh, d_t, z_prev)
        return d_prev, d_prev

    _, lower = jax.lax.scan(step, top, z[:-1], reverse=True)
    return jnp.concatenate([lower, top[None]], axis=0)


class FAOptions(BaseModel):
    """Static options: where the output error enters the network."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    output_feedback: Feedback = Field(
        "symmetric", description="the output error enters the network through Why^T (symmetric) "
                                 "or a fixed random F_y drawn like Why^T (random)")


def _init(options: FAOptions):
    def init(key: jax.Array, params: Params) -> FAState:
        k_hh, k_y = jax.random.split(key)
        F_hh = orthogonal(k_hh, params.Whh.shape, params.Whh.dtype)
        F_y = draw_output_feedback(k_y, params) if options.output_feedback == "random" else ()
        return FAState(F_hh, F_y)

    return init


def _build(options: FAOptions, loss: str, record: bool, cell: Cell = SRNN) -> Rule:
    loss_fn = global_loss(loss)
    c = cell.drive  # the immediate terms carry 1/tau (1 for the SRNN)

    def step(params: Params, state: FAState, batch, hparams):
        x, y = batch
        z = jnp.tanh(hidden_states(params, x, cell=cell))
        e_val, g, g_why, g_by = readout_error(params, z[-1], y, loss_fn)
        delta = fa_deltas(z, output_signal(params, g, z[-1], state.F_y), state.F_hh, cell)
        grads = Params(Wxh=c * jnp.einsum("tbi,tbj->ij", x, delta),
                       Whh=c * jnp.einsum("tbi,tbj->ij", z[:-1], delta[1:]),  # z_{-1} = 0
                       bh=c * jnp.sum(delta, axis=(0, 1)), Why=g_why, by=g_by)
        rec = {"loss": e_val}
        if record:
            z_prev = previous(z)
            rec["delta_norm"] = jnp.sqrt(jnp.sum(delta ** 2, axis=(1, 2)))
            rec["grad_Whh_norm"] = _gram_norms(z_prev, delta)
            rec["grad_Wxh_norm"] = _gram_norms(x, delta)
            rec.update(credit_record(params, batch, loss, grads, lags_from_deltas(z_prev, x, delta, c), cell))
        return grads, state, rec

    return Rule("fa", _init(options), step)


RULE = RuleDef(
    name="fa",
    summary="feedback alignment through time: BPTT with a fixed random F_hh for Whh^T (Lillicrap et al. 2016)",
    options=FAOptions,
    hparams={},
    build=_build,
    cells=("srnn", "leaky", "orthogonal"),
)
