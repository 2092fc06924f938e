"""What every phase of the rule reads (:class:`Pass`) and what the layer phases hand to the weight
update (:class:`LayerTerms`).

Notation (docs/lra.md): forward ``h_t``, ``z_t = tanh(h_t)``, ``u_t = x_t Wxh + bh``,
``z_{-1} = 0``; ``F_t(a) = sigma(S_t(a))`` is what layer t's local loss compares, computed from a
candidate pre-activation ``a`` of layer t-1 through the cell's one-step map ``S_t`` (``_cell.py``;
``tanh(a) Whh + u_t`` on the SRNN), with ``sigma`` the local space's map (``_space.py``: tanh, or
the identity on the diagonal cells' state space); ``l_t = sigma(h_t)`` (``z_t`` in the activity space).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from localrnn.cells import SRNN, Cell
from localrnn.model import Params, hidden_states
from localrnn.rules.lra._cell import recurrent_matrix
from localrnn.rules.lra._space import ACTIVITY, Space

__all__ = ["Pass", "LayerTerms", "add_terms", "forward_pass"]


class Pass(NamedTuple):
    """The batch, its forward pass (Algorithm 1, lines 2-6) and the traced hyper-parameters."""

    x: jax.Array        # (T, B, n)
    y: jax.Array        # (B, k)
    wxh: jax.Array
    whh: jax.Array
    whh_t: jax.Array    # Whh^T
    why: jax.Array
    by: jax.Array
    u: jax.Array        # (T, B, m): x_t Wxh + bh
    hs: jax.Array       # (T, B, m): h_t
    zs: jax.Array       # (T, B, m): z_t
    zprev: jax.Array    # (T, B, m): z_{t-1}, z_{-1} = 0
    gamma: jax.Array
    c0: jax.Array
    c1: jax.Array
    lam: jax.Array
    inv_n: float        # 1 / (B m): the local losses are means over the batch matrix
    cell: Cell = SRNN   # the one-step map (static)
    rec: Any = None     # diagonal cells: their parameters (localrnn.rules.lra.diagonal)
    eig: Any = None     # diagonal cells: lambda (m,)
    space: Space = ACTIVITY  # where targets and local losses live (static)

    @property
    def ls(self) -> jax.Array:
        """(T, B, m): ``l_t = sigma(h_t)``, what the local losses compare (``z_t`` in the activity space)."""
        return self.space.of(self.hs)


def forward_pass(params: Params, x: jax.Array, y: jax.Array, hp: Any, cell: Cell = SRNN) -> Pass:
    """Run the network of ``cell`` forward on ``x`` (T >= 2) and collect everything the phases read."""
    wxh, _, bh, why, by = params
    whh = recurrent_matrix(cell, params)
    dt = whh.dtype
    x = jnp.asarray(x, dt)
    y = jnp.asarray(y, dt)
    t_len, b, _ = x.shape
    m = whh.shape[0]
    if t_len < 2:
        raise ValueError(f"lra needs sequences of length T >= 2; got T={t_len}")
    hs = hidden_states(params, x, cell=cell)
    zs = jnp.tanh(hs)
    zprev = jnp.concatenate([jnp.zeros((1, b, m), dt), zs[:-1]], axis=0)
    return Pass(x=x, y=y, wxh=wxh, whh=whh, whh_t=whh.T, why=why, by=by, u=x @ wxh + bh,
                hs=hs, zs=zs, zprev=zprev, gamma=jnp.asarray(hp["target_step"], dt),
                c0=jnp.asarray(hp["c0"], dt), c1=jnp.asarray(hp["c1"], dt),
                lam=jnp.asarray(hp["reg_lambda"], dt), inv_n=1.0 / (b * m), cell=cell)


@dataclass
class LayerTerms:
    """Cotangents that become per-layer weight updates (each array has a leading layer axis T).

    ``full``: ``(positions (T,), cotangents (T, B, m))``: layer t's cotangent injected at the
    pre-activation ``h_{positions[t]}``, feeding Whh, Wxh and bh; ``wxh_only``: the same, feeding
    Wxh only (the published code's regularizer); ``direct_*``: terms already in weight space;
    ``direct_rec``: the same on a diagonal cell, ``{name: (T, ...)}`` over its recurrent parameters.
    """

    full: list = field(default_factory=list)
    wxh_only: list = field(default_factory=list)
    direct_hh: Any = 0.0
    direct_xh: Any = 0.0
    direct_b: Any = 0.0
    direct_rec: Any = 0.0

    def __add__(self, other: "LayerTerms") -> "LayerTerms":
        return LayerTerms(self.full + other.full, self.wxh_only + other.wxh_only,
                          self.direct_hh + other.direct_hh, self.direct_xh + other.direct_xh,
                          self.direct_b + other.direct_b, add_terms(self.direct_rec, other.direct_rec))


def add_terms(a: Any, b: Any) -> Any:
    """``a + b`` for pytrees of weight terms, where the float 0.0 stands for "none yet"."""
    if isinstance(a, float) and a == 0.0:
        return b
    if isinstance(b, float) and b == 0.0:
        return a
    return jax.tree.map(jnp.add, a, b)
