"""Literal, slow transcription of RNN-LRA-diff on the diagonal cells (docs/lra.md#the-diagonal-cells):
the fixed-target and printed readings, the published-code options (a)-(d) and Algorithm 2's
regularizer, used as the oracle of ``localrnn.rules.lra`` with ``cell=diagonal`` / ``diagonal-real``.

The cell's step is written here from its equations in complex arithmetic, and the reading is the
per-step transcription ``oracles.lra_step_literal`` (plain loops, ``jax.grad``/``jax.vjp``); nothing
is shared with the package:

    lambda = exp(-exp(nu) + i theta),  gamma = sqrt(1 - lambda conj(lambda)),  B = B_re + i B_im
    h_t = lambda h_{t-1} + gamma (x_t B),   a_t = [Re h_t, Im h_t],   z_t = tanh(a_t)

(real cell: lambda = exp(-exp(nu)), B real, a_t = h_t). The step S_t(a_{t-1}; rec) is written on
the real vector a, rec = the recurrent parameters (nu, theta, B_re, B_im | nu, B); every layer's
update of every array is Normalize(., c0)'d, and theta's at layer 0 is 0 (step 0 does not depend on
it). Eager and slow: keep T, B, m small.
"""

from __future__ import annotations

import jax.numpy as jnp

from oracles.lra_step_literal import lra_step_literal


def lra_diagonal_literal(params, x, y, **options):
    """Returns a dict with the keys of ``lra_core`` on a diagonal cell; ``options`` as
    ``lra_step_literal`` takes them (no published-code Omega: it is refused on these cells)."""
    complex_cell = hasattr(params, "theta")
    names = ("nu", "theta", "B_re", "B_im") if complex_cell else ("nu", "B")
    m = params.nu.shape[0]

    def S(t, a_prev, r):
        """a_t from a_{t-1}: one step of the cell, in complex arithmetic."""
        if complex_cell:
            lam = jnp.exp(-jnp.exp(r["nu"]) + 1j * r["theta"])
            gain = jnp.sqrt(1.0 - jnp.real(lam * jnp.conj(lam)))
            h = lam * (a_prev[:, :m] + 1j * a_prev[:, m:]) + gain * (x[t] @ (r["B_re"] + 1j * r["B_im"]))
            return jnp.concatenate([jnp.real(h), jnp.imag(h)], axis=1)
        lam = jnp.exp(-jnp.exp(r["nu"]))
        return lam * a_prev + jnp.sqrt(1.0 - lam * lam) * (x[t] @ r["B"])

    def finish(t, g, normalize):
        """Every array normalized; theta's layer-0 derivative is 0 (to rounding): set it."""
        return {k: jnp.zeros_like(v) if (t == 0 and k == "theta") else normalize(v) for k, v in g.items()}

    zero = jnp.zeros((x.shape[1], 2 * m if complex_cell else m), params.nu.dtype)
    return lra_step_literal(S, {k: getattr(params, k) for k in names}, zero, x, y, params.Why, params.by,
                            finish=finish, **options)
