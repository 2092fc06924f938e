"""LRA with feedback matrices (LRA-fdbk; docs/lra-fdbk.md): the targets of RNN-LRA-diff
(docs/lra.md) computed from layer errors sent through fixed random matrices instead of from
gradients, one step each (no K loop), after Ororbia et al.'s LRA-fdbk / LRA-E (Ororbia, Mali,
Kifer & Giles 2018, "Conducting credit assignment by aligning local representations";
Ororbia & Mali 2019, "Biologically motivated algorithms for propagating local target
representations"), applied to the unrolled SRNN as the LRA-RNN paper's future work suggests.

Row-vector notation of docs/network.md; L is lra's local loss (``mean f(z - zhat)``), g = dE/dout:

    zhat_{T-1} = tanh(h_{T-1} - gamma Normalize(g F_y, c1))                        (top)
    e_t        = dL(z_t, zhat_t)/dz_t
    zhat_{t-1} = tanh(h_{t-1} - gamma Normalize((e_t * (1 - z_t^2)) F_hh, c1))      t = T-1 .. 1
    delta_t    = dL(z_t, zhat_t)/dh_t (one step, z_{t-1}, x_t held constant)
    grad Whh   = sum_{t>=1} Normalize(z_{t-1}^T delta_t, c0), likewise Wxh (x_t^T delta_t) and
                 bh (sum_b delta_t); layer 0 gets no update;  grad Why, grad by: exact.

F_y (k x m) is drawn like Why^T, F_hh (m x m) like Whh (:mod:`localrnn.rules.fa`), once per run
in ``init``; they are the rule state. With ``learn_feedback`` the step returns the state
``F_hh <- (1 - feedback_decay) F_hh - feedback_lr G_hh^T`` (G_hh: the Whh update it returns);
otherwise the state is returned unchanged. Normalize and the local losses are lra's
(:mod:`localrnn.rules.lra._math`), the weight updates lra's one-step map
(:mod:`localrnn.rules.lra.updates`).
"""

from __future__ import annotations

import functools
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from localrnn.losses import global_loss
from localrnn.model import Params, orthogonal
from localrnn.rules._base import Hparam, Rule, RuleDef
from localrnn.rules.fa import draw_output_feedback, readout_error
from localrnn.rules.lra._math import local_loss_parts, normalize
from localrnn.rules.lra._pass import forward_pass
from localrnn.rules.lra.updates import first_path_terms, one_step_map, own_losses
from localrnn.rules.lra.rule import layer_record

__all__ = ["FdbkState", "LRAFdbkOptions", "HPARAMS", "lra_fdbk_core", "RULE"]


class FdbkState(NamedTuple):
    """Feedback matrices: ``F_hh`` (m, m) in place of Whh^T, ``F_y`` (k, m) in place of Why^T."""

    F_hh: jax.Array
    F_y: jax.Array


class LRAFdbkOptions(BaseModel):
    """Static options of ``lra_fdbk``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    local_loss: Literal["mse", "log_penalty"] = Field("mse", description="local loss L (as lra's)")
    force_normalize: bool = Field(False, description="Normalize always rescales to c (when c > 0)")
    learn_feedback: bool = Field(
        False, description="after each step F_hh <- (1 - feedback_decay) F_hh - feedback_lr G_hh^T")


HPARAMS: dict[str, Hparam] = {
    "target_step": Hparam(1.0, "gamma: step of each target displacement"),
    "c0": Hparam(1.0, "normalization constant of the weight updates (0 = no normalization)"),
    "c1": Hparam(1.0, "normalization constant of the target displacements (0 = none)"),
    "feedback_lr": Hparam(0.01, "eta_F: step of the learned F_hh (with learn_feedback)"),
    "feedback_decay": Hparam(0.0, "factor 1 - feedback_decay on F_hh each step (with learn_feedback)",
                             low=0.0, high=1.0),
}


def _init(key: jax.Array, params: Params) -> FdbkState:
    k_hh, k_y = jax.random.split(key)
    return FdbkState(orthogonal(k_hh, params.Whh.shape, params.Whh.dtype),
                     draw_output_feedback(k_y, params))


def lra_fdbk_core(params: Params, state: FdbkState, x: jax.Array, y: jax.Array, hparams,
                  options: LRAFdbkOptions, loss: str = "cross_entropy") -> dict[str, jax.Array]:
    """One LRA-fdbk update: summed and per-layer updates, ``hhat`` (T, B, m), ``local_loss`` (T,),
    ``target_displacement_norm`` (T,), ``loss``."""
    f, fp = local_loss_parts(options.local_loss)
    norm = functools.partial(normalize, force=options.force_normalize)
    p = forward_pass(params, x, y, {**hparams, "reg_lambda": 0.0})
    e_val, g, g_why, g_by = readout_error(params, p.zs[-1], p.y, global_loss(loss))
    d_top = norm(g @ state.F_y, p.c1)
    hhat_top = p.hs[-1] - p.gamma * d_top

    def down(hhat_t, inp):              # from layer t's target to layer t-1's
        z_t, h_below = inp
        delta_t = fp(z_t - jnp.tanh(hhat_t)) * p.inv_n * (1.0 - z_t * z_t)  # e_t * (1 - z_t^2)
        d = norm(delta_t @ state.F_hh, p.c1)
        hhat_below = h_below - p.gamma * d
        return hhat_below, (hhat_below, d)

    _, (hhat_below, d_below) = jax.lax.scan(down, hhat_top, (p.zs[1:], p.hs[:-1]), reverse=True)
    hhat = jnp.concatenate([hhat_below, hhat_top[None]], axis=0)
    d_all = jnp.concatenate([d_below, d_top[None]], axis=0)

    ll = own_losses(p, hhat, f, fp)
    g_hh, g_xh, g_b = one_step_map(p, first_path_terms(ll))
    per_layer = jax.vmap(norm, in_axes=(0, None))
    above0 = jnp.asarray(np.arange(p.zs.shape[0]) >= 1)
    g_hh = jnp.where(above0[:, None, None], per_layer(g_hh, p.c0), 0.0)
    g_xh = jnp.where(above0[:, None, None], per_layer(g_xh, p.c0), 0.0)
    g_b = jnp.where(above0[:, None], per_layer(g_b, p.c0), 0.0)
    return {"grad_Wxh": jnp.sum(g_xh, axis=0), "grad_Whh": jnp.sum(g_hh, axis=0),
            "grad_bh": jnp.sum(g_b, axis=0), "grad_Why": g_why, "grad_by": g_by,
            "grad_Wxh_per_layer": g_xh, "grad_Whh_per_layer": g_hh, "grad_bh_per_layer": g_b, "hhat": hhat,
            "local_loss": ll.ell, "target_displacement_norm": jnp.sqrt(jnp.sum(d_all ** 2, axis=(1, 2))),
            "loss": e_val}


def _build(options: LRAFdbkOptions, loss: str, record: bool) -> Rule:
    global_loss(loss)  # validate the name early

    def step(params: Params, state: FdbkState, batch, hparams):
        x, y = batch
        out = lra_fdbk_core(params, state, x, y, hparams, options, loss)
        grads = Params(Wxh=out["grad_Wxh"], Whh=out["grad_Whh"], bh=out["grad_bh"],
                       Why=out["grad_Why"], by=out["grad_by"])
        if options.learn_feedback:
            dt = state.F_hh.dtype
            keep = 1.0 - jnp.asarray(hparams["feedback_decay"], dt)
            f_hh = keep * state.F_hh - jnp.asarray(hparams["feedback_lr"], dt) * grads.Whh.T
            state = state._replace(F_hh=f_hh)
        return grads, state, layer_record(out, record, params, batch, loss, grads)

    return Rule("lra_fdbk", _init, step)


RULE = RuleDef(
    name="lra_fdbk",
    summary="LRA with feedback matrices: one-step targets through fixed (or learned) random F_y, F_hh",
    options=LRAFdbkOptions,
    hparams=HPARAMS,
    build=_build,
)
