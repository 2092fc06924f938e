"""Literal, slow transcription of RNN-LRA-diff on the diagonal cells (docs/lra.md#the-diagonal-cells):
the fixed-target and printed readings, the published-code options (a)-(d) and Algorithm 2's
regularizer, used as the oracle of ``localrnn.rules.lra`` with ``cell=diagonal`` / ``diagonal-real``.

Written per step from the cell's equations in complex arithmetic and plain autodiff, sharing nothing
with the package (only the loss and norm helpers of ``oracles.lra_literal``):

    lambda = exp(-exp(nu) + i theta),  gamma = sqrt(1 - lambda conj(lambda)),  B = B_re + i B_im
    h_t = lambda h_{t-1} + gamma (x_t B),   a_t = [Re h_t, Im h_t],   z_t = tanh(a_t)

(real cell: lambda = exp(-exp(nu)), B real, a_t = h_t). The step S_t(a_{t-1}; rec) is written on
the real vector a, rec = the recurrent parameters (nu, theta, B_re, B_im | nu, B). For each step:
the target (K steps on the candidate hbar of a_{t-1}, each the gradient of the step's local loss
through S_t), the local loss, and its gradient in rec with a_{t-1} held (one_step) or through the
whole forward pass (unrolled); every layer's update of every array is Normalize(., c0)'d. Omega's
Jacobian is the vjp of S_t in a. Eager and slow: keep T, B, m small.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from oracles.lra_literal import _global_loss, _local_loss, _norm

tanh = jnp.tanh


def lra_diagonal_literal(params, x, y, *, inner_steps=10, target_step=1.0, c0=1.0, c1=1.0,
                         reg_lambda=0.0, force_normalize=False, local_loss="mse", loss="cross_entropy",
                         update_layer0=False, local_grads="one_step", inner_reference="target",
                         normalization="algorithm1", layer_loss="own", printed=False):
    """Returns a dict with the keys of ``lra_core`` on a diagonal cell. ``printed``: the top loop takes
    one step (the printed reading; pass ``inner_reference="forward"`` with it)."""
    K, gamma_t, lam_reg = inner_steps, target_step, reg_lambda
    L, E = _local_loss(local_loss), _global_loss(loss)
    complex_cell = hasattr(params, "theta")
    names = ("nu", "theta", "B_re", "B_im") if complex_cell else ("nu", "B")
    rec = {k: getattr(params, k) for k in names}
    Why, by = params.Why, params.by
    T, Bn, m = x.shape[0], x.shape[1], params.nu.shape[0]
    width = 2 * m if complex_cell else m
    zero = jnp.zeros((Bn, width), params.nu.dtype)
    own_of = lambda t: layer_loss == "own" or t == T - 1  # noqa: E731
    s_of = lambda t: t if own_of(t) else t + 1  # noqa: E731  step of ell_t's first argument

    def S(t, a_prev, r=rec):
        """a_t from a_{t-1}: one step of the cell, in complex arithmetic."""
        if complex_cell:
            lam = jnp.exp(-jnp.exp(r["nu"]) + 1j * r["theta"])
            gain = jnp.sqrt(1.0 - jnp.real(lam * jnp.conj(lam)))
            h = lam * (a_prev[:, :m] + 1j * a_prev[:, m:]) + gain * (x[t] @ (r["B_re"] + 1j * r["B_im"]))
            return jnp.concatenate([jnp.real(h), jnp.imag(h)], axis=1)
        lam = jnp.exp(-jnp.exp(r["nu"]))
        return lam * a_prev + jnp.sqrt(1.0 - lam * lam) * (x[t] @ r["B"])

    def run(r, eps=None):
        hs, a = [], zero
        for t in range(T):
            a = S(t, a, r) + (eps[t] if eps and t in eps else 0.0)
            hs.append(a)
        return hs

    def down(delta, r, a):
        """delta dS/da^T: the error at a step carried to the one below (autodiff of S)."""
        return jax.vjp(lambda aa: S(0, aa, r), a)[1](delta)[0]

    def omega(delta, r, a):  # Algorithm 2 on the diagonal step; 0 where the error is 0 (a target
        if float(_norm(delta)) == 0.0:  # that reached the forward pass exactly)
            return 0.0 * jnp.sum(a)
        return (_norm(down(delta, r, a)) / _norm(delta) - 1.0) ** 2

    def Normalize(D, c):
        n = float(_norm(D))
        return c * D / n if c > 0 and n > 0 and (force_normalize or n >= c) else D

    hs = run(rec)
    zs = [tanh(a) for a in hs]
    F = lambda t, a, r=rec: tanh(S(t, a, r))  # noqa: E731

    # output layer and top target
    gWhy, gby = jax.grad(lambda w, b: E(zs[-1] @ w + b, y), argnums=(0, 1))(Why, by)
    if normalization == "reference":
        gWhy = Normalize(gWhy, c0)
    hhat, d_last = [None] * T, [None] * T
    hbar = hs[-1]
    for _ in range(1 if printed else K):
        D = jax.grad(lambda hb: E(tanh(hb) @ Why + by, y))(hbar)
        if normalization == "reference":
            D = Normalize(D, c1)
        hbar = hbar - gamma_t * D
    hhat[-1], d_last[-1] = hbar, D

    def second(t):
        """ell_t's second argument, a constant: zhat_t, or F_{t+1}(hhat_t) when shifted."""
        return tanh(hhat[t]) if own_of(t) else F(t + 1, hhat[t])

    def ell_through(t, a_t, r=rec, a_target=None):
        """ell_t from a_t (the target's pre-activation a_target, default the constant hhat_t)."""
        first = tanh(a_t) if own_of(t) else F(t + 1, a_t, r)
        if a_target is None:
            return L(first, second(t))
        return L(first, tanh(a_target) if own_of(t) else F(t + 1, a_target, r))

    def ell_unrolled(t, r, eps=None):
        """ell_t through the whole forward pass; the target a_t(rec) + (hhat_t - a_t) moves too."""
        a_t = run(r, eps)[t]
        return ell_through(t, a_t, r, a_t + (hhat[t] - hs[t]))

    def inner_gradient(t, k, hbar):
        """The k-th step's gradient in the search for hhat_{t-1} (+ lambda dOmega/dhbar)."""
        if inner_reference == "forward" and k == 0:
            if local_grads == "unrolled":
                g = jax.grad(lambda e: ell_unrolled(t, rec, {t - 1: e}))(zero)
            else:
                g = jax.grad(lambda a: ell_through(t, S(t, a)))(hbar)
            if lam_reg != 0:
                delta = jax.grad(lambda a: ell_through(t, a))(hs[t])
                return g + lam_reg * jax.grad(lambda hb: omega(delta, rec, hb))(hbar)
            return g
        ref = tanh(hhat[t]) if inner_reference == "target" else zs[t]
        g = jax.grad(lambda hb: L(F(t, hb), ref))(hbar)
        if lam_reg != 0:
            delta = jax.grad(lambda a: L(tanh(a), ref))(S(t, hbar))
            return g + lam_reg * jax.grad(lambda hb: omega(delta, rec, hb))(hbar)
        return g

    # targets of steps T-2 .. 0, each from the step above: K steps of hbar from a_{t-1}
    for t in range(T - 1, 0, -1):
        hbar = hs[t - 1]
        for k in range(K):
            D = Normalize(inner_gradient(t, k, hbar), c1)
            hbar = hbar - gamma_t * D
        hhat[t - 1], d_last[t - 1] = hbar, D

    def layer(t):
        """``{name: update}`` of ell_t, each array normalized (zero where layer t is not updated)."""
        s = s_of(t)
        if t == 0 and not update_layer0:
            return {k: jnp.zeros_like(v) for k, v in rec.items()}
        if local_grads == "unrolled":
            gw = jax.grad(lambda r: ell_unrolled(t, r))(rec)
        else:  # a_{s-1} held: one step of S into a_s, the second argument constant
            gw = jax.grad(lambda r: L(tanh(S(s, hs[s - 1] if s else zero, r)), second(t)))(rec)
        if lam_reg != 0 and s >= 1:
            delta = jax.grad(lambda a: L(tanh(a), second(t)))(hs[s])

            def a_below(r):  # a_{s-1} from the parameters: unrolled, or one step from a_{s-2}
                if local_grads == "unrolled":
                    return run(r)[s - 1]
                return S(s - 1, hs[s - 2] if s >= 2 else zero, r)

            go = jax.grad(lambda r: omega(delta, r, a_below(r)))(rec)
            gw = {k: gw[k] + lam_reg * go[k] for k in rec}
        if t == 0 and complex_cell:  # step 0 does not depend on theta: its derivative is 0 (to rounding)
            gw["theta"] = jnp.zeros_like(gw["theta"])
        return {k: Normalize(v, c0) for k, v in gw.items()}

    rows = [layer(t) for t in range(T)]
    res = {f"grad_{k}_per_layer": jnp.stack([r[k] for r in rows]) for k in rec}
    res.update({f"grad_{k}": sum(r[k] for r in rows) for k in rec})
    res.update(grad_Why=gWhy, grad_by=gby, local_loss=jnp.stack([ell_unrolled(t, rec) for t in range(T)]),
               loss=E(zs[-1] @ Why + by, y), target_displacement_norm=jnp.stack([_norm(d) for d in d_last]))
    return res
