"""The compiled training loop: vmapped configs, checkpoints, stopping rules."""

import jax
import numpy as np
import pytest

from localrnn.config import TrainConfig
from localrnn.train import train, train_one


def _max_diff(a, b):
    return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y))))
               for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def _base(**kw):
    d = dict(task="temporal_order_3bit", length=30, rule="bptt", hidden=24, batch=10, val_size=500,
             val_every=50, max_iters=200, patience=0, dtype="float64")
    d.update(kw)
    return TrainConfig(**d)


def test_vmapped_configs_equal_one_by_one():
    """8 configs (different lr, clip, lambda, seed) as one program == 8 separate runs.

    vmapped and single programs differ by float rounding only (~1e-16 per step); a chaotic
    config (e.g. lr 0.2 with the Omega regularizer) amplifies that to O(1) within 50 steps,
    so the configs here are in the stable regime that the 1e-6 bound is about.
    """
    configs = [_base(lr=lr, seed=s, clip=c, hparams={"reg_lambda": lam})
               for lr, s, c, lam in [(0.01, 0, None, 0.1), (0.05, 1, None, 0.1), (0.05, 2, 1.0, 0.1),
                                     (0.02, 3, 0.5, 0.1), (0.01, 4, None, 0.2), (0.04, 5, 0.3, 0.1),
                                     (0.03, 6, None, 0.05), (0.07, 7, 0.1, 0.1)]]
    together = train(configs)
    assert len({c.structure_key() for c in configs}) == 1
    for cfg, r in zip(configs, together):
        alone = train_one(cfg)
        assert r.iterations == alone.iterations == 200
        assert _max_diff(r.params, alone.params) < 1e-6
        assert [h["val_errors"] for h in r.history] == [h["val_errors"] for h in alone.history]
    # the configs really differ
    assert _max_diff(together[0].params, together[1].params) > 1e-3


def test_finished_config_is_frozen_while_others_go_on():
    a = _base(max_iters=100)
    b = _base(max_iters=250, seed=1)
    ra, rb = train([a, b])
    assert (ra.iterations, rb.iterations) == (100, 250)
    assert _max_diff(ra.params, train_one(a).params) == 0.0


def test_compacted_group_gives_each_config_its_own_result_and_resumes_exactly(tmp_path, monkeypatch):
    """Configs that stop at 50, 100, ..., 300 iterations: the program drops stopped configs once at
    most half run (down to 2), each config still gets the result it gets alone, and a group killed
    after it compacted resumes to exactly the uninterrupted result."""
    import localrnn.train as T

    batches = []
    configs = [_base(max_iters=50 * (k + 1), seed=k, lr=0.01 + 0.005 * k) for k in range(6)]
    real_compact = T._compact

    def spy(run, live, state, full, whole):
        out = real_compact(run, live, state, full, whole)
        batches.append(len(out[0]))
        return out

    monkeypatch.setattr(T, "_compact", spy)
    together = train(configs)
    assert min(batches) == 2 and max(batches) == 6 and 3 in batches  # it did compact, never below 2
    for cfg, r in zip(configs, together):
        alone = train_one(cfg)
        assert r.iterations == alone.iterations == cfg.max_iters
        assert _max_diff(r.params, alone.params) < 1e-6
        assert [h["val_errors"] for h in r.history] == [h["val_errors"] for h in alone.history]
    path = str(tmp_path / "group.ckpt")
    part = train(configs, checkpoint=path, stop_after=200)  # killed after compacting to 3
    from localrnn import checkpoint as ckpt

    assert ckpt.load_live(path) is not None and [r.status for r in part].count("interrupted") == 2
    resumed = train(configs, checkpoint=path, resume=True)
    for a, b in zip(resumed, together):
        assert a.history == b.history and a.iterations == b.iterations
        assert _max_diff(a.params, b.params) == 0.0


@pytest.mark.parametrize("optimizer", ["sgd", "nesterov", "adam"])
def test_resume_gives_the_uninterrupted_result(tmp_path, optimizer):
    cfg = _base(optimizer=optimizer, lr=0.01, max_iters=300)
    full = train_one(cfg)
    path = str(tmp_path / "run.ckpt")
    part = train_one(cfg, checkpoint=path, stop_after=150)
    assert part.status == "interrupted" and part.iterations == 150
    resumed = train_one(cfg, checkpoint=path, resume=True)
    assert resumed.iterations == full.iterations == 300
    assert _max_diff(resumed.params, full.params) == 0.0
    assert resumed.history == full.history
    assert resumed.status == full.status


def test_resume_refuses_another_config(tmp_path):
    path = str(tmp_path / "run.ckpt")
    train_one(_base(max_iters=100), checkpoint=path)
    with pytest.raises(ValueError, match="other configs"):
        train_one(_base(max_iters=100, lr=0.5), checkpoint=path, resume=True)


def test_blow_up_ends_as_diverged():
    """SGD far above 2/curvature on the (MSE) adding task grows the error geometrically to inf."""
    good, bad = train([_base(task="adding", length=20, lr=0.01),
                       _base(task="adding", length=20, lr=1000.0, seed=1)])
    assert bad.status == "diverged"
    assert good.status != "diverged" and good.iterations == 200
    assert all(np.all(np.isfinite(a)) for a in jax.tree.leaves(bad.params))


def test_stops_when_solved():
    r = train_one(TrainConfig(task="temporal_order", length=10, lr=0.01, max_iters=3000))
    assert r.status == "solved" and r.best_accuracy == 1.0
    assert r.history[-1]["val_errors"] == 0 and r.iterations < 3000


def test_patience_stops_a_stalled_run():
    r = train_one(_base(rule="readout", lr=1e-9, max_iters=5000, patience=3))
    assert r.status == "failed" and r.iterations < 5000
    assert r.iterations == r.best_iteration + 3 * 50


def test_float32_run_stays_float32():
    r = train_one(_base(dtype="float32", max_iters=50))
    assert all(a.dtype == np.float32 for a in jax.tree.leaves(r.params))


def test_metric_limit_stops_as_diverged():
    """A rule metric over its limit (TPTT: spectral radius > 20) ends the run as diverged."""
    from localrnn.train import RunResult, _update_result

    r = RunResult(_base())
    _update_result(r, 100, False, 10, 1.0, 1.0, {"spectral_radius_Whh": 3.0}, {"spectral_radius_Whh": 20.0})
    assert r.status == "running" and r.history[-1]["spectral_radius_Whh"] == 3.0
    _update_result(r, 200, False, 10, 1.0, 1.0, {"spectral_radius_Whh": 25.0}, {"spectral_radius_Whh": 20.0})
    assert r.status == "diverged" and "spectral_radius_Whh" in r.stop_reason


def test_tptt_records_spectral_radii_every_validation():
    r = train_one(_base(rule="tptt", optimizer="nesterov", max_iters=100))
    h = r.history[-1]
    assert 0.5 < h["spectral_radius_Whh"] < 20 and 0.5 < h["spectral_radius_Vhh"] < 20


def test_reference_validation_state_is_the_raw_pre_activation():
    """Published LRA code at validation: z_{-1} = x_0 Wxh + bh fed as given (no tanh), so
    h_0 = (x_0 Wxh + bh) Whh + x_0 Wxh + bh; pinned by hand in float64 on a tiny example."""
    import jax.numpy as jnp

    from localrnn.model import Params, hidden_states
    from localrnn.tasks import get_task, validation_batch
    from localrnn.train import _validation_h_init, evaluate_params

    rng = np.random.default_rng(0)
    p = Params(*(jnp.asarray(rng.normal(size=s)) for s in [(2, 3), (3, 3), (3,), (3, 2), (2,)]))
    x = jnp.asarray(rng.normal(size=(4, 1, 2)))
    u0 = np.asarray(x[0]) @ np.asarray(p.Wxh) + np.asarray(p.bh)
    h0 = np.asarray(hidden_states(p, x, _validation_h_init(p, x, "reference")))[0]
    np.testing.assert_allclose(h0, u0 @ np.asarray(p.Whh) + u0, rtol=1e-13, atol=0)
    np.testing.assert_allclose(np.asarray(hidden_states(p, x))[0], u0, rtol=1e-13, atol=0)
    # evaluate_params in reference mode = a numpy forward from that h_0
    task = get_task("temporal_order")
    q = initial_params_for(task)
    xv, yv = (np.asarray(a) for a in validation_batch(task, 10, 7, 0, jnp.float64))
    u = xv @ np.asarray(q.Wxh) + np.asarray(q.bh)
    h = u[0] @ np.asarray(q.Whh) + u[0]
    for t in range(1, 10):
        h = np.tanh(h) @ np.asarray(q.Whh) + u[t]
    out = np.tanh(h) @ np.asarray(q.Why) + np.asarray(q.by)
    errors, _ = evaluate_params(q, task, 10, 100, 7, jnp.float64, "reference")
    expected = int(np.sum(np.argmax(out[:100], 1) != np.argmax(yv[:100], 1)))
    assert int(errors) == expected


def initial_params_for(task):
    from localrnn.train import initial_params

    return initial_params(_base(task=task.name, length=10, hidden=12))


def test_initial_params_is_what_train_starts_from():
    from localrnn.train import compile_program, initial_params

    cfg = _base(seed=3)
    state = compile_program(cfg).init(np.asarray([cfg.seed]))
    assert _max_diff(jax.tree.map(lambda a: a[0], state.params), initial_params(cfg)) == 0.0


def test_record_mode_keeps_per_layer_records_without_changing_the_run():
    cfg = _base(max_iters=100)
    plain = train_one(cfg)
    rec = train_one(cfg, record_every=25)
    assert [it for it, _ in rec.records] == [25, 50, 75, 100] and plain.records == []
    assert rec.records[0][1]["dE_dh_norm"].shape == (30,) and np.isfinite(rec.records[-1][1]["global_loss"])
    assert _max_diff(rec.params, plain.params) < 1e-12
    assert [h["val_errors"] for h in rec.history] == [h["val_errors"] for h in plain.history]
    with pytest.raises(ValueError, match="record_every"):
        train_one(cfg, record_every=30)


@pytest.fixture
def rule_that_diverges_later():
    """BPTT whose loss turns NaN from iteration 120 on (its state counts iterations)."""
    import jax.numpy as jnp

    from localrnn.rules import RULES, Hparam, NoOptions, Rule, RuleDef, make_rule, register

    def build(options, loss, record):
        bptt = make_rule("bptt", loss=loss)

        def step(params, count, batch, hp):
            grads, _, rec = bptt.step(params, (), batch, {"reg_lambda": jnp.zeros((), params.Whh.dtype)})
            return grads, count + 1, {**rec, "loss": jnp.where(count >= 120, jnp.nan, rec["loss"])}
        return Rule("diverges_later", lambda key, params: jnp.zeros((), jnp.int32), step)

    register(RuleDef("diverges_later", "test rule", NoOptions, {}, build))
    yield "diverges_later"
    RULES.pop("diverges_later")


def test_diverged_run_keeps_its_best_before_diverging(rule_that_diverges_later, tmp_path):
    """The validation that finds the run diverged does not count; best_accuracy/best_iteration are
    those reached before, in the result and in the store."""
    from localrnn.experiments.executors import Job, run_job
    from localrnn.experiments.store import Store

    cfg = _base(rule=rule_that_diverges_later, task="temporal_order", length=10, lr=0.005, max_iters=300)
    r = train_one(cfg)
    assert r.status == "diverged" and r.iterations == 121  # counted up to the step that diverged
    before = r.history[:-1]
    assert [h["iteration"] for h in before] == [50, 100]
    best = max(before, key=lambda h: h["val_accuracy"])
    assert r.best_accuracy == best["val_accuracy"] > 0.0 and r.best_iteration == best["iteration"]
    [stored] = run_job(Job(configs=[cfg.model_dump(mode="json")]))
    with Store(str(tmp_path / "s.db")) as st:
        st.register_trials("e", [("t", cfg, {}, None)])
        st.write_result("t", stored)
        t = st.trial("t")
    assert (t["status"], t["best_accuracy"], t["best_iteration"]) == ("diverged", r.best_accuracy, r.best_iteration)
