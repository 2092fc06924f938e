"""The regularizer of each place it acts (docs/lra.md#regularization-in-the-direction-of-the-update-algorithm-2).

One object per choice, picked once when the rule is built (:func:`pick_regularizer`); each phase
hands it the unregularized quantity and gets the regularized one back:

* :class:`NoRegularizer`: lambda = 0, Algorithm 1 (every hook returns its input).
* :class:`Algorithm2`: Regularize of Algorithm 2 in place of Normalize on lines 16-18 and 21:
  ``Omega = (||(delta Whh^T) * (1 - tanh(h)^2)|| / ||delta|| - 1)^2`` with delta held constant.
* :class:`PublishedCodeRegularizer`: the published code's Omega (option (e)): top weights, top
  target steps, inner target steps and Wxh of layers t < T-1 (docs/lra.md#e-regularizer).

Every Omega is 0 where a norm in it is 0 (the published code gives NaN there).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from localrnn.rules.lra._math import (omega_alg2, omega_alg2_grad_h, omega_code, omega_code_grad_h,
                                      safe_norm)
from localrnn.rules.lra._pass import LayerTerms, Pass
from localrnn.rules.lra.options import LRAOptions

__all__ = ["NoRegularizer", "Algorithm2", "PublishedCodeRegularizer", "pick_regularizer"]


class NoRegularizer:
    """lambda = 0: nothing is added anywhere."""

    def output_weights(self, p: Pass, g_why: jax.Array, e_fn: Callable) -> jax.Array:
        """grad Why (line 7)."""
        return g_why

    def top_step(self, p: Pass, d, hbar, g_e, mc) -> jax.Array:
        """Top displacement D (line 10); ``g_e = dE/dout``, ``mc = g_e Why^T``."""
        return d

    def search_rows(self, delta: jax.Array, dp: jax.Array) -> list:
        """Extra (B, m) rows the inner step carries down through Whh^T with its own error."""
        return []

    def search_step(self, p: Pass, g, hbar, th, sp, mm, delta, dp, carried) -> jax.Array:
        """Inner target step (line 21): ``delta`` = derivative at the prediction's pre-activation,
        ``dp`` at the prediction, ``mm = delta Whh^T``, ``carried`` = the extra rows times Whh^T."""
        return g

    def first_step(self, p: Pass, g, hprev, th, sp, delta0, gz) -> jax.Array:
        """First inner step of option (b): ``delta0`` = derivative of the layer loss at h_t
        through its first argument, ``gz`` the same at z_t."""
        return g

    def layer_terms(self, p: Pass, delta: jax.Array, ell: jax.Array, s_idx: np.ndarray) -> LayerTerms:
        """Weight updates of each layer (lines 16-18); ``delta`` = the layer loss's derivative at
        ``h_s`` through its first argument, ``s = s_idx[t]``."""
        return LayerTerms()


class Algorithm2(NoRegularizer):
    """Algorithm 2 with Omega read as the Jacobian of the step being updated (docs/lra.md)."""

    def search_step(self, p, g, hbar, th, sp, mm, delta, dp, carried):
        return g + p.lam * omega_alg2_grad_h(mm, th, sp, safe_norm(delta))

    def first_step(self, p, g, hprev, th, sp, delta0, gz):
        return g + p.lam * omega_alg2_grad_h(delta0 @ p.whh_t, th, sp, safe_norm(delta0))

    def layer_terms(self, p, delta, ell, s_idx):
        """``Omega_t`` at ``h_{s-1}``: Whh directly and through ``h_{s-1}``, Wxh and bh through it."""
        sm1 = np.maximum(s_idx - 1, 0)
        has_below = jnp.asarray(s_idx >= 1)[:, None, None]
        om_whh, om_c = jax.vmap(jax.grad(omega_alg2, argnums=(1, 2)), in_axes=(0, None, 0))(
            delta, p.whh, p.hs[sm1])
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

    def search_rows(self, delta, dp):
        return [dp]

    def search_step(self, p, g, hbar, th, sp, mm, delta, dp, carried):
        return g + p.lam * omega_code_grad_h(carried[0], hbar, safe_norm(dp))

    def first_step(self, p, g, hprev, th, sp, delta0, gz):
        return g + p.lam * omega_code_grad_h(gz @ p.whh_t, hprev, safe_norm(gz))

    def layer_terms(self, p, delta, ell, s_idx):
        """Wxh only, layers t < T-1 whose loss is not exactly 0 (as coded)."""
        t_len = p.hs.shape[0]
        sm1 = np.maximum(s_idx - 1, 0)
        mask = jnp.asarray(s_idx >= 1) & jnp.asarray(np.arange(t_len) <= t_len - 2) & (ell != 0)
        oc_c = jax.vmap(jax.grad(omega_code, argnums=2), in_axes=(0, None, 0))(delta, p.whh, p.hs[sm1])
        oc_c = jnp.where(mask[:, None, None], oc_c, 0.0)
        return LayerTerms(wxh_only=[(sm1, p.lam * oc_c)])


def pick_regularizer(o: LRAOptions) -> NoRegularizer:
    """The regularizer the options ask for (none unless ``regularize``)."""
    if not o.regularize:
        return NoRegularizer()
    return Algorithm2() if o.regularizer == "algorithm2" else PublishedCodeRegularizer()
