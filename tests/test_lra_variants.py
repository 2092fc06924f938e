"""The three readings side by side and the published-code options one at a time
(docs/lra-readings.md, docs/lra.md#published-code-options), option validation, and robustness of
the ``lra`` rule."""

from __future__ import annotations

import sys
from pathlib import Path

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pydantic
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from oracles.lra_literal import small_problem  # noqa: E402


import localrnn  # noqa: E402
from localrnn import lra_gradients  # noqa: E402
from localrnn.rules import get_rule, make_rule, resolve_options  # noqa: E402
from localrnn.rules.bptt import loss_and_hidden_grads  # noqa: E402
from localrnn.rules.lra import REFERENCE_SETTINGS, LRAOptions  # noqa: E402

ALONE = {"local_grads": "unrolled", "inner_reference": "forward", "normalization": "reference",
         "layer_loss": "shifted", "regularizer": "reference"}
GRADS = ("grad_Wxh", "grad_Whh", "grad_bh", "grad_Why", "grad_by")
# a fixed batch: temporal order, T = 20 (where credit assignment starts to matter), B = 20, m = 100
HP = dict(inner_steps=3, target_step=1.0, c0=0.01, c1=0.01, reg_lambda=0.1)


@pytest.fixture(scope="module")
def batch():
    task = localrnn.get_task("temporal_order")
    params = localrnn.init_params(jax.random.PRNGKey(0), task.n_in, 100, task.n_out, jnp.float64)
    x, y = task.sample(jax.random.PRNGKey(1), 20, 20, jnp.float64)
    return params, x, y


def _flat(g, keys=GRADS):
    return np.concatenate([np.asarray(g[k]).ravel() for k in keys])


def _cos(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# ---- options ----------------------------------------------------------------------

def test_reference_preset_sets_all_six_and_explicit_wins():
    o = LRAOptions(variant="reference")
    for k, v in REFERENCE_SETTINGS.items():
        assert getattr(o, k) == v
    o2 = LRAOptions(variant="reference", local_grads="one_step")
    assert o2.local_grads == "one_step" and o2.layer_loss == "shifted"
    f = LRAOptions()
    assert (f.local_grads, f.inner_reference, f.normalization, f.layer_loss, f.regularizer,
            f.validation_initial_state) == ("one_step", "target", "algorithm1", "own",
                                            "algorithm2", "zero")


def test_variant_names_dashes_and_the_old_name():
    assert LRAOptions().variant == "fixed_target"
    assert LRAOptions(variant="fixed-target").variant == "fixed_target"
    p = LRAOptions(variant="printed")
    assert (p.inner_reference, p.local_grads, p.layer_loss, p.top_steps) == ("forward", "one_step",
                                                                            "own", 1)
    assert LRAOptions(inner_steps=4).top_steps == LRAOptions(inner_steps=4, variant="reference").top_steps == 4
    with pytest.raises(pydantic.ValidationError, match="renamed to 'fixed_target'"):
        LRAOptions(variant="faithful")
    with pytest.raises(pydantic.ValidationError, match="variant"):
        LRAOptions(variant="literal")


def test_option_errors_name_the_field():
    with pytest.raises(pydantic.ValidationError, match="inner_steps"):
        LRAOptions(inner_steps=0)
    with pytest.raises(pydantic.ValidationError, match="local_grads"):
        LRAOptions(local_grads="sideways")
    with pytest.raises(pydantic.ValidationError, match="bogus"):
        LRAOptions(bogus=1)
    assert LRAOptions(local_loss="log-penalty").local_loss == "log_penalty"


def test_registry_and_derive_options():
    rule = get_rule("lra")
    assert set(rule.hparams) == {"target_step", "c0", "c1", "reg_lambda"}
    assert rule.defaults["c0"] == rule.defaults["c1"] == 1.0 and rule.defaults["reg_lambda"] == 0.0
    assert not resolve_options("lra", {}).regularize
    assert resolve_options("lra", {}, {"reg_lambda": 0.1}).regularize
    assert make_rule("lra", variant="reference").validation_initial_state == "reference"
    assert make_rule("lra").validation_initial_state == "zero"


# ---- each published-code option alone ------------------------------------------------------------

def test_each_option_alone_changes_the_update(batch, capsys):
    """Everything else as in the fixed-target reading, switching one option changes the gradients
    on a fixed batch. Prints cosine and norm ratio against the fixed-target update (all five
    parameters, and Whh)."""
    params, x, y = batch
    fixed = lra_gradients(params, x, y, **HP)
    f_all, f_hh = _flat(fixed), _flat(fixed, ("grad_Whh",))
    lines = []
    for name, value in list(ALONE.items()) + [("variant", "printed"), ("variant", "reference")]:
        g = lra_gradients(params, x, y, **HP, **{name: value})
        a, a_hh = _flat(g), _flat(g, ("grad_Whh",))
        assert np.max(np.abs(a - f_all)) > 1e-6 * np.max(np.abs(f_all)), name
        lines.append(f"{name}={value:10s} all: cos {_cos(a, f_all):+.4f} ratio "
                     f"{np.linalg.norm(a) / np.linalg.norm(f_all):.4g} | Whh: cos "
                     f"{_cos(a_hh, f_hh):+.4f} ratio {np.linalg.norm(a_hh) / np.linalg.norm(f_hh):.4g}")
    # the regularizer's own effect, and Algorithm 2 vs Algorithm 1
    g0 = lra_gradients(params, x, y, **{**HP, "reg_lambda": 0.0})
    lines.append(f"lambda=0 (Alg. 1)    all: cos {_cos(_flat(g0), f_all):+.4f} ratio "
                 f"{np.linalg.norm(_flat(g0)) / np.linalg.norm(f_all):.4g}")
    # BPTT on the same batch
    _, g_bptt, _ = loss_and_hidden_grads(params, (x, y), "cross_entropy")
    b_hh = np.asarray(g_bptt.Whh).ravel()
    lines.append(f"fixed_target(lambda=0.1) Whh vs BPTT: cos {_cos(f_hh, b_hh):+.4f}; "
                 f"fixed_target(lambda=0) Whh vs BPTT: cos {_cos(_flat(g0, ('grad_Whh',)), b_hh):+.4f}; "
                 f"reference Whh vs BPTT: cos "
                 f"{_cos(_flat(lra_gradients(params, x, y, **HP, variant='reference'), ('grad_Whh',)), b_hh):+.4f}")
    with capsys.disabled():
        print("\npublished-code options alone vs fixed_target (temporal order T=20, B=20, m=100, K=3, "
              "gamma=1, c0=c1=0.01, lambda=0.1):")
        for line in lines:
            print("  " + line)


# ---- the three readings ------------------------------------------------------------------

READINGS = ("fixed_target", "printed", "reference")


@pytest.mark.parametrize("lam", [0.0, 0.1])
def test_three_readings_against_each_other_and_bptt(batch, lam, capsys):
    """Cosine and norm ratio of the readings' Whh updates against each other and against BPTT's
    gradient, over all layers and over the layers below the top (where only the target search
    reaches); K = 3, gamma = 1, c0 = c1 = 0.01. docs/lra-readings.md quotes this table."""
    params, x, y = batch
    hp = {**HP, "reg_lambda": lam}
    per = {r: np.asarray(lra_gradients(params, x, y, **hp, variant=r)["grad_Whh_per_layer"])
           for r in READINGS}
    _, g_bptt, _ = loss_and_hidden_grads(params, (x, y), "cross_entropy")
    pairs = list(itertools.combinations(READINGS, 2)) + [(r, "bptt") for r in READINGS]
    lines = []
    for part, layers in (("all layers", slice(None)), ("layers 1..T-2", slice(None, -1))):
        whh = {r: per[r][layers].sum(axis=0).ravel() for r in READINGS}
        whh["bptt"] = np.asarray(g_bptt.Whh).ravel()
        lines += [f"  {part:13s} {a:>12s} vs {b:<12s} cos {_cos(whh[a], whh[b]):+.4f}  norm ratio "
                  f"{np.linalg.norm(whh[a]) / np.linalg.norm(whh[b]):.4g}" for a, b in pairs]
        # at K = 3 each reading computes a different update
        for a, b in itertools.combinations(READINGS, 2):
            assert np.linalg.norm(whh[a] - whh[b]) > 1e-3 * np.linalg.norm(whh[b]), (part, a, b)
        for r in READINGS:
            assert np.all(np.isfinite(whh[r])) and np.linalg.norm(whh[r]) > 0, (part, r)
    with capsys.disabled():
        print(f"\nWhh updates of the three readings (temporal order T=20, B=20, m=100, K=3, "
              f"gamma=1, c0=c1=0.01, lambda={lam:g}):")
        print("\n".join(lines))

def test_validation_initial_state_changes_validation_not_gradients(batch):
    """Option (f) only changes what the training loop feeds at validation."""
    params, x, y = batch
    a = lra_gradients(params, x, y, **HP)
    b = lra_gradients(params, x, y, **HP, validation_initial_state="reference")
    for k in GRADS:
        np.testing.assert_array_equal(a[k], b[k])
    assert make_rule("lra", validation_initial_state="reference").validation_initial_state == "reference"
    h_init = x[0] @ params.Wxh + params.bh
    out0 = localrnn.forward(params, x)
    out1 = localrnn.forward(params, x, h_init)
    assert float(jnp.max(jnp.abs(out0 - out1))) > 1e-6


# ---- robustness ----------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["fixed_target", "printed", "reference"])
def test_no_nan_when_local_losses_vanish(variant):
    """gamma = 0 makes every target equal the forward pass: zero local losses, zero errors and
    zero displacements, with forced normalization and the regularizer on (0/0 everywhere)."""
    params, x, y = small_problem(5)
    g = lra_gradients(params, x, y, inner_steps=2, target_step=0.0, reg_lambda=0.1,
                      force_normalize=True, variant=variant)
    for k, v in g.items():
        assert np.all(np.isfinite(np.asarray(v))), k
    assert not np.any(np.asarray(g["grad_Whh"]))


def test_float32_runs_and_is_close_to_float64(batch):
    params, x, y = batch
    p32 = jax.tree.map(lambda a: a.astype(jnp.float32), params)
    g64 = lra_gradients(params, x, y, **{**HP, "reg_lambda": 0.0})
    g32 = lra_gradients(p32, x.astype(jnp.float32), y.astype(jnp.float32), **{**HP, "reg_lambda": 0.0})
    for k in GRADS:
        assert g32[k].dtype == jnp.float32
        scale = float(jnp.max(jnp.abs(g64[k])))
        assert float(jnp.max(jnp.abs(g32[k] - g64[k]))) <= 1e-3 * scale + 1e-12, k


def test_vmap_over_hparams_equals_loop():
    params, x, y = small_problem(6)
    rule = make_rule("lra", hparams={"reg_lambda": 0.1}, inner_steps=2, variant="reference")
    hps = {"target_step": jnp.array([1.0, 10.0, 0.1]), "c0": jnp.array([1.0, 1e-3, 0.0]),
           "c1": jnp.array([1e-3, 1.0, 0.0]), "reg_lambda": jnp.array([0.1, 0.0, 0.1])}
    vm = jax.jit(jax.vmap(lambda h: rule.step(params, (), (x, y), h)[0]))(hps)
    for i in range(3):
        one = rule.step(params, (), (x, y), {k: v[i] for k, v in hps.items()})[0]
        for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(vm)):
            np.testing.assert_allclose(b[i], a, rtol=0, atol=1e-12)


def test_reference_regularizer_needs_batch_at_most_hidden():
    params, x, y = small_problem(4, B=8, m=6)
    with pytest.raises(ValueError, match="batch"):
        lra_gradients(params, x, y, inner_steps=1, reg_lambda=0.1, regularizer="reference")
