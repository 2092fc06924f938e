"""SnAp-1 (Menick, Elsen, Evci, Osindero, Simonyan & Graves 2021), docs/rtrl.md.

RTRL (localrnn/rules/rtrl.py) with the one-step Jacobian D_t replaced by its diagonal: every
parameter keeps only its influence on the unit it feeds directly, one trace per parameter and
sample. With d_t[j] = D_t[j, j] = Whh[j, j] (1 - z_{t-1}[j]^2) (z_{-1} = 0) and p_{-1} = 0,

    p_t^Whh[i, j] = d_t[j] p_{t-1}^Whh[i, j] + z_{t-1}[i]
    p_t^Wxh[i, j] = d_t[j] p_{t-1}^Wxh[i, j] + x_t[i]
    p_t^bh[j]     = d_t[j] p_{t-1}^bh[j]     + 1

and, the loss being read at the last step only, with delta = dE/dh_{T-1} (batch mean),

    grad Whh[i, j] = sum_b delta[b, j] p_{T-1}^Whh[b, i, j]   (likewise Wxh, bh).

On the leaky cell (docs/cells.md) d_t is the diagonal of its D_t, (1 - 1/tau) + (1/tau) d_t(SRNN),
and the immediate terms carry 1/tau. Why and by get their exact gradient. The trace of Whh[i, j] follows unit j through its own
self-connection Whh[j, j] only; all other paths through the network are dropped, so the
update is biased (exact when Whh is diagonal, or for the Whh entries when T <= 2).
On the diagonal cells (localrnn.diagonal_cell) D_t = diag(lambda) is its own diagonal and each
parameter feeds one unit, so SnAp-1 drops nothing: it is RTRL there, equal to BPTT
(localrnn.rules._diagonal); the record holds the loss only.
Cost: memory O(B |theta|), time O(T B |theta|), the order of the forward pass.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from localrnn.cells import SRNN, Cell
from localrnn.model import Params, hidden_states
from localrnn.rules._base import NoOptions, Rule, RuleDef, zero_state
from localrnn.rules._credit import credit_record, lags_from_deltas
from localrnn.rules._diagonal import diagonal_rule
from localrnn.rules.rtrl import previous_activities, readout_and_delta

__all__ = ["RULE"]


def _build(options: NoOptions, loss: str, record: bool, cell: Cell = SRNN) -> Rule:
    if cell.diagonal:  # D_t = diag(lambda): the diagonal is all of it, SnAp-1 is RTRL there
        return diagonal_rule("snap1", loss, cell)
    c = cell.drive  # the immediate terms carry 1/tau (1 for the SRNN)

    def step(params, state, batch, hparams):
        x, y = batch
        hs = hidden_states(params, x, cell=cell)

        def advance(p, inp):
            z_prev, x_t = inp
            d = cell.jacobian_diagonal(params.Whh, z_prev)  # (B, m): the diagonal of D_t
            p_hh, p_xh, p_b = p
            p = (d[:, None, :] * p_hh + c * z_prev[:, :, None],
                 d[:, None, :] * p_xh + c * x_t[:, :, None],
                 d * p_b + c)
            norm = jnp.sqrt(sum(jnp.sum(q ** 2) for q in p)) if record else None
            return p, norm

        B = x.shape[1]
        p0 = (jnp.zeros((B,) + params.Whh.shape, params.Whh.dtype),
              jnp.zeros((B,) + params.Wxh.shape, params.Wxh.dtype),
              jnp.zeros((B,) + params.bh.shape, params.bh.dtype))
        z_prev = previous_activities(hs)
        (p_hh, p_xh, p_b), norms = jax.lax.scan(advance, p0, (z_prev, x))
        e_val, g_why, g_by, delta = readout_and_delta(params, hs[-1], y, loss)
        grads = Params(Wxh=jnp.einsum("bj,bij->ij", delta, p_xh),
                       Whh=jnp.einsum("bj,bij->ij", delta, p_hh),
                       bh=jnp.einsum("bj,bj->j", delta, p_b), Why=g_why, by=g_by)
        rec = {"loss": e_val}
        if record:
            rec["influence_norm"] = norms  # the kept entries of its P_t
            # step t's immediate terms alone reach T-1 through prod_{s > t} d_s (per unit j)
            d = cell.jacobian_diagonal(params.Whh, z_prev)  # (T, B, m)
            after = jnp.cumprod(jnp.concatenate([d[1:], jnp.ones_like(d[:1])], axis=0)[::-1], axis=0)[::-1]
            lags = lags_from_deltas(z_prev, x, after * delta[None], c)
            rec.update(credit_record(params, batch, loss, grads, lags, cell))
        return grads, state, rec

    return Rule("snap1", zero_state, step)


RULE = RuleDef(
    name="snap1",
    summary="SnAp-1: RTRL with the Jacobian's diagonal only (one trace per parameter; biased)",
    options=NoOptions,
    hparams={},
    build=_build,
    cells=("srnn", "leaky", "orthogonal", "diagonal", "diagonal-real"),
)
