"""The simple RNN (SRNN) of docs/network.md, in the row-vector convention.

    h_0 = x_0 Wxh + bh                              (no state before step 0)
    h_t = tanh(h_{t-1}) Whh + x_t Wxh + bh        t = 1 .. T-1
    out = tanh(h_{T-1}) Why + by

With a given state ``z_{-1}`` before step 0 (``h_init``; only the published code's
validation feeds one, docs/lra.md) step 0 reads ``h_0 = z_{-1} Whh + x_0 Wxh + bh``:
``z_{-1}`` is used as given, no tanh is applied to it.

``h`` are pre-activations, ``z = tanh(h)`` the activities. Parameters are a
NamedTuple pytree so that every rule returns its updates in the same shape. ``cell`` selects
another one-step map (localrnn.cells, docs/cells.md); the default is the SRNN above. A cell with
parameters of its own (orthogonal: ``OrthogonalParams``) reads its recurrent matrix through
``cell.recurrent(params)``; :func:`effective_params` gives the SRNN parameters it iterates.
The diagonal cells (localrnn.diagonal_cell) have their own parameters, states and readout input
``tanh([Re h, Im h])``; every function here dispatches to that module for them.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from localrnn import diagonal_cell
from localrnn.cells import SRNN, Cell
from localrnn.initializers import orthogonal

__all__ = ["Params", "params_fields", "cell_params", "init_params", "orthogonal", "forward", "final_state", "hidden_states", "readout",
           "readout_input", "effective_params"]


class Params(NamedTuple):
    """SRNN parameters: ``Wxh`` (n, m), ``Whh`` (m, m), ``bh`` (m,), ``Why`` (m, k), ``by`` (k,)."""

    Wxh: jax.Array
    Whh: jax.Array
    bh: jax.Array
    Why: jax.Array
    by: jax.Array


def init_params(key: jax.Array, n_in: int, n_hidden: int, n_out: int,
                dtype=jnp.float32, cell: Cell = SRNN) -> Params:
    """Orthogonal weights, zero biases (docs/network.md), as ``cell``'s parameters (orthogonal:
    ``W0`` the orthogonal Whh, ``A = 0``); the diagonal cells' own initialization
    (localrnn.diagonal_cell)."""
    if cell.diagonal:
        return diagonal_cell.init_params(key, n_in, n_hidden, n_out, dtype, cell.name == "diagonal")
    k1, k2, k3 = jax.random.split(key, 3)
    return cell.parametrize(Params(
        Wxh=orthogonal(k1, (n_in, n_hidden), dtype),
        Whh=orthogonal(k2, (n_hidden, n_hidden), dtype),
        bh=jnp.zeros((n_hidden,), dtype),
        Why=orthogonal(k3, (n_hidden, n_out), dtype),
        by=jnp.zeros((n_out,), dtype),
    ))


def params_fields(cell: Cell = SRNN) -> tuple[str, ...]:
    """The fields of ``cell``'s parameters, in pytree order (SRNN: ``Params._fields``)."""
    return _params_type(cell)._fields


def cell_params(fields, cell: Cell = SRNN):
    """``cell``'s parameters from a mapping of their fields (a stored or checkpointed state)."""
    return _params_type(cell)(**fields)


def _params_type(cell: Cell) -> type:
    """The NamedTuple of ``cell``'s parameters."""
    if cell.parametrized:
        from localrnn.orthogonal_cell import OrthogonalParams

        return OrthogonalParams
    if cell.diagonal:
        return diagonal_cell.DiagonalParams if cell.name == "diagonal" else diagonal_cell.RealDiagonalParams
    return Params


def effective_params(params, cell: Cell = SRNN) -> Params:
    """The SRNN parameters ``cell`` iterates: ``params`` with ``Whh = cell.recurrent(params)``
    (ValueError for the diagonal cells, which iterate no SRNN map)."""
    if cell.diagonal:
        raise ValueError(f"cell: the {cell.name} cell has no SRNN parameters (no recurrent matrix Whh)")
    return Params(Wxh=params.Wxh, Whh=cell.recurrent(params), bh=params.bh, Why=params.Why, by=params.by)


def _first_state(whh: jax.Array, u0: jax.Array, h_init: jax.Array | None, cell: Cell) -> jax.Array:
    """``h_0`` of ``cell`` without a prior state, else (not leaky) ``h_0 = z_{-1} Whh + u_0`` with
    ``z_{-1} = h_init``."""
    if h_init is None:
        return cell.first(u0)
    if cell.leaks:
        raise ValueError("cell: a state before step 0 (h_init) is defined for the srnn cell only")
    return h_init @ whh + u0


def hidden_states(params: Params, x: jax.Array, h_init: jax.Array | None = None,
                  cell: Cell = SRNN) -> jax.Array:
    """All pre-activations ``h_t``, shape (T, B, m), for inputs ``x`` of shape (T, B, n).

    ``h_init`` (B, m) or None: the state ``z_{-1}`` fed in *before* step 0, used as
    given: ``h_0 = h_init Whh + x_0 Wxh + bh`` (the published code's validation feeds the
    raw pre-activation ``x_0 Wxh + bh`` here, docs/lra.md); by default there is no
    recurrent input at step 0: ``h_0 = x_0 Wxh + bh``. The diagonal cells' states are
    :func:`localrnn.diagonal_cell.hidden_states` (complex for ``diagonal``; no ``h_init``).
    """
    if cell.diagonal:
        _no_prior(h_init, cell)
        return diagonal_cell.hidden_states(params, x)
    u = x @ params.Wxh + params.bh  # input drive for every step at once: (T, B, m)
    whh = cell.recurrent(params)
    h0 = _first_state(whh, u[0], h_init, cell)

    def step(h_prev, u_t):
        h = cell.step(whh, h_prev, u_t)
        return h, h

    _, hs = jax.lax.scan(step, h0, u[1:])
    return jnp.concatenate([h0[None], hs], axis=0)


def readout_input(h_last: jax.Array, cell: Cell = SRNN) -> jax.Array:
    """What ``Why`` reads: ``tanh(h_{T-1})``, or ``tanh([Re h_{T-1}, Im h_{T-1}])`` for the
    complex diagonal cell."""
    return jnp.tanh(diagonal_cell.features(h_last) if cell.diagonal else h_last)


def readout(params: Params, h_last: jax.Array, cell: Cell = SRNN) -> jax.Array:
    """Output pre-activation ``out = tanh(h_{T-1}) Why + by`` (B, k) (:func:`readout_input`)."""
    return readout_input(h_last, cell) @ params.Why + params.by


def _no_prior(h_init, cell: Cell) -> None:
    """ValueError naming ``cell`` if a state before step 0 is given to a diagonal cell."""
    if h_init is not None:
        raise ValueError(f"cell: a state before step 0 (h_init) is defined for the srnn cell only, got {cell.name!r}")


def final_state(params: Params, x: jax.Array, h_init: jax.Array | None = None,
                cell: Cell = SRNN) -> jax.Array:
    """``h_{T-1}`` without keeping the whole trajectory (for validation); ``h_init`` and ``cell``
    as in :func:`hidden_states`."""
    if cell.diagonal:
        _no_prior(h_init, cell)
        return diagonal_cell.final_state(params, x)
    u = x @ params.Wxh + params.bh
    whh = cell.recurrent(params)
    h0 = _first_state(whh, u[0], h_init, cell)

    def step(h_prev, u_t):
        return cell.step(whh, h_prev, u_t), None

    h, _ = jax.lax.scan(step, h0, u[1:])
    return h


def forward(params: Params, x: jax.Array, h_init: jax.Array | None = None,
            cell: Cell = SRNN) -> jax.Array:
    """Network output ``out`` (B, k) for inputs ``x`` (T, B, n)."""
    return readout(params, final_state(params, x, h_init, cell), cell)
