"""RTRL: real-time recurrent learning (Williams & Zipser 1989), exact (docs/rtrl.md).

The recurrent parameters theta = (Whh, Wxh, bh) are carried forward in time through the
influence P_t = dh_t/dtheta of every sample (m x |theta|, |theta| = m^2 + n m + m):

    P_{-1} = 0,   P_t[j, :] = sum_i D_t[i, j] P_{t-1}[i, :] + I_t[j, :]

with the one-step Jacobian D_t[i, j] = dh_t[j]/dh_{t-1}[i] = Whh[i, j] (1 - z_{t-1}[i]^2)
(z_{-1} = 0, so the first step has no recurrent term) and the immediate derivatives
I_t: dh_t[j]/dWhh[i, j] = z_{t-1}[i], dh_t[j]/dWxh[i, j] = x_t[i], dh_t[j]/dbh[j] = 1 (zero for
the other columns). The loss is read at the last step only, so

    grad theta = sum_b delta[b] P_{T-1}[b],   delta = dE/dh_{T-1} = (dE/dout Why^T) * (1 - z_{T-1}^2)

(E the batch mean, so delta carries the 1/B); Why and by get their exact gradient. This is
BPTT's gradient computed forward in time. The influence is kept as three blocks,
P^Whh (B, m, m, m), P^Wxh (B, m, n, m) and P^bh (B, m, m) -- row k is unit k, the other
axes index the parameter -- which is theta flattened in the order (Whh, Wxh, bh).

On the leaky cell (docs/cells.md) D_t and the immediate terms are the cell's:
D_t = (1 - 1/tau) 1 + (1/tau) D_t(SRNN), immediate terms times 1/tau.

On the diagonal cells (localrnn.diagonal_cell) D_t = diag(lambda) and each parameter feeds one
unit, so P_t has one nonzero entry per parameter and is kept as those traces
(localrnn.rules._diagonal; memory O(B n m)); the record holds the loss only, as bptt's there.

Cost: memory O(B m |theta|) for the influence, time O(T B m^2 |theta|); a reference for small
m, not a fast rule. ``max_influence_mb`` refuses sizes whose influence would not fit.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from pydantic import BaseModel, ConfigDict, Field

from localrnn.cells import SRNN, Cell
from localrnn.losses import global_loss
from localrnn.model import Params, hidden_states, readout
from localrnn.rules._base import Rule, RuleDef, zero_state
from localrnn.rules._credit import credit_record, previous
from localrnn.rules._diagonal import diagonal_rule

__all__ = ["RULE", "RTRLOptions", "readout_and_delta", "previous_activities", "influence_mib",
           "check_influence_size"]


def readout_and_delta(params: Params, h_last: jax.Array, y: jax.Array, loss: str):
    """``E``, its exact gradients for ``Why`` and ``by``, and ``delta = dE/dh_{T-1}`` (B, m)."""
    loss_fn = global_loss(loss)

    def objective(Why, by, h):
        return loss_fn(readout(params._replace(Why=Why, by=by), h), y)

    e_val, (g_why, g_by, delta) = jax.value_and_grad(objective, argnums=(0, 1, 2))(
        params.Why, params.by, h_last)
    return e_val, g_why, g_by, delta


def previous_activities(hs: jax.Array) -> jax.Array:
    """``z_{t-1}`` for t = 0 .. T-1, shape (T, B, m), with ``z_{-1} = 0``."""
    return previous(jnp.tanh(hs))


def influence_mib(batch: int, n_in: int, n_hidden: int, itemsize: int) -> float:
    """Size in MiB of one influence array P_t: B x m x |theta| entries, |theta| = m^2 + n m + m."""
    n_theta = n_hidden * n_hidden + n_in * n_hidden + n_hidden
    return batch * n_hidden * n_theta * itemsize / 2 ** 20


def check_influence_size(limit_mib: int, batch: int, n_in: int, n_hidden: int, itemsize: int) -> None:
    """ValueError naming ``max_influence_mb`` when one influence array would exceed it."""
    need = influence_mib(batch, n_in, n_hidden, itemsize)
    if need > limit_mib:
        raise ValueError(
            f"max_influence_mb: rtrl's influence dh/dtheta needs {need:.1f} MiB per configuration "
            f"(batch {batch} x hidden {n_hidden} x |theta| {n_hidden * (n_hidden + n_in + 1)} x "
            f"{itemsize} bytes), over the limit of {limit_mib} MiB; raise --max-influence-mb to at least "
            f"{int(need) + 1}, or use a smaller hidden size or batch")


class RTRLOptions(BaseModel):
    """Static option: the largest influence array (per configuration) the rule agrees to build."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    max_influence_mb: int = Field(
        2048, ge=1, description="refuse sizes whose influence dh/dtheta (batch x hidden x |theta| "
                                "entries) would exceed this many MiB")


def _build(options: RTRLOptions, loss: str, record: bool, cell: Cell = SRNN) -> Rule:
    if cell.diagonal:  # the influence is one trace per parameter (localrnn.rules._diagonal)
        return diagonal_rule("rtrl", loss, cell)

    def step(params, state, batch, hparams):
        x, y = batch
        T, B, n = x.shape
        m = params.Whh.shape[0]
        check_influence_size(options.max_influence_mb, B, n, m, params.Whh.dtype.itemsize)
        hs = hidden_states(params, x, cell=cell)
        eye = cell.drive * jnp.eye(m, dtype=params.Whh.dtype)  # immediate terms carry 1/tau

        def advance(P, inp):
            z_prev, x_t = inp
            D = cell.jacobian(params.Whh, z_prev)  # D[b, i, j] = dh_t[j]/dh_{t-1}[i]
            P_hh, P_xh, P_b = P
            P_hh = jnp.einsum("bik,bipq->bkpq", D, P_hh) + z_prev[:, None, :, None] * eye[None, :, None, :]
            P_xh = jnp.einsum("bik,bipq->bkpq", D, P_xh) + x_t[:, None, :, None] * eye[None, :, None, :]
            P_b = jnp.einsum("bik,biq->bkq", D, P_b) + eye[None]
            P = (P_hh, P_xh, P_b)
            norm = jnp.sqrt(sum(jnp.sum(p ** 2) for p in P)) if record else None
            return P, norm

        dt = params.Whh.dtype
        P0 = (jnp.zeros((B, m, m, m), dt), jnp.zeros((B, m, n, m), dt), jnp.zeros((B, m, m), dt))
        (P_hh, P_xh, P_b), norms = jax.lax.scan(advance, P0, (previous_activities(hs), x))
        e_val, g_why, g_by, delta = readout_and_delta(params, hs[-1], y, loss)
        grads = Params(Wxh=jnp.einsum("bk,bkpq->pq", delta, P_xh),
                       Whh=jnp.einsum("bk,bkpq->pq", delta, P_hh),
                       bh=jnp.einsum("bk,bkq->q", delta, P_b), Why=g_why, by=g_by)
        rec = {"loss": e_val}
        if record:
            rec["influence_norm"] = norms
            rec.update(credit_record(params, batch, loss, grads, "exact", cell))
        return grads, state, rec

    return Rule("rtrl", zero_state, step)


RULE = RuleDef(
    name="rtrl",
    summary="real-time recurrent learning (exact gradient carried forward; memory B m |theta|)",
    options=RTRLOptions,
    hparams={},
    build=_build,
    cells=("srnn", "leaky", "orthogonal", "diagonal", "diagonal-real"),
)
