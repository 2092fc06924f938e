"""Attractors: the fixed points of the map the cell iterates under a constant input, and their
stability (docs/analysis.md).

A fixed point solves ``r(h) = F(h) - h = 0``. From each start, damped Gauss-Newton
(Levenberg-Marquardt) on ``||r||^2``:

    A = dF/dh - I,   dh = -(A^T A + mu I)^{-1} A^T r,   mu = ||r||^2,

with the step scaled by the first of 1, 1/2, ..., 2^-12 that lowers ``||r||`` (else no step); near a
root mu -> 0 and the step is Newton's. A start has converged when ``||r|| < tol`` (1e-8); converged
points closer than ``merge`` (1e-4) are one; a point is stable when the spectral radius of dF/dh
there is < 1. Computed in the dtype of the starts (use float64).
"""

from __future__ import annotations

from functools import partial
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from localrnn.analysis.memory import spectral_radius

__all__ = ["fixed_points", "merge_points", "TOL", "MERGE"]

TOL = 1e-8
MERGE = 1e-4
_ALPHAS = 2.0 ** -np.arange(13)


@partial(jax.jit, static_argnames=("F", "jac", "iters"))
def _solve(F: Callable, jac: Callable, starts: jax.Array, u, iters: int) -> tuple[jax.Array, jax.Array]:
    """Final points (N, m) and residual norms (N,) after ``iters`` damped Gauss-Newton steps on
    ``F(., u)`` (one compiled program per ``F``, whatever ``u``)."""
    alphas = jnp.asarray(_ALPHAS, starts.dtype)
    res = lambda h: jnp.linalg.norm(F(h, u) - h)  # noqa: E731

    def one(h):
        def step(_, h):
            r = F(h, u) - h
            A = jac(h, u) - jnp.eye(h.shape[0], dtype=h.dtype)
            mu = jnp.sum(r * r)
            dh = -jnp.linalg.solve(A.T @ A + mu * jnp.eye(h.shape[0], dtype=h.dtype), A.T @ r)
            tried = jax.vmap(lambda a: res(h + a * dh))(alphas)
            better = jnp.isfinite(tried) & (tried < jnp.sqrt(mu))
            a = jnp.where(jnp.any(better), alphas[jnp.argmax(better)], 0.0)
            return h + a * dh

        h = jax.lax.fori_loop(0, iters, step, h)
        return h, res(h)

    return jax.vmap(one)(starts)


def merge_points(points: np.ndarray, merge: float = MERGE) -> np.ndarray:
    """Greedy: keep a point unless it lies within ``merge`` (Euclidean) of one already kept."""
    kept: list[np.ndarray] = []
    for p in points:
        if all(np.linalg.norm(p - q) >= merge for q in kept):
            kept.append(p)
    return np.asarray(kept).reshape(len(kept), points.shape[-1])


@partial(jax.jit, static_argnames="jac")
def _radii(jac: Callable, points: jax.Array, u) -> jax.Array:
    return jax.vmap(lambda p: spectral_radius(jac(p, u)))(points)


def fixed_points(F: Callable, starts: jax.Array, jacobian: Callable | None = None, u=None, *, iters: int = 100,
                 tol: float = TOL, merge: float = MERGE) -> dict:
    """Fixed points of ``h -> F(h, u)`` ((m,) -> (m,)) reached from ``starts`` (N, m); ``jacobian``:
    ``(h, u) -> dF/dh`` (default ``jax.jacfwd(F)``). Returns ``points`` (k, m), their spectral ``radius``
    (k,), ``stable`` (k,) and ``converged`` (how many starts reached ``||F(h, u) - h|| < tol``). Pass
    the same ``F`` and ``jacobian`` objects for several ``u`` to compile once."""
    jac = jacobian or jax.jacfwd(F)
    u = jnp.zeros(0, jnp.asarray(starts).dtype) if u is None else u
    h, r = _solve(F, jac, jnp.asarray(starts), u, iters)
    h, r = np.asarray(h), np.asarray(r)
    ok = np.isfinite(r) & (r < tol)
    points = merge_points(h[ok], merge)
    radius = np.asarray(_radii(jac, jnp.asarray(points), u)) if len(points) else np.zeros(0)
    return {"points": points, "radius": radius, "stable": radius < 1.0, "converged": int(ok.sum())}
