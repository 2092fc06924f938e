"""TPTT, target propagation through time (docs/tptt.md; Manchev & Spratling 2020, JMLR 21).

Mapping onto localrnn's SRNN (model.py keeps pre-activations ``h_t`` and
activities ``z_t = tanh(h_t)``): the TPTT state is the *activity* ``z``, with an
initial state ``z_{-1} = 0``, so that

    F(x, s) = tanh(s Whh + x Wxh + bh),   z_t = F(x_t, z_{t-1}),   z_0 = F(x_0, 0) = tanh(x_0 Wxh + bh)

is exactly localrnn's forward pass. The inverse ``G(x, s) = tanh(x Wxh + s Vhh + ch)``
has its own ``Vhh`` (orthogonal init) and ``ch`` (zeros); it shares ``Wxh`` with F.
One ``step`` (in this order, as the published code runs ``g_step`` then ``f_step``):

1. forward pass, global loss ``E`` and ``dE/dz_{T-1}``, ``dE/dWhy``, ``dE/dby``;
2. inverse update: ``c_{t-1} = z_{t-1} + sigma * N(0, 1)`` for t = 0 .. T-1 (``z_{-1} = 0``);
   ``L^G_t = MSE(G(x_t, F(x_t, c_{t-1})), c_{t-1})``; gradients w.r.t. ``Vhh``, ``ch``
   (with ``c_{t-1}`` constant) summed over t; applied inside the rule with step ``alpha_g``
   by SGD or Nesterov momentum (Lasagne form, as the published code);
3. targets, with the *updated* inverse: ``zhat_{T-1} = z_{T-1} - alpha_i dE/dz_{T-1}``;
   ``zhat_{t-1} = z_{t-1} - G(x_t, z_t) + G(x_t, zhat_t)`` for t = T-1 .. 1 (a reverse ``lax.scan``);
4. forward directions: ``L_t = MSE(F(x_t, z_{t-1}), zhat_t)`` for t = 0 .. T-1, gradients w.r.t.
   ``Whh``, ``Wxh``, ``bh`` with ``x_t``, ``z_{t-1}``, ``zhat_t`` constant, summed over t; ``Why``,
   ``by`` from ``dE`` directly (and ``Wxh`` too when ``wxh_by_bptt``). The training loop applies
   them with learning rate ``alpha_f`` (its ``lr``) and its own optimizer.

Like the published code, layer 0 (whose previous state is the zero initial state) is
included in both sums: it contributes to ``Wxh``, ``bh`` (and ``Vhh``, ``ch``), never to ``Whh``.
MSE is the mean over the B x m entries of one time step.

Defaults, all from the published code (github.com/nmanchev/tptt, RNN_dtp.py, its argparse
defaults): ``alpha_i = 0.1``, ``alpha_f = 0.01`` (the loop's lr), ``alpha_g = 0.001``, noise 0,
optimizer Nesterov with momentum 0.9 (the default argument of its ``nesterov_momentum``),
``Wxh`` trained by TPTT. Its optimizer option applies to both parameter groups; here the
inverse's is ``inverse_optimizer`` (with ``inverse_momentum``) and the forward one is
the training loop's ``optimizer`` (with ``momentum``).

Spectral-radius guard: the published code computes the spectral radii of ``Whh`` and
``Vhh`` (numpy ``eigvals``) at every validation and stops training when either exceeds
``RADIUS_LIMIT = 20``. Here ``record`` always carries both radii, estimated by
:func:`spectral_radius` (Gelfand's formula by repeated squaring: matrix products only,
jit/vmap-friendly on every backend; never below the true radius, 0.1-0.25 % above it for
random and orthogonal 100 x 100 matrices, up to ~1 % for strongly non-normal ones, about
0.15 ms per matrix on CPU); ``jnp.linalg.eigvals`` (nonsymmetric) is not available on
every GPU backend and took ~25 ms per 100 x 100 matrix on the 2-core development CPU. Under
``jit`` an unused record entry is dead code, so the estimate costs nothing unless the loop
reads it; :func:`spectral_radii` gives the same numbers from (params, state) at validation.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
from pydantic import BaseModel, ConfigDict, Field

from localrnn.losses import global_loss
from localrnn.model import Params, hidden_states, orthogonal, readout
from localrnn.rules._base import Hparam, Rule, RuleDef
from localrnn.rules._credit import bptt_lags, credit_record, lags_from_deltas, previous

__all__ = [
    "RULE", "TPTTOptions", "TPTTState", "RADIUS_LIMIT",
    "spectral_radius", "spectral_radii", "inverse_map", "propagate_targets",
    "forward_directions", "inverse_directions",
]

#: the published code stops training when the spectral radius of Whh or Vhh exceeds this
RADIUS_LIMIT = 20.0


class TPTTState(NamedTuple):
    """Rule state: the inverse G (``Vhh``, ``ch``), its optimizer state and the noise key.

    ``velocity`` is ``(v_Vhh, v_ch)`` for Nesterov and ``()`` for SGD.
    """

    Vhh: jax.Array
    ch: jax.Array
    velocity: tuple
    key: jax.Array


class TPTTOptions(BaseModel):
    """Static options of TPTT.

    ``inverse_optimizer``: how the rule updates G (published default: nesterov).
    ``wxh_by_bptt``: train ``Wxh`` by the exact gradient of E instead of by TPTT
    (the published code's ``--wxh_updates bptt``).
    ``noise``: draw the Gaussian corruption of the inverse's inputs; set automatically
    when ``sigma != 0`` (with ``noise=False`` sigma is not used).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    inverse_optimizer: Literal["sgd", "nesterov"] = Field(
        "nesterov", description="optimizer of the inverse G (published code: nesterov)")
    wxh_by_bptt: bool = Field(False, description="train Wxh by the exact gradient of E instead of by TPTT")
    noise: bool = Field(False, description="corrupt the inverse's inputs with noise (set by sigma != 0)")


# -- pieces (pure functions; the tests check each against a literal transcription) ----
def spectral_radius(a: jax.Array, squarings: int = 10) -> jax.Array:
    """Estimate of max |eig(a)| for a square matrix: ``||a^K||_F^(1/K)``, K = 2^squarings.

    Repeated squaring with renormalization (the log-scale is tracked, so nothing
    overflows). It is an upper bound that converges to the spectral radius; the excess
    factor is at most ``(sqrt(m) cond(V))^(1/K)`` (V: eigenvectors), 0.23 % for an
    orthogonal 100 x 100 matrix at K = 1024.
    """
    tiny = jnp.finfo(a.dtype).tiny

    def body(carry, _):
        n, log_scale = carry
        p = n @ n
        norm = jnp.maximum(jnp.sqrt(jnp.sum(p * p)), tiny)
        return (p / norm, 2.0 * log_scale + jnp.log(norm)), None

    norm0 = jnp.maximum(jnp.sqrt(jnp.sum(a * a)), tiny)
    (_, log_scale), _ = jax.lax.scan(body, (a / norm0, jnp.log(norm0)), None, length=squarings)
    return jnp.exp(log_scale / (2.0 ** squarings))


def spectral_radii(params: Params, state: TPTTState) -> dict[str, jax.Array]:
    """``{"spectral_radius_Whh": ..., "spectral_radius_Vhh": ...}`` (for the guard)."""
    return {"spectral_radius_Whh": spectral_radius(params.Whh),
            "spectral_radius_Vhh": spectral_radius(state.Vhh)}


def inverse_map(x_drive: jax.Array, s: jax.Array, Vhh: jax.Array, ch: jax.Array) -> jax.Array:
    """``G = tanh(x Wxh + s Vhh + ch)`` with ``x_drive = x Wxh`` given."""
    return jnp.tanh(x_drive + s @ Vhh + ch)


def propagate_targets(z: jax.Array, xw: jax.Array, Vhh: jax.Array, ch: jax.Array,
                      top: jax.Array) -> jax.Array:
    """All targets ``zhat`` (T, B, m) by difference target propagation backward in time.

    ``z`` (T, B, m) forward activities, ``xw`` (T, B, m) = ``x Wxh``, ``top`` = ``zhat_{T-1}``.
    ``zhat_{t-1} = z_{t-1} - G(x_t, z_t) + G(x_t, zhat_t)``, t = T-1 .. 1.
    """
    base = z[:-1] - inverse_map(xw[1:], z[1:], Vhh, ch)  # z_{t-1} - G(x_t, z_t), t = 1..T-1
    drive = xw[1:] + ch

    def step(zhat_t, inp):
        base_t, drive_t = inp
        zhat_prev = base_t + jnp.tanh(drive_t + zhat_t @ Vhh)
        return zhat_prev, zhat_prev

    _, lower = jax.lax.scan(step, top, (base, drive), reverse=True)
    return jnp.concatenate([lower, top[None]], axis=0)


def _outer_sum(a: jax.Array, b: jax.Array) -> jax.Array:
    """``sum_t a_t^T b_t`` for (T, B, p), (T, B, q) -> (p, q)."""
    return jnp.einsum("tbi,tbj->ij", a, b)


def forward_directions(x: jax.Array, z: jax.Array, zhat: jax.Array):
    """``(dWxh, dWhh, dbh)`` and the per-step deltas of ``sum_t MSE(F(x_t, z_{t-1}), zhat_t)``.

    ``F(x_t, z_{t-1}) = z_t``, so ``dL_t/d(pre-activation) = 2 (z_t - zhat_t)(1 - z_t^2) / (B m)``.
    """
    scale = 2.0 / (z.shape[1] * z.shape[2])
    delta = scale * (z - zhat) * (1.0 - z * z)
    d_whh = _outer_sum(z[:-1], delta[1:])  # z_{-1} = 0: step 0 gives nothing to Whh
    return _outer_sum(x, delta), d_whh, jnp.sum(delta, axis=(0, 1)), delta


def inverse_directions(xw: jax.Array, c_prev: jax.Array, f: jax.Array, Vhh: jax.Array,
                       ch: jax.Array):
    """``(dVhh, dch)``, per-step losses and deltas of ``sum_t MSE(G(x_t, f_t), c_{t-1})``.

    ``f_t = F(x_t, c_{t-1})`` and ``c_{t-1}`` are constants; ``xw = x Wxh``.
    """
    g = inverse_map(xw, f, Vhh, ch)
    scale = 2.0 / (g.shape[1] * g.shape[2])
    err = g - c_prev
    eps = scale * err * (1.0 - g * g)
    losses = jnp.mean(err * err, axis=(1, 2))
    return _outer_sum(f, eps), jnp.sum(eps, axis=(0, 1)), losses, eps


def _gram_norms(a: jax.Array, b: jax.Array) -> jax.Array:
    """``||a_t^T b_t||_F`` per t without forming the (T, p, q) products."""
    ga = jnp.einsum("tbi,tci->tbc", a, a)
    gb = jnp.einsum("tbi,tci->tbc", b, b)
    return jnp.sqrt(jnp.maximum(jnp.sum(ga * gb, axis=(1, 2)), 0.0))


# -- the rule ----------------------------------------------------------------------------
def _init(options: TPTTOptions):
    def init(key: jax.Array, params: Params) -> TPTTState:
        k_v, k_noise = jax.random.split(key)
        m = params.Whh.shape[0]
        dtype = params.Whh.dtype
        Vhh = orthogonal(k_v, (m, m), dtype)
        ch = jnp.zeros((m,), dtype)
        velocity = ((jnp.zeros_like(Vhh), jnp.zeros_like(ch))
                    if options.inverse_optimizer == "nesterov" else ())
        return TPTTState(Vhh, ch, velocity, k_noise)

    return init


def _build(options: TPTTOptions, loss: str, record: bool) -> Rule:
    loss_fn = global_loss(loss)

    def step(params: Params, state: TPTTState, batch, hparams):
        x, y = batch
        dtype = params.Whh.dtype
        hp = {k: jnp.asarray(hparams[k], dtype)
              for k in ("alpha_i", "alpha_g", "sigma", "inverse_momentum")}

        # 1. forward pass, E, dE/dz_{T-1}, dE/dWhy, dE/dby
        z = jnp.tanh(hidden_states(params, x))
        e_val, (g_top, g_why, g_by) = jax.value_and_grad(
            lambda zl, w, b: loss_fn(zl @ w + b, y),
            argnums=(0, 1, 2))(z[-1], params.Why, params.by)
        xw = x @ params.Wxh

        # 2. inverse update on (noise-corrupted) previous states
        key, k_noise = jax.random.split(state.key)
        z_prev = previous(z)
        if options.noise:
            c_prev = z_prev + hp["sigma"] * jax.random.normal(k_noise, z.shape, dtype)
            f = jnp.tanh(c_prev @ params.Whh + xw + params.bh)
        else:
            c_prev, f = z_prev, z
        d_vhh, d_ch, inv_losses, _ = inverse_directions(xw, c_prev, f, state.Vhh, state.ch)
        if options.inverse_optimizer == "nesterov":
            # Lasagne's nesterov_momentum: v <- mu v - a g ;  p <- p + mu v - a g
            mu, a = hp["inverse_momentum"], hp["alpha_g"]
            v_vhh = mu * state.velocity[0] - a * d_vhh
            v_ch = mu * state.velocity[1] - a * d_ch
            Vhh = state.Vhh + mu * v_vhh - a * d_vhh
            ch = state.ch + mu * v_ch - a * d_ch
            velocity = (v_vhh, v_ch)
        else:
            Vhh = state.Vhh - hp["alpha_g"] * d_vhh
            ch = state.ch - hp["alpha_g"] * d_ch
            velocity = ()

        # 3. targets with the updated inverse
        top = z[-1] - hp["alpha_i"] * g_top
        zhat = propagate_targets(z, xw, Vhh, ch, top)

        # 4. forward directions
        d_wxh, d_whh, d_bh, delta = forward_directions(x, z, zhat)
        if options.wxh_by_bptt:
            d_wxh = jax.grad(lambda w: loss_fn(readout(params, hidden_states(
                params._replace(Wxh=w), x)[-1]), y))(params.Wxh)

        grads = Params(Wxh=d_wxh, Whh=d_whh, bh=d_bh, Why=g_why, by=g_by)
        new_state = TPTTState(Vhh, ch, velocity, key)
        rec = {"loss": e_val,
               "spectral_radius_Whh": spectral_radius(params.Whh),
               "spectral_radius_Vhh": spectral_radius(Vhh)}
        if record:
            rec["local_loss"] = jnp.mean((z - zhat) ** 2, axis=(1, 2))
            rec["target_displacement_norm"] = jnp.sqrt(jnp.sum((zhat - z) ** 2, axis=(1, 2)))
            rec["grad_Whh_norm"] = _gram_norms(z_prev, delta)
            rec["grad_Wxh_norm"] = _gram_norms(x, delta)
            rec["inverse_loss"] = inv_losses
            rec["inverse_grad_norm"] = jnp.sqrt(jnp.sum(d_vhh ** 2) + jnp.sum(d_ch ** 2))
            lags = lags_from_deltas(z_prev, x, delta)
            if options.wxh_by_bptt:  # Wxh's update is BPTT's: its parts are BPTT's
                lags = (lags[0], bptt_lags(params, batch, loss)[0][1], lags[2])
            rec.update(credit_record(params, batch, loss, grads, lags))
        return grads, new_state, rec

    return Rule("tptt", _init(options), step, metrics=spectral_radii,
                metric_limits={"spectral_radius_Whh": RADIUS_LIMIT,
                               "spectral_radius_Vhh": RADIUS_LIMIT})


RULE = RuleDef(
    name="tptt",
    summary="target propagation through time (Manchev & Spratling 2020) with a learned inverse",
    options=TPTTOptions,
    hparams={
        "alpha_i": Hparam(0.1, "step of the first target, hhat_{T-1} = h_{T-1} - alpha_i dE/dh_{T-1}"),
        "alpha_g": Hparam(0.001, "learning rate of the inverse mapping G"),
        "sigma": Hparam(0.0, "std of the Gaussian noise on the inverse's inputs (0 = none)",
                        switches="noise"),
        "inverse_momentum": Hparam(0.9, "Nesterov momentum of the inverse's optimizer "
                                        "(the training loop's --momentum is the forward one's)", high=0.999),
    },
    build=_build,
)
