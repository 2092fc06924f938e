"""Literal, slow transcription of Algorithm 1 as printed (Manchev & Garcia-Peraza-Herrera, "Can Local
Representation Alignment RNNs Solve Temporal Tasks?"), line by line, with Algorithm 2's Regularize in
place of Normalize on lines 16-18 and 21 when lambda > 0: the oracle of ``variant="printed"``
(docs/lra-readings.md).

Paper indices: steps t = 0 .. t_max with t_max = T - 1. Plain Python loops; every derivative is
``jax.grad`` of the loss the line names. A line that differentiates with respect to hbar follows
what hbar and zhat_t depend on at that moment: right after line 19, hbar_{t-1} is a copy of h_{t-1},
so z_t depends on it through the one-step map (and the target zhat_t is a constant); after lines
23-26, zhat_t is the prediction made from hbar_{t-1} and z_t is the forward activity (a constant).
Shares nothing with the fast code except ``Params``; eager and slow: keep T, B, m small.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from oracles.lra_literal import _global_loss, _local_loss, _norm

tanh = jnp.tanh  # sigma


def lra_printed_literal(params, x, y, *, inner_steps=10, target_step=1.0, c0=1.0, c1=1.0,
                        reg_lambda=0.0, force_normalize=False, local_loss="mse",
                        loss="cross_entropy"):
    """Returns a dict with the same keys as ``localrnn.rules.lra.lra_core``."""
    K, gamma, lam = inner_steps, target_step, reg_lambda
    L = _local_loss(local_loss)
    E = _global_loss(loss)
    Wxh, Whh, bh, Why, by = params
    t_max = x.shape[0] - 1
    zeros = jnp.zeros((x.shape[1], Whh.shape[0]), Whh.dtype)

    def Normalize(D, c):  # lines 29-32 (forced: without the ||D|| >= c check)
        n = float(_norm(D))
        if c > 0 and n > 0 and (force_normalize or n >= c):
            D = c / n * D
        return D

    def Omega(delta, W, h):  # Algorithm 2, line 3, delta held constant
        return (_norm((delta @ W.T) * (1.0 - tanh(h) ** 2)) / _norm(delta) - 1.0) ** 2

    # lines 2-5: forward pass
    h = {0: x[0] @ Wxh + bh}
    z = {0: tanh(h[0])}
    for t in range(1, t_max + 1):
        h[t] = z[t - 1] @ Whh + x[t] @ Wxh + bh
        z[t] = tanh(h[t])
    yhat = z[t_max] @ Why + by                                                   # line 6
    gWhy, gby = jax.grad(lambda w, b: E(z[t_max] @ w + b, y), argnums=(0, 1))(Why, by)  # line 7

    zhat, dh_norm = {}, {}
    hbar = h[t_max]                                                              # line 8
    for k in range(K):                                                           # line 9
        # line 10: yhat is computed from z_{t_max} = sigma(h_{t_max}), hbar a copy of h_{t_max}
        dh = jax.grad(lambda hb: E(tanh(hb) @ Why + by, y))(hbar)
        hhat_top = hbar - gamma * dh                                             # line 11
        zhat[t_max] = tanh(hhat_top)                                             # line 12
        yhat = z[t_max] @ Why + by                                               # line 13
        # hbar is never updated: every step repeats the first
    dh_norm[t_max] = _norm(dh)

    per = {"Wxh": {}, "Whh": {}, "bh": {}}
    ell = {}
    t = t_max                                                                    # line 14
    while t >= 1:                                                                # line 15
        target_t = zhat[t]
        ell[t] = L(z[t], target_t)
        # lines 16-18, one-step map h_t = z_{t-1} Whh + x_t Wxh + bh (z_{t-1}, x_t constant)
        def local(th, t=t, target_t=target_t):
            wxh, whh, b_h = th
            return L(tanh(z[t - 1] @ whh + x[t] @ wxh + b_h), target_t)

        grads = list(jax.grad(local)((Wxh, Whh, bh)))
        if lam != 0:  # Regularize (Algorithm 2, lines 2-5): Omega_t at h_{t-1}
            delta_t = jax.grad(lambda a: L(tanh(a), target_t))(h[t])

            def omega_t(th, t=t, delta_t=delta_t):
                wxh, whh, b_h = th
                z_below = z[t - 2] if t >= 2 else zeros
                return Omega(delta_t, whh, z_below @ whh + x[t - 1] @ wxh + b_h)

            grads = [g + lam * go for g, go in zip(grads, jax.grad(omega_t)((Wxh, Whh, bh)))]
        per["Wxh"][t], per["Whh"][t], per["bh"][t] = (Normalize(g, c0) for g in grads)

        def pre_t(hb, t=t):  # h_t as computed from a candidate of layer t-1 (lines 4, 24)
            return tanh(hb) @ Whh + x[t] @ Wxh + bh

        hbar = h[t - 1]                                                          # line 19
        # what line 21's L(z_t, zhat_t) is as a function of the pre-activation a it passes through:
        # hbar is a copy of h_{t-1}, so z_t = sigma(a) and zhat_t is the target (a constant)
        loss_of_pre = (lambda a, target_t=target_t: L(tanh(a), target_t))
        for k in range(K):                                                       # line 20
            g = jax.grad(lambda hb: loss_of_pre(pre_t(hb)))(hbar)                # line 21
            if lam != 0:  # Regularize in place of line 21's Normalize
                delta = jax.grad(loss_of_pre)(pre_t(hbar))
                g = g + lam * jax.grad(lambda hb: Omega(delta, Whh, hb))(hbar)
            D = Normalize(g, c1)
            hhat_below = hbar - gamma * D                                        # line 22
            zhat[t - 1] = tanh(hhat_below)                                       # line 23
            hhat_t = zhat[t - 1] @ Whh + x[t] @ Wxh + bh                         # line 24
            zhat[t] = tanh(hhat_t)                                               # line 25
            hbar = hhat_below                                                    # line 26
            # from now on zhat_t = sigma(a) is the prediction from hbar and z_t a constant
            loss_of_pre = (lambda a, t=t: L(z[t], tanh(a)))
        dh_norm[t - 1] = _norm(D)
        t = t - 1                                                                # line 27
    ell[0] = L(z[0], zhat[0])

    # line 28: sums over the updated layers 1 .. t_max; layer 0 gets none
    res = {}
    for name, w in (("Wxh", Wxh), ("Whh", Whh), ("bh", bh)):
        layers = [jnp.zeros_like(w)] + [per[name][t] for t in range(1, t_max + 1)]
        res[f"grad_{name}_per_layer"] = jnp.stack(layers)
        res[f"grad_{name}"] = sum(layers[1:], layers[0])
    res["grad_Why"], res["grad_by"] = gWhy, gby
    res["local_loss"] = jnp.stack([ell[t] for t in range(t_max + 1)])
    res["target_displacement_norm"] = jnp.stack([dh_norm[t] for t in range(t_max + 1)])
    res["loss"] = E(yhat, y)
    return res
