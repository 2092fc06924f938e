"""RNN-LRA-diff (SPEC 3.2, Algorithm 1) and its regularized form (SPEC 3.3, Algorithm 2),
with the published code's departures (SPEC 7) as independent options.

Static options (:class:`LRAOptions`): ``inner_steps`` (K), ``force_normalize``,
``local_loss`` (``mse`` | ``log_penalty``), ``regularize`` (switched on by
``derive_options`` when ``reg_lambda != 0``), ``update_layer0`` and the SPEC-7 options
``local_grads``, ``inner_reference``, ``normalization``, ``layer_loss``,
``regularizer``, ``validation_initial_state``; ``variant="reference"`` is a preset that
sets all six to the published code's values unless an option is given explicitly.

Traced hyper-parameters: ``target_step`` (gamma, default 1.0), ``c0`` (weight-update
normalization, default 1.0), ``c1`` (target-displacement normalization, default 1.0),
``reg_lambda`` (lambda, default 0.0). c0 = c1 = 1 is the paper's Table I setting; gamma = 1
is the centre of the paper's grid {10, 1, 0.1, 0.01, 0.001} and makes eq. (4) a plain
gradient step on the local loss (the authors' script defaults to 10).

Precise semantics (decisions where SPEC leaves room are marked *):

Notation: forward ``h_t``, ``z_t = tanh(h_t)``, ``u_t = x_t Wxh + bh``, ``z_{-1} = 0``;
``F_t(a) = tanh(tanh(a) Whh + u_t)`` is the layer-t activity computed from a candidate
pre-activation ``a`` of layer t-1. ``L(p, r) = mean f(p - r)`` (f even, so symmetric).

* Top (layer T-1): ``hbar = h_{T-1}``; K times ``D = dE(out(hbar))/dhbar`` [reference
  regularizer: ``+ lambda dOmega_code/dhbar``], [normalization=reference: ``Normalize(D, c1)``*],
  ``hbar -= gamma D``. ``hhat_{T-1} = hbar``, ``zhat_{T-1} = tanh(hhat_{T-1})``.
  ``grad Why, grad by = dE/dWhy, dE/dby`` [reference regularizer: ``grad Why +=
  lambda dOmega_code(dE/dout, h_{T-1}, Why)/dWhy``; normalization=reference: ``grad Why``
  normalized with c0*].
* Target search for layer t-1 (t = T-1 .. 1): ``hbar = h_{t-1}``; K steps, each
  ``D = Normalize(g_k, c1)``, ``hbar -= gamma D``; ``hhat_{t-1} = hbar``.
  ``inner_reference="target"``: ``g_k = dL(F_t(hbar), zhat_t)/dhbar``.
  ``inner_reference="forward"``: k >= 1: ``g_k = dL(z_t, F_t(hbar))/dhbar``; k = 0:
  ``g_0 = d ell_t / d h_{t-1}`` (the loss that updates layer t, below), taken as
  ``local_grads`` says*.
  Regularizer terms, with the current candidate: ``algorithm2``: ``delta`` = derivative of
  the step loss w.r.t. the pre-activation of its first argument (held constant),
  ``J = (delta Whh^T) * (1 - tanh(hbar)^2)``; ``reference``: ``g`` = derivative w.r.t. the
  post-activation first argument, ``Omega_code(g, hbar, Whh)``. ``g_k += lambda dOmega/dhbar``.
* Loss that updates layer t, ``ell_t``: ``layer_loss="own"``: ``L(z_t, zhat_t)``;
  ``"shifted"``: ``L(z_{t+1}, F_{t+1}(hhat_t))`` for t < T-1, ``L(z_{T-1}, zhat_{T-1})`` for
  t = T-1. Its first argument is the activity ``z_s`` (s = t, or t+1 when shifted).
* ``local_grads="one_step"``: the second argument is a constant and the first is
  ``tanh(z_{s-1} Whh + u_s)`` with ``z_{s-1}`` held constant (for ``g_0``: the first argument
  as a function of ``h_{t-1}`` through the forward steps between them*).
  ``"unrolled"``: every derivative (weights and ``g_0``) is the total derivative through
  the forward graph from t = 0, with targets ``tanh(h_t(theta) + (hhat_t - h_t))`` (the
  displacements held constant) and ``F_{t+1}`` recomputed from them.
* Weight regularizer for layer t (only where ``s >= 1``), ``delta = d ell_t/dh_s`` via the
  first argument (held constant): ``algorithm2``: ``Omega_t = (||(delta Whh^T) *
  (1 - tanh(h_{s-1})^2)|| / ||delta|| - 1)^2`` added (times lambda) to Whh, Wxh, bh (Whh
  directly and through ``h_{s-1}``); ``reference``: ``Omega_code(delta, h_{s-1}, Whh)`` added to
  Wxh only, only for t < T-1 and ``ell_t != 0`` (as coded). ``h_{s-1}`` depends on the
  weights as ``local_grads`` says*.
* Normalization of layer updates: ``algorithm1``: Whh, Wxh, bh with c0; ``reference``: Whh,
  Wxh with c0, bh never. ``force_normalize`` makes every Normalize call that the scheme
  makes rescale to c (when c > 0).
* Layers 1..T-1 are updated; ``update_layer0`` also applies ``ell_0`` to Wxh and bh.
* Every Omega is 0 where a norm in it is 0 (the published code gives NaN there).

Record (``record=True``), per layer t (T,): ``local_loss`` = ``ell_t``;
``target_displacement_norm`` = ||D|| of the last step of the search that produced
``zhat_t`` (the paper's Delta h_t); ``grad_Whh_norm``, ``grad_Wxh_norm`` = norms of the
layer's (normalized) update (0 for layers not updated).
"""

from __future__ import annotations

from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from localrnn.losses import global_loss
from localrnn.model import Params, hidden_states
from localrnn.rules._base import Hparam, Rule, RuleDef, zero_state
from localrnn.rules._lra_math import (local_loss_parts, normalize, omega_alg2, omega_alg2_grad_h,
                                      omega_code, omega_code_grad_h, safe_norm)

__all__ = ["LRAOptions", "REFERENCE_SETTINGS", "HPARAMS", "lra_core", "RULE"]

#: the published code's value of every SPEC-7 option (the ``reference`` preset)
REFERENCE_SETTINGS: dict[str, str] = {
    "local_grads": "unrolled",
    "inner_reference": "forward",
    "normalization": "reference",
    "layer_loss": "shifted",
    "regularizer": "reference",
    "validation_initial_state": "reference",
}

#: traced hyper-parameters and their defaults
HPARAMS: dict[str, Hparam] = {
    "target_step": Hparam(1.0, "gamma: step of each target update (eq. 4)"),
    "c0": Hparam(1.0, "normalization constant of the weight updates (0 = no normalization)"),
    "c1": Hparam(1.0, "normalization constant of the target displacements (0 = none)"),
    "reg_lambda": Hparam(0.0, "lambda of Algorithm 2's regularizer (0 = Algorithm 1)",
                         switches="regularize"),
}


class LRAOptions(BaseModel):
    """Static (structural) options of the ``lra`` rule; see the module docstring."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    inner_steps: int = Field(10, ge=1, description="K: inner target-search steps")
    force_normalize: bool = False
    local_loss: Literal["mse", "log_penalty"] = "mse"
    regularize: bool = False
    update_layer0: bool = False
    variant: Literal["faithful", "reference"] = "faithful"
    local_grads: Literal["one_step", "unrolled"] = "one_step"
    inner_reference: Literal["target", "forward"] = "target"
    normalization: Literal["algorithm1", "reference"] = "algorithm1"
    layer_loss: Literal["own", "shifted"] = "own"
    regularizer: Literal["algorithm2", "reference"] = "algorithm2"
    validation_initial_state: Literal["zero", "reference"] = "zero"

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            if isinstance(data.get("local_loss"), str):
                data["local_loss"] = data["local_loss"].replace("-", "_")
            if data.get("variant") == "reference":
                data = {**REFERENCE_SETTINGS, **data}
        return data


def _chain(whh, zprev, x, zs, injections, n_chains):
    """Per-chain weight gradients of cotangents injected at forward pre-activations and carried
    down the unrolled forward graph to t = 0.

    ``injections``: list of ``(pos (C,), vals (C, B, m))``: chain c receives ``vals[c]`` at
    ``h_{pos[c]}``. Returns ``(dWhh (C, m, m), dWxh (C, n, m), dbh (C, m))``.
    """
    t_len, b, m = zs.shape
    dt = zs.dtype
    sp_below = jnp.concatenate([jnp.zeros((1, b, m), dt), 1.0 - zs[:-1] ** 2], axis=0)
    js = jnp.arange(t_len)

    def body(carry, inp):
        e, a_hh, a_xh, a_b = carry
        j, zp, xj, spb = inp
        for pos, val in injections:
            e = e + jnp.where((pos == j)[:, None, None], val, 0.0)
        a_hh = a_hh + jnp.einsum("bi,cbk->cik", zp, e)
        a_xh = a_xh + jnp.einsum("bi,cbk->cik", xj, e)
        a_b = a_b + jnp.sum(e, axis=1)
        e = (e @ whh.T) * spb
        return (e, a_hh, a_xh, a_b), None

    init = (jnp.zeros((n_chains, b, m), dt), jnp.zeros((n_chains, m, m), dt),
            jnp.zeros((n_chains, x.shape[-1], m), dt), jnp.zeros((n_chains, m), dt))
    (_, a_hh, a_xh, a_b), _ = jax.lax.scan(body, init, (js, zprev, x, sp_below), reverse=True)
    return a_hh, a_xh, a_b


def lra_core(params: Params, x: jax.Array, y: jax.Array, hp, o: LRAOptions,
             loss: str = "cross_entropy") -> dict[str, jax.Array]:
    """One LRA-diff update on the batch ``(x, y)``: summed and per-layer updates plus diagnostics.

    Returns a dict: ``grad_Wxh``, ``grad_Whh``, ``grad_bh``, ``grad_Why``, ``grad_by`` (summed
    over layers), ``grad_Wxh_per_layer`` (T, n, m), ``grad_Whh_per_layer`` (T, m, m),
    ``grad_bh_per_layer`` (T, m), ``local_loss`` (T,), ``target_displacement_norm`` (T,), ``loss``.
    """
    wxh, whh, bh, why, by = params
    dt = whh.dtype
    x = jnp.asarray(x, dt)
    y = jnp.asarray(y, dt)
    t_len, b, _ = x.shape
    m = whh.shape[0]
    if t_len < 2:
        raise ValueError(f"lra needs sequences of length T >= 2; got T={t_len}")
    gamma = jnp.asarray(hp["target_step"], dt)
    c0 = jnp.asarray(hp["c0"], dt)
    c1 = jnp.asarray(hp["c1"], dt)
    lam = jnp.asarray(hp["reg_lambda"], dt)
    f, fp = local_loss_parts(o.local_loss)
    inv_n = 1.0 / (b * m)
    e_fn = global_loss(loss)
    k_steps = o.inner_steps
    force = o.force_normalize
    ref_norm = o.normalization == "reference"
    reg_alg2 = o.regularize and o.regularizer == "algorithm2"
    reg_code = o.regularize and o.regularizer == "reference"
    unrolled = o.local_grads == "unrolled"
    forward_ref = o.inner_reference == "forward"
    shifted = o.layer_loss == "shifted"
    whh_t = whh.T

    u = x @ wxh + bh
    hs = hidden_states(params, x)
    zs = jnp.tanh(hs)
    zero_bm = jnp.zeros((b, m), dt)
    zprev = jnp.concatenate([zero_bm[None], zs[:-1]], axis=0)

    # ---- output layer -------------------------------------------------------------
    e_val, (g_why, g_by) = jax.value_and_grad(
        lambda w, c: e_fn(zs[-1] @ w + c, y), argnums=(0, 1))(why, by)
    d_e_dout = jax.grad(lambda out: e_fn(out, y))
    if reg_code:
        g_e = d_e_dout(zs[-1] @ why + by)
        g_why = g_why + lam * jax.grad(omega_code, argnums=1)(g_e, why, hs[-1])
    if ref_norm:
        g_why = normalize(g_why, c0, force)

    # ---- top target (layer T-1) ---------------------------------------------------
    def top_body(_, carry):
        hbar, _ = carry
        th = jnp.tanh(hbar)
        g_e = d_e_dout(th @ why + by)
        mc = g_e @ why.T
        d = mc * (1.0 - th * th)
        if reg_code:
            d = d + lam * omega_code_grad_h(mc, hbar, safe_norm(g_e))
        if ref_norm:
            d = normalize(d, c1, force)
        return hbar - gamma * d, d

    hhat_top, d_top = jax.lax.fori_loop(0, k_steps, top_body, (hs[-1], zero_bm))

    # ---- target search ------------------------------------------------------------
    def step_grad(hbar, u_t, ref):
        th = jnp.tanh(hbar)
        sp = 1.0 - th * th
        p = jnp.tanh(th @ whh + u_t)
        dp = fp(p - ref) * inv_n
        delta = dp * (1.0 - p * p)
        if reg_code:
            both = jnp.concatenate([delta, dp], axis=0) @ whh_t
            mm, mc = both[:b], both[b:]
        else:
            mm = delta @ whh_t
        g = mm * sp
        if reg_alg2:
            g = g + lam * omega_alg2_grad_h(mm, th, sp, safe_norm(delta))
        if reg_code:
            g = g + lam * omega_code_grad_h(mc, hbar, safe_norm(dp))
        return g

    def first_grad(hprev, z_t, hhat_t, z_next, pred_next, own_type):
        """g_0 of the forward inner reference: d ell_t / d h_{t-1} (+ regularizer)."""
        th = jnp.tanh(hprev)
        sp = 1.0 - th * th
        zhat_t = jnp.tanh(hhat_t)
        if own_type:
            dp = fp(z_t - zhat_t) * inv_n
            gz = dp
            delta0 = dp * (1.0 - z_t * z_t)
            a_t = delta0 - dp * (1.0 - zhat_t * zhat_t) if unrolled else delta0
        else:
            dp = fp(z_next - pred_next) * inv_n
            delta1 = dp * (1.0 - z_next * z_next)
            if unrolled:
                d2 = -dp * (1.0 - pred_next * pred_next)
                both = jnp.concatenate([delta1, d2], axis=0) @ whh_t
                gz, back2 = both[:b], both[b:]
            else:
                gz = delta1 @ whh_t
            delta0 = gz * (1.0 - z_t * z_t)
            a_t = delta0 + back2 * (1.0 - zhat_t * zhat_t) if unrolled else delta0
        rows = [a_t]
        if reg_alg2 and unrolled:
            rows.append(delta0)
        if reg_code:
            rows.append(gz)
        r = jnp.concatenate(rows, axis=0) @ whh_t if len(rows) > 1 else a_t @ whh_t
        g = r[:b] * sp
        if reg_alg2:
            mm = r[b:2 * b] if unrolled else r[:b]
            g = g + lam * omega_alg2_grad_h(mm, th, sp, safe_norm(delta0))
        if reg_code:
            g = g + lam * omega_code_grad_h(r[-b:], hprev, safe_norm(gz))
        return g

    def search(hprev, u_t, zhat_t, z_t, g0):
        if forward_ref:
            d = normalize(g0, c1, force)
            hbar, ref, start = hprev - gamma * d, z_t, 1
        else:
            hbar, d, ref, start = hprev, zero_bm, zhat_t, 0

        def body(_, carry):
            hb, _ = carry
            dd = normalize(step_grad(hb, u_t, ref), c1, force)
            return hb - gamma * dd, dd

        return jax.lax.fori_loop(start, k_steps, body, (hbar, d))

    need_pred = forward_ref and shifted

    def layer(hhat_t, pred_next, hprev, u_t, z_t, z_next, own_type):
        g0 = (first_grad(hprev, z_t, hhat_t, z_next, pred_next, own_type)
              if forward_ref else None)
        hhat_prev, d = search(hprev, u_t, jnp.tanh(hhat_t), z_t, g0)
        new_pred = jnp.tanh(jnp.tanh(hhat_prev) @ whh + u_t) if need_pred else None
        return hhat_prev, new_pred, d

    if need_pred:
        hhat_a, pred_a, d_a = layer(hhat_top, None, hs[-2], u[-1], zs[-1], None, True)

        def scan_body(carry, inp):
            hhat_t, pred_next = carry
            hprev, u_t, z_t, z_next = inp
            hhat_p, pred_p, d = layer(hhat_t, pred_next, hprev, u_t, z_t, z_next, False)
            return (hhat_p, pred_p), (hhat_p, d)

        # layers t = T-2 .. 1
        _, (hh_rest, d_rest) = jax.lax.scan(
            scan_body, (hhat_a, pred_a), (hs[:-2], u[1:-1], zs[1:-1], zs[2:]), reverse=True)
        hhat_below = jnp.concatenate([hh_rest, hhat_a[None]], axis=0)  # hhat_0 .. hhat_{T-2}
        d_below = jnp.concatenate([d_rest, d_a[None]], axis=0)
    else:
        def scan_body(hhat_t, inp):
            hprev, u_t, z_t = inp
            hhat_p, _, d = layer(hhat_t, None, hprev, u_t, z_t, None, True)
            return hhat_p, (hhat_p, d)

        _, (hhat_below, d_below) = jax.lax.scan(
            scan_body, hhat_top, (hs[:-1], u[1:], zs[1:]), reverse=True)

    hhat = jnp.concatenate([hhat_below, hhat_top[None]], axis=0)  # (T, B, m)
    d_last = jnp.concatenate([d_below, d_top[None]], axis=0)
    zhat = jnp.tanh(hhat)

    # ---- layer losses ---------------------------------------------------------------
    if shifted:
        pred_all = jnp.tanh(jnp.tanh(hhat[:-1]) @ whh + u[1:])  # F_{t+1}(hhat_t), t < T-1
        first = jnp.concatenate([zs[1:], zs[-1:]], axis=0)
        second = jnp.concatenate([pred_all, zhat[-1:]], axis=0)
        s_idx = np.r_[np.arange(1, t_len), t_len - 1]
    else:
        first, second = zs, zhat
        s_idx = np.arange(t_len)
    diff = first - second
    ell = jnp.mean(f(diff), axis=(1, 2))
    dp = fp(diff) * inv_n
    delta = dp * (1.0 - first * first)  # d ell_t / d h_s through the first argument
    tt = np.arange(t_len)
    sm1 = np.maximum(s_idx - 1, 0)
    has_below = jnp.asarray(s_idx >= 1)

    # ---- regularizer pieces (cotangents at h_{s-1}) --------------------------------
    if reg_alg2:
        om_whh, om_c = jax.vmap(jax.grad(omega_alg2, argnums=(1, 2)), in_axes=(0, None, 0))(
            delta, whh, hs[sm1])
        om_whh = jnp.where(has_below[:, None, None], om_whh, 0.0)
        om_c = jnp.where(has_below[:, None, None], om_c, 0.0)
    if reg_code:
        code_mask = has_below & jnp.asarray(tt <= t_len - 2) & (ell != 0)
        oc_c = jax.vmap(jax.grad(omega_code, argnums=2), in_axes=(0, None, 0))(
            delta, whh, hs[sm1])
        oc_c = jnp.where(code_mask[:, None, None], oc_c, 0.0)

    # ---- per-layer weight updates ---------------------------------------------------
    if not unrolled:
        zp_s, x_s = zprev[s_idx], x[s_idx]
        g_hh = jnp.einsum("tbi,tbj->tij", zp_s, delta)
        g_xh = jnp.einsum("tbi,tbj->tij", x_s, delta)
        g_b = jnp.sum(delta, axis=1)
        if reg_alg2:
            g_hh = g_hh + lam * (om_whh + jnp.einsum("tbi,tbj->tij", zprev[sm1], om_c))
            g_xh = g_xh + lam * jnp.einsum("tbi,tbj->tij", x[sm1], om_c)
            g_b = g_b + lam * jnp.sum(om_c, axis=1)
        if reg_code:
            g_xh = g_xh + lam * jnp.einsum("tbi,tbj->tij", x[sm1], oc_c)
    else:
        pos_s = jnp.asarray(s_idx)
        pos_t = jnp.asarray(tt)
        injections = [(pos_s, delta)]
        direct_hh = jnp.zeros((t_len, m, m), dt)
        direct_xh = jnp.zeros((t_len,) + wxh.shape, dt)
        direct_b = jnp.zeros((t_len, m), dt)
        d2 = -dp * (1.0 - second * second)  # second-argument path, at its own pre-activation
        if shifted:
            d2s = d2[:-1]
            direct_hh = direct_hh.at[:-1].set(jnp.einsum("tbi,tbj->tij", zhat[:-1], d2s))
            direct_xh = direct_xh.at[:-1].set(jnp.einsum("tbi,tbj->tij", x[1:], d2s))
            direct_b = direct_b.at[:-1].set(jnp.sum(d2s, axis=1))
            back = jnp.concatenate([(d2s @ whh_t) * (1.0 - zhat[:-1] ** 2), d2[-1:]], axis=0)
        else:
            back = d2
        injections.append((pos_t, back))
        if reg_alg2:
            injections.append((jnp.asarray(sm1), lam * om_c))
            direct_hh = direct_hh + lam * om_whh
        n_chains = t_len
        if reg_code:
            # a second set of chains feeds Wxh only
            injections = [(jnp.concatenate([p, jnp.full((t_len,), -1, p.dtype)]),
                           jnp.concatenate([v, jnp.zeros_like(v)])) for p, v in injections]
            injections.append((jnp.concatenate([jnp.full((t_len,), -1, jnp.int32),
                                                jnp.asarray(sm1, jnp.int32)]),
                               jnp.concatenate([jnp.zeros_like(oc_c), lam * oc_c])))
            n_chains = 2 * t_len
        c_hh, c_xh, c_b = _chain(whh, zprev, x, zs, injections, n_chains)
        g_hh = direct_hh + c_hh[:t_len]
        g_xh = direct_xh + c_xh[:t_len]
        g_b = direct_b + c_b[:t_len]
        if reg_code:
            g_xh = g_xh + c_xh[t_len:]

    norm_layers = jax.vmap(normalize, in_axes=(0, None, None))
    g_hh = norm_layers(g_hh, c0, force)
    g_xh = norm_layers(g_xh, c0, force)
    if not ref_norm:
        g_b = norm_layers(g_b, c0, force)
    upd = tt >= (0 if o.update_layer0 else 1)
    g_hh = jnp.where(jnp.asarray(tt >= 1)[:, None, None], g_hh, 0.0)
    g_xh = jnp.where(jnp.asarray(upd)[:, None, None], g_xh, 0.0)
    g_b = jnp.where(jnp.asarray(upd)[:, None], g_b, 0.0)

    return {
        "grad_Wxh": jnp.sum(g_xh, axis=0), "grad_Whh": jnp.sum(g_hh, axis=0),
        "grad_bh": jnp.sum(g_b, axis=0), "grad_Why": g_why, "grad_by": g_by,
        "grad_Wxh_per_layer": g_xh, "grad_Whh_per_layer": g_hh, "grad_bh_per_layer": g_b,
        "local_loss": ell,
        "target_displacement_norm": jnp.sqrt(jnp.sum(d_last ** 2, axis=(1, 2))),
        "loss": e_val,
    }


def _build(options: LRAOptions, loss: str, record: bool) -> Rule:
    global_loss(loss)  # validate the name early

    def step(params: Params, state, batch, hparams):
        x, y = batch
        out = lra_core(params, x, y, hparams, options, loss)
        grads = Params(Wxh=out["grad_Wxh"], Whh=out["grad_Whh"], bh=out["grad_bh"],
                       Why=out["grad_Why"], by=out["grad_by"])
        rec = {"loss": out["loss"]}
        if record:
            rec["local_loss"] = out["local_loss"]
            rec["target_displacement_norm"] = out["target_displacement_norm"]
            rec["grad_Whh_norm"] = jnp.sqrt(jnp.sum(out["grad_Whh_per_layer"] ** 2, axis=(1, 2)))
            rec["grad_Wxh_norm"] = jnp.sqrt(jnp.sum(out["grad_Wxh_per_layer"] ** 2, axis=(1, 2)))
        return grads, state, rec

    return Rule("lra", zero_state, step, validation_initial_state=options.validation_initial_state)


RULE = RuleDef(
    name="lra",
    summary="RNN-LRA-diff (Algorithm 1; Algorithm 2 regularizer when reg_lambda != 0)",
    options=LRAOptions,
    hparams=HPARAMS,
    build=_build,
)
