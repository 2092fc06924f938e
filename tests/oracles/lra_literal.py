"""Literal, slow transcription of RNN-LRA-diff in the fixed-target reading (docs/lra.md), its
regularizer (Algorithm 2) and the published-code options, used as the oracle for
``localrnn.rules.lra``.

Plain Python loops over t and k; every derivative is ``jax.grad`` of a local loss written
out as docs/lra.md states it (no closed forms); the "unrolled" derivatives recompute the whole
forward pass from the weights, like the published code's autograd graph. It shares nothing
with the fast code except the ``Params`` container (and ``init_params`` for the test problems).
Eager and slow: keep T, B, m small.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from localrnn.model import Params, init_params

tanh = jnp.tanh


def _norm(a):
    return jnp.sqrt(jnp.sum(a * a))


def _local_loss(name):
    if name == "mse":
        return lambda a, b: jnp.mean((a - b) ** 2)
    return lambda a, b: jnp.mean(jnp.log(1.0 + (a - b) ** 2))


def _global_loss(name):
    if name == "cross_entropy":
        return lambda out, y: jnp.mean(jnp.sum(-y * jnp.log(jax.nn.softmax(out, axis=1)), axis=1))
    return lambda out, y: jnp.mean((out - y) ** 2)


def omega_alg2(delta, w, h):
    """Algorithm 2, line 3: J = (delta W^T) * (1 - tanh(h)^2); (||J|| / ||delta|| - 1)^2."""
    j = (delta @ w.T) * (1.0 - tanh(h) ** 2)
    return (_norm(j) / _norm(delta) - 1.0) ** 2


def omega_code(g, w, h):
    """Published-code option (e), as torch computes it: (g W^T)^T * diag(1 - tanh(h)^2)."""
    d_tanh = jnp.diag(1.0 - tanh(h) ** 2)
    term = (g @ w.T).T * d_tanh
    return (_norm(term) / _norm(g) - 1.0) ** 2


def lra_literal(params, x, y, *, inner_steps=10, target_step=1.0, c0=1.0, c1=1.0, reg_lambda=0.0,
                force_normalize=False, local_loss="mse", loss="cross_entropy", update_layer0=False,
                local_grads="one_step", inner_reference="target", normalization="algorithm1",
                layer_loss="own", regularizer="algorithm2", variant="fixed_target"):
    """Returns a dict with the same keys as ``localrnn.rules.lra.lra_core``."""
    if variant == "reference":
        raise ValueError("pass the six published-code options explicitly to the oracle")
    K, gamma, lam = inner_steps, target_step, reg_lambda
    L = _local_loss(local_loss)
    E_fn = _global_loss(loss)
    Wxh, Whh, bh, Why, by = params
    theta = (Wxh, Whh, bh)
    T = x.shape[0]
    B, m = x.shape[1], Whh.shape[0]
    zeros = jnp.zeros((B, m), Whh.dtype)
    reg = lam != 0
    unrolled = local_grads == "unrolled"
    shifted = layer_loss == "shifted"

    def Normalize(D, c):
        n = float(_norm(D))
        if c > 0 and n > 0 and (force_normalize or n >= c):
            D = c * D / n
        return D

    def forward(th, eps=None):
        wxh, whh, b_h = th
        hs = []
        for t in range(T):
            if t == 0:
                h = x[0] @ wxh + b_h
            else:
                h = tanh(hs[t - 1]) @ whh + x[t] @ wxh + b_h
            if eps is not None and t in eps:
                h = h + eps[t]
            hs.append(h)
        return hs

    hs = forward(theta)
    zs = [tanh(h) for h in hs]
    out = zs[-1] @ Why + by
    E = E_fn(out, y)

    # step 2: output layer
    gWhy, gby = jax.grad(lambda w, b: E_fn(zs[-1] @ w + b, y), argnums=(0, 1))(Why, by)
    if reg and regularizer == "reference":
        gE = jax.grad(lambda o: E_fn(o, y))(out)
        gWhy = gWhy + lam * jax.grad(lambda w: omega_code(gE, w, hs[-1]))(Why)
    if normalization == "reference":
        gWhy = Normalize(gWhy, c0)

    # step 3: top target
    hhat = [None] * T
    d_last = [None] * T
    hbar = hs[-1]
    for k in range(K):
        D = jax.grad(lambda hb: E_fn(tanh(hb) @ Why + by, y))(hbar)
        if reg and regularizer == "reference":
            gE = jax.grad(lambda o: E_fn(o, y))(tanh(hbar) @ Why + by)
            D = D + lam * jax.grad(lambda hb: omega_code(gE, Why, hb))(hbar)
        if normalization == "reference":
            D = Normalize(D, c1)
        hbar = hbar - gamma * D
    hhat[T - 1], d_last[T - 1] = hbar, D

    def F(t, a, th=theta):
        """Layer-t activity computed from a candidate pre-activation a of layer t-1."""
        wxh, whh, b_h = th
        return tanh(tanh(a) @ whh + x[t] @ wxh + b_h)

    def own_type(t):
        return (not shifted) or t == T - 1

    def first_index(t):
        return t if own_type(t) else t + 1

    def second_arg(t):
        """Second argument of ell_t as a constant (values only)."""
        if own_type(t):
            return tanh(hhat[t])
        return F(t + 1, hhat[t])

    def ell_unrolled(t, th, eps=None):
        """ell_t through the whole forward graph; targets h_t(theta) + const displacement."""
        hs_ = forward(th, eps)
        delta_t = hhat[t] - hs[t]
        if own_type(t):
            return L(tanh(hs_[t]), tanh(hs_[t] + delta_t))
        return L(tanh(hs_[t + 1]), F(t + 1, hs_[t] + delta_t, th))

    def ell_one_step(t, th):
        """ell_t with the second argument constant and the first one step from const z_{s-1}."""
        wxh, whh, b_h = th
        s = first_index(t)
        z_below = zs[s - 1] if s >= 1 else zeros
        return L(tanh(z_below @ whh + x[s] @ wxh + b_h), second_arg(t))

    def ell_of_hprev_one_step(t, a):
        """ell_t as a function of h_{t-1} through the forward steps to its first argument."""
        h_t = tanh(a) @ Whh + x[t] @ Wxh + bh
        if own_type(t):
            return L(tanh(h_t), second_arg(t))
        return L(F(t + 1, h_t), second_arg(t))

    def first_arg_delta(t):
        """d ell_t / d h_s through the first argument (second constant)."""
        return jax.grad(lambda h: L(tanh(h), second_arg(t)))(hs[first_index(t)])

    def first_arg_post_grad_at_t(t):
        """d ell_t / d z_t through the first argument (second constant)."""
        if own_type(t):
            return jax.grad(lambda z: L(z, second_arg(t)))(zs[t])
        return jax.grad(lambda z: L(tanh(z @ Whh + x[t + 1] @ Wxh + bh), second_arg(t)))(zs[t])

    def first_arg_pre_delta_at_t(t):
        """d ell_t / d h_t through the first argument (second constant)."""
        if own_type(t):
            return jax.grad(lambda h: L(tanh(h), second_arg(t)))(hs[t])
        return jax.grad(lambda h: L(F(t + 1, h), second_arg(t)))(hs[t])

    # step 4: targets, t = T-1 .. 1
    for t in range(T - 1, 0, -1):
        zhat_t = tanh(hhat[t])
        hbar = hs[t - 1]
        for k in range(K):
            if inner_reference == "forward" and k == 0:
                if unrolled:
                    g = jax.grad(lambda e: ell_unrolled(t, theta, {t - 1: e}))(zeros)
                else:
                    g = jax.grad(lambda a: ell_of_hprev_one_step(t, a))(hs[t - 1])
                if reg and regularizer == "algorithm2":
                    delta = first_arg_pre_delta_at_t(t)
                    g = g + lam * jax.grad(lambda hb: omega_alg2(delta, Whh, hb))(hbar)
                if reg and regularizer == "reference":
                    gz = first_arg_post_grad_at_t(t)
                    g = g + lam * jax.grad(lambda hb: omega_code(gz, Whh, hb))(hbar)
            else:
                if inner_reference == "target":
                    step_loss = lambda hb: L(F(t, hb), zhat_t)  # noqa: E731
                    ref = zhat_t
                else:
                    step_loss = lambda hb: L(zs[t], F(t, hb))  # noqa: E731
                    ref = zs[t]
                g = jax.grad(step_loss)(hbar)
                if reg and regularizer == "algorithm2":
                    a_pred = tanh(hbar) @ Whh + x[t] @ Wxh + bh
                    delta = jax.grad(lambda a: L(tanh(a), ref))(a_pred)
                    g = g + lam * jax.grad(lambda hb: omega_alg2(delta, Whh, hb))(hbar)
                if reg and regularizer == "reference":
                    gp = jax.grad(lambda p: L(p, ref))(F(t, hbar))
                    g = g + lam * jax.grad(lambda hb: omega_code(gp, Whh, hb))(hbar)
            D = Normalize(g, c1)
            hbar = hbar - gamma * D
        hhat[t - 1], d_last[t - 1] = hbar, D

    # weight updates per layer
    per = {"Wxh": [], "Whh": [], "bh": []}
    ells = []
    for t in range(T):
        ells.append(ell_unrolled(t, theta))
        if t == 0 and not update_layer0:
            per["Wxh"].append(jnp.zeros_like(Wxh))
            per["Whh"].append(jnp.zeros_like(Whh))
            per["bh"].append(jnp.zeros_like(bh))
            continue
        if unrolled:
            gw = jax.grad(lambda th: ell_unrolled(t, th))(theta)
        else:
            gw = jax.grad(lambda th: ell_one_step(t, th))(theta)
        gw = list(gw)
        s = first_index(t)
        if reg and s >= 1:
            delta = first_arg_delta(t)

            def h_below(th):
                if unrolled:
                    return forward(th)[s - 1]
                wxh, whh, b_h = th
                z2 = zs[s - 2] if s >= 2 else zeros
                return z2 @ whh + x[s - 1] @ wxh + b_h

            if regularizer == "algorithm2":
                go = jax.grad(lambda th: omega_alg2(delta, th[1], h_below(th)))(theta)
                gw = [a + lam * b for a, b in zip(gw, go)]
            elif t <= T - 2 and float(ells[t]) != 0.0:
                go = jax.grad(lambda th: omega_code(delta, th[1], h_below(th)))(theta)
                gw[0] = gw[0] + lam * go[0]
        gxh, ghh, gb = gw
        ghh = Normalize(ghh, c0)
        gxh = Normalize(gxh, c0)
        if normalization == "algorithm1":
            gb = Normalize(gb, c0)
        if t == 0:
            ghh = jnp.zeros_like(Whh)
        per["Wxh"].append(gxh)
        per["Whh"].append(ghh)
        per["bh"].append(gb)

    res = {f"grad_{k}_per_layer": jnp.stack(v) for k, v in per.items()}
    for k in ("Wxh", "Whh", "bh"):
        res[f"grad_{k}"] = sum(per[k][1:], per[k][0])
    res["grad_Why"], res["grad_by"] = gWhy, gby
    res["local_loss"] = jnp.stack(ells)
    res["target_displacement_norm"] = jnp.stack([_norm(d) for d in d_last])
    res["loss"] = E
    return res


def small_problem(T: int, loss: str = "cross_entropy", B: int = 4, n: int = 3, m: int = 6,
                  seed: int = 0):
    """Orthogonal weights scaled up a little and non-zero biases, so targets move visibly."""
    k = 1 if loss == "mse" else 3
    key = jax.random.PRNGKey(seed)
    k0, k1, k2, k3, k4 = jax.random.split(key, 5)
    p = init_params(k0, n, m, k, jnp.float64)
    p = p._replace(Whh=1.3 * p.Whh, Wxh=1.5 * p.Wxh,
                   bh=0.2 * jax.random.normal(k1, (m,), jnp.float64),
                   by=0.2 * jax.random.normal(k2, (k,), jnp.float64))
    x = jax.nn.one_hot(jax.random.randint(k3, (T, B), 0, n), n, dtype=jnp.float64)
    if loss == "mse":
        y = jax.random.uniform(k4, (B, 1), jnp.float64)
    else:
        y = jax.nn.one_hot(jax.random.randint(k4, (B,), 0, k), k, dtype=jnp.float64)
    return Params(*p), x, y
