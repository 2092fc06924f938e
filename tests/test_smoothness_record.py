"""The smoothness record along training (docs/analysis.md): E before and after each recorded update
and the top Hessian eigenvalue, recorded by the training loop's recording mode, and the verdict read
from the series.

Lines broken to see these tests fail (each restored), each run and seen to fail:
* smoothness.py ``smoothness_record``: ``e1 - e0`` -> ``e0 - e1`` (the quadratic fails).
* train.py ``_iteration``: ``measure(state.params, params)`` -> ``measure(params, params)`` (the
  recomputation fails: 3 of 4 values).
* verdict.py ``_rough``: ``over / len(eig) > ROUGH_FRACTION`` -> ``>=`` (the 10 % side fails).
* spec.py ``plan``: the ``val_size < samples`` check removed (the spec error test fails).
Breaks these tests are written to catch but that were not run: the eigenvalue taken at ``after``,
``opts.samples`` -> ``cfg.val_size`` in ``_smoothness_measure`` (recomputation test); the program
cache key without ``smoothness`` (record-keys test); ``init["smoothness"]`` set unconditionally and
``_state_of(d)`` -> ``None`` in ``run_diagnostics`` (diagnostics test).
Slow (``-m slow``, about 150 s on a loaded 2-core machine, mostly compiling): the recomputation, the
bit-identity and the diagnostics-spec tests; the rest take about 15 s.
"""

import hashlib
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from localrnn.analysis.smoothness import EIGEN_KEY, SMOOTHNESS_KEYS, SmoothnessRecording, smoothness_record, \
    top_hessian_eigenvalue
from localrnn.analysis.verdict import verdict
from localrnn.config import TrainConfig
from localrnn.losses import global_loss
from localrnn.model import forward
from localrnn.tasks import get_task, validation_set
from localrnn.train import compile_program, initial_params, train_one

CFG = dict(task="temporal_order", length=10, hidden=4, batch=5, rule="bptt", lr=0.2, dtype="float64",
           val_size=20, val_every=1, max_iters=1, patience=0, seed=3)
OPTS = SmoothnessRecording(samples=12, hessian=True)


def _loss_fn(cfg: TrainConfig, n: int):
    task = get_task(cfg.task)
    x, y = validation_set(task, cfg.length, n, cfg.val_seed, jnp.float64)
    return jax.jit(lambda q: global_loss(task.loss)(forward(q, x), y))


def test_record_of_a_quadratic():
    """E(x) = 1/2 sum a_i x_i^2 with a = (3, -5, 1): H = diag(a), the eigenvalue of largest magnitude is -5
    (sign kept); the jump is E(after) - E(before) exactly."""
    a = jnp.asarray([3.0, -5.0, 1.0])
    E = lambda p: 0.5 * jnp.sum(a * p["x"] ** 2)  # noqa: E731
    before, after = {"x": jnp.asarray([1.0, 2.0, -1.0])}, {"x": jnp.asarray([0.5, 2.5, 0.0])}
    rec = smoothness_record(E, before, after, SmoothnessRecording(samples=1, hessian=True, iters=200))
    want0, want1 = 0.5 * (3 - 20 + 1), 0.5 * (0.75 - 31.25)
    np.testing.assert_allclose([rec[k] for k in SMOOTHNESS_KEYS], [want0, want1, want1 - want0, -5.0], rtol=1e-12)
    assert EIGEN_KEY not in smoothness_record(E, before, after, SmoothnessRecording(samples=1))


@pytest.fixture(scope="module")
def runs():
    """One float64 update recorded with and without the smoothness record."""
    cfg = TrainConfig(**CFG)
    return cfg, train_one(cfg, record_every=1, smoothness=OPTS), train_one(cfg, record_every=1)


@pytest.mark.slow  # ~50 s on a loaded 2-core machine: two compiled programs and a compiled power iteration
def test_recorded_measures_equal_a_recomputation_from_the_parameters(runs):
    """The record of the first update is E on the validation set's first 12 samples at the seeded
    parameters and after the update, and ``top_hessian_eigenvalue`` called on the former."""
    cfg, on, _ = runs
    (it, rec), = on.records
    assert it == 1 and set(SMOOTHNESS_KEYS) <= set(rec)
    E, before = _loss_fn(cfg, OPTS.samples), initial_params(cfg)
    e0, e1 = float(E(before)), float(E(on.params))
    eig = float(top_hessian_eigenvalue(E, before, jax.random.PRNGKey(0), 30))
    got = [float(rec[k]) for k in SMOOTHNESS_KEYS]
    np.testing.assert_allclose(got, [e0, e1, e1 - e0, eig], rtol=1e-9)
    assert abs(e1 - e0) > 1e-6 and abs(eig) > 1e-3  # the update and the curvature are not trivial


@pytest.mark.slow
def test_recording_smoothness_changes_nothing_else(runs):
    """Parameters, history and the other record entries are bit-identical with the record on or off;
    off, the program is the one without the option (same cache entry)."""
    cfg, on, off = runs
    for k in on.params._fields:
        np.testing.assert_array_equal(getattr(on.params, k), getattr(off.params, k))
    assert on.history == off.history
    for (i1, r1), (i2, r2) in zip(on.records, off.records):
        assert i1 == i2 and set(r1) - set(r2) == set(SMOOTHNESS_KEYS)
        for k in r2:
            np.testing.assert_array_equal(r1[k], r2[k])
    assert compile_program(cfg, 1) is compile_program(cfg, 1, smoothness=None)
    assert compile_program(cfg, 1) is not compile_program(cfg, 1, smoothness=OPTS)


@pytest.mark.parametrize("kw,msg", [
    (dict(record_every=None), "smoothness: is recorded in recording mode only; give record_every too"),
    (dict(record_every=1, smoothness=SmoothnessRecording(samples=21)),
     "smoothness.samples: the first 21 validation samples are measured, but a config's val_size is 20; "
     "allowed: 1 .. 20"),
])
def test_bad_smoothness_requests(kw, msg):
    with pytest.raises(ValueError) as e:
        train_one(TrainConfig(**CFG), **{"smoothness": OPTS, **kw})
    assert str(e.value) == msg
    with pytest.raises(ValueError, match=r"^smoothness.samples: must be an integer >= 1, got 0$"):
        SmoothnessRecording(samples=0)


def _series(eig, jumps, losses, lr=0.1):
    return {"smoothness": {"source": "recorded", "lr": lr, "recorded_iterations": list(range(10, 10 * len(eig) + 1, 10)),
                           "top_eigenvalues": eig, "loss_jumps": jumps, "losses": losses}}


@pytest.mark.parametrize("n_over,rough", [(2, False), (3, True)])
def test_rough_loss_on_either_side_of_ten_percent(n_over, rough):
    """20 recorded iterations, 2/alpha = 20: 2 over (10 %) is not rough, 3 over (15 %) is."""
    eig = [25.0] * n_over + [-30.0, 19.9] + [1.0] * (18 - n_over)
    v = verdict(_series(eig, [0.01] * 20, [0.5] * 20))
    assert ("rough loss" in v.names) is rough
    sentence = v.reasons[1]
    assert f"exceeds 2/alpha = 20 at {n_over} of 20 recorded iteration(s) ({5 * n_over} %" in sentence
    assert "0 of 20 jump(s) exceed E" in sentence
    assert "source: the series recorded along training, 20 recorded iteration(s) from 10 to 200" in sentence


def test_a_jump_over_e_is_rough_and_the_fallback_says_so():
    s = _series([1.0] * 20, [0.01] * 19 + [0.6], [0.5] * 20)
    assert "rough loss" in verdict(s).names and "1 of 20 jump(s) exceed E" in verdict(s).reasons[1]
    one = {"smoothness": {"lr": 0.1, "top_eigenvalues": [30.0], "loss_jumps": [0.1], "losses": [0.5]}}
    text = verdict(one).reasons[1]
    assert text.startswith("rough loss: ") and "at 1 of 1 measurement(s)" in text
    assert "source: one update from the final parameters" in text


TOML = '''
name = "tiny_smooth"
kind = "diagnostics"
[fixed]
task = "temporal_order"
length = 10
hidden = 4
batch = 5
dtype = "float64"
[[arms]]
name = "BPTT"
rule = "bptt"
fixed = { lr = 0.2 }
[budget.quick]
max_iters = 4
record_every = 2
fixed = { val_size = 20 }
'''


def test_analyze_takes_the_stored_series_and_draws_it(tmp_path):
    """Records as ``Store.records`` returns them become the smoothness measures (no Hessian computed), the
    verdict names the series as its source, and the figure draws both series against the iteration."""
    from localrnn.analysis.analyze import _recorded_smoothness
    from localrnn.analysis.figures import _plt, _smoothness

    its = np.asarray([50, 100, 150])
    recs = {SMOOTHNESS_KEYS[0]: (its, np.asarray([0.7, 0.6, 0.5])), SMOOTHNESS_KEYS[2]: (its, np.asarray([-0.1, 0.8, np.nan])),
            EIGEN_KEY: (its, np.asarray([3.0, 30.0, 1.0]))}
    sm = _recorded_smoothness(recs, TrainConfig(**CFG))
    assert sm["recorded_iterations"] == [50, 100, 150] and sm["loss_jumps"] == [-0.1, 0.8, None]
    v = verdict({"smoothness": sm})
    assert v.names == ("rough loss",) and "at 1 of 3 recorded iteration(s) (33 %" in v.reasons[1]
    assert "1 of 2 jump(s) exceed E" in v.reasons[1] and "from 50 to 150" in v.reasons[1]
    out = _smoothness({"smoothness": sm}, _plt(), str(tmp_path / "s.png"), "t")
    assert (tmp_path / "s.png").stat().st_size > 10_000 and out.endswith("s.png")
    assert _recorded_smoothness({k: recs[k] for k in (EIGEN_KEY,)}, TrainConfig(**CFG)) is None


@pytest.mark.slow
def test_a_diagnostics_spec_records_and_analyze_reads_the_series(tmp_path):
    """``[smoothness]`` in a diagnostics spec: every record carries the keys, the trial keeps its
    parameters, analyze's verdict reads the series and the figure draws it; without it the trial id is
    the one it always had."""
    from localrnn.analysis import analyze
    from localrnn.analysis.figures import write_figures
    from localrnn.experiments.kinds import run_experiment
    from localrnn.experiments.spec import load_spec
    from localrnn.experiments.store import Store

    path = tmp_path / "s.toml"
    path.write_text(TOML + "[smoothness]\nsamples = 10\nhessian = true\n")
    store = Store(str(tmp_path / "s.db"))
    run_experiment(store, load_spec(str(path)), "quick")
    (trial,) = store.trials("tiny_smooth:quick")
    recs = store.records(trial["trial_id"])
    for k in SMOOTHNESS_KEYS:
        assert list(recs[k][0]) == [2, 4]
    state = store.final_state(trial["trial_id"])
    cfg = TrainConfig(**trial["config"])
    result = analyze(state["params"], cfg, samples=5, starts=5, max_symbols=1, records=recs)
    sm = result["smoothness"]
    assert sm["source"] == "recorded" and sm["recorded_iterations"] == [2, 4]
    np.testing.assert_allclose(sm["loss_jumps"], recs[SMOOTHNESS_KEYS[2]][1], rtol=0)
    assert "source: the series recorded along training, 2 recorded iteration(s) from 2 to 4" in \
        result["verdict"]["reasons"][1]
    assert (tmp_path / "f" / "smoothness.png").name in [p.rsplit("/", 1)[-1] for p in
                                                       write_figures(result, str(_mk(tmp_path / "f")))]
    want = hashlib.sha256(json.dumps({"run_id": cfg.run_id(), "diagnostics": True, "every": 2},
                                     sort_keys=True).encode()).hexdigest()[:16]
    assert trial["trial_id"] != want  # on: its own trial
    path.write_text(TOML)
    run_experiment(store, load_spec(str(path)), "quick")
    assert want in {t["trial_id"] for t in store.trials("tiny_smooth:quick")}  # off: the id of before


def _mk(p):
    p.mkdir()
    return p


@pytest.mark.parametrize("extra,msg", [
    ("[smoothness]\nsamples = 21\n", "smoothness.samples: 21 exceeds val_size 20 (budget quick); allowed: 1 .. 20"),
    ("[smoothness]\nsamples = 0\n", "smoothness.samples: Input should be greater than or equal to 1"),
    ("[smoothness]\nhesian = true\n", "smoothness.hesian: unknown field"),
])
def test_bad_smoothness_in_a_spec_is_one_line(tmp_path, capsys, extra, msg):
    from localrnn.cli import main

    path = tmp_path / "s.toml"
    path.write_text(TOML + extra)
    with pytest.raises(SystemExit) as exc:
        main(["sweep", str(path), "--dry-run"])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and len(err.splitlines()) == 1 and msg in err, err


def test_smoothness_outside_diagnostics_is_refused():
    from localrnn.experiments.spec import SpecError, parse_spec
    import tomllib

    data = tomllib.loads(TOML.replace('kind = "diagnostics"', 'kind = "grid"') + "[smoothness]\n")
    with pytest.raises(SpecError, match="smoothness: recorded by a diagnostics experiment only; this kind is 'grid'"):
        parse_spec(data)
