"""Literal, slow transcription of RNN-LRA-diff on the leaky cell (docs/lra.md#other-cells): every
reading (fixed-target, printed, the published-code options), with Algorithm 2's regularizer and the
published code's, used as the oracle of ``localrnn.rules.lra`` with ``cell=leaky``.

Written per step from the cell's one-step map and plain autodiff, sharing nothing with the fast
code (only ``Params`` and the loss and norm helpers of ``oracles.lra_literal``):

    h_t = S_t(h_{t-1}; theta) = (1 - 1/tau) h_{t-1} + (1/tau)(tanh(h_{t-1}) Whh + x_t Wxh + bh),  h_{-1} = 0

For each step: the target (K steps on the candidate hbar of h_{t-1}, each the gradient of the step's
local loss through S_t), the local loss, and its gradient in the weights with h_{t-1} held
(one_step) or through the whole forward pass (unrolled). Omega's Jacobian is the vjp of S_t.
Eager and slow: keep T, B, m small.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from oracles.lra_literal import _global_loss, _local_loss, _norm, omega_code

tanh = jnp.tanh


def lra_leaky_literal(params, x, y, *, tau, inner_steps=10, target_step=1.0, c0=1.0, c1=1.0,
                      reg_lambda=0.0, force_normalize=False, local_loss="mse", loss="cross_entropy",
                      update_layer0=False, local_grads="one_step", inner_reference="target",
                      normalization="algorithm1", layer_loss="own", regularizer="algorithm2",
                      printed=False):
    """Returns a dict with the keys of ``lra_core``. ``printed``: the top loop takes one step (the
    printed reading; pass ``inner_reference="forward"`` with it)."""
    K, gamma, lam = inner_steps, target_step, reg_lambda
    L, E = _local_loss(local_loss), _global_loss(loss)
    Wxh, Whh, bh, Why, by = params
    theta = (Wxh, Whh, bh)
    T, B, m = x.shape[0], x.shape[1], Whh.shape[0]
    zero = jnp.zeros((B, m), Whh.dtype)
    leak, gain = 1.0 - 1.0 / tau, 1.0 / tau
    own_of = lambda t: layer_loss == "own" or t == T - 1  # noqa: E731
    s_of = lambda t: t if own_of(t) else t + 1  # noqa: E731  step of ell_t's first argument

    def S(t, h_prev, th=theta):
        wxh, whh, b = th
        return leak * h_prev + gain * (tanh(h_prev) @ whh + x[t] @ wxh + b)

    def run(th, eps=None):
        hs, h = [], zero
        for t in range(T):
            h = S(t, h, th) + (eps[t] if eps and t in eps else 0.0)
            hs.append(h)
        return hs

    def down(delta, whh, h):
        """delta dS/dh^T: the error at a step carried to the one below (autodiff of S)."""
        return jax.vjp(lambda a: S(0, a, (Wxh, whh, bh)), h)[1](delta)[0]

    def omega(delta, whh, h):  # Algorithm 2 on the leaky map
        return (_norm(down(delta, whh, h)) / _norm(delta) - 1.0) ** 2

    def omega_pub(g, whh, h):  # the published code's Omega on the leaky map: tanh' of h[b, b]
        scaled = ((g @ whh.T).T * jnp.diag(1.0 - tanh(h) ** 2)).T
        return (_norm(leak * g + gain * scaled) / _norm(g) - 1.0) ** 2

    def Normalize(D, c):
        n = float(_norm(D))
        return c * D / n if c > 0 and n > 0 and (force_normalize or n >= c) else D

    hs = run(theta)
    zs = [tanh(h) for h in hs]
    F = lambda t, a, th=theta: tanh(S(t, a, th))  # noqa: E731
    reg_alg2 = lam != 0 and regularizer == "algorithm2"
    reg_pub = lam != 0 and regularizer == "reference"

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
        return tanh(hhat[t]) if own_of(t) else F(t + 1, hhat[t])

    def ell_through(t, h_t, th=theta, h_target=None):
        """ell_t from h_t (the target's pre-activation h_target, default the constant hhat_t)."""
        first = tanh(h_t) if own_of(t) else F(t + 1, h_t, th)
        if h_target is None:
            return L(first, second(t))
        return L(first, tanh(h_target) if own_of(t) else F(t + 1, h_target, th))

    def ell_unrolled(t, th, eps=None):
        """ell_t through the whole forward pass; the target h_t(theta) + (hhat_t - h_t) moves too."""
        h_t = run(th, eps)[t]
        return ell_through(t, h_t, th, h_t + (hhat[t] - hs[t]))

    def inner_gradient(t, k, hbar):
        """The k-th step's gradient in the search for hhat_{t-1} (+ lambda dOmega/dhbar)."""
        if inner_reference == "forward" and k == 0:
            if local_grads == "unrolled":
                g = jax.grad(lambda e: ell_unrolled(t, theta, {t - 1: e}))(zero)
            else:
                g = jax.grad(lambda a: ell_through(t, S(t, a)))(hbar)
            if reg_alg2:
                delta = jax.grad(lambda h: ell_through(t, h))(hs[t])
                return g + lam * jax.grad(lambda hb: omega(delta, Whh, hb))(hbar)
            if reg_pub:  # d ell_t / d z_t with h_t held
                gz = jax.grad(lambda z: L(z, second(t)) if own_of(t) else L(
                    tanh(leak * hs[t] + gain * (z @ Whh + x[t + 1] @ Wxh + bh)), second(t)))(zs[t])
                return g + lam * jax.grad(lambda hb: omega_pub(gz, Whh, hb))(hbar)
            return g
        ref = tanh(hhat[t]) if inner_reference == "target" else zs[t]
        g = jax.grad(lambda hb: L(F(t, hb), ref))(hbar)
        if reg_alg2:
            delta = jax.grad(lambda a: L(tanh(a), ref))(S(t, hbar))
            return g + lam * jax.grad(lambda hb: omega(delta, Whh, hb))(hbar)
        if reg_pub:
            gp = jax.grad(lambda q: L(q, ref))(F(t, hbar))
            return g + lam * jax.grad(lambda hb: omega_pub(gp, Whh, hb))(hbar)
        return g

    # targets of steps T-2 .. 0, each from the step above: K steps of hbar from h_{t-1}
    for t in range(T - 1, 0, -1):
        hbar = hs[t - 1]
        for k in range(K):
            D = Normalize(inner_gradient(t, k, hbar), c1)
            hbar = hbar - gamma * D
        hhat[t - 1], d_last[t - 1] = hbar, D

    def layer(t):
        """``(gWxh, gWhh, gbh)`` of ell_t, normalized (zero where layer t is not updated)."""
        s = s_of(t)
        if t == 0 and not update_layer0:
            return [jnp.zeros_like(w) for w in theta]
        if local_grads == "unrolled":
            gw = list(jax.grad(lambda th: ell_unrolled(t, th))(theta))
        else:  # h_{s-1} held: one step of S into h_s, the second argument constant
            gw = list(jax.grad(lambda th: L(tanh(S(s, hs[s - 1] if s else zero, th)), second(t)))(theta))
        if lam != 0 and s >= 1:
            delta = jax.grad(lambda h: L(tanh(h), second(t)))(hs[s])

            def h_below(th):  # h_{s-1} from the weights: unrolled, or one step from h_{s-2}
                if local_grads == "unrolled":
                    return run(th)[s - 1]
                return S(s - 1, hs[s - 2] if s >= 2 else zero, th)

            if reg_alg2:
                go = jax.grad(lambda th: omega(delta, th[1], h_below(th)))(theta)
                gw = [a + lam * b for a, b in zip(gw, go)]
            elif t <= T - 2 and float(ell_unrolled(t, theta)) != 0.0:
                gw[0] = gw[0] + lam * jax.grad(lambda th: omega_pub(delta, th[1], h_below(th)))(theta)[0]
        gxh, ghh, gb = gw
        return [Normalize(gxh, c0), jnp.zeros_like(Whh) if t == 0 else Normalize(ghh, c0),
                Normalize(gb, c0) if normalization == "algorithm1" else gb]

    rows = [layer(t) for t in range(T)]
    per = {name: [r[i] for r in rows] for i, name in enumerate(("Wxh", "Whh", "bh"))}
    ells = [ell_unrolled(t, theta) for t in range(T)]
    res = {f"grad_{k}_per_layer": jnp.stack(v) for k, v in per.items()}
    res.update({f"grad_{k}": sum(v[1:], v[0]) for k, v in per.items()})
    res.update(grad_Why=gWhy, grad_by=gby, local_loss=jnp.stack(ells), loss=E(zs[-1] @ Why + by, y),
               target_displacement_norm=jnp.stack([_norm(d) for d in d_last]))
    return res
