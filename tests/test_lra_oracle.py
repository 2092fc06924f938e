"""The fast ``lra`` rule agrees with the literal transcription of the fixed-target reading, its
regularizer and the published-code options (tests/oracles/lra_literal.py; docs/lra.md) to 1e-10
max abs, float64.

Grid: a covering subset, not the cartesian product. Every value of every axis appears —
K {1, 3}, lambda {0, 0.1}, c0/c1 {0, 1e-3, 1} (equal and mixed), forced on/off, both
local losses, T {3, 10}, both global losses, update_layer0, each published-code option alone and the
``reference`` preset — and the pairs that interact: lambda x every option (the
regularizer's path depends on each), normalization constants x forced, K x inner_reference.
Hyper-parameters are traced, so each static configuration compiles once and all its
hyper-parameter points reuse that program.
"""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from oracles.lra_literal import lra_literal, small_problem  # noqa: E402

from localrnn.rules import make_rule  # noqa: E402
from localrnn.rules._credit import CREDIT_KEYS  # noqa: E402
from localrnn.rules.lra import REFERENCE_SETTINGS, LRAOptions, lra_core  # noqa: E402

SECTION7 = ["local_grads", "inner_reference", "normalization", "layer_loss", "regularizer"]
ALONE = {"local_grads": "unrolled", "inner_reference": "forward", "normalization": "reference",
         "layer_loss": "shifted", "regularizer": "reference"}


def hp(lam=0.0, c0=1.0, c1=1.0, gamma=1.0):
    return {"target_step": gamma, "c0": c0, "c1": c1, "reg_lambda": lam}


# (id, T, global loss, static options, hyper-parameter points)
CASES = [
    ("fixed_target-T10-K3-mse", 10, "cross_entropy", dict(inner_steps=3),
     [hp(0.0, 1.0, 1.0), hp(0.1, 1e-3, 1.0), hp(0.1, 0.0, 1e-3), hp(0.0, 1e-3, 0.0, gamma=10.0)]),
    ("fixed_target-T10-K3-lam0-only", 10, "cross_entropy", dict(inner_steps=3, local_loss="log_penalty"),
     [hp(0.0, 1e-3, 1e-3)]),
    ("fixed_target-T3-K1-logp-forced", 3, "cross_entropy",
     dict(inner_steps=1, local_loss="log_penalty", force_normalize=True),
     [hp(0.0, 1.0, 1.0), hp(0.1, 1e-3, 1e-3), hp(0.1, 1.0, 0.0), hp(0.0, 0.0, 0.0)]),
    ("fixed_target-T10-K1-regression", 10, "mse", dict(inner_steps=1, local_loss="log_penalty"),
     [hp(0.1, 1e-3, 1e-3, gamma=10.0)]),
    ("layer0-T3-K3", 3, "cross_entropy", dict(inner_steps=3, update_layer0=True),
     [hp(0.1, 1.0, 1e-3)]),
    ("layer0-shifted-T3-K3", 3, "cross_entropy",
     dict(inner_steps=3, update_layer0=True, layer_loss="shifted"), [hp(0.1, 1e-3, 1.0)]),
]
for _name, _val in ALONE.items():
    CASES.append((f"{_name}-alone-T10-K3", 10, "cross_entropy", dict(inner_steps=3, **{_name: _val}),
                  [hp(0.0, 1e-3, 1e-3, gamma=10.0), hp(0.1, 1.0, 1e-3, gamma=10.0)]))
    CASES.append((f"{_name}-alone-T3-K1-forced", 3, "cross_entropy",
                  dict(inner_steps=1, force_normalize=True, local_loss="log_penalty", **{_name: _val}),
                  [hp(0.1, 1e-3, 1.0)]))
CASES += [
    ("reference-T10-K3-logp", 10, "cross_entropy",
     dict(inner_steps=3, variant="reference", local_loss="log_penalty"),
     [hp(0.0, 1e-3, 1e-3, gamma=10.0), hp(0.1, 1.0, 1.0, gamma=10.0), hp(0.1, 0.0, 0.0)]),
    ("reference-T3-K1-forced-regression", 3, "mse",
     dict(inner_steps=1, variant="reference", force_normalize=True), [hp(0.1, 1e-3, 1e-3)]),
    ("reference-but-one_step-T10-K3", 10, "cross_entropy",
     dict(inner_steps=3, variant="reference", local_grads="one_step"), [hp(0.1, 1e-3, 1e-3)]),
]


def _oracle_kwargs(opts: LRAOptions) -> dict:
    d = opts.model_dump()
    for k in ("regularize", "validation_initial_state", "variant"):
        d.pop(k)
    return d


def _compare(fast: dict, slow: dict, tol: float = 1e-10) -> dict:
    errs = {k: float(jnp.max(jnp.abs(jnp.asarray(fast[k]) - slow[k]))) for k in slow}
    bad = {k: v for k, v in errs.items() if not v <= tol}
    assert not bad, f"fast vs oracle max abs errors above {tol}: {bad}"
    return errs


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_fast_rule_matches_literal_oracle(case):
    _, T, loss, options, points = case
    params, x, y = small_problem(T, loss)
    opts = LRAOptions(**options, regularize=any(p["reg_lambda"] != 0 for p in points))
    fast_fn = jax.jit(lambda p, xx, yy, h: lra_core(p, xx, yy, h, opts, loss))
    for point in points:
        fast = fast_fn(params, x, y, {k: jnp.asarray(v, jnp.float64) for k, v in point.items()})
        slow = lra_literal(params, x, y, loss=loss, **_oracle_kwargs(opts), **point)
        _compare(fast, slow)
        # the update is not trivially zero, so agreement means something
        assert float(jnp.max(jnp.abs(slow["grad_Whh"]))) > 0


def test_grid_covers_every_axis_value():
    seen = {"K": set(), "lam": set(), "c": set(), "force": set(), "local": set(), "T": set()}
    for _, T, _, options, points in CASES:
        seen["K"].add(options.get("inner_steps"))
        seen["force"].add(options.get("force_normalize", False))
        seen["local"].add(options.get("local_loss", "mse"))
        seen["T"].add(T)
        for p in points:
            seen["lam"].add(p["reg_lambda"])
            seen["c"].update({p["c0"], p["c1"]})
    assert seen == {"K": {1, 3}, "lam": {0.0, 0.1}, "c": {0.0, 1e-3, 1.0}, "force": {False, True},
                    "local": {"mse", "log_penalty"}, "T": {3, 10}}
    alone = {n for n, *_ in CASES if n.endswith("alone-T10-K3")}
    assert len(alone) == len(SECTION7)


def test_rule_step_and_record_match_oracle():
    """Through the registry (the contract the training loop uses), with the record on."""
    params, x, y = small_problem(10)
    point = hp(0.1, 1e-3, 1.0, gamma=10.0)
    rule = make_rule("lra", "cross_entropy", record=True, hparams=point, inner_steps=3)
    grads, state, rec = jax.jit(rule.step)(
        params, (), (x, y), {k: jnp.asarray(v, jnp.float64) for k, v in point.items()})
    slow = lra_literal(params, x, y, inner_steps=3, **point)
    for name in ("Wxh", "Whh", "bh", "Why", "by"):
        np.testing.assert_allclose(getattr(grads, name), slow[f"grad_{name}"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(rec["loss"], slow["loss"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(rec["local_loss"], slow["local_loss"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(rec["target_displacement_norm"], slow["target_displacement_norm"],
                               rtol=0, atol=1e-10)
    for name in ("Whh", "Wxh"):
        want = jnp.sqrt(jnp.sum(slow[f"grad_{name}_per_layer"] ** 2, axis=(1, 2)))
        np.testing.assert_allclose(rec[f"grad_{name}_norm"], want, rtol=0, atol=1e-10)
    assert set(rec) == {"loss", "local_loss", "target_displacement_norm", "grad_Whh_norm",
                        "grad_Wxh_norm", *CREDIT_KEYS}
    # record off: only the loss
    rule_off = make_rule("lra", "cross_entropy", record=False, hparams=point, inner_steps=3)
    _, _, rec_off = rule_off.step(params, (), (x, y), point)
    assert set(rec_off) == {"loss"}


def test_reference_settings_are_the_section7_options():
    assert set(REFERENCE_SETTINGS) == set(SECTION7) | {"validation_initial_state"}
