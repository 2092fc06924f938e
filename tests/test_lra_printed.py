"""``variant="printed"`` agrees with the line-by-line transcription of Algorithm 1 as printed
(tests/oracles/lra_printed_literal.py) to 1e-10 max abs, float64; at K = 1 it is the fixed-target
reading exactly (docs/lra-readings.md).

Grid: a covering subset, not the cartesian product. Every value of every axis appears — K {1, 3},
lambda {0, 0.1}, c0/c1 {0, 1e-3, 1} (equal and mixed), forced on/off, both local losses, T {3, 10},
both global losses. Hyper-parameters are traced, so each static configuration compiles once.
"""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from oracles.lra_literal import small_problem  # noqa: E402
from oracles.lra_printed_literal import lra_printed_literal  # noqa: E402

from localrnn import lra_gradients  # noqa: E402
from localrnn.rules.lra import LRAOptions, lra_core  # noqa: E402


def hp(lam=0.0, c0=1.0, c1=1.0, gamma=1.0):
    return {"target_step": gamma, "c0": c0, "c1": c1, "reg_lambda": lam}


# (id, T, global loss, static options, hyper-parameter points)
CASES = [
    ("T10-K3-mse", 10, "cross_entropy", dict(inner_steps=3),
     [hp(0.0, 1.0, 1.0), hp(0.1, 1e-3, 1.0), hp(0.1, 0.0, 1e-3), hp(0.0, 1e-3, 0.0, gamma=10.0)]),
    ("T10-K3-logp", 10, "cross_entropy", dict(inner_steps=3, local_loss="log_penalty"),
     [hp(0.0, 1e-3, 1e-3), hp(0.1, 1.0, 1.0, gamma=10.0)]),
    ("T3-K3-forced", 3, "cross_entropy", dict(inner_steps=3, force_normalize=True),
     [hp(0.0, 1.0, 1e-3), hp(0.1, 1e-3, 1.0), hp(0.1, 0.0, 0.0)]),
    ("T3-K1-logp-forced", 3, "cross_entropy",
     dict(inner_steps=1, local_loss="log_penalty", force_normalize=True),
     [hp(0.0, 1.0, 1.0), hp(0.1, 1e-3, 1e-3), hp(0.1, 1.0, 0.0)]),
    ("T10-K1-regression", 10, "mse", dict(inner_steps=1), [hp(0.1, 1e-3, 1e-3, gamma=10.0)]),
    ("T10-K3-regression-logp-forced", 10, "mse",
     dict(inner_steps=3, local_loss="log_penalty", force_normalize=True),
     [hp(0.0, 1e-3, 1e-3, gamma=10.0), hp(0.1, 1.0, 1e-3)]),
]


def _compare(fast: dict, slow: dict, tol: float = 1e-10) -> None:
    errs = {k: float(jnp.max(jnp.abs(jnp.asarray(fast[k]) - slow[k]))) for k in slow}
    bad = {k: v for k, v in errs.items() if not v <= tol}
    assert not bad, f"fast vs printed oracle max abs errors above {tol}: {bad}"


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_printed_variant_matches_literal_oracle(case):
    _, T, loss, options, points = case
    params, x, y = small_problem(T, loss)
    opts = LRAOptions(**options, variant="printed",
                      regularize=any(p["reg_lambda"] != 0 for p in points))
    fast_fn = jax.jit(lambda p, xx, yy, h: lra_core(p, xx, yy, h, opts, loss))
    for point in points:
        fast = fast_fn(params, x, y, {k: jnp.asarray(v, jnp.float64) for k, v in point.items()})
        slow = lra_printed_literal(params, x, y, loss=loss, **options, **point)
        _compare(fast, slow)
        assert float(jnp.max(jnp.abs(slow["grad_Whh"]))) > 0


def test_grid_covers_every_axis_value():
    seen = {"K": set(), "lam": set(), "c": set(), "force": set(), "local": set(), "T": set(),
            "loss": set()}
    for _, T, loss, options, points in CASES:
        seen["K"].add(options["inner_steps"])
        seen["force"].add(options.get("force_normalize", False))
        seen["local"].add(options.get("local_loss", "mse"))
        seen["T"].add(T)
        seen["loss"].add(loss)
        for p in points:
            seen["lam"].add(p["reg_lambda"])
            seen["c"].update({p["c0"], p["c1"]})
    assert seen == {"K": {1, 3}, "lam": {0.0, 0.1}, "c": {0.0, 1e-3, 1.0}, "force": {False, True},
                    "local": {"mse", "log_penalty"}, "T": {3, 10}, "loss": {"cross_entropy", "mse"}}


@pytest.mark.parametrize("lam", [0.0, 0.1])
def test_printed_equals_fixed_target_at_one_inner_step(lam):
    """K = 1: one top step and one inner step against the fixed target in both readings."""
    params, x, y = small_problem(10)
    kw = dict(inner_steps=1, target_step=10.0, c0=1e-3, c1=1.0, reg_lambda=lam)
    printed = lra_gradients(params, x, y, variant="printed", **kw)
    fixed = lra_gradients(params, x, y, variant="fixed_target", **kw)
    for k in fixed:
        np.testing.assert_array_equal(printed[k], fixed[k], err_msg=k)


def test_printed_differs_from_fixed_target_at_three_inner_steps():
    params, x, y = small_problem(10)
    kw = dict(inner_steps=3, target_step=10.0, c0=1e-3, c1=1.0)
    printed = lra_gradients(params, x, y, variant="printed", **kw)
    fixed = lra_gradients(params, x, y, variant="fixed_target", **kw)
    gap = float(jnp.max(jnp.abs(printed["grad_Whh"] - fixed["grad_Whh"])))
    assert gap > 1e-3 * float(jnp.max(jnp.abs(fixed["grad_Whh"])))
