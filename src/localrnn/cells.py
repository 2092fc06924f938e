"""Recurrent cells: the one-step map every rule trains (docs/cells.md).

``srnn`` is the simple RNN of docs/network.md. ``leaky`` leaks the pre-activation with time
constant tau >= 1 (Murray 2019's leak, on h rather than on the rate):

    h_t = (1 - 1/tau) h_{t-1} + (1/tau) (z_{t-1} Whh + x_t Wxh + bh),    z = tanh(h)

with h_{-1} = z_{-1} = 0, so h_0 = (1/tau)(x_0 Wxh + bh); tau = 1 is the SRNN exactly (same
operations, same numbers). Per sample its Jacobian and immediate derivatives are

    D_t[i, j] = dh_t[j]/dh_{t-1}[i] = (1 - 1/tau) [i = j] + (1/tau) Whh[i, j] (1 - z_{t-1}[i]^2)
    dh_t[j]/dWhh[i, j] = z_{t-1}[i] / tau,  dh_t[j]/dWxh[i, j] = x_t[i] / tau,  dh_t[j]/dbh[j] = 1 / tau

(D_0 = 0: nothing comes before step 0). ``orthogonal`` is the SRNN with
Whh = W0 expm(A - A^T): W0 fixed, A trained (localrnn.orthogonal_cell); its parameters are
:class:`~localrnn.orthogonal_cell.OrthogonalParams`, and its map, given that Whh, is the SRNN's.
``diagonal`` and ``diagonal-real`` are the linear diagonal (LRU-style) recurrence of
localrnn.diagonal_cell, ``h_t = lambda * h_{t-1} + gamma(lambda) (x_t B)``, with parameters of their
own (:class:`~localrnn.diagonal_cell.DiagonalParams`, ``RealDiagonalParams``); none of the methods
below that take ``whh`` applies to them (model.py runs their map).
A cell is static: configs with different cells compile different programs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import jax
import jax.numpy as jnp

from localrnn import orthogonal_cell

__all__ = ["Cell", "CellName", "CELLS", "SRNN", "make_cell"]

CellName = Literal["srnn", "leaky", "orthogonal", "diagonal", "diagonal-real"]
#: the cells a config may name, and what each is
CELLS = {"srnn": "simple RNN: h_t = z_{t-1} Whh + x_t Wxh + bh",
         "leaky": "leaky SRNN: h_t = (1 - 1/tau) h_{t-1} + (1/tau)(z_{t-1} Whh + x_t Wxh + bh)",
         "orthogonal": "simple RNN with Whh = W0 expm(A - A^T): W0 fixed, A trained from 0",
         "diagonal": "complex diagonal linear recurrence: h_t = lambda * h_{t-1} + sqrt(1 - |lambda|^2) x_t B, "
                     "lambda = exp(-exp(nu) + i theta)",
         "diagonal-real": "the diagonal cell with real lambda = exp(-exp(nu)), B and h"}


@dataclass(frozen=True)
class Cell:
    """A recurrent cell: its name and leak time constant ``tau`` (1 for the SRNN)."""

    name: CellName = "srnn"
    tau: float = 1.0

    @property
    def keep(self) -> float:
        """``1 - 1/tau``: how much of h_{t-1} is kept."""
        return 1.0 - 1.0 / self.tau

    @property
    def drive(self) -> float:
        """``1/tau``: the weight of the new input ``z_{t-1} Whh + x_t Wxh + bh``."""
        return 1.0 / self.tau

    @property
    def leaks(self) -> bool:
        return self.tau != 1.0

    @property
    def parametrized(self) -> bool:
        """Whether the cell has parameters of its own in place of Whh (orthogonal: W0 and A)."""
        return self.name == "orthogonal"

    @property
    def diagonal(self) -> bool:
        """Whether the cell is the diagonal linear recurrence (complex or real), not an SRNN map."""
        return self.name in ("diagonal", "diagonal-real")

    def recurrent(self, params) -> jax.Array:
        """The recurrent matrix the cell iterates: ``params.Whh``, or ``W0 expm(A - A^T)``
        (orthogonal, W0 held fixed)."""
        return orthogonal_cell.recurrent_matrix(params.W0, params.A) if self.parametrized else params.Whh

    def parametrize(self, params):
        """The cell's parameters from SRNN ones with the same recurrent matrix (orthogonal:
        ``W0 = Whh``, ``A = 0``); SRNN parameters themselves for the other cells."""
        return orthogonal_cell.parametrize(params) if self.parametrized else params

    def descend(self, params, grads):
        """Directions of the cell's ``params`` from SRNN directions ``grads`` computed at the
        recurrent matrix :meth:`recurrent` (orthogonal: W0 gets 0, A the VJP of ``A -> Whh``
        applied to ``grads.Whh``); ``grads`` itself for the other cells."""
        return orthogonal_cell.descend(params, grads) if self.parametrized else grads

    def first(self, u0: jax.Array) -> jax.Array:
        """``h_0`` from the input drive ``u_0 = x_0 Wxh + bh`` with no state before it."""
        return self.drive * u0 if self.leaks else u0

    def step(self, whh: jax.Array, h_prev: jax.Array, u_t: jax.Array) -> jax.Array:
        """``h_t`` from ``h_{t-1}`` and the input drive ``u_t = x_t Wxh + bh``."""
        new = jnp.tanh(h_prev) @ whh + u_t
        return self.keep * h_prev + self.drive * new if self.leaks else new

    def jacobian(self, whh: jax.Array, z_prev: jax.Array) -> jax.Array:
        """``D_t`` (B, m, m), ``D[b, i, j] = dh_t[j]/dh_{t-1}[i]``, from ``z_{t-1}`` (B, m)."""
        D = whh[None] * (1.0 - z_prev ** 2)[:, :, None]
        if not self.leaks:
            return D
        return self.keep * jnp.eye(whh.shape[0], dtype=whh.dtype)[None] + self.drive * D

    def pull(self, back: jax.Array, g: jax.Array, z_prev: jax.Array) -> jax.Array:
        """``g D_t^T`` (B, m), i.e. ``dE/dh_{t-1}`` from ``g = dE/dh_t`` through one step, with the
        matrix ``back`` standing where ``Whh^T`` is (``Whh.T`` for the true gradient):
        ``(1 - 1/tau) g + (1/tau) (g back) * (1 - z_{t-1}^2)``."""
        through = (g @ back) * (1.0 - z_prev * z_prev)
        return self.keep * g + self.drive * through if self.leaks else through

    def jacobian_diagonal(self, whh: jax.Array, z_prev: jax.Array) -> jax.Array:
        """The diagonal of ``D_t``, (B, m)."""
        d = jnp.diagonal(whh) * (1.0 - z_prev ** 2)
        return self.keep + self.drive * d if self.leaks else d


SRNN = Cell()


def make_cell(name: str = "srnn", tau: float = 1.0) -> Cell:
    """The cell ``name`` with leak ``tau``; ValueError naming the option for a bad pair."""
    if name not in CELLS:
        raise ValueError(f"cell: unknown cell {name!r}; allowed: {', '.join(CELLS)}")
    if not (tau >= 1.0 and tau < float("inf")):
        raise ValueError(f"tau: must be a finite number >= 1, got {tau}")
    if name != "leaky" and tau != 1.0:
        raise ValueError(f"tau: the {name} cell has no leak (tau = 1); got {tau}; use --cell leaky")
    return Cell(name, float(tau))
