"""The orthogonal cell (docs/cells.md): Whh = W0 expm(A - A^T), W0 fixed, A trained; float64.

Oracles: the VJP of A -> Whh against central finite differences and against the Frechet-derivative
formula; BPTT's A update against finite differences of E(A) at A != 0; every rule's update equal
to the VJP of its SRNN update at the effective Whh (an identity, with a plain jax.vjp written here);
the cell at A = 0 is the SRNN with Whh = W0 bit for bit. Training keeps Whh orthogonal and W0
unchanged; checkpoints, the store and warm starts keep W0 and A.

Lines broken on purpose, each making the tests named fail (then restored):
- orthogonal_cell.py, ``rotation`` as ``expm(A)`` (not skew): test_training_keeps_whh_orthogonal...,
  test_the_vjp_of_a_to_whh_matches_finite_differences_and_the_frechet_formula fail;
- orthogonal_cell.py, ``descend`` passing ``grads.Whh.T`` to ``generator_direction``:
  test_bptt_update_of_a_matches_finite_differences, test_every_rule_moves_a_by_the_vjp... fail;
- orthogonal_cell.py, ``descend`` giving W0 the rule's Whh direction instead of 0:
  test_every_rule_moves_a_by_the_vjp..., test_training_keeps_whh_orthogonal... fail;
- model.py, ``final_state`` reading ``params.W0`` instead of ``cell.recurrent(params)``:
  test_bptt_update_of_a_matches_finite_differences fails (E no longer depends on A);
- train.py, ``_replace_rows`` building ``Params(**row)``: test_store_checkpoint_and_warm_start_keep_w0_and_a
  fails.
- orthogonal_cell.py, ``expm_skew`` with one Taylor coefficient wrong (``_TAYLOR[4 * j + i + 1]``), or
  with ``_SCALED_NORM = 4``, or with squarings capped at 3: test_expm_skew_matches_jax_expm... fails.
"""

import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.linalg import expm, expm_frechet

from localrnn.cells import SRNN, make_cell
from localrnn.cli import main
from localrnn.config import TrainConfig
from localrnn.experiments.store import MEMORY, Store
from localrnn.losses import global_loss
from localrnn.model import Params, forward, hidden_states, init_params, orthogonal
from localrnn.orthogonal_cell import OrthogonalParams, generator_direction, parametrize
from localrnn.rules import get_rule, make_rule
from localrnn.train import initial_params, train, train_one

from test_fa_eprop import HIDDEN, _problem  # dense float64 problems (m = 5)

ORTHOGONAL = make_cell("orthogonal")
#: the rules defined on the orthogonal cell
RULES = ("bptt", "readout", "rtrl", "snap1", "uoro", "eprop", "rflo", "fa", "lra")


def _orthogonal_problem(task="temporal_order", seed=0, scale=0.3):
    """A dense float64 problem on the orthogonal cell: W0 orthogonal, A random (A != 0)."""
    t, p, batch = _problem(task, seed)
    rng = np.random.default_rng(seed + 100)
    W0 = orthogonal(jax.random.PRNGKey(seed), (HIDDEN, HIDDEN), jnp.float64)
    A = jnp.asarray(scale * rng.standard_normal((HIDDEN, HIDDEN)))
    return t, parametrize(p._replace(Whh=W0))._replace(A=A), batch


def _literal_whh(W0, A):
    return W0 @ expm(A - A.T)


def _hp(name):
    return {k: jnp.float64(v) for k, v in get_rule(name).defaults.items()}


@functools.lru_cache(maxsize=None)
def _step(name: str, loss: str, orthogonal_cell: bool):
    return jax.jit(make_rule(name, loss=loss, cell=ORTHOGONAL if orthogonal_cell else None).step)


def _orthogonality_error(W) -> float:
    W = np.asarray(W)
    return float(np.max(np.abs(W.T @ W - np.eye(W.shape[0]))))


# -- the parametrization ------------------------------------------------------------------------
@pytest.mark.parametrize("scale", [0.0, 1e-4, 0.02, 0.3, 3.0, 40.0])
def test_expm_skew_matches_jax_expm_and_its_vjp(scale):
    """The cell's scaling-and-squaring exp against jax.scipy.linalg.expm (Pade), value and VJP, at
    generator norms ||S||_F from 0 to about 2,200 (no squaring up to the cap of 12 squarings)."""
    from localrnn.orthogonal_cell import expm_skew

    A = scale * jax.random.normal(jax.random.PRNGKey(3), (40, 40), jnp.float64)
    G = jax.random.normal(jax.random.PRNGKey(4), (40, 40), jnp.float64)
    got, pull_got = jax.vjp(lambda a: expm_skew(a - a.T), A)
    want, pull_want = jax.vjp(lambda a: expm(a - a.T), A)
    scale_of = max(1.0, float(jnp.linalg.norm(want)))
    assert float(jnp.linalg.norm(got - want)) <= 1e-12 * scale_of
    gw = pull_want(G)[0]
    assert float(jnp.linalg.norm(pull_got(G)[0] - gw)) <= 1e-11 * max(1.0, float(jnp.linalg.norm(gw)))
    np.testing.assert_allclose(np.asarray(got.T @ got), np.eye(40), atol=1e-11, rtol=0)


def test_at_a_zero_the_cell_is_the_srnn_with_w0():
    """init_params for the orthogonal cell: W0 is the SRNN's Whh, A = 0, and the states and outputs
    are the SRNN's bit for bit."""
    t, _, (x, _) = _problem()
    key = jax.random.PRNGKey(4)
    srnn = init_params(key, t.n_in, HIDDEN, t.n_out, jnp.float64)
    ortho = init_params(key, t.n_in, HIDDEN, t.n_out, jnp.float64, ORTHOGONAL)
    assert isinstance(ortho, OrthogonalParams) and not np.any(ortho.A)
    assert np.array_equal(ortho.W0, srnn.Whh) and np.array_equal(ORTHOGONAL.recurrent(ortho), srnn.Whh)
    assert np.array_equal(hidden_states(ortho, x, cell=ORTHOGONAL), hidden_states(srnn, x))
    assert np.array_equal(forward(ortho, x, cell=ORTHOGONAL), forward(srnn, x, cell=SRNN))


def test_the_vjp_of_a_to_whh_matches_finite_differences_and_the_frechet_formula():
    """dA = VJP of A -> W0 expm(A - A^T) applied to G: against central differences of <G, Whh(A)>
    (h = 1e-6) on every entry, and against M - M^T, M = L(S^T, W0^T G) with jax's expm_frechet
    (Al-Mohy & Higham's algorithm, not autodiff). Whh(A) is orthogonal to 1e-13."""
    _, p, _ = _orthogonal_problem(scale=0.5)
    G = jnp.asarray(np.random.default_rng(3).standard_normal((HIDDEN, HIDDEN)))
    got = np.asarray(generator_direction(p.W0, p.A, G))
    assert _orthogonality_error(ORTHOGONAL.recurrent(p)) < 1e-13
    f = jax.jit(lambda A: jnp.sum(G * _literal_whh(p.W0, A)))
    A, h = np.asarray(p.A), 1e-6
    fd = np.zeros_like(A)
    for idx in np.ndindex(*A.shape):
        up, down = A.copy(), A.copy()
        up[idx] += h
        down[idx] -= h
        fd[idx] = (f(up) - f(down)) / (2 * h)
    np.testing.assert_allclose(got, fd, rtol=0, atol=1e-8 * np.max(np.abs(fd)))
    S = p.A - p.A.T
    M = expm_frechet(S.T, p.W0.T @ G, compute_expm=False)
    np.testing.assert_allclose(got, M - M.T, rtol=0, atol=1e-12 * np.max(np.abs(got)))


# -- BPTT against finite differences; every rule is its SRNN update pulled back -------------------
@pytest.mark.parametrize("task", ["temporal_order", "adding"])
def test_bptt_update_of_a_matches_finite_differences(task):
    """Central differences (h = 1e-5) of E(A) on every entry of A, and of E on 3 entries of each
    other parameter, at A != 0: within 1e-6 relative (floored at 1e-3). W0's update is 0."""
    t, p, (x, y) = _orthogonal_problem(task, seed=2)
    grads = _step("bptt", t.loss, True)(p, (), (x, y), _hp("bptt"))[0]
    assert isinstance(grads, OrthogonalParams) and not np.any(grads.W0)
    loss_fn = global_loss(t.loss)
    loss = jax.jit(lambda q: loss_fn(forward(q, x, cell=ORTHOGONAL), y))
    rng, eps = np.random.default_rng(0), 1e-5
    for name in ("A", "Wxh", "bh", "Why", "by"):
        arr = np.asarray(getattr(p, name))
        entries = list(np.ndindex(*arr.shape)) if name == "A" else \
            [tuple(rng.integers(0, s) for s in arr.shape) for _ in range(3)]
        for idx in entries:
            up, down = arr.copy(), arr.copy()
            up[idx] += eps
            down[idx] -= eps
            fd = float(loss(p._replace(**{name: jnp.asarray(up)})) - loss(p._replace(**{name: jnp.asarray(down)}))) / (2 * eps)
            g = float(getattr(grads, name)[idx])
            assert abs(g - fd) <= 1e-6 * max(1e-3, abs(fd)), (name, idx, g, fd)


@pytest.mark.parametrize("name", RULES)
def test_every_rule_moves_a_by_the_vjp_of_its_srnn_update(name):
    """On the orthogonal cell a rule's update is its SRNN update at the effective Whh, with A's
    the plain jax.vjp of A -> W0 expm(A - A^T) applied to the Whh update and W0's 0 (to 1e-12)."""
    t, p, batch = _orthogonal_problem(seed=5)
    W = _literal_whh(p.W0, p.A)
    srnn = Params(p.Wxh, W, p.bh, p.Why, p.by)
    state = make_rule(name, loss=t.loss).init(jax.random.PRNGKey(1), srnn)
    want = _step(name, t.loss, False)(srnn, state, batch, _hp(name))[0]
    got = _step(name, t.loss, True)(p, state, batch, _hp(name))[0]
    want_A = jax.vjp(lambda A: _literal_whh(p.W0, A), p.A)[1](want.Whh)[0]
    assert not np.any(got.W0)
    for g, w in [(got.A, want_A)] + [(getattr(got, k), getattr(want, k)) for k in ("Wxh", "bh", "Why", "by")]:
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-12 * max(1e-12, float(jnp.max(jnp.abs(w)))))
    if name != "readout":
        assert float(jnp.max(jnp.abs(got.A))) > 1e-3


# -- training, checkpoints, store ---------------------------------------------------------------
def _config(**over) -> TrainConfig:
    fields = dict(task="temporal_order", length=10, rule="bptt", lr=0.1, hidden=8, batch=10, max_iters=200,
                  val_every=100, val_size=200, patience=0, dtype="float64", cell="orthogonal")
    return TrainConfig(**{**fields, **over})


@pytest.mark.parametrize("rule", ["bptt", "rflo"])
def test_training_keeps_whh_orthogonal_and_w0_fixed(rule):
    """At least 100 SGD steps (bptt may solve the task at the first validation) in float64: W0 is
    bit for bit its init, A moved, Whh^T Whh = I to 1e-12."""
    cfg = _config(rule=rule)
    r = train_one(cfg)
    assert r.iterations >= 100 and np.array_equal(r.params.W0, initial_params(cfg).W0)
    assert float(np.max(np.abs(r.params.A))) > 1e-3
    assert _orthogonality_error(ORTHOGONAL.recurrent(r.params)) < 1e-12


def resume_and_store(cfg: TrainConfig, tmp_path):
    """``(full run, its stored parameters {field: array})``: asserts that the run stopped at 100
    iterations and resumed from its checkpoint ends bit for bit where the whole run ends."""
    full = train_one(cfg)
    path = str(tmp_path / "run.ckpt")
    assert train_one(cfg, checkpoint=path, stop_after=100).iterations == 100
    resumed = train_one(cfg, checkpoint=path, resume=True)
    assert all(np.array_equal(a, b) for a, b in zip(resumed.params, full.params))
    with Store(MEMORY) as st:
        st.register_trials("e", [(cfg.run_id(), cfg, {}, None)])
        st.write_result(cfg.run_id(), full.to_dict(), full.to_dict(keep_state=True))
        return full, st.params(cfg.run_id())


def test_store_checkpoint_and_warm_start_keep_w0_and_a(tmp_path):
    """A run stopped at 100 iterations and resumed from its checkpoint ends where the whole run
    ends; its final state through the store (W0 and A by name) warm-starts a run exactly."""
    cfg = _config(max_iters=200)
    full, stored = resume_and_store(cfg, tmp_path)
    assert set(stored) == set(OrthogonalParams._fields)
    assert all(np.array_equal(stored[k], getattr(full.params, k)) for k in OrthogonalParams._fields)
    warm = train([cfg.model_copy(update={"max_iters": 100})], initial_params=[stored])[0]
    assert np.array_equal(warm.params.W0, full.params.W0) and not np.array_equal(warm.params.A, full.params.A)


# -- the option ---------------------------------------------------------------------------------
def test_the_option_and_the_rules_that_take_it():
    """tau stays 1; the cell changes ids; tptt and lra_fdbk refuse it in one line."""
    with pytest.raises(ValueError, match=r"tau: the orthogonal cell has no leak \(tau = 1\); got 2\.0"):
        TrainConfig(task="temporal_order", length=10, cell="orthogonal", tau=2.0)
    srnn = TrainConfig(task="temporal_order", length=10)
    assert _config().run_id() != _config(cell="srnn").run_id() and "cell" not in srnn.structure_key()
    for name in RULES:
        assert "orthogonal" in get_rule(name).cells, name
    for name in ("tptt", "lra_fdbk"):
        with pytest.raises(ValueError, match=f"cell: rule '{name}' is defined for the .* cell only, "
                                             "got 'orthogonal'"):
            TrainConfig(task="temporal_order", length=10, rule=name, cell="orthogonal")


#: the sizes of :func:`_config` as flags, so that the CLI run reuses its compiled program
_CLI_SIZES = ("--hidden", "8", "--batch", "10", "--val-every", "100", "--val-size", "200", "--dtype", "float64")


@pytest.mark.parametrize("rule", ["bptt", pytest.param("rflo", marks=pytest.mark.slow)])
def test_localrnn_train_cell_orthogonal(rule, capsys, monkeypatch):
    """``--cell orthogonal`` is in ``localrnn train --help``; 300 iterations on temporal order
    T = 10 (4 classes, chance 25 %) reach well above chance (bptt solves it)."""
    monkeypatch.setenv("COLUMNS", "400")
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "srnn | leaky | orthogonal" in " ".join(capsys.readouterr().out.split())
    with pytest.raises(SystemExit) as exc:
        main(["train", "--task", "temporal-order", "--length", "10", "--rule", rule, "--cell", "orthogonal",
              "--lr", "0.1", "--max-iters", "300", "--json", *_CLI_SIZES])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert exc.value.code == 0 and summary["config"]["cell"] == "orthogonal"
    assert summary["best_accuracy"] > 0.6, summary
