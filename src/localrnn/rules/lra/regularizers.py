"""The regularizer of each place it acts (docs/lra.md#regularization-in-the-direction-of-the-update-algorithm-2).

One object per choice, picked once when the rule is built (:func:`pick_regularizer`); each phase
hands it the unregularized quantity and gets the regularized one back:

* :class:`NoRegularizer`: lambda = 0, Algorithm 1 (every hook returns its input).
* :class:`Algorithm2`: Regularize of Algorithm 2 in place of Normalize on lines 16-18 and 21:
  ``Omega = (||delta dS/dh^T|| / ||delta|| - 1)^2`` with delta held constant, ``S`` the cell's
  one-step map (``(delta Whh^T) * (1 - tanh(h)^2)`` on the SRNN).
* :class:`PublishedCodeRegularizer`: the published code's Omega (option (e)): top weights, top
  target steps, inner target steps and Wxh of layers t < T-1 (docs/lra.md#e-regularizer).

Every Omega is 0 where a norm in it is 0 (the published code gives NaN there). Its derivative in h
is in closed form on the SRNN's map and by autodiff of the cell's Omega on any other
(:func:`grad_h`).
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from localrnn.cells import Cell
from localrnn.rules.lra._math import (diag_rows, omega_alg2_grad_h, omega_code, omega_code_grad_h,
                                      ratio_penalty, safe_norm)
from localrnn.rules.lra._pass import LayerTerms, Pass
from localrnn.rules.lra.options import LRAOptions

__all__ = ["NoRegularizer", "Algorithm2", "PublishedCodeRegularizer", "pick_regularizer",
           "omega_cell", "omega_code_cell", "grad_h"]


def omega_cell(cell: Cell, delta: jax.Array, w: jax.Array, h: jax.Array) -> jax.Array:
    """Algorithm 2's Omega on ``cell``: ``J = cell.pull(W^T, delta, tanh(h))`` (``delta`` carried one
    step down to ``h``), ``(||J|| / ||delta|| - 1)^2``."""
    return ratio_penalty(cell.pull(w.T, delta, jnp.tanh(h)), delta)


def omega_code_cell(cell: Cell, g: jax.Array, w: jax.Array, h: jax.Array) -> jax.Array:
    """The published code's Omega on ``cell``: :func:`omega_cell` with sample b's ``1 - tanh(h)^2``
    replaced by the scalar ``1 - tanh(h[b, b])^2`` (docs/lra.md#e-regularizer)."""
    return ratio_penalty(cell.pull(w.T, g, jnp.tanh(diag_rows(h))[:, None]), g)


def grad_h(p: Pass, omega, closed, back: jax.Array, h: jax.Array) -> jax.Array:
    """``dOmega(back, Whh, h)/dh``: ``closed(back Whh^T, h)`` on the SRNN's map, else autodiff of
    ``omega(cell, back, Whh, h)``."""
    if not p.cell.leaks:
        return closed(back @ p.whh_t, h)
    return jax.grad(functools.partial(omega, p.cell), argnums=2)(back, p.whh, h)


class NoRegularizer:
    """lambda = 0: nothing is added anywhere."""

    def output_weights(self, p: Pass, g_why: jax.Array, e_fn: Callable) -> jax.Array:
        """grad Why (line 7)."""
        return g_why

    def top_step(self, p: Pass, d, hbar, g_e, mc) -> jax.Array:
        """Top displacement D (line 10); ``g_e = dE/dout``, ``mc = g_e Why^T``."""
        return d

    def search_step(self, p: Pass, g, hbar, delta, dp) -> jax.Array:
        """Inner target step (line 21): ``delta`` = derivative at the prediction's pre-activation,
        ``dp`` at the prediction."""
        return g

    def first_step(self, p: Pass, g, hprev, delta0, gz) -> jax.Array:
        """First inner step of option (b): ``delta0`` = derivative of the layer loss at h_t
        through its first argument, ``gz`` the same at z_t (h_t held)."""
        return g

    def layer_terms(self, p: Pass, delta: jax.Array, ell: jax.Array, s_idx: np.ndarray) -> LayerTerms:
        """Weight updates of each layer (lines 16-18); ``delta`` = the layer loss's derivative at
        ``h_s`` through its first argument, ``s = s_idx[t]``."""
        return LayerTerms()


class Algorithm2(NoRegularizer):
    """Algorithm 2 with Omega read as the Jacobian of the step being updated (docs/lra.md)."""

    @staticmethod
    def _grad_h(p, delta, h):
        def closed(mm, h):
            th = jnp.tanh(h)
            return omega_alg2_grad_h(mm, th, 1.0 - th * th, safe_norm(delta))
        return grad_h(p, omega_cell, closed, delta, h)

    def search_step(self, p, g, hbar, delta, dp):
        return g + p.lam * self._grad_h(p, delta, hbar)

    def first_step(self, p, g, hprev, delta0, gz):
        return g + p.lam * self._grad_h(p, delta0, hprev)

    def layer_terms(self, p, delta, ell, s_idx):
        """``Omega_t`` at ``h_{s-1}``: Whh directly and through ``h_{s-1}``, Wxh and bh through it."""
        sm1 = np.maximum(s_idx - 1, 0)
        has_below = jnp.asarray(s_idx >= 1)[:, None, None]
        om_whh, om_c = jax.vmap(jax.grad(functools.partial(omega_cell, p.cell), argnums=(1, 2)),
                                in_axes=(0, None, 0))(delta, p.whh, p.hs[sm1])
        om_whh = jnp.where(has_below, om_whh, 0.0)
        om_c = jnp.where(has_below, om_c, 0.0)
        return LayerTerms(full=[(sm1, p.lam * om_c)], direct_hh=p.lam * om_whh)


class PublishedCodeRegularizer(NoRegularizer):
    """The published code's Omega (option (e)), on the diagonal entries ``h[b, b]``."""

    def output_weights(self, p, g_why, e_fn):
        g_e = jax.grad(lambda out: e_fn(out, p.y))(p.zs[-1] @ p.why + p.by)
        return g_why + p.lam * jax.grad(omega_code, argnums=1)(g_e, p.why, p.hs[-1])

    def top_step(self, p, d, hbar, g_e, mc):
        return d + p.lam * omega_code_grad_h(mc, hbar, safe_norm(g_e))

    @staticmethod
    def _grad_h(p, g, h):
        return grad_h(p, omega_code_cell, lambda mc, h: omega_code_grad_h(mc, h, safe_norm(g)), g, h)

    def search_step(self, p, g, hbar, delta, dp):
        return g + p.lam * self._grad_h(p, dp, hbar)

    def first_step(self, p, g, hprev, delta0, gz):
        return g + p.lam * self._grad_h(p, gz, hprev)

    def layer_terms(self, p, delta, ell, s_idx):
        """Wxh only, layers t < T-1 whose loss is not exactly 0 (as coded)."""
        t_len = p.hs.shape[0]
        sm1 = np.maximum(s_idx - 1, 0)
        mask = jnp.asarray(s_idx >= 1) & jnp.asarray(np.arange(t_len) <= t_len - 2) & (ell != 0)
        oc_c = jax.vmap(jax.grad(functools.partial(omega_code_cell, p.cell), argnums=2),
                        in_axes=(0, None, 0))(delta, p.whh, p.hs[sm1])
        oc_c = jnp.where(mask[:, None, None], oc_c, 0.0)
        return LayerTerms(wxh_only=[(sm1, p.lam * oc_c)])


def pick_regularizer(o: LRAOptions) -> NoRegularizer:
    """The regularizer the options ask for (none unless ``regularize``)."""
    if not o.regularize:
        return NoRegularizer()
    return Algorithm2() if o.regularizer == "algorithm2" else PublishedCodeRegularizer()
