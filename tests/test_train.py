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
