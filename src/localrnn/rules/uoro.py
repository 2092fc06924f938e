"""UORO, Unbiased Online Recurrent Optimization (docs/uoro.md; Tallec & Ollivier 2018,
"Unbiased Online Recurrent Optimization", ICLR 2018, arXiv:1702.05043).

Forward-mode credit assignment with a rank-one estimate of the influence matrix. In the
notation of docs/network.md (row vectors, ``h_t = z_{t-1} Whh + x_t Wxh + bh``), with the
recurrent parameters ``theta = (Whh, Wxh, bh)`` flattened in that order, each sample carries
a column ``u_t`` (length m) and a row ``theta~_t`` (length |theta|) such that
``u_t theta~_t^T`` is an unbiased estimate of its influence ``P_t = dh_t/dtheta`` (m x |theta|).

Per sample, the one-step map ``h_t = F(h_{t-1}, x_t; theta) = tanh(h_{t-1}) Whh + x_t Wxh + bh``
has the Jacobian ``D_t[i, j] = dh_t[j]/dh_{t-1}[i] = Whh[i, j] (1 - z_{t-1}[i]^2)`` and the
immediate derivatives ``I_t = dF/dtheta`` with ``h_{t-1}`` held fixed
(``dh_t[j]/dWhh[i, j] = z_{t-1}[i]``, ``dh_t[j]/dWxh[i, j] = x_t[i]``, ``dh_t[j]/dbh[j] = 1``).
With ``u_{-1} = 0``, ``theta~_{-1} = 0``, ``h_{-1} = 0``, for t = 0 .. T-1:

    nu_t  in {-1, +1}^m, independent per sample and step
    a     = u_{t-1} D_t                      (a Jacobian-vector product, jax.jvp)
    g     = nu_t I_t                         (a vector-Jacobian product, jax.vjp)
    rho0  = sqrt((||theta~_{t-1}|| + eps) / (||a|| + eps))
    rho1  = sqrt((||g|| + eps) / (||nu_t|| + eps)),        eps = 1e-7
    u_t   = rho0 a + rho1 nu_t
    theta~_t = theta~_{t-1} / rho0 + g / rho1

(at t = 0, u_{-1} = 0 gives a = 0, so D_0 never matters), and the update is

    grad theta = sum_b (delta[b] . u_{T-1}[b]) theta~_{T-1}[b],    delta = dE/dh_{T-1}

(E the batch-mean loss, read at the last step only, so delta carries the 1/B). Its expectation
over the noise is BPTT's gradient. ``Why`` and ``by`` get their exact gradient. The noise key
lives in the rule state and is split at every step, so each batch gets fresh noise and a run
is reproducible from its seed. Cost per sample and step: O(m^2 + n m), the same order as the
forward pass; memory O(B |theta|) for the estimates (nothing is kept across time).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from localrnn.cells import SRNN, Cell
from localrnn.losses import global_loss
from localrnn.model import Params, readout
from localrnn.rules._base import NoOptions, Rule, RuleDef
from localrnn.rules._credit import credit_record

__all__ = ["RULE", "UOROState", "EPS", "uoro_estimate", "draw_noise"]

#: the regularizer in the rescaling factors rho0, rho1 (Tallec & Ollivier's epsilon)
EPS = 1e-7


class UOROState(NamedTuple):
    """Rule state: the key the noise nu is drawn from (split at every step)."""

    key: jax.Array


def _one_step(cell: Cell, h_prev: jax.Array, x_t: jax.Array, theta: tuple) -> jax.Array:
    """``cell``'s one-step map, ``h_t = tanh(h_{t-1}) Whh + (x_t Wxh + bh)`` for the SRNN,
    theta = (Whh, Wxh, bh)."""
    whh, wxh, bh = theta
    return cell.step(whh, h_prev, x_t @ wxh + bh)


def _sample_norm(tree) -> jax.Array:
    """Per-sample Euclidean norm (B,) of a pytree whose leaves have a leading batch axis."""
    return jnp.sqrt(sum(jnp.sum(leaf.reshape(leaf.shape[0], -1) ** 2, axis=1)
                        for leaf in jax.tree.leaves(tree)))


def _per_sample(scale: jax.Array, tree):
    """``scale[b] * leaf[b]`` for every leaf of ``tree``."""
    return jax.tree.map(lambda leaf: leaf * scale.reshape((-1,) + (1,) * (leaf.ndim - 1)), tree)


def draw_noise(key: jax.Array, shape: tuple[int, int, int], dtype) -> jax.Array:
    """The signs nu, shape (T, B, m): independent +-1 per step, sample and unit."""
    return jax.random.rademacher(key, shape, dtype)


def uoro_estimate(params: Params, x: jax.Array, nu: jax.Array, cell: Cell = SRNN):
    """Run the UORO recursion on ``cell`` over ``x`` (T, B, n) with signs ``nu`` (T, B, m).

    Returns ``h_{T-1}`` (B, m), ``u_{T-1}`` (B, m), ``theta~_{T-1}`` as a tuple
    ``(Whh (B, m, m), Wxh (B, n, m), bh (B, m))`` and the per-step Frobenius norms over the
    batch of ``u_t`` and ``theta~_t`` (each (T,)).
    """
    theta = (params.Whh, params.Wxh, params.bh)
    B, m = nu.shape[1], nu.shape[2]
    dtype = params.Whh.dtype
    eps = jnp.asarray(EPS, dtype)

    def immediate(h_prev_b, x_b, nu_b):
        """nu_t I_t for one sample: the cotangent nu pulled back to theta with h_{t-1} fixed."""
        _, pull = jax.vjp(lambda th: _one_step(cell, h_prev_b, x_b, th), theta)
        return pull(nu_b)[0]

    def step(carry, inp):
        h_prev, u, tt = carry
        x_t, nu_t = inp
        # one jvp of the row-wise map gives every sample's u_{t-1} D_t
        h, a = jax.jvp(lambda hp: _one_step(cell, hp, x_t, theta), (h_prev,), (u,))
        g = jax.vmap(immediate)(h_prev, x_t, nu_t)
        rho0 = jnp.sqrt((_sample_norm(tt) + eps) / (jnp.sqrt(jnp.sum(a * a, axis=1)) + eps))
        rho1 = jnp.sqrt((_sample_norm(g) + eps) / (jnp.sqrt(jnp.sum(nu_t * nu_t, axis=1)) + eps))
        u_new = rho0[:, None] * a + rho1[:, None] * nu_t
        tt_new = jax.tree.map(jnp.add, _per_sample(1.0 / rho0, tt), _per_sample(1.0 / rho1, g))
        norms = (jnp.sqrt(jnp.sum(u_new * u_new)), jnp.sqrt(jnp.sum(_sample_norm(tt_new) ** 2)))
        return (h, u_new, tt_new), norms

    zeros_b = jnp.zeros((B, m), dtype)
    tt0 = jax.tree.map(lambda p: jnp.zeros((B,) + p.shape, dtype), theta)
    (h_last, u, tt), (u_norm, tt_norm) = jax.lax.scan(step, (zeros_b, zeros_b, tt0), (x, nu))
    return h_last, u, tt, u_norm, tt_norm


def _init(key: jax.Array, params: Params) -> UOROState:
    return UOROState(key)


def _build(options: NoOptions, loss: str, record: bool, cell: Cell = SRNN) -> Rule:
    loss_fn = global_loss(loss)

    def step(params: Params, state: UOROState, batch, hparams):
        x, y = batch
        key, k_noise = jax.random.split(state.key)
        nu = draw_noise(k_noise, x.shape[:2] + params.bh.shape, params.Whh.dtype)
        h_last, u, tt, u_norm, tt_norm = uoro_estimate(params, x, nu, cell)

        def head(h, why, by):
            return loss_fn(readout(params._replace(Why=why, by=by), h), y)

        e_val, (delta, g_why, g_by) = jax.value_and_grad(head, argnums=(0, 1, 2))(
            h_last, params.Why, params.by)
        c = jnp.sum(delta * u, axis=1)  # delta[b] . u_{T-1}[b]
        g_whh, g_wxh, g_bh = (jnp.tensordot(c, leaf, axes=1) for leaf in tt)
        grads = Params(Wxh=g_wxh, Whh=g_whh, bh=g_bh, Why=g_why, by=g_by)
        rec = {"loss": e_val}
        if record:
            rec["u_norm"] = u_norm
            rec["theta_tilde_norm"] = tt_norm
            rec.update(credit_record(params, batch, loss, grads, None, cell))  # no split by step
        return grads, UOROState(key), rec

    return Rule("uoro", _init, step)


RULE = RuleDef(
    name="uoro",
    summary="unbiased online recurrent optimization (Tallec & Ollivier 2018): "
            "a noisy rank-one forward estimate of the gradient",
    options=NoOptions,
    hparams={},
    build=_build,
    cells=("srnn", "leaky", "orthogonal"),
)
