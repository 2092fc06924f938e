"""e-prop (Bellec, Scherr, Subramoney, Hajek, Salaj, Legenstein & Maass 2020, "A solution to
the learning dilemma for recurrent networks of spiking neurons", Nature Communications 11:3625)
and RFLO (Murray 2019, "Local online learning in recurrent networks with random feedback",
eLife 8:e43299): one implementation, two names (docs/eprop.md).

The gradient is factored into a learning signal l (what the loss says about a neuron now) times
an eligibility trace (how a weight moved that neuron, through the neuron's own dynamics only;
what the weight did to the other neurons is dropped). The neuron's own dynamics is the cell's
leak (localrnn.cells): with keep = 1 - 1/tau and drive = 1/tau, p_{-1} = 0,

    p_t[i, j] = keep p_{t-1}[i, j] + drive z_{t-1}[i]   for Whh   (z_{-1} = 0)
    p_t[i, j] = keep p_{t-1}[i, j] + drive x_t[i]       for Wxh
    p_t[j]    = keep p_{t-1}[j]    + drive              for bh

On the SRNN (tau = 1, no leak; Whh[j, j] belongs to the network, not to the neuron) the trace
is the immediate derivative only: p_{T-1} = (z_{T-2}, x_{T-1}, 1). The loss sits at the last
step only, so the only learning signal is the one at T-1:

    symmetric feedback:  l = delta = dE/dh_{T-1} = (g Why^T) * (1 - z_{T-1}^2)
    random feedback:     l = (g F_y) * (1 - z_{T-1}^2),   F_y (k x m) drawn like Why^T at init

with g = dE/dout (batch-mean loss, so g carries the 1/B), and

    grad Whh[i, j] = sum_b l[b, j] p_{T-1}[b, i, j],  likewise Wxh, bh;  grad Why, grad by exact.

With symmetric feedback on the SRNN this is exactly the gradient of E with z_{T-2} held
constant (one-step truncated BPTT). ``rflo`` is the same rule with random feedback as its
default; Murray leaks the rate and puts phi' in the trace, this cell leaks the pre-activation,
so the trace has no phi' and the signal carries (1 - z_{T-1}^2). F_y is the rule state (``()``
for symmetric feedback) and never changes; the step reads it from the state, so with
F_y = Why^T there it equals the symmetric rule.

On the diagonal cells (localrnn.diagonal_cell) the neuron's own dynamics is its eigenvalue lambda,
which is the whole Jacobian diag(lambda), and each parameter feeds its own unit: the traces
p_t = lambda p_{t-1} + dh_t/dp (the immediate term through gamma(lambda) included) are RTRL's,
and the symmetric learning signal at T-1, l = dE/dRe h_{T-1} + i dE/dIm h_{T-1}, paired as
grad p = sum_b Re(conj(l) p_{T-1}), gives BPTT's gradient exactly (localrnn.rules._diagonal).
Random feedback (and so ``rflo``) is refused there; the record holds the loss only.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from pydantic import BaseModel, ConfigDict, Field

from localrnn.cells import SRNN, Cell
from localrnn.losses import global_loss
from localrnn.model import Params, hidden_states
from localrnn.rules._base import Rule, RuleDef
from localrnn.rules._credit import credit_record, lags_from_deltas, previous
from localrnn.rules._diagonal import diagonal_rule
from localrnn.rules.fa import Feedback, draw_output_feedback, output_signal, readout_error

__all__ = ["EpropState", "RULE", "RFLO", "last_traces"]


class EpropState(NamedTuple):
    """``F_y`` (k, m), the fixed random feedback of the output error, or ``()`` (symmetric)."""

    F_y: jax.Array | tuple


class EpropOptions(BaseModel):
    """Static options: which matrix carries the output error to the neurons."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    feedback: Feedback = Field(
        "symmetric", description="learning signal through Why^T (symmetric e-prop) or a fixed random "
                                 "F_y drawn like Why^T (random e-prop)")


class RFLOOptions(EpropOptions):
    """e-prop's options with random feedback as the default (Murray's RFLO)."""

    feedback: Feedback = Field(
        "random", description="learning signal through a fixed random F_y drawn like Why^T (RFLO) "
                              "or through Why^T (symmetric)")


def last_traces(cell: Cell, z_prev: jax.Array, x: jax.Array):
    """The traces at T-1 from ``z_{t-1}`` (T, B, m) and ``x`` (T, B, n): ``(p^Whh (B, m),
    p^Wxh (B, n), p^bh (scalar))``, each entry of a column j being the same (the trace of
    W[i, j] depends on i only). On the SRNN: ``(z_{T-2}, x_{T-1}, 1)``."""
    if not cell.leaks:
        return z_prev[-1], x[-1], jnp.ones((), x.dtype)

    def advance(p, inp):
        z_t, x_t = inp
        p_z, p_x, p_1 = p
        return (cell.keep * p_z + cell.drive * z_t, cell.keep * p_x + cell.drive * x_t,
                cell.keep * p_1 + cell.drive), None

    p0 = (jnp.zeros_like(z_prev[0]), jnp.zeros_like(x[0]), jnp.zeros((), x.dtype))
    p, _ = jax.lax.scan(advance, p0, (z_prev, x))
    return p


def _init(options: EpropOptions):
    def init(key: jax.Array, params: Params) -> EpropState:
        return EpropState(draw_output_feedback(key, params) if options.feedback == "random" else ())

    return init


def _build(name: str, options: EpropOptions, loss: str, record: bool, cell: Cell = SRNN) -> Rule:
    if cell.diagonal:
        if options.feedback != "symmetric":
            raise ValueError(f"feedback: {name} on the {cell.name} cell takes symmetric feedback only "
                             f"(a random feedback of the complex state's error is not defined here); "
                             f"got {options.feedback!r}")
        return diagonal_rule(name, loss, cell, _init(options))
    loss_fn = global_loss(loss)

    def step(params: Params, state: EpropState, batch, hparams):
        x, y = batch
        z = jnp.tanh(hidden_states(params, x, cell=cell))
        e_val, g, g_why, g_by = readout_error(params, z[-1], y, loss_fn)
        signal = output_signal(params, g, z[-1], state.F_y)  # l (B, m), at T-1 only
        z_prev = previous(z)  # z_{t-1}, z_{-1} = 0
        p_z, p_x, p_1 = last_traces(cell, z_prev, x)
        grads = Params(Wxh=p_x.T @ signal, Whh=p_z.T @ signal, bh=p_1 * jnp.sum(signal, axis=0),
                       Why=g_why, by=g_by)
        rec = {"loss": e_val}
        if record:
            # per-step contributions: only step T-1 has a learning signal
            last = jnp.zeros((z.shape[0],), z.dtype).at[-1].set(1.0)
            rec["learning_signal_norm"] = last * jnp.sqrt(jnp.sum(signal ** 2))
            rec["grad_Whh_norm"] = last * jnp.sqrt(jnp.sum(grads.Whh ** 2))
            rec["grad_Wxh_norm"] = last * jnp.sqrt(jnp.sum(grads.Wxh ** 2))
            # step t's immediate terms reach the trace at T-1 weighted by keep^(T-1-t)
            weight = jnp.power(jnp.asarray(cell.keep, x.dtype), jnp.arange(x.shape[0] - 1, -1, -1, dtype=x.dtype))
            lags = lags_from_deltas(z_prev, x, weight[:, None, None] * signal[None], cell.drive)
            rec.update(credit_record(params, batch, loss, grads, lags, cell))
        return grads, state, rec

    return Rule(name, _init(options), step)


RULE = RuleDef(
    name="eprop",
    summary="e-prop (Bellec et al. 2020): eligibility traces through the neuron's own leak times the "
            "last step's learning signal",
    options=EpropOptions,
    hparams={},
    build=functools.partial(_build, "eprop"),
    cells=("srnn", "leaky", "orthogonal", "diagonal", "diagonal-real"),
)

RFLO = RuleDef(
    name="rflo",
    summary="RFLO (Murray 2019): e-prop with random feedback by default; leaky traces on the leaky cell",
    options=RFLOOptions,
    hparams={},
    build=functools.partial(_build, "rflo"),
    cells=("srnn", "leaky", "orthogonal"),
)
