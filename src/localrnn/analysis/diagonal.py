"""The analysis of the diagonal (LRU-style) cells (docs/analysis.md, "Diagonal cells").

    h_t = lambda * h_{t-1} + gamma(lambda) * (x_t B),    lambda = exp(-exp(nu) + i theta)

A complex h is read as its 2m real coordinates ``[Re h, Im h]`` (:func:`localrnn.diagonal_cell.features`).

* memory: ``D_t = diag(lambda)`` for every t, so ``||dh_{T-1}/dh_t||_2 = max_j |lambda_j|^(T-1-t)`` and
  ``rho = sigma_max = max_j |lambda_j|`` (a unit's 2x2 real block is |lambda_j| times a rotation);
* gradient flow: ``||dE_b/dh_t||`` by autodiff on an additive perturbation of every h_t;
* sensitivity: ``||dh_t/dtheta_rec||_F``, theta_rec = (nu, theta, B_re, B_im) (real cell: (nu, B));
* attractors: under a constant input u the one fixed point ``h* = gamma (u B) / (1 - lambda)``,
  stable since |lambda| < 1; the memory horizon ``1/(1 - |lambda_j|)`` steps.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from localrnn import diagonal_cell
from localrnn.cells import Cell
from localrnn.losses import global_loss
from localrnn.model import readout

__all__ = ["recurrent_fields", "memory_closed_form", "hidden_grad_norms", "influence_norms",
           "influence_norms_estimate", "fixed_point", "step_map", "memory_horizon"]


def recurrent_fields(params) -> tuple[str, ...]:
    """theta_rec: every field but the readout's (``Why``, ``by``)."""
    return tuple(f for f in params._fields if f not in ("Why", "by"))


def memory_closed_form(params, T: int) -> dict[str, np.ndarray]:
    """``r = max_j |lambda_j|``; ``state_jacobian_norm[t] = r^(T-1-t)`` (T,), ``radius = sigma_max = r``."""
    r = float(np.max(np.abs(np.asarray(diagonal_cell.eigenvalues(params)))))
    return {"radius": r, "state_jacobian_norm": r ** (T - 1 - np.arange(T, dtype=float))}


def _drive(params, x: jax.Array) -> jax.Array:
    """``gamma(lambda) * (x_t B)`` (T, B, m)."""
    return diagonal_cell.input_scale(diagonal_cell.eigenvalues(params)) * diagonal_cell.drive(params, x)


def _perturbed_states(params, x: jax.Array, eps: jax.Array) -> jax.Array:
    """Every h_t (T, B, m) with the real perturbation ``eps`` (T, B, 2m; real cell: m) added to h_t
    (complex: ``eps[:m] + i eps[m:]``)."""
    m = params.nu.shape[0]
    e = jax.lax.complex(eps[..., :m], eps[..., m:]) if hasattr(params, "B_re") else eps
    lam = diagonal_cell.eigenvalues(params)

    def step(h_prev, ue):
        h = lam * h_prev + ue[0] + ue[1]
        return h, h

    u = _drive(params, x)
    return jax.lax.scan(step, jnp.zeros_like(u[0]), (u, e))[1]


@partial(jax.jit, static_argnames=("cell", "loss"))
def hidden_grad_norms(params, cell: Cell, batch, loss: str) -> jax.Array:
    """``||dE_b/dh_t||`` (T, B) in the real coordinates of h, E_b the loss of sample b alone."""
    x, y = batch
    width = params.Why.shape[0]
    eps = jnp.zeros(x.shape[:2] + (width,), x.dtype)
    g = jax.grad(lambda e: global_loss(loss)(readout(params, _perturbed_states(params, x, e)[-1], cell), y))(eps)
    return x.shape[1] * jnp.sqrt(jnp.sum(g * g, axis=-1))


def _states_of(params, x: jax.Array):
    """``theta_rec -> [Re h_t, Im h_t]`` (T, B, 2m; real cell: h_t) with the readout held."""
    fields = recurrent_fields(params)
    return lambda theta: diagonal_cell.features(diagonal_cell.hidden_states(
        params._replace(**dict(zip(fields, theta))), x))


def _theta(params) -> tuple:
    return tuple(getattr(params, f) for f in recurrent_fields(params))


@jax.jit
def influence_norms(params, x: jax.Array) -> jax.Array:
    """Exact ``||dh_t/dtheta_rec||_F`` (T, B) by ``jax.jacfwd``."""
    jac = jax.jacfwd(_states_of(params, x))(_theta(params))
    return jnp.sqrt(sum(jnp.sum(j.reshape(j.shape[:2] + (-1,)) ** 2, axis=-1) for j in jac))


@jax.jit
def influence_norms_estimate(params, x: jax.Array, V: tuple) -> jax.Array:
    """``sqrt(mean_k ||P_t v_k||^2)`` (T, B) from Rademacher tangents ``V`` (per field (K, B, *shape))."""
    theta = _theta(params)

    def one(xb, vb):
        return jax.jvp(_states_of(params, xb[:, None, :]), (theta,), (vb,))[1][:, 0, :]

    def probe(v):
        return jnp.sum(jax.vmap(one, in_axes=(1, 0), out_axes=1)(x, v) ** 2, axis=-1)

    return jnp.sqrt(jnp.mean(jax.lax.map(probe, V), axis=0))


def rademacher_probes(params, probes: int, samples: int, seed: int = 0) -> tuple:
    """Per recurrent field, ``probes x samples`` Rademacher tangents (entries +-1), numpy-drawn."""
    rng = np.random.default_rng(seed)
    return tuple(jnp.asarray(rng.choice([-1.0, 1.0], (probes, samples) + a.shape), a.dtype) for a in _theta(params))


def step_map(params):
    """``F(h, u) = lambda h + gamma (u B)`` on one state h (m,) under the constant input u (n,)."""
    return lambda h, u: diagonal_cell.eigenvalues(params) * h + _drive(params, u[None, None, :])[0, 0]


def fixed_point(params, u: jax.Array) -> jax.Array:
    """``h* = gamma(lambda) (u B) / (1 - lambda)`` (m,): the one fixed point of :func:`step_map`."""
    return _drive(params, u[None, None, :])[0, 0] / (1.0 - diagonal_cell.eigenvalues(params))


def memory_horizon(params) -> np.ndarray:
    """``1/(1 - |lambda_j|)`` (m,): the steps over which unit j's memory decays by 1/e (to first order)."""
    return 1.0 / (1.0 - np.abs(np.asarray(diagonal_cell.eigenvalues(params))))
