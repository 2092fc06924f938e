"""The shared rule battery (DESIGN.md): every registered rule passes the same checks.

A new rule gets these tests by registering itself; per-rule settings (learning
rate for the short training run, extra hyper-parameter cases) live in the tables
below.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from localrnn.config import TrainConfig
from localrnn.model import Params, init_params
from localrnn.rules import RULES, get_rule, resolve_options
from localrnn.tasks import get_task
from localrnn.train import evaluate_params, train_one

#: learning rate of the short "lowers the loss" run
TRAIN_LR = {"bptt": 0.05, "readout": 0.05, "lra": 0.05, "tptt": 0.05}
#: extra hyper-parameter cases beyond the defaults (e.g. regularized variants)
EXTRA_CASES = {"bptt": [{"reg_lambda": 0.1}], "lra": [{"reg_lambda": 0.1}], "tptt": [{"sigma": 0.1}]}

CASES = [(name, {}) for name in RULES] + [
    (name, hp) for name, hps in EXTRA_CASES.items() if name in RULES for hp in hps]
IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in hp.items()) or 'default'}" for n, hp in CASES]

T, B, M = 10, 6, 12


def _setup(name, hp_over, seed=0, dtype=jnp.float64, record=False, task="temporal_order"):
    t = get_task(task)
    rdef = get_rule(name)
    hp_values = {**rdef.defaults, **hp_over}
    rule = rdef.build(resolve_options(name, {}, hp_values), t.loss, record)
    kp, kb, kr = jax.random.split(jax.random.PRNGKey(seed), 3)
    params = init_params(kp, t.n_in, M, t.n_out, dtype)
    batch = t.sample(kb, T, B, dtype)
    hp = {k: jnp.asarray(v, dtype) for k, v in hp_values.items()}
    return rule, params, rule.init(kr, params), batch, hp


def _close(a, b, tol=1e-10):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        x, y = np.asarray(x), np.asarray(y)
        scale = max(1.0, float(np.max(np.abs(y)))) if y.size else 1.0
        np.testing.assert_allclose(x, y, rtol=0, atol=tol * scale)


@pytest.mark.parametrize("name,hp_over", CASES, ids=IDS)
def test_shapes_and_finiteness(name, hp_over):
    rule, params, state, batch, hp = _setup(name, hp_over)
    grads, new_state, rec = rule.step(params, state, batch, hp)
    assert isinstance(grads, Params)
    for g, p in zip(grads, params):
        assert g.shape == p.shape and g.dtype == p.dtype
        assert bool(jnp.all(jnp.isfinite(g)))
    assert jax.tree.structure(new_state) == jax.tree.structure(state)
    assert rec["loss"].shape == () and bool(jnp.isfinite(rec["loss"]))
    assert float(sum(jnp.sum(jnp.abs(g)) for g in grads)) > 0, "the rule updates nothing"


@pytest.mark.parametrize("name,hp_over", CASES, ids=IDS)
def test_float32_works(name, hp_over):
    rule, params, state, batch, hp = _setup(name, hp_over, dtype=jnp.float32)
    grads, _, rec = jax.jit(rule.step)(params, state, batch, hp)
    assert all(g.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(g))) for g in grads)


@pytest.mark.parametrize("name,hp_over", CASES, ids=IDS)
def test_deterministic_and_jit_equals_eager(name, hp_over):
    rule, params, state, batch, hp = _setup(name, hp_over)
    eager = rule.step(params, state, batch, hp)
    again = rule.step(params, state, batch, hp)
    _close(again[:2], eager[:2], tol=0.0)
    jitted = jax.jit(rule.step)(params, state, batch, hp)
    _close(jitted[:2], eager[:2])
    _close(jitted[2]["loss"], eager[2]["loss"])
    # same key -> same state
    rule2, params2, state2, *_ = _setup(name, hp_over)
    _close(state2, state, tol=0.0)


@pytest.mark.parametrize("name,hp_over", CASES, ids=IDS)
def test_vmap_over_configs_equals_loop(name, hp_over):
    """Four configs: different params, states, batches and hyper-parameter values."""
    setups = [_setup(name, hp_over, seed=s) for s in range(4)]
    rule = setups[0][0]
    factors = [1.0, 0.5, 2.0, 1.5]
    hps = [{k: v * f for k, v in s[4].items()} for s, f in zip(setups, factors)]
    stack = lambda xs: jax.tree.map(lambda *a: jnp.stack(a), *xs)  # noqa: E731
    out = jax.jit(jax.vmap(rule.step))(stack([s[1] for s in setups]), stack([s[2] for s in setups]),
                                       stack([s[3] for s in setups]), stack(hps))
    for i, s in enumerate(setups):
        single = rule.step(s[1], s[2], s[3], hps[i])
        _close(jax.tree.map(lambda a: a[i], out[:2]), single[:2])


@pytest.mark.parametrize("name,hp_over", CASES, ids=IDS)
def test_record_path_gives_per_layer_arrays(name, hp_over):
    rule, params, state, batch, hp = _setup(name, hp_over, record=True)
    grads, _, rec = jax.jit(rule.step)(params, state, batch, hp)
    plain = _setup(name, hp_over)[0].step(params, state, batch, hp)[0]
    _close(grads, plain)  # recording does not change the update
    for key in ("local_loss", "target_displacement_norm", "grad_Whh_norm", "grad_Wxh_norm"):
        if key in rec:
            assert rec[key].shape == (T,) and bool(jnp.all(jnp.isfinite(rec[key])))


@pytest.mark.parametrize("name", list(RULES))
def test_short_run_lowers_the_loss(name):
    cfg = TrainConfig(task="temporal_order", length=10, rule=name, lr=TRAIN_LR.get(name, 0.05),
                      hidden=32, max_iters=300, val_every=100, val_size=1000, patience=0,
                      dtype="float32")
    t = get_task(cfg.task)
    p0 = init_params(jax.random.split(jax.random.PRNGKey(cfg.seed), 3)[0], t.n_in, cfg.hidden,
                     t.n_out, jnp.float32)
    _, loss0 = evaluate_params(p0, t, cfg.length, cfg.val_size, cfg.val_seed, jnp.float32)
    r = train_one(cfg)
    assert r.status != "diverged"
    assert r.history[-1]["val_loss"] < 0.9 * float(loss0), (float(loss0), r.history)
