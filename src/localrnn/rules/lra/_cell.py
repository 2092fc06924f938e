"""The recurrent cell as the LRA-diff phases read it (docs/lra.md#other-cells).

Layer t's pre-activation computed from a candidate pre-activation ``a`` of layer t-1 is the cell's
one-step map (localrnn.cells, docs/cells.md)

    S_t(a) = cell.step(W, a, u_t)     SRNN: tanh(a) W + u_t;  leaky: (1 - 1/tau) a + (1/tau)(tanh(a) W + u_t)

and ``F_t(a) = tanh(S_t(a))`` is the activity it causes. The phases need two derivatives of it,
both from the cell: ``g dS_t/da^T = cell.pull(W^T, g, tanh(a))`` (:func:`pull`), and the cotangent
at the input drive ``g dS_t/du_t`` (:func:`to_drive`, autodiff of ``cell.step``; ``g / tau`` on the
leaky cell). ``tanh(a) W`` enters S_t beside ``u_t``, so that cotangent also gives the immediate
weight derivatives (``grad W = tanh(a)^T to_drive(g)``, likewise Wxh and bh) and the derivative
through the activity with ``a`` held, ``to_drive(g) W^T``.

:func:`recurrent_matrix` is the one place the package reads the recurrent matrix.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from localrnn.cells import Cell
from localrnn.model import Params

__all__ = ["recurrent_matrix", "step", "activity", "pull", "to_drive"]


def recurrent_matrix(cell: Cell, params: Params) -> jax.Array:
    """``W``: the matrix ``cell.step`` multiplies ``tanh(h_{t-1})`` by."""
    return params.Whh


def step(p, a: jax.Array, u: jax.Array) -> jax.Array:
    """``S_t(a)``: the cell's one step from ``a`` with input drive ``u`` (``p``: a Pass)."""
    return p.cell.step(p.whh, a, u)


def activity(p, a: jax.Array, u: jax.Array) -> jax.Array:
    """``F_t(a) = tanh(S_t(a))``."""
    return jnp.tanh(step(p, a, u))


def pull(p, g: jax.Array, z: jax.Array) -> jax.Array:
    """``g dS_t/da^T`` at ``tanh(a) = z``: a cotangent at layer t's pre-activation carried one step
    down (``(g W^T) * (1 - z^2)`` on the SRNN)."""
    return p.cell.pull(p.whh_t, g, z)


def to_drive(p, g: jax.Array) -> jax.Array:
    """``g dS_t/du_t``: the cotangent at the input drive (S_t is affine in ``u_t``; ``g`` itself on
    the SRNN, ``g / tau`` on the leaky cell)."""
    zero = jnp.zeros_like(g)
    _, vjp = jax.vjp(lambda u: p.cell.step(p.whh, zero, u), zero)
    return vjp(g)[0]
