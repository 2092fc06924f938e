"""The diagonal (LRU-style) cell: a linear recurrence with one eigenvalue per unit (docs/cells.md).

    h_t = lambda * h_{t-1} + gamma(lambda) * (x_t B),      h_{-1} = 0
    lambda_j = exp(-exp(nu_j) + i theta_j),   gamma(lambda) = sqrt(1 - |lambda|^2)
    out = tanh([Re h_{T-1}, Im h_{T-1}]) Why + by

``diagonal``: h complex (m,), B = B_re + i B_im (n, m), Why (2m, k) (:class:`DiagonalParams`).
``diagonal-real``: theta = 0, B real, h real, Why (m, k) (:class:`RealDiagonalParams`); it is the
complex cell with theta = 0 and B_im = 0, whose Im h is 0. |lambda| = exp(-exp(nu)) < 1 for every
real nu (in floating point <= 1: equal to 1 only once exp(nu) is below the rounding of 1, where
gamma = 0). gamma is computed from lambda, so E's gradient reaches nu through it too (the input
normalization of Orvieto et al. 2023).

Initialization: |lambda|^2 uniform in [R_MIN^2, R_MAX^2] (lambda uniform in area on the ring
R_MIN <= |lambda| <= R_MAX), theta uniform in [0, 2 pi), B_re and B_im Gaussian with standard
deviation 1/sqrt(2n) (real variant: B with 1/sqrt(n)), Why orthogonal (docs/network.md), by = 0.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from localrnn.initializers import orthogonal

__all__ = ["DiagonalParams", "RealDiagonalParams", "R_MIN", "R_MAX", "init_params", "eigenvalues",
           "input_scale", "drive", "hidden_states", "final_state", "features", "from_features"]

#: the ring the eigenvalues start in: memories from about 1/(1 - R_MIN) = 10 to 1/(1 - R_MAX) = 1000 steps
R_MIN, R_MAX = 0.9, 0.999


class DiagonalParams(NamedTuple):
    """The complex diagonal cell's parameters: ``nu``, ``theta`` (m,), ``B_re``, ``B_im`` (n, m),
    ``Why`` (2m, k) (rows 0..m-1 read Re h, rows m..2m-1 read Im h), ``by`` (k,)."""

    nu: jax.Array
    theta: jax.Array
    B_re: jax.Array
    B_im: jax.Array
    Why: jax.Array
    by: jax.Array


class RealDiagonalParams(NamedTuple):
    """The real diagonal cell's parameters: ``nu`` (m,), ``B`` (n, m), ``Why`` (m, k), ``by`` (k,)."""

    nu: jax.Array
    B: jax.Array
    Why: jax.Array
    by: jax.Array


def init_params(key: jax.Array, n_in: int, n_hidden: int, n_out: int, dtype, complex_state: bool):
    """The initialization of the module docstring, as :class:`DiagonalParams` (``complex_state``)
    or :class:`RealDiagonalParams`."""
    k_r, k_theta, k_re, k_im, k_y = jax.random.split(key, 5)
    r2 = jax.random.uniform(k_r, (n_hidden,), dtype, R_MIN ** 2, R_MAX ** 2)
    nu = jnp.log(-0.5 * jnp.log(r2))  # exp(-exp(nu)) = sqrt(r2)
    by = jnp.zeros((n_out,), dtype)
    if not complex_state:
        B = jax.random.normal(k_re, (n_in, n_hidden), dtype) / math.sqrt(n_in)
        return RealDiagonalParams(nu=nu, B=B, Why=orthogonal(k_y, (n_hidden, n_out), dtype), by=by)
    scale = 1.0 / math.sqrt(2 * n_in)
    return DiagonalParams(
        nu=nu, theta=jax.random.uniform(k_theta, (n_hidden,), dtype, 0.0, 2 * math.pi),
        B_re=scale * jax.random.normal(k_re, (n_in, n_hidden), dtype),
        B_im=scale * jax.random.normal(k_im, (n_in, n_hidden), dtype),
        Why=orthogonal(k_y, (2 * n_hidden, n_out), dtype), by=by)


def eigenvalues(params) -> jax.Array:
    """``lambda = exp(-exp(nu) + i theta)`` (m,), complex; real ``exp(-exp(nu))`` for the real cell."""
    modulus = jnp.exp(-jnp.exp(params.nu))
    if isinstance(params, RealDiagonalParams):
        return modulus
    return jax.lax.complex(modulus * jnp.cos(params.theta), modulus * jnp.sin(params.theta))


def input_scale(lam: jax.Array) -> jax.Array:
    """``gamma = sqrt(1 - |lambda|^2)``, from lambda (gradients flow through it)."""
    mod2 = lam * lam if not jnp.iscomplexobj(lam) else lam.real ** 2 + lam.imag ** 2
    return jnp.sqrt(1.0 - mod2)


def drive(params, x: jax.Array) -> jax.Array:
    """``x_t B`` for every step (T, B, m) (or one step, (B, m)): complex ``x B_re + i x B_im``, or
    real ``x B``."""
    if isinstance(params, RealDiagonalParams):
        return x @ params.B
    return jax.lax.complex(x @ params.B_re, x @ params.B_im)


def _run(params, x: jax.Array, keep: bool):
    """``(h_{T-1}, every h_t or None)``: the recurrence over inputs ``x`` (T, B, n)."""
    lam = eigenvalues(params)
    u = input_scale(lam) * drive(params, x)

    def step(h_prev, u_t):
        h = lam * h_prev + u_t
        return h, (h if keep else None)

    return jax.lax.scan(step, jnp.zeros_like(u[0]), u)  # h_0 = lambda 0 + u_0 = u_0


def hidden_states(params, x: jax.Array) -> jax.Array:
    """Every ``h_t`` (T, B, m), complex (real for the real cell), for inputs ``x`` (T, B, n)."""
    return _run(params, x, True)[1]


def final_state(params, x: jax.Array) -> jax.Array:
    """``h_{T-1}`` (B, m) without keeping the trajectory."""
    return _run(params, x, False)[0]


def features(h: jax.Array) -> jax.Array:
    """What the readout reads: ``[Re h, Im h]`` (..., 2m) for a complex ``h``, ``h`` for a real one."""
    return jnp.concatenate([h.real, h.imag], axis=-1) if jnp.iscomplexobj(h) else h


def from_features(f: jax.Array, complex_state: bool) -> jax.Array:
    """The state whose :func:`features` are ``f``: ``f[..., :m] + i f[..., m:]``, or ``f`` itself
    for the real cell."""
    if not complex_state:
        return f
    m = f.shape[-1] // 2
    return jax.lax.complex(f[..., :m], f[..., m:])
