"""Literal, slow transcription of RNN-LRA-diff on the leaky cell (docs/lra.md#other-cells): every
reading (fixed-target, printed, the published-code options), with Algorithm 2's regularizer and the
published code's, used as the oracle of ``localrnn.rules.lra`` with ``cell=leaky``.

Written per step from the cell's one-step map and plain autodiff (``oracles.lra_step_literal``),
sharing nothing with the fast code (only ``Params`` and the loss and norm helpers of
``oracles.lra_literal``):

    h_t = S_t(h_{t-1}; theta) = (1 - 1/tau) h_{t-1} + (1/tau)(tanh(h_{t-1}) Whh + x_t Wxh + bh),  h_{-1} = 0

For each step: the target (K steps on the candidate hbar of h_{t-1}, each the gradient of the step's
local loss through S_t), the local loss, and its gradient in the weights with h_{t-1} held
(one_step) or through the whole forward pass (unrolled). Omega's Jacobian is the vjp of S_t.
Eager and slow: keep T, B, m small.
"""

from __future__ import annotations

import jax.numpy as jnp

from oracles.lra_literal import _norm
from oracles.lra_step_literal import Published, lra_step_literal

tanh = jnp.tanh


def lra_leaky_literal(params, x, y, *, tau, normalization="algorithm1", **options):
    """Returns a dict with the keys of ``lra_core``; ``options`` as ``lra_step_literal`` takes them
    (``printed``: the top loop takes one step; pass ``inner_reference="forward"`` with it)."""
    Wxh, Whh, bh, Why, by = params
    leak, gain = 1.0 - 1.0 / tau, 1.0 / tau

    def S(t, h_prev, th):
        return leak * h_prev + gain * (tanh(h_prev) @ th["Whh"] + x[t] @ th["Wxh"] + th["bh"])

    def omega_pub(g, th, h):  # the published code's Omega on the leaky map: tanh' of h[b, b]
        scaled = ((g @ th["Whh"].T).T * jnp.diag(1.0 - tanh(h) ** 2)).T
        return (_norm(leak * g + gain * scaled) / _norm(g) - 1.0) ** 2

    def z_step(t, z, h_t):  # step t+1's pre-activation from z_t, h_t held
        return leak * h_t + gain * (z @ Whh + x[t + 1] @ Wxh + bh)

    def finish(t, g, normalize):
        """Each update normalized; Whh none at layer 0; bh as option (c) says."""
        return {"Wxh": normalize(g["Wxh"]), "Whh": jnp.zeros_like(Whh) if t == 0 else normalize(g["Whh"]),
                "bh": normalize(g["bh"]) if normalization == "algorithm1" else g["bh"]}

    zero = jnp.zeros((x.shape[1], Whh.shape[0]), Whh.dtype)
    return lra_step_literal(S, {"Wxh": Wxh, "Whh": Whh, "bh": bh}, zero, x, y, Why, by, finish=finish,
                            published=Published(omega_pub, z_step, "Wxh"), normalization=normalization,
                            **options)
