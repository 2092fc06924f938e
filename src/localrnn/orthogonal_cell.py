"""The orthogonal cell's parameters and their map to the recurrent matrix (docs/cells.md).

The cell iterates the SRNN's map with the recurrent matrix

    Whh = W0 expm(A - A^T)

where W0 (m, m) is the orthogonal init of docs/network.md, kept fixed, and A (m, m) is the
trained generator, 0 at init (so Whh starts at W0). expm of a skew-symmetric matrix is a
rotation, so Whh stays orthogonal whatever A is. A rule computes a descent direction G for Whh
as on the SRNN; A moves along its vector-Jacobian product

    dA = VJP of (A -> W0 expm(A - A^T)) at A, applied to G  =  M - M^T,
    M  = L(S^T, W0^T G),   S = A - A^T,

with L(X, E) the Frechet derivative of expm at X in the direction E. W0's direction is 0.

expm is :func:`expm_skew`: scaling and squaring with a Taylor polynomial, whose fixed sequence of
matrix products JAX differentiates and vmaps cheaply (about 10 times faster per step with its VJP
than ``jax.scipy.linalg.expm``, whose branches all run under vmap).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["OrthogonalParams", "expm_skew", "rotation", "recurrent_matrix", "generator_direction", "parametrize",
           "descend"]


class OrthogonalParams(NamedTuple):
    """The orthogonal cell's parameters: those of the SRNN (``Wxh``, ``bh``, ``Why``, ``by``), the
    fixed orthogonal ``W0`` (m, m) and the generator ``A`` (m, m); ``Whh = W0 expm(A - A^T)``."""

    Wxh: jax.Array
    W0: jax.Array
    bh: jax.Array
    Why: jax.Array
    by: jax.Array
    A: jax.Array


_TAYLOR_DEGREE = 12  # evaluated by Paterson-Stockmeyer in powers of X^4: 6 products
_SCALED_NORM = 0.5  # ||X||_F after scaling; truncation error <= 0.5^13 / 13! ~ 2e-14
_MAX_SQUARINGS = 12  # accurate up to ||S||_F = 0.5 * 2^12 = 2048
_TAYLOR = [1.0 / math.factorial(k) for k in range(_TAYLOR_DEGREE + 1)]


def expm_skew(S: jax.Array) -> jax.Array:
    """``expm(S)`` by scaling and squaring: ``X = S / 2^s`` with ``s = ceil(log2(||S||_F / 0.5))``
    (0 .. 12), the degree-12 Taylor polynomial of exp at X, squared s times. For the skew-symmetric
    S of this cell ||S||_2 <= ||S||_F, so the scaled X is small enough for float64 accuracy. The
    squarings past s are computed and discarded, so every config runs the same products (vmap,
    reverse-mode autodiff)."""
    eye = jnp.eye(S.shape[-1], dtype=S.dtype)
    norm = jax.lax.stop_gradient(jnp.sqrt(jnp.sum(S * S)))
    s = jnp.clip(jnp.ceil(jnp.log2(jnp.maximum(norm, jnp.finfo(S.dtype).tiny) / _SCALED_NORM)), 0, _MAX_SQUARINGS)
    X = S / (2.0 ** s).astype(S.dtype)
    X2 = X @ X
    powers = (eye, X, X2, X2 @ X)
    X4 = X2 @ X2
    E = _TAYLOR[12] * eye  # ((c12 X^4 + B2) X^4 + B1) X^4 + B0,  B_j = sum_i c_{4j+i} X^i
    for j in (2, 1, 0):
        E = E @ X4 + sum(_TAYLOR[4 * j + i] * powers[i] for i in range(4))
    return jax.lax.fori_loop(0, _MAX_SQUARINGS, lambda i, E: jnp.where(i < s, E @ E, E), E)


def rotation(A: jax.Array) -> jax.Array:
    """``expm(A - A^T)``, orthogonal for every real A."""
    return expm_skew(A - A.T)


def recurrent_matrix(W0: jax.Array, A: jax.Array) -> jax.Array:
    """``Whh = W0 expm(A - A^T)`` with W0 held fixed (no gradient reaches it)."""
    return jax.lax.stop_gradient(W0) @ rotation(A)


def generator_direction(W0: jax.Array, A: jax.Array, G: jax.Array) -> jax.Array:
    """The direction of A from a direction ``G`` of Whh: the VJP of ``A -> W0 expm(A - A^T)``."""
    _, pull = jax.vjp(lambda a: recurrent_matrix(W0, a), A)
    return pull(G)[0]


def parametrize(params) -> OrthogonalParams:
    """The orthogonal cell's parameters from SRNN ones: ``W0 = Whh``, ``A = 0`` (same Whh)."""
    return OrthogonalParams(Wxh=params.Wxh, W0=params.Whh, bh=params.bh, Why=params.Why, by=params.by,
                            A=jnp.zeros_like(params.Whh))


def descend(params: OrthogonalParams, grads) -> OrthogonalParams:
    """Directions of ``params`` from SRNN directions ``grads`` computed at the effective Whh: W0
    gets 0, A :func:`generator_direction` of ``grads.Whh``, the others are passed on."""
    return OrthogonalParams(Wxh=grads.Wxh, W0=jnp.zeros_like(params.W0), bh=grads.bh, Why=grads.Why,
                            by=grads.by, A=generator_direction(params.W0, params.A, grads.Whh))
