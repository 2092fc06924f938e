"""Forward-mode traces on the diagonal cells (localrnn.diagonal_cell): RTRL, SnAp-1 and e-prop there.

The cell h_t = lambda * h_{t-1} + gamma(lambda) u_t, u_t = x_t B, has the one-step Jacobian
dh_t/dh_{t-1} = diag(lambda), and each recurrent parameter (nu_j, theta_j, B[:, j]) feeds unit j
only, so the influence dh_t/dtheta has one nonzero entry per parameter: its trace on its own unit,

    e_t^nu[j]       = lambda_j e_{t-1}^nu[j]    + lambda'_nu[j] h_{t-1}[j] + gamma'_nu[j] u_t[j]
    e_t^theta[j]    = lambda_j e_{t-1}^theta[j] + i lambda_j h_{t-1}[j]       (gamma'_theta = 0)
    e_t^B_re[i, j]  = lambda_j e_{t-1}^B_re[i, j] + gamma_j x_t[i],   e_t^B_im = i e_t^B_re

(e_{-1} = 0, h_{-1} = 0; lambda' and gamma' per unit by forward-mode autodiff of the cell's own
``eigenvalues``/``input_scale``, so gamma's dependence on nu is included). With
g = dE/dRe h_{T-1} + i dE/dIm h_{T-1} (batch-mean E) every real parameter p gets

    grad p = sum_b Re(conj(g[b, j]) e_{T-1}^p[b, ...]),

exactly BPTT's gradient; Why and by get their exact gradient. This is RTRL; SnAp-1 keeps the
Jacobian's diagonal, which is all of it; e-prop's trace through the neuron's own dynamics (lambda)
is the same trace and its symmetric learning signal is g. The real cell: theta = 0, B real, g = dE/dh.
Cost: memory O(B n m), time O(T B n m). The record holds the loss only (as bptt's on these cells).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from localrnn.cells import Cell
from localrnn.diagonal_cell import RealDiagonalParams, eigenvalues, features, hidden_states, input_scale
from localrnn.diagonal_cell import drive as cell_drive
from localrnn.losses import global_loss
from localrnn.rules._base import Rule, zero_state
from localrnn.rules._credit import previous

__all__ = ["diagonal_gradient", "diagonal_rule"]


def _rates(params, name: str):
    """``(lambda, gamma)`` and their derivatives in ``params.<name>`` per unit (the map is unit-wise)."""
    def lam_gamma(v):
        lam = eigenvalues(params._replace(**{name: v}))
        return lam, input_scale(lam)

    v = getattr(params, name)
    return jax.jvp(lam_gamma, (v,), (jnp.ones_like(v),))


def _pair(g_re, g_im, e):
    """``Re(conj(g) e)`` for ``g = g_re + i g_im``; ``g_re e`` when ``e`` is real."""
    return g_re * e.real + g_im * e.imag if jnp.iscomplexobj(e) else g_re * e


def diagonal_gradient(params, batch, loss: str, cell: Cell):
    """``(E, grads)``: E on ``batch`` and its exact gradient by the traces of the module docstring."""
    x, y = batch
    real = isinstance(params, RealDiagonalParams)
    (lam, gamma), (dlam_nu, dgamma_nu) = _rates(params, "nu")
    drive = cell_drive(params, x)  # x_t B
    hs = hidden_states(params, x)
    h_prev = previous(hs)
    dlam_th = 0.0 if real else _rates(params, "theta")[1][0]

    def advance(e, inp):
        e_nu, e_th, e_b = e
        hp, d_t, x_t = inp
        e_nu = lam * e_nu + dlam_nu * hp + dgamma_nu * d_t
        e_th = lam * e_th + dlam_th * hp
        e_b = lam * e_b + gamma * x_t[:, :, None]
        return (e_nu, e_th, e_b), None

    B, n, m = x.shape[1], x.shape[2], lam.shape[0]
    zero = jnp.zeros((B, m), hs.dtype)
    e0 = (zero, zero, jnp.zeros((B, n, m), hs.dtype))
    (e_nu, e_th, e_b), _ = jax.lax.scan(advance, e0, (h_prev, drive, x))

    loss_fn = global_loss(loss)

    def objective(Why, by, f):
        return loss_fn(jnp.tanh(f) @ Why + by, y)

    e_val, (g_why, g_by, g_f) = jax.value_and_grad(objective, argnums=(0, 1, 2))(
        params.Why, params.by, features(hs[-1]))
    g_re, g_im = (g_f, None) if real else (g_f[:, :m], g_f[:, m:])
    g_nu = jnp.sum(_pair(g_re, g_im, e_nu), axis=0)
    if real:
        grads = params._replace(nu=g_nu, B=jnp.einsum("bj,bij->ij", g_re, e_b), Why=g_why, by=g_by)
    else:
        grads = params._replace(
            nu=g_nu, theta=jnp.sum(_pair(g_re, g_im, e_th), axis=0),
            B_re=jnp.sum(_pair(g_re[:, None], g_im[:, None], e_b), axis=0),
            B_im=jnp.sum(_pair(g_re[:, None], g_im[:, None], 1j * e_b), axis=0), Why=g_why, by=g_by)
    return e_val, grads


def diagonal_rule(name: str, loss: str, cell: Cell, init=zero_state) -> Rule:
    """The rule ``name`` on a diagonal cell: :func:`diagonal_gradient`; the record holds the loss only."""
    def step(params, state, batch, hparams):
        e_val, grads = diagonal_gradient(params, batch, loss, cell)
        return grads, state, {"loss": e_val}

    return Rule(name, init, step)
