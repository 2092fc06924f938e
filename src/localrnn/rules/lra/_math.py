"""Small numerical pieces of the LRA-diff rule: Normalize (Algorithm 1, lines 29-32), the local
losses (eq. 8), the published code's Omega at the readout and the SRNN's closed-form derivatives of
both Omegas (docs/lra.md).

Everything here is elementwise or a single reduction, safe under ``jit``/``vmap``
and safe to differentiate (double-``where`` guards: no NaN gradients where a norm
is 0).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from localrnn.rules._norms import ratio_penalty, safe_norm

__all__ = ["local_loss_parts", "safe_norm", "normalize", "ratio_penalty", "omega_code",
           "omega_alg2_grad_h", "omega_code_grad_h", "diag_rows"]


def local_loss_parts(name: str) -> tuple[Callable, Callable]:
    """``(f, f')`` with ``L(p, r) = mean f(p - r)``; ``f`` is even, so ``L(p, r) = L(r, p)``."""
    if name == "mse":
        return (lambda d: d * d), (lambda d: 2.0 * d)
    if name == "log_penalty":
        return (lambda d: jnp.log1p(d * d)), (lambda d: 2.0 * d / (1.0 + d * d))
    raise ValueError(f"unknown local loss {name!r}; allowed: ['log_penalty', 'mse']")


def normalize(d: jax.Array, c: jax.Array, force: bool) -> jax.Array:
    """``Normalize`` (Algorithm 1, lines 29-32): if c > 0 and ||d|| >= c (forced: whenever c > 0 and
    d != 0), rescale d to norm c; c = 0 switches it off."""
    n = safe_norm(d)
    hit = (c > 0) & (n > 0) if force else (c > 0) & (n >= c) & (n > 0)
    return d * jnp.where(hit, c / jnp.where(hit, n, 1.0), 1.0)


def diag_rows(h: jax.Array) -> jax.Array:
    """``torch.diag`` of a (B, m) matrix: ``h[b, b]`` for b < min(B, m) (docs/lra.md#e-regularizer)."""
    b, m = h.shape
    if b > m:
        raise ValueError(f"regularizer='reference' needs batch <= hidden size (torch.diag of the "
                         f"(B, m) state has only min(B, m) entries); got batch={b}, hidden={m}")
    idx = jnp.arange(b)
    return h[idx, idx]


def omega_code(g: jax.Array, w: jax.Array, h: jax.Array) -> jax.Array:
    """The published code's Omega (docs/lra.md#e-regularizer): row b of ``g W^T`` scaled by ``1 - tanh(h[b, b])^2``."""
    s = 1.0 - jnp.tanh(diag_rows(h)) ** 2
    return ratio_penalty((g @ w.T) * s[:, None], g)


def omega_alg2_grad_h(m_: jax.Array, th: jax.Array, sp: jax.Array, n_delta: jax.Array) -> jax.Array:
    """d/dh of Algorithm 2's Omega on the SRNN, ``(||(delta W^T) * (1 - tanh(h)^2)|| / ||delta|| - 1)^2``
    (regularizers.omega_cell), in closed form, given ``M = delta W^T`` (held constant),
    ``th = tanh(h)``, ``sp = 1 - th^2`` and ``||delta||``."""
    j = m_ * sp
    nj = safe_norm(j)
    ok = (nj > 0) & (n_delta > 0)
    nd_s = jnp.where(ok, n_delta, 1.0)
    nj_s = jnp.where(ok, nj, 1.0)
    coef = jnp.where(ok, 2.0 * (nj_s / nd_s - 1.0) / (nd_s * nj_s), 0.0)
    return coef * j * m_ * (-2.0 * th * sp)


def omega_code_grad_h(mc: jax.Array, h: jax.Array, n_g: jax.Array) -> jax.Array:
    """d omega_code / dh in closed form, given ``Mc = g W^T`` (held constant) and ``||g||``;
    non-zero only on the entries ``h[b, b]``."""
    hd = diag_rows(h)
    thd = jnp.tanh(hd)
    s = 1.0 - thd * thd
    j = mc * s[:, None]
    nj = safe_norm(j)
    ok = (nj > 0) & (n_g > 0)
    ng_s = jnp.where(ok, n_g, 1.0)
    nj_s = jnp.where(ok, nj, 1.0)
    coef = jnp.where(ok, 2.0 * (nj_s / ng_s - 1.0) / (ng_s * nj_s), 0.0)
    d_s = coef * s * jnp.sum(mc * mc, axis=1)
    vals = d_s * (-2.0 * thd * s)
    idx = jnp.arange(hd.shape[0])
    return jnp.zeros_like(h).at[idx, idx].set(vals)
