"""Memory of the hidden state: how a change of h_t reaches h_{T-1}, and the spectrum of the
recurrence (docs/analysis.md).

Per sample, with ``D_t[i, j] = dh_t[j]/dh_{t-1}[i]`` (localrnn.analysis.recurrence),

    dh_{T-1}/dh_t = D_{t+1} D_{t+2} ... D_{T-1}        (the identity at t = T-1)

and its spectral norm (largest singular value) says how much of a perturbation at t survives to
the readout: it decays geometrically when the memory vanishes and grows when it explodes. Beside it,
the spectral radius rho (largest |eigenvalue|) and the largest singular value sigma_max of the
recurrent matrix and of every D_t along the trajectories.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from localrnn.analysis.recurrence import recurrent_matrix, step_jacobians, trajectory
from localrnn.cells import Cell
from localrnn.model import Params

__all__ = ["state_jacobian_norms", "spectral_radius", "top_singular_value", "recurrence_spectra"]


def spectral_radius(a: jax.Array) -> jax.Array:
    """``max |eigenvalue|`` of each square matrix in ``a`` (..., m, m)."""
    return jnp.max(jnp.abs(jnp.linalg.eigvals(a)), axis=-1)


def top_singular_value(a: jax.Array) -> jax.Array:
    """The largest singular value (spectral norm) of each matrix in ``a`` (..., m, m)."""
    return jnp.linalg.svd(a, compute_uv=False)[..., 0]


@partial(jax.jit, static_argnames="cell")
def state_jacobian_norms(params: Params, cell: Cell, x: jax.Array) -> jax.Array:
    """``||dh_{T-1}/dh_t||_2`` (T, B) for t = 0 .. T-1 for inputs ``x`` (T, B, n)."""
    D = step_jacobians(params, cell, trajectory(params, cell, x))  # D_1 .. D_{T-1}
    eye = jnp.broadcast_to(jnp.eye(D.shape[-1], dtype=D.dtype), D.shape[1:])

    def back(M, D_next):  # M_t = D_{t+1} M_{t+1}
        M = D_next @ M
        return M, M

    _, Ms = jax.lax.scan(back, eye, D, reverse=True)  # Ms[k] = M_k for k = 0 .. T-2
    return top_singular_value(jnp.concatenate([Ms, eye[None]], axis=0))


@partial(jax.jit, static_argnames="cell")
def recurrence_spectra(params: Params, cell: Cell, x: jax.Array) -> dict[str, jax.Array]:
    """``rho`` and ``sigma_max`` of the recurrent matrix (scalars) and of ``D_t`` (T-1, B), t = 1 .. T-1."""
    W = recurrent_matrix(params, cell)
    D = step_jacobians(params, cell, trajectory(params, cell, x))
    return {"W_radius": spectral_radius(W), "W_sigma_max": top_singular_value(W),
            "D_radius": spectral_radius(D), "D_sigma_max": top_singular_value(D)}
