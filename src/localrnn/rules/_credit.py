"""How far back a rule's credit reaches: the cosine between its recurrent update and BPTT's
gradient on the same batch, overall and per time lag (docs/credit.md).

theta = (Whh, Wxh, bh), the recurrent parameters, flattened in that order. BPTT's gradient is a
sum over steps of the part that enters through step t's immediate terms,

    G_t = c (z_{t-1}^T delta_t,  x_t^T delta_t,  sum_b delta_t),   delta_t = dE/dh_t,

(c = 1/tau, the cell's ``drive``; z_{-1} = 0), which is the credit given at lag T-1-t. A rule's
update U (as returned: a descent direction) is split the same way, U = sum_t U_t: its per-layer
update at t for the target rules (LRA-diff, LRA-fdbk, TPTT), or its update with the immediate terms
kept at step t only for the rules linear in them (RTRL, SnAp-1, e-prop / RFLO, feedback alignment).
Recorded, with ``record=True``, per step t:

    credit_cosine[t]      = cos(U_t, G_t)     (0 where either is zero; NaN for UORO, which has no split)
    credit_cosine_overall = cos(U, G)         (a scalar)
    credit_norm[t]        = ||U_t||            (NaN for UORO)
    bptt_credit_norm[t]   = ||G_t||

A cosine is blind to scale, so the norms say how much credit each lag gets: a rule can point the
right way at lag 50 with a part a million times smaller than BPTT's.

For RTRL U_t = G_t is an identity (its influence with only step t's immediate terms, contracted
with delta, is BPTT's part G_t), so ``lags="exact"`` records it without recomputing.

Arrays are indexed by t like every per-layer record; lag = T-1-t.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from localrnn.cells import SRNN, Cell
from localrnn.model import Params, hidden_states
from localrnn.rules._gradient import loss_and_hidden_grads

__all__ = ["lags_from_deltas", "bptt_lags", "credit_record", "cosine", "previous", "CREDIT_KEYS"]

#: the record keys every rule adds with ``record=True``
CREDIT_KEYS = ("credit_cosine", "credit_cosine_overall", "credit_norm", "bptt_credit_norm")

#: the per-step parts of an update: (Whh (T, m, m), Wxh (T, n, m), bh (T, m))
Lags = tuple[jax.Array, jax.Array, jax.Array]


def previous(z: jax.Array) -> jax.Array:
    """``z_{t-1}`` for t = 0 .. T-1 with ``z_{-1} = 0``."""
    return jnp.concatenate([jnp.zeros_like(z[:1]), z[:-1]], axis=0)


def lags_from_deltas(z_prev: jax.Array, x: jax.Array, delta: jax.Array, scale=1.0) -> Lags:
    """``scale (z_{t-1}^T delta_t, x_t^T delta_t, sum_b delta_t)`` for every t."""
    return (scale * jnp.einsum("tbi,tbj->tij", z_prev, delta), scale * jnp.einsum("tbi,tbj->tij", x, delta),
            scale * jnp.sum(delta, axis=1))


def bptt_lags(params: Params, batch, loss: str, cell: Cell = SRNN) -> tuple[Lags, jax.Array]:
    """BPTT's per-step parts G_t and its whole recurrent gradient on ``batch`` (flat)."""
    x = batch[0]
    _, grads, g_h = loss_and_hidden_grads(params, batch, loss, cell)
    hs_z = _activities(params, x, cell)
    return lags_from_deltas(previous(hs_z), x, g_h, cell.drive), _flat_theta(grads)


def _activities(params: Params, x: jax.Array, cell: Cell) -> jax.Array:
    return jnp.tanh(hidden_states(params, x, cell=cell))


def _flat_theta(p: Params) -> jax.Array:
    return jnp.concatenate([p.Whh.ravel(), p.Wxh.ravel(), p.bh.ravel()])


def _flat_lags(lags: Lags) -> jax.Array:
    T = lags[0].shape[0]
    return jnp.concatenate([a.reshape(T, -1) for a in lags], axis=1)


def cosine(a: jax.Array, b: jax.Array) -> jax.Array:
    """Cosine along the last axis; 0 where either vector is zero."""
    dot = jnp.sum(a * b, axis=-1)
    norms = jnp.sqrt(jnp.sum(a * a, axis=-1)) * jnp.sqrt(jnp.sum(b * b, axis=-1))
    return jnp.where(norms > 0, dot / jnp.where(norms > 0, norms, 1.0), 0.0)


def credit_record(params: Params, batch, loss: str, update: Params, lags: Lags | str | None,
                  cell: Cell = SRNN) -> dict[str, jax.Array]:
    """``credit_cosine`` (T,), ``credit_cosine_overall`` (), ``credit_norm`` (T,) and
    ``bptt_credit_norm`` (T,) of a rule's ``update`` and its per-step parts ``lags`` against BPTT's
    on ``batch``. ``lags``: the parts, ``"exact"`` (they are
    BPTT's), or None (no split: ``credit_cosine`` is NaN)."""
    T = batch[0].shape[0]
    g_lags, g_all = bptt_lags(params, batch, loss, cell)
    overall = cosine(_flat_theta(update), g_all)
    g_flat = _flat_lags(g_lags)
    g_norm = jnp.sqrt(jnp.sum(g_flat * g_flat, axis=1))
    if lags is None:
        per_lag = norm = jnp.full((T,), jnp.nan, g_all.dtype)
    else:
        u_flat = g_flat if isinstance(lags, str) else _flat_lags(lags)
        per_lag, norm = cosine(u_flat, g_flat), jnp.sqrt(jnp.sum(u_flat * u_flat, axis=1))
    return {"credit_cosine": per_lag, "credit_cosine_overall": overall, "credit_norm": norm,
            "bptt_credit_norm": g_norm}
