"""The per-step literal transcription of RNN-LRA-diff that the cell oracles share
(``lra_leaky_literal``, ``lra_diagonal_literal``): every reading, written once in terms of a cell's
one-step map and plain autodiff, sharing nothing with the fast code.

    a_t = S(t, a_{t-1}; theta),  a_{-1} = zero,  z_t = tanh(a_t),  out = z_{T-1} Why + by

The local losses compare l_t = sigma(a_t) with sigma(hhat_t): sigma = tanh (local_space="activity"),
or the identity (local_space="state", the diagonal cells' reading); the readout always reads z_t.
For each step: the target (K steps on the candidate hbar of a_{t-1}, each the gradient of the step's
local loss through S_t), the local loss, and its gradient in theta with a_{t-1} held (one_step) or
through the whole forward pass (unrolled). Algorithm 2's Omega takes its Jacobian from the vjp of
S_t (0 where the error is 0). Eager and slow: keep T, B, m small.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from oracles.lra_literal import _global_loss, _local_loss, _norm, omega_code

tanh = jnp.tanh


class Published(NamedTuple):
    """The published code's Omega on a cell (option (e)): ``omega(g, theta, h)`` on a recurrent step,
    ``z_step(t, z, h_t)`` the pre-activation of step t+1 from the activity ``z`` with ``h_t`` held,
    and the one parameter its layer term feeds (``"Wxh"``)."""

    omega: Callable
    z_step: Callable
    feeds: str


def lra_step_literal(step: Callable, theta: dict, zero, x, y, Why, by, *, finish: Callable,
                     published: Published | None = None, inner_steps=10, target_step=1.0, c0=1.0,
                     c1=1.0, reg_lambda=0.0, force_normalize=False, local_loss="mse",
                     loss="cross_entropy", update_layer0=False, local_grads="one_step",
                     inner_reference="target", normalization="algorithm1", layer_loss="own",
                     regularizer="algorithm2", printed=False, local_space="activity"):
    """A dict with the keys of ``lra_core`` (``grad_<name>`` for each entry of ``theta``).

    ``step(t, a, theta)``: the cell's step t; ``finish(t, grads, normalize)``: layer t's update from its gradient dict (``normalize(D)`` is
    Normalize(D, c0)); ``published``: needed when ``regularizer="reference"`` and lambda != 0.
    ``printed``: the top loop takes one step (the printed reading; pass ``inner_reference="forward"``).
    """
    K, gamma, lam = inner_steps, target_step, reg_lambda
    L, E = _local_loss(local_loss), _global_loss(loss)
    T = x.shape[0]
    own_of = lambda t: layer_loss == "own" or t == T - 1  # noqa: E731
    s_of = lambda t: t if own_of(t) else t + 1  # noqa: E731  step of ell_t's first argument
    reg_alg2 = lam != 0 and regularizer == "algorithm2"
    reg_pub = lam != 0 and regularizer == "reference"
    assert published is not None or not reg_pub

    def S(t, a, th=theta):  # the cell's step t, at the given parameters by default
        return step(t, a, th)

    def run(th, eps=None):
        hs, a = [], zero
        for t in range(T):
            a = S(t, a, th) + (eps[t] if eps and t in eps else 0.0)
            hs.append(a)
        return hs

    def down(delta, th, a):
        """delta dS/da^T: the error at a step carried to the one below (autodiff of S)."""
        return jax.vjp(lambda aa: S(0, aa, th), a)[1](delta)[0]

    def omega(delta, th, a):  # Algorithm 2 on the cell's step; 0 where the error is 0
        if float(_norm(delta)) == 0.0:
            return 0.0 * jnp.sum(a)
        return (_norm(down(delta, th, a)) / _norm(delta) - 1.0) ** 2

    def Normalize(D, c):
        n = float(_norm(D))
        return c * D / n if c > 0 and n > 0 and (force_normalize or n >= c) else D

    sigma = {"activity": tanh, "state": lambda a: a}[local_space]
    hs = run(theta)
    zs = [tanh(a) for a in hs]
    ls = [sigma(a) for a in hs]
    F = lambda t, a, th=theta: sigma(S(t, a, th))  # noqa: E731

    # output layer and top target
    gWhy, gby = jax.grad(lambda w, b: E(zs[-1] @ w + b, y), argnums=(0, 1))(Why, by)
    if reg_pub:
        gE = jax.grad(lambda o: E(o, y))(zs[-1] @ Why + by)
        gWhy = gWhy + lam * jax.grad(lambda w: omega_code(gE, w, hs[-1]))(Why)
    if normalization == "reference":
        gWhy = Normalize(gWhy, c0)
    hhat, d_last = [None] * T, [None] * T
    hbar = hs[-1]
    for _ in range(1 if printed else K):
        D = jax.grad(lambda hb: E(tanh(hb) @ Why + by, y))(hbar)
        if reg_pub:
            gE = jax.grad(lambda o: E(o, y))(tanh(hbar) @ Why + by)
            D = D + lam * jax.grad(lambda hb: omega_code(gE, Why, hb))(hbar)
        if normalization == "reference":
            D = Normalize(D, c1)
        hbar = hbar - gamma * D
    hhat[-1], d_last[-1] = hbar, D

    def second(t):
        """ell_t's second argument, a constant: zhat_t, or F_{t+1}(hhat_t) when shifted."""
        return sigma(hhat[t]) if own_of(t) else F(t + 1, hhat[t])

    def ell_through(t, a_t, th=theta, a_target=None):
        """ell_t from a_t (the target's pre-activation a_target, default the constant hhat_t)."""
        first = sigma(a_t) if own_of(t) else F(t + 1, a_t, th)
        if a_target is None:
            return L(first, second(t))
        return L(first, sigma(a_target) if own_of(t) else F(t + 1, a_target, th))

    def ell_unrolled(t, th, eps=None):
        """ell_t through the whole forward pass; the target a_t(theta) + (hhat_t - a_t) moves too."""
        a_t = run(th, eps)[t]
        return ell_through(t, a_t, th, a_t + (hhat[t] - hs[t]))

    def inner_gradient(t, k, hbar):
        """The k-th step's gradient in the search for hhat_{t-1} (+ lambda dOmega/dhbar)."""
        if inner_reference == "forward" and k == 0:
            if local_grads == "unrolled":
                g = jax.grad(lambda e: ell_unrolled(t, theta, {t - 1: e}))(zero)
            else:
                g = jax.grad(lambda a: ell_through(t, S(t, a)))(hbar)
            if reg_alg2:
                delta = jax.grad(lambda a: ell_through(t, a))(hs[t])
                return g + lam * jax.grad(lambda hb: omega(delta, theta, hb))(hbar)
            if reg_pub:  # d ell_t / d z_t with h_t held
                gz = jax.grad(lambda z: L(z, second(t)) if own_of(t) else L(
                    tanh(published.z_step(t, z, hs[t])), second(t)))(zs[t])
                return g + lam * jax.grad(lambda hb: published.omega(gz, theta, hb))(hbar)
            return g
        ref = sigma(hhat[t]) if inner_reference == "target" else ls[t]
        g = jax.grad(lambda hb: L(F(t, hb), ref))(hbar)
        if reg_alg2:
            delta = jax.grad(lambda a: L(sigma(a), ref))(S(t, hbar))
            return g + lam * jax.grad(lambda hb: omega(delta, theta, hb))(hbar)
        if reg_pub:
            gp = jax.grad(lambda q: L(q, ref))(F(t, hbar))
            return g + lam * jax.grad(lambda hb: published.omega(gp, theta, hb))(hbar)
        return g

    # targets of steps T-2 .. 0, each from the step above: K steps of hbar from a_{t-1}
    for t in range(T - 1, 0, -1):
        hbar = hs[t - 1]
        for k in range(K):
            D = Normalize(inner_gradient(t, k, hbar), c1)
            hbar = hbar - gamma * D
        hhat[t - 1], d_last[t - 1] = hbar, D

    def layer(t):
        """Layer t's update (zero where layer t is not updated)."""
        s = s_of(t)
        if t == 0 and not update_layer0:
            return {k: jnp.zeros_like(v) for k, v in theta.items()}
        if local_grads == "unrolled":
            gw = jax.grad(lambda th: ell_unrolled(t, th))(theta)
        else:  # a_{s-1} held: one step of S into a_s, the second argument constant
            gw = jax.grad(lambda th: L(sigma(S(s, hs[s - 1] if s else zero, th)), second(t)))(theta)
        if lam != 0 and s >= 1:
            delta = jax.grad(lambda a: L(sigma(a), second(t)))(hs[s])

            def a_below(th):  # a_{s-1} from the weights: unrolled, or one step from a_{s-2}
                if local_grads == "unrolled":
                    return run(th)[s - 1]
                return S(s - 1, hs[s - 2] if s >= 2 else zero, th)

            if reg_alg2:
                go = jax.grad(lambda th: omega(delta, th, a_below(th)))(theta)
                gw = {k: gw[k] + lam * go[k] for k in theta}
            elif t <= T - 2 and float(ell_unrolled(t, theta)) != 0.0:
                w = published.feeds
                gw[w] = gw[w] + lam * jax.grad(lambda th: published.omega(delta, th, a_below(th)))(theta)[w]
        return finish(t, gw, lambda d: Normalize(d, c0))

    rows = [layer(t) for t in range(T)]
    res = {f"grad_{k}_per_layer": jnp.stack([r[k] for r in rows]) for k in theta}
    res.update({f"grad_{k}": sum((r[k] for r in rows[1:]), rows[0][k]) for k in theta})
    res.update(grad_Why=gWhy, grad_by=gby, local_loss=jnp.stack([ell_unrolled(t, theta) for t in range(T)]),
               loss=E(zs[-1] @ Why + by, y), target_displacement_norm=jnp.stack([_norm(d) for d in d_last]))
    return res
