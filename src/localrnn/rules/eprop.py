"""e-prop (docs/eprop.md) for the tanh SRNN without leak (Bellec, Scherr, Subramoney, Hajek,
Salaj, Legenstein & Maass 2020, "A solution to the learning dilemma for recurrent networks of
spiking neurons", Nature Communications 11:3625).

The gradient is factored into a learning signal l (what the loss says about a neuron now) times
an eligibility trace e (how a weight moved that neuron, through the neuron's own dynamics only;
what the weight did to the other neurons is dropped). The SRNN's neuron has no dynamics of its
own (its pre-activation does not depend on its previous pre-activation except through the
network, Whh[j, j] included), so the trace is the immediate derivative only:

    e_t[i, j] = z_{t-1}[i]   for Whh   (z_{-1} = 0)
    e_t[i, j] = x_t[i]       for Wxh
    e_t[j]    = 1            for bh

The loss sits at the last step only, so the only learning signal is the one at T-1:

    symmetric feedback:  l = delta = dE/dh_{T-1} = (g Why^T) * (1 - z_{T-1}^2)
    random feedback:     l = (g F_y) * (1 - z_{T-1}^2),   F_y (k x m) drawn like Why^T at init

with g = dE/dout (batch-mean loss, so g carries the 1/B), and

    grad Whh[i, j] = sum_b l[b, j] e_{T-1}[b, i, j] = (z_{T-2}^T l)[i, j]
    grad Wxh = x_{T-1}^T l,  grad bh = sum_b l;  grad Why, grad by exact.

With symmetric feedback this is exactly the gradient of E with z_{T-2} held constant
(one-step truncated BPTT). F_y is the rule state (``()`` for symmetric feedback) and never
changes; the step reads it from the state, so with F_y = Why^T there it equals the symmetric rule.
The leaky cell (whose trace is filtered, Murray's RFLO) is not implemented here.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from pydantic import BaseModel, ConfigDict, Field

from localrnn.losses import global_loss
from localrnn.model import Params, hidden_states
from localrnn.rules._base import Rule, RuleDef
from localrnn.rules.fa import Feedback, draw_output_feedback, output_signal, readout_error

__all__ = ["EpropState", "RULE"]


class EpropState(NamedTuple):
    """``F_y`` (k, m), the fixed random feedback of the output error, or ``()`` (symmetric)."""

    F_y: jax.Array | tuple


class EpropOptions(BaseModel):
    """Static options: which matrix carries the output error to the neurons."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    feedback: Feedback = Field(
        "symmetric", description="learning signal through Why^T (symmetric e-prop) or a fixed random "
                                 "F_y drawn like Why^T (random e-prop)")


def _init(options: EpropOptions):
    def init(key: jax.Array, params: Params) -> EpropState:
        return EpropState(draw_output_feedback(key, params) if options.feedback == "random" else ())

    return init


def _build(options: EpropOptions, loss: str, record: bool) -> Rule:
    loss_fn = global_loss(loss)

    def step(params: Params, state: EpropState, batch, hparams):
        x, y = batch
        z = jnp.tanh(hidden_states(params, x))
        e_val, g, g_why, g_by = readout_error(params, z[-1], y, loss_fn)
        signal = output_signal(params, g, z[-1], state.F_y)  # l (B, m), at T-1 only
        # the traces at T-1: z_{T-2} (zero when T = 1), x_{T-1}, 1
        z_before = z[-2] if z.shape[0] > 1 else jnp.zeros_like(z[-1])
        grads = Params(Wxh=x[-1].T @ signal, Whh=z_before.T @ signal, bh=jnp.sum(signal, axis=0),
                       Why=g_why, by=g_by)
        rec = {"loss": e_val}
        if record:
            # per-step contributions: only step T-1 has a learning signal
            last = jnp.zeros((z.shape[0],), z.dtype).at[-1].set(1.0)
            rec["learning_signal_norm"] = last * jnp.sqrt(jnp.sum(signal ** 2))
            rec["grad_Whh_norm"] = last * jnp.sqrt(jnp.sum(grads.Whh ** 2))
            rec["grad_Wxh_norm"] = last * jnp.sqrt(jnp.sum(grads.Wxh ** 2))
        return grads, state, rec

    return Rule("eprop", _init(options), step)


RULE = RuleDef(
    name="eprop",
    summary="e-prop without leak (Bellec et al. 2020): immediate eligibility traces times the last "
            "step's learning signal",
    options=EpropOptions,
    hparams={},
    build=_build,
)
