"""Weight initializers shared by the cells (docs/network.md)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["orthogonal"]


def orthogonal(key: jax.Array, shape: tuple[int, int], dtype=jnp.float32) -> jax.Array:
    """``rand_ortho``: uniform in +-sqrt(6/(fan_in+fan_out)), made orthogonal by SVD (docs/network.md).

    For a non-square matrix the result has orthonormal rows or columns,
    whichever is the smaller dimension.
    """
    bound = jnp.sqrt(6.0 / (shape[0] + shape[1]))
    a = jax.random.uniform(key, shape, jnp.float64 if dtype == jnp.float64 else jnp.float32,
                           -bound, bound)
    u, _, vt = jnp.linalg.svd(a, full_matrices=False)
    q = u if u.shape == shape else vt
    return q.astype(dtype)
