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
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.linalg import expm

__all__ = ["OrthogonalParams", "rotation", "recurrent_matrix", "generator_direction", "parametrize",
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


def rotation(A: jax.Array) -> jax.Array:
    """``expm(A - A^T)``, orthogonal for every real A."""
    return expm(A - A.T)


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
