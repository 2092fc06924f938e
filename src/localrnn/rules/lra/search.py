"""The target search: the target update of Algorithm 1 (lines 19-26, eq. 4; docs/lra.md).

For layer t-1 (t = T-1 .. 1): ``hbar = h_{t-1}`` (line 19); K steps, each ``D = Normalize(g_k, c1)``
(line 21), ``hbar <- hbar - gamma D`` (lines 22, 26); ``hhat_{t-1} = hbar``. What ``g_k`` is
depends on the reading, chosen once by :func:`make_layer_search`:

* ``inner_reference="target"`` (fixed-target reading): every step ``g = dL(F_t(hbar), zhat_t)/dhbar``.
* ``inner_reference="forward"`` (printed reading, published-code option (b)): the first step
  ``g_1 = d ell_t / d h_{t-1}`` (the loss that updates layer t, see ``updates.py``; with the own
  loss and one-step gradients this is the fixed-target step at ``hbar = h_{t-1}``); steps
  ``k >= 2``: ``g_k = dL(z_t, F_t(hbar))/dhbar`` with the forward ``z_t`` (lines 24-25 overwrite
  zhat_t with the prediction from the candidate).

Each step adds the regularizer's term before Normalize (Algorithm 2 replaces line 21's Normalize).
``F_t(a) = sigma(S_t(a))`` with ``S_t`` the cell's one-step map and ``sigma`` the local space's map
(``_space.py``: tanh, or the identity in the diagonal cells' state space); the derivatives of
``S_t`` come from the cell (``_cell.py``). Targets and forward references (``zhat_t``, ``z_t``)
are in the local space: ``sigma(hhat_t)``, ``l_t``.
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp

from localrnn.rules.lra._cell import activity, pull, through_activity
from localrnn.rules.lra._pass import Pass
from localrnn.rules.lra.regularizers import NoRegularizer

__all__ = ["step_gradient", "first_gradient", "target_search", "make_layer_search", "search_layers"]


def step_gradient(p: Pass, hbar, u_t, ref, fp: Callable, reg: NoRegularizer) -> jax.Array:
    """``dL(F_t(hbar), ref)/dhbar`` (+ the regularizer's term); ``L(p, r) = mean f(p - r)``, ``fp = f'``.
    ``F_t(hbar) = sigma(S_t(hbar))``; L is symmetric, so ``ref`` is either argument."""
    th = jnp.tanh(hbar)
    pred = activity(p, hbar, u_t)
    dp = fp(pred - ref) * p.inv_n
    delta = dp * p.space.slope(pred)
    return reg.search_step(p, pull(p, delta, th), hbar, delta, dp)


def first_gradient(p: Pass, hprev, z_t, zhat_t, z_next, pred_next, fp: Callable,
                   reg: NoRegularizer, own: bool, unrolled: bool) -> jax.Array:
    """``g_1 = d ell_t / d h_{t-1}`` of option (b) (+ the regularizer's term).

    ``own``: ``ell_t = L(z_t, zhat_t)``; else ``L(z_{t+1}, pred_{t+1})`` (option (d)).
    ``unrolled`` (option (a)): the target moves with the forward pass (``tanh(h_t + const)``), so the
    second argument's path is added; else it is held constant. The regularizer sees ``delta0`` =
    the first-argument derivative at h_t, and ``gz`` = the same at z_t with h_t held. ``z_t``,
    ``zhat_t``, ``z_next``, ``pred_next`` are in the local space; the state space is the diagonal
    cells' only, where ``pull`` does not read its activity argument.
    """
    slope = p.space.slope
    if own:
        dp = fp(z_t - zhat_t) * p.inv_n
        gz = dp
        delta0 = dp * slope(z_t)
        a_t = delta0 - dp * slope(zhat_t) if unrolled else delta0
    else:
        dp = fp(z_next - pred_next) * p.inv_n
        delta1 = dp * slope(z_next)
        gz = through_activity(p, delta1)
        delta0 = pull(p, delta1, z_t)
        a_t = delta0 + pull(p, -dp * slope(pred_next), zhat_t) if unrolled else delta0
    return reg.first_step(p, pull(p, a_t, jnp.tanh(hprev)), hprev, delta0, gz)


def target_search(p: Pass, first: Callable, later: Callable, hprev, k_steps: int,
                  rescale: Callable):
    """The target update of Algorithm 1 (lines 19-26): ``(hhat_{t-1}, D of the last step)``.
    ``first(hbar)`` is ``g_1``, ``later(hbar)`` is ``g_k`` for k >= 2, ``rescale(g, c1)`` is Normalize."""
    d = rescale(first(hprev), p.c1)

    def step(_, carry):
        hbar, _ = carry
        dd = rescale(later(hbar), p.c1)
        return hbar - p.gamma * dd, dd

    return jax.lax.fori_loop(1, k_steps, step, (hprev - p.gamma * d, d))


def make_layer_search(fp: Callable, reg: NoRegularizer, rescale: Callable, k_steps: int,
                      forward_reference: bool, own: bool, unrolled: bool) -> Callable:
    """The search for one layer, with the reading's ``g_1`` and ``g_k`` chosen here, once:
    ``search(p, hhat_t, pred_next, hprev, u_t, z_t, z_next) -> (hhat_{t-1}, D)``."""
    step = functools.partial(step_gradient, fp=fp, reg=reg)
    one_step_own = own and not unrolled

    def search(p, hhat_t, pred_next, hprev, u_t, z_t, z_next):
        zhat_t = p.space.of(hhat_t)
        target_step = lambda hb: step(p, hb, u_t, zhat_t)  # noqa: E731
        if not forward_reference:
            return target_search(p, target_step, target_step, hprev, k_steps, rescale)
        if one_step_own:
            first = target_step
        else:
            first = lambda hb: first_gradient(p, hb, z_t, zhat_t, z_next, pred_next,  # noqa: E731
                                              fp, reg, own, unrolled)
        return target_search(p, first, lambda hb: step(p, hb, u_t, z_t), hprev, k_steps, rescale)

    return search


def search_layers(p: Pass, hhat_top, search_own: Callable, search_shifted: Callable | None):
    """Targets ``hhat_0 .. hhat_{T-2}`` and their last displacements, layer T-1 down to 1.

    ``search_shifted`` (option (d) with option (b)): layers below T-1 take ``g_1`` from the last
    prediction ``pred_{t+1} = F_{t+1}(hhat_t)`` of the search above, carried down the scan.
    """
    if search_shifted is None:
        def body(hhat_t, inp):
            hhat_p, d = search_own(p, hhat_t, None, *inp, None)
            return hhat_p, (hhat_p, d)

        _, (hhat_below, d_below) = jax.lax.scan(
            body, hhat_top, (p.hs[:-1], p.u[1:], p.ls[1:]), reverse=True)
        return hhat_below, d_below

    hhat_a, d_a = search_own(p, hhat_top, None, p.hs[-2], p.u[-1], p.ls[-1], None)

    def body_shifted(carry, inp):
        hhat_t, pred_next = carry
        hprev, u_t, z_t, z_next = inp
        hhat_p, d = search_shifted(p, hhat_t, pred_next, hprev, u_t, z_t, z_next)
        return (hhat_p, activity(p, hhat_p, u_t)), (hhat_p, d)

    _, (hh_rest, d_rest) = jax.lax.scan(  # layers t = T-2 .. 1
        body_shifted, (hhat_a, activity(p, hhat_a, p.u[-1])),
        (p.hs[:-2], p.u[1:-1], p.ls[1:-1], p.ls[2:]), reverse=True)
    return (jnp.concatenate([hh_rest, hhat_a[None]], axis=0),
            jnp.concatenate([d_rest, d_a[None]], axis=0))
