"""The recurrent cell as the LRA-diff phases read it (docs/lra.md#other-cells).

Layer t's pre-activation computed from a candidate pre-activation ``a`` of layer t-1 is the cell's
one-step map (localrnn.cells, docs/cells.md)

    S_t(a) = cell.step(W, a, u_t)     SRNN: tanh(a) W + u_t;  leaky: (1 - 1/tau) a + (1/tau)(tanh(a) W + u_t)

and ``F_t(a) = sigma(S_t(a))`` is what layer t's local loss compares (``_space.py``: the activity
``tanh``, or the state itself). The phases need two derivatives of it,
both from the cell: ``g dS_t/da^T = cell.pull(W^T, g, tanh(a))`` (:func:`pull`), and the cotangent
at the input drive ``g dS_t/du_t`` (:func:`to_drive`, autodiff of ``cell.step``; ``g / tau`` on the
leaky cell). ``tanh(a) W`` enters S_t beside ``u_t``, so that cotangent also gives the immediate
weight derivatives (``grad W = tanh(a)^T to_drive(g)``, likewise Wxh and bh) and the derivative
through the activity with ``a`` held, ``to_drive(g) W^T`` (:func:`through_activity`).

On the diagonal cells (localrnn.diagonal_cell) ``a`` is the real vector ``[Re h, Im h]`` (``h`` for
diagonal-real) and the step is linear, ``S_t(a) = features(lambda * h(a)) + u_t`` with the drive
``u_t = features(gamma(lambda) x_t B)``; :func:`pull` is the vjp of that map in ``a``, and the
parameters' derivatives are vjps of :func:`diagonal_step`, the step written from the cell's own
functions with the recurrent parameters (:func:`recurrent_fields`) as arguments.

:func:`recurrent_matrix` is the one place the package reads the recurrent matrix.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from localrnn.cells import Cell
from localrnn.diagonal_cell import RealDiagonalParams, drive, eigenvalues, features, from_features, input_scale
from localrnn.model import Params

__all__ = ["recurrent_matrix", "step", "activity", "pull", "to_drive", "through_activity",
           "recurrent_fields", "diagonal_step", "diagonal_weights"]


def recurrent_matrix(cell: Cell, params: Params) -> jax.Array:
    """``W``: the matrix ``cell.step`` multiplies ``tanh(h_{t-1})`` by."""
    return params.Whh


def step(p, a: jax.Array, u: jax.Array) -> jax.Array:
    """``S_t(a)``: the cell's one step from ``a`` with input drive ``u`` (``p``: a Pass)."""
    if p.cell.diagonal:
        return _recur(p.eig, a) + u
    return p.cell.step(p.whh, a, u)


def activity(p, a: jax.Array, u: jax.Array) -> jax.Array:
    """``F_t(a) = sigma(S_t(a))`` in the pass's local space (``tanh``; the identity in the state space)."""
    return p.space.of(step(p, a, u))


def pull(p, g: jax.Array, z: jax.Array) -> jax.Array:
    """``g dS_t/da^T`` at ``tanh(a) = z``: a cotangent at layer t's pre-activation carried one step
    down (``(g W^T) * (1 - z^2)`` on the SRNN; on the diagonal cells the vjp of the linear map
    ``a -> features(lambda * h(a))``, the same at every point, so ``z`` is not read)."""
    if p.cell.diagonal:
        return jax.vjp(lambda a: _recur(p.eig, a), g)[1](g)[0]
    return p.cell.pull(p.whh_t, g, z)


def to_drive(p, g: jax.Array) -> jax.Array:
    """``g dS_t/du_t``: the cotangent at the input drive (S_t is affine in ``u_t``; ``g`` itself on
    the SRNN and the diagonal cells, ``g / tau`` on the leaky cell)."""
    zero = jnp.zeros_like(g)
    _, vjp = jax.vjp(lambda u: step(p, zero, u), zero)
    return vjp(g)[0]


def through_activity(p, g: jax.Array) -> jax.Array:
    """``g dS_t/dz^T`` with ``a`` held, ``z = tanh(a)``: ``to_drive(g) W^T``; 0 on the diagonal
    cells, whose step does not read the activity."""
    if p.cell.diagonal:
        return jnp.zeros_like(g)
    return to_drive(p, g) @ p.whh_t


def _recur(lam: jax.Array, a: jax.Array) -> jax.Array:
    """``features(lambda * h)`` for ``a = features(h)``: the diagonal step's recurrent part."""
    return features(lam * from_features(a, jnp.iscomplexobj(lam)))


def recurrent_fields(params) -> dict:
    """The diagonal cell's recurrent parameters by name: ``nu, theta, B_re, B_im`` (real cell:
    ``nu, B``), what plays Whh, Wxh and bh there (the cell has no bias)."""
    names = ("nu", "B") if isinstance(params, RealDiagonalParams) else ("nu", "theta", "B_re", "B_im")
    return {k: getattr(params, k) for k in names}


def diagonal_step(params, rec: dict, a_prev: jax.Array, x_t: jax.Array) -> jax.Array:
    """``S_t(a_{t-1})`` on a diagonal cell as a function of its recurrent parameters ``rec`` (the
    other fields from ``params``): ``features(lambda h_{t-1} + gamma(lambda) x_t B)``."""
    q = params._replace(**rec)
    lam = eigenvalues(q)
    return _recur(lam, a_prev) + features(input_scale(lam) * drive(q, x_t))


def diagonal_weights(p, a_prev: jax.Array, x: jax.Array, cot: jax.Array) -> dict:
    """Per layer, the cotangent ``cot[t]`` at the output of the step taken from ``a_prev[t]`` with
    input ``x[t]`` pulled back to the recurrent parameters: the vjp of :func:`diagonal_step` in
    ``rec``, ``{name: (T, ...)}``."""
    rec = recurrent_fields(p.rec)

    def one(a, x_t, c):
        return jax.vjp(lambda r: diagonal_step(p.rec, r, a, x_t), rec)[1](c)[0]

    return jax.vmap(one)(a_prev, x, cot)
