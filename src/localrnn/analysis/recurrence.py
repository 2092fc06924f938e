"""The recurrence the analysis reads: the cell's effective recurrent matrix, its one-step map
with a given input, and the per-step Jacobians along a trajectory (docs/analysis.md).

Row-vector convention (docs/cells.md): ``D_t[i, j] = dh_t[j]/dh_{t-1}[i]``, so the usual Jacobian
of the one-step map ``h -> F(h)`` is ``D^T``; spectra and singular values are the same for both.
:func:`recurrent_matrix` is the only place in localrnn.analysis that reads the recurrent weights:
a cell whose matrix is derived from other parameters changes that one line.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from localrnn.cells import SRNN, Cell
from localrnn.model import Params, effective_params, hidden_states

__all__ = ["effective", "recurrent_matrix", "RECURRENT_FIELDS", "step_map", "map_jacobian", "trajectory", "step_jacobians",
           "as_float64"]

#: the trainable recurrent parameters theta_rec (the fields of Params the influence P_t differentiates)
RECURRENT_FIELDS = ("Whh", "Wxh", "bh")


def effective(params, cell: Cell) -> tuple[Params, Cell]:
    """The SRNN-layout parameters and the cell whose map they iterate: a cell with parameters of its
    own (orthogonal, Whh = W0 expm(A - A^T)) iterates the SRNN's map with its effective Whh, so its
    measures are those of that map (sensitivity: to the effective Whh, not to A)."""
    if not cell.parametrized:
        return params, cell
    return effective_params(params, cell), SRNN


def recurrent_matrix(params: Params, cell: Cell) -> jax.Array:
    """The matrix the cell multiplies ``tanh(h_{t-1})`` by: ``Whh`` (srnn, leaky)."""
    return params.Whh


def step_map(params: Params, cell: Cell):
    """``F(h, x) = cell.step(W, h, x Wxh + bh)``: the map the cell iterates under the constant input ``x``."""
    W = recurrent_matrix(params, cell)
    return lambda h, x: cell.step(W, h, x @ params.Wxh + params.bh)


def trajectory(params: Params, cell: Cell, x: jax.Array) -> jax.Array:
    """Pre-activations ``h_t`` (T, B, m) for inputs ``x`` (T, B, n), no state before step 0."""
    return hidden_states(params, x, cell=cell)


def step_jacobians(params: Params, cell: Cell, hs: jax.Array) -> jax.Array:
    """``D_t`` for t = 1 .. T-1, shape (T-1, B, m, m), from the trajectory ``hs`` (T, B, m)."""
    W = recurrent_matrix(params, cell)
    return jax.vmap(lambda h_prev: cell.jacobian(W, jnp.tanh(h_prev)))(hs[:-1])


def as_float64(tree):
    """Every floating array of ``tree`` in float64 (the analysis computes in float64)."""
    return jax.tree.map(lambda a: jnp.asarray(a, jnp.float64) if jnp.issubdtype(jnp.asarray(a).dtype, jnp.floating)
                        else a, tree)


def map_jacobian(params: Params, cell: Cell):
    """``(h, x) -> dF/dh`` of :func:`step_map` in the usual orientation (``[j, i] = dF_j/dh_i``): the
    cell's ``D^T`` at ``z = tanh(h)`` (the input does not enter it)."""
    W = recurrent_matrix(params, cell)
    return lambda h, x: cell.jacobian(W, jnp.tanh(h)[None])[0].T
