"""Layer losses and weight updates (Algorithm 1, lines 16-18; docs/lra.md).

Loss that updates layer t, ``ell_t`` (option (d), chosen once): ``own``: ``L(z_t, zhat_t)``;
``shifted``: ``L(z_{t+1}, F_{t+1}(hhat_t))`` for t < T-1 and ``L(z_{T-1}, zhat_{T-1})`` for t = T-1.
Its first argument is ``z_s`` (s = t, or t+1 when shifted); ``delta_t = d ell_t / d h_s`` through it.
``z`` and ``zhat`` are in the local space (``_space.py``): ``sigma(h)``, ``sigma(hhat)``.

Weight map (option (a), chosen once): ``one_step``: the second argument is constant and ``h_s``
depends on the weights through one step of the cell, ``h_s = S_s(h_{s-1})`` with ``h_{s-1}``
constant (SRNN: ``h_s = z_{s-1} Whh + x_s Wxh + bh``): with ``c = to_drive(delta)`` (``delta`` on the
SRNN, ``delta / tau`` on the leaky cell), ``grad Whh = z_{s-1}^T c``, ``grad Wxh = x_s^T c``,
``grad bh = sum c``. ``unrolled``: every cotangent is carried down the forward graph to t = 0
(``e <- pull(e)``), and the target ``tanh(h_t(theta) + (hhat_t - h_t))`` moves with it (the second
argument's path). On the diagonal cells the weight maps are those of ``diagonal.py``.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from localrnn.rules.lra._cell import activity, diagonal_weights, pull, to_drive
from localrnn.rules.lra._pass import LayerTerms, Pass

__all__ = ["LayerLosses", "own_losses", "shifted_losses", "first_path_terms", "second_path_terms",
           "one_step_map", "unrolled_map"]


class LayerLosses(NamedTuple):
    """``ell_t = mean f(first_t - second_t)`` of every layer (leading axis T)."""

    first: jax.Array
    second: jax.Array
    s_idx: np.ndarray      # s: the step whose pre-activation the first argument comes from
    ell: jax.Array         # (T,)
    dp: jax.Array          # d ell / d first
    delta: jax.Array       # d ell / d h_s through the first argument


def _losses(p: Pass, first, second, s_idx, f: Callable, fp: Callable) -> LayerLosses:
    diff = first - second
    dp = fp(diff) * p.inv_n
    return LayerLosses(first, second, s_idx, jnp.mean(f(diff), axis=(1, 2)), dp,
                       dp * p.space.slope(first))


def own_losses(p: Pass, hhat, f: Callable, fp: Callable) -> LayerLosses:
    """``ell_t = L(z_t, zhat_t)`` (lines 16-18 as printed)."""
    return _losses(p, p.ls, p.space.of(hhat), np.arange(p.ls.shape[0]), f, fp)


def shifted_losses(p: Pass, hhat, f: Callable, fp: Callable) -> LayerLosses:
    """``ell_t = L(z_{t+1}, F_{t+1}(hhat_t))`` for t < T-1, ``L(z_{T-1}, zhat_{T-1})`` at the top."""
    t_len = p.ls.shape[0]
    pred_all = activity(p, hhat[:-1], p.u[1:])
    first = jnp.concatenate([p.ls[1:], p.ls[-1:]], axis=0)
    second = jnp.concatenate([pred_all, p.space.of(hhat[-1:])], axis=0)
    return _losses(p, first, second, np.r_[np.arange(1, t_len), t_len - 1], f, fp)


def first_path_terms(ll: LayerLosses) -> LayerTerms:
    """The first argument's cotangent, at ``h_s``."""
    return LayerTerms(full=[(ll.s_idx, ll.delta)])


def second_path_terms(p: Pass, ll: LayerLosses, hhat, shifted: bool) -> LayerTerms:
    """Unrolled gradients also follow the second argument, the target ``sigma(h_t + const)``: own
    loss, at ``h_t``; shifted loss, through ``F_{t+1}(hhat_t)`` (directly into the weights of step
    t+1, which read the candidate's activity ``tanh(hhat_t)``, and on down to ``h_t``)."""
    tt = np.arange(p.zs.shape[0])
    d2 = -ll.dp * p.space.slope(ll.second)  # at the second argument's pre-activation
    if not shifted:
        return LayerTerms(full=[(tt, d2)])
    zhat_below, d2s = jnp.tanh(hhat[:-1]), d2[:-1]
    c2s = to_drive(p, d2s)

    def with_top_zero(a):
        return jnp.concatenate([a, jnp.zeros((1,) + a.shape[1:], a.dtype)], axis=0)

    back = jnp.concatenate([pull(p, d2s, zhat_below), d2[-1:]], axis=0)
    if p.cell.diagonal:  # the weights of step t+1, taken from hhat_t
        direct = diagonal_weights(p, hhat[:-1], p.x[1:], c2s)
        return LayerTerms(full=[(tt, back)], direct_rec=jax.tree.map(with_top_zero, direct))
    return LayerTerms(full=[(tt, back)],
                      direct_hh=with_top_zero(jnp.einsum("tbi,tbj->tij", zhat_below, c2s)),
                      direct_xh=with_top_zero(jnp.einsum("tbi,tbj->tij", p.x[1:], c2s)),
                      direct_b=with_top_zero(jnp.sum(c2s, axis=1)))


def one_step_map(p: Pass, terms: LayerTerms):
    """Per-layer ``(grad Whh, grad Wxh, grad bh)``, each cotangent through one step only."""
    hh, xh, b = terms.direct_hh, terms.direct_xh, terms.direct_b
    for pos, cot in terms.full:
        c = to_drive(p, cot)
        hh = hh + jnp.einsum("tbi,tbj->tij", p.zprev[pos], c)
        xh = xh + jnp.einsum("tbi,tbj->tij", p.x[pos], c)
        b = b + jnp.sum(c, axis=1)
    for pos, cot in terms.wxh_only:
        xh = xh + jnp.einsum("tbi,tbj->tij", p.x[pos], to_drive(p, cot))
    return hh, xh, b


def _chain(p: Pass, injections, n_chains: int):
    """Per-chain weight gradients of cotangents injected at forward pre-activations and carried
    down the unrolled forward graph to t = 0 (``e <- pull(e)``, ``(e Whh^T) * (1 - z_{j-1}^2)`` on the SRNN).

    ``injections``: list of ``(pos (C,), vals (C, B, m))``: chain c receives ``vals[c]`` at
    ``h_{pos[c]}``. Returns ``(dWhh (C, m, m), dWxh (C, n, m), dbh (C, m))``.
    """
    zs, x = p.zs, p.x
    t_len, b, m = zs.shape
    dt = zs.dtype

    def body(carry, inp):
        e, a_hh, a_xh, a_b = carry
        j, zp, xj = inp
        for pos, val in injections:
            e = e + jnp.where((pos == j)[:, None, None], val, 0.0)
        c = to_drive(p, e)
        a_hh = a_hh + jnp.einsum("bi,cbk->cik", zp, c)
        a_xh = a_xh + jnp.einsum("bi,cbk->cik", xj, c)
        a_b = a_b + jnp.sum(c, axis=1)
        e = pull(p, e, zp)
        return (e, a_hh, a_xh, a_b), None

    init = (jnp.zeros((n_chains, b, m), dt), jnp.zeros((n_chains, m, m), dt),
            jnp.zeros((n_chains, x.shape[-1], m), dt), jnp.zeros((n_chains, m), dt))
    (_, a_hh, a_xh, a_b), _ = jax.lax.scan(
        body, init, (jnp.arange(t_len), p.zprev, x), reverse=True)
    return a_hh, a_xh, a_b


def unrolled_map(p: Pass, terms: LayerTerms):
    """Per-layer ``(grad Whh, grad Wxh, grad bh)``, each cotangent carried down to t = 0; the
    Wxh-only cotangents run as a second set of T chains whose Whh and bh parts are dropped."""
    t_len = p.zs.shape[0]
    injections = [(jnp.asarray(pos), cot) for pos, cot in terms.full]
    n_chains = t_len
    if terms.wxh_only:
        none = jnp.full((t_len,), -1, jnp.int32)
        injections = [(jnp.concatenate([pos, none.astype(pos.dtype)]),
                       jnp.concatenate([cot, jnp.zeros_like(cot)])) for pos, cot in injections]
        injections += [(jnp.concatenate([none, jnp.asarray(pos, jnp.int32)]),
                        jnp.concatenate([jnp.zeros_like(cot), cot])) for pos, cot in terms.wxh_only]
        n_chains = 2 * t_len
    c_hh, c_xh, c_b = _chain(p, injections, n_chains)
    xh = terms.direct_xh + c_xh[:t_len]
    if terms.wxh_only:
        xh = xh + c_xh[t_len:]
    return terms.direct_hh + c_hh[:t_len], xh, terms.direct_b + c_b[:t_len]
