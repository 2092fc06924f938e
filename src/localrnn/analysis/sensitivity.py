"""Sensitivity of the hidden state to the recurrent parameters, the "curse of memory"
(docs/analysis.md).

Per sample, the influence ``P_t = dh_t/dtheta_rec`` (m x |theta|, theta_rec = (Whh, Wxh, bh), as the
RTRL rule carries it) and its Frobenius norm ``||P_t||_F`` against t. Exact by forward-mode autodiff
(one tangent per parameter: for small m), or estimated with Rademacher probes v (entries +-1):

    E_v ||P_t v||^2 = trace(P_t^T P_t E[v v^T]) = ||P_t||_F^2,

so ``||P_t||_F ~ sqrt(mean_k ||P_t v_k||^2)`` from K Jacobian-vector products per sample.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from localrnn.analysis.recurrence import RECURRENT_FIELDS, trajectory
from localrnn.cells import Cell
from localrnn.model import Params

__all__ = ["influence_norms", "influence_norms_estimate", "rademacher_probes", "n_recurrent"]


def _theta(params: Params) -> tuple:
    return tuple(getattr(params, f) for f in RECURRENT_FIELDS)


def n_recurrent(params: Params) -> int:
    """``|theta_rec|``: how many recurrent parameters the influence differentiates."""
    return sum(a.size for a in _theta(params))


def _states_of(params: Params, cell: Cell, x: jax.Array):
    """``theta_rec -> h`` (T, B, m) for inputs ``x`` with the other parameters held."""
    return lambda theta: trajectory(params._replace(**dict(zip(RECURRENT_FIELDS, theta))), cell, x)


@partial(jax.jit, static_argnames="cell")
def influence_norms(params: Params, cell: Cell, x: jax.Array) -> jax.Array:
    """Exact ``||P_t||_F`` (T, B) for every step and sample of ``x`` (T, B, n), by ``jax.jacfwd``."""
    jac = jax.jacfwd(_states_of(params, cell, x))(_theta(params))  # per field (T, B, m, *shape)
    return jnp.sqrt(sum(jnp.sum(j.reshape(j.shape[:2] + (-1,)) ** 2, axis=-1) for j in jac))


def rademacher_probes(params: Params, probes: int, samples: int, seed: int = 0) -> tuple:
    """Per recurrent field, ``probes x samples`` independent Rademacher tangents (entries +-1), drawn
    with numpy: XLA's generator took seconds to compile, longer than the measure itself."""
    rng = np.random.default_rng(seed)
    return tuple(jnp.asarray(rng.choice([-1.0, 1.0], (probes, samples) + a.shape), a.dtype) for a in _theta(params))


@partial(jax.jit, static_argnames="cell")
def influence_norms_estimate(params: Params, cell: Cell, x: jax.Array, V: tuple) -> jax.Array:
    """``sqrt(mean_k ||P_t v_k||^2)`` (T, B) from the probes ``V`` (:func:`rademacher_probes`)."""
    theta = _theta(params)

    def one(xb, vb):  # P_t v for one sample and one probe: (T, m)
        return jax.jvp(_states_of(params, cell, xb[:, None, :]), (theta,), (vb,))[1][:, 0, :]

    def probe(v):  # (T, B): ||P_t v||^2 for every sample
        return jnp.sum(jax.vmap(one, in_axes=(1, 0), out_axes=1)(x, v) ** 2, axis=-1)

    return jnp.sqrt(jnp.mean(jax.lax.map(probe, V), axis=0))
