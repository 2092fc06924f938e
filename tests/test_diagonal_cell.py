"""The diagonal (LRU-style) cell (docs/cells.md), complex and real; float64.

    h_t = lambda * h_{t-1} + gamma(lambda) (x_t B),   lambda = exp(-exp(nu) + i theta),
    gamma = sqrt(1 - |lambda|^2),   out = tanh([Re h_{T-1}, Im h_{T-1}]) Why + by

Oracles: the states against a literal numpy loop in complex128; BPTT's update of every entry of
every parameter against central finite differences of E; gamma's derivative in nu against its
closed form; |lambda| < 1 over a grid of nu; the real cell equal to the complex one with theta = 0
and B_im = 0; the readout rule equal to BPTT's Why, by and 0 elsewhere. Training through
``localrnn train --cell diagonal`` solves a short task; checkpoints, the store and warm starts keep
the parameters by field name; the rules without the cell, reg_lambda and tau are refused in one line.

Lines broken on purpose, each making the tests named fail (then restored):
- diagonal_cell.py, ``input_scale`` under ``jax.lax.stop_gradient`` (gamma without gradient):
  test_bptt_matches_finite_differences[diagonal-*] and [diagonal-real-*] fail on nu,
  test_gamma_derivative_in_nu fails;
- diagonal_cell.py, ``eigenvalues`` with ``- params.theta`` in the sine (conjugate lambda):
  test_states_match_a_literal_loop fails;
- diagonal_cell.py, ``features`` reading ``[Re h, Re h]``: test_states_match_a_literal_loop[diagonal]
  fails (the finite differences go through the same forward, so they agree with it);
- diagonal_cell.py, ``nu = jnp.log(-jnp.log(r2))`` in ``init_params`` (|lambda| = r^2, not r):
  test_init_is_on_the_ring fails;
- model.py, ``_params_type`` giving ``DiagonalParams`` for the real cell:
  test_store_checkpoint_and_warm_start_keep_the_fields[diagonal-real] and test_init_is_on_the_ring fail.
"""

import functools
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from localrnn.cells import make_cell
from localrnn.cli import main
from localrnn.config import TrainConfig
from localrnn.diagonal_cell import (R_MAX, R_MIN, DiagonalParams, RealDiagonalParams, eigenvalues,
                                    init_params as diagonal_init, input_scale)
from localrnn.losses import global_loss
from localrnn.model import cell_params, forward, hidden_states, init_params, params_fields
from localrnn.rules import get_rule, make_rule
from localrnn.tasks import get_task
from localrnn.train import train

from test_orthogonal_cell import resume_and_store  # checkpoint resume + store round trip

DIAGONAL, REAL = make_cell("diagonal"), make_cell("diagonal-real")
CELLS = {"diagonal": DIAGONAL, "diagonal-real": REAL}
LENGTH, HIDDEN, BATCH = 12, 5, 3


def _problem(cell_name="diagonal", task="temporal_order", seed=0):
    """Task, random float64 parameters (|lambda| in [0.5, 0.99], theta in [0, 2 pi), dense B, Why,
    by), batch."""
    t = get_task(task)
    rng = np.random.default_rng(seed)
    nu = np.log(-np.log(rng.uniform(0.5, 0.99, HIDDEN)))
    n, m, k = t.n_in, HIDDEN, t.n_out
    if cell_name == "diagonal-real":
        p = RealDiagonalParams(nu, 0.6 * rng.standard_normal((n, m)), 0.6 * rng.standard_normal((m, k)),
                               0.3 * rng.standard_normal(k))
    else:
        p = DiagonalParams(nu, rng.uniform(0, 2 * np.pi, m), 0.5 * rng.standard_normal((n, m)),
                           0.5 * rng.standard_normal((n, m)), 0.6 * rng.standard_normal((2 * m, k)),
                           0.3 * rng.standard_normal(k))
    p = jax.tree.map(jnp.asarray, p)
    return t, p, t.sample(jax.random.PRNGKey(seed), LENGTH, BATCH, jnp.float64)


@functools.lru_cache(maxsize=None)
def _step(rule: str, loss: str, cell_name: str):
    return jax.jit(make_rule(rule, loss=loss, cell=CELLS[cell_name]).step)


def _literal_states(p, x):
    """h_t by a Python loop over t in numpy complex128."""
    x = np.asarray(x)
    nu = np.asarray(p.nu)
    theta = np.asarray(p.theta) if isinstance(p, DiagonalParams) else 0.0
    B = np.asarray(p.B_re) + 1j * np.asarray(p.B_im) if isinstance(p, DiagonalParams) else np.asarray(p.B)
    lam = np.exp(-np.exp(nu) + 1j * theta)
    gamma = np.sqrt(1 - np.abs(lam) ** 2)
    h = np.zeros((x.shape[1], nu.shape[0]), complex)
    out = []
    for t in range(x.shape[0]):
        h = lam * h + gamma * (x[t] @ B)
        out.append(h)
    return np.stack(out)


# -- the map ------------------------------------------------------------------------------------
@pytest.mark.parametrize("cell_name", list(CELLS))
def test_states_match_a_literal_loop(cell_name):
    """States to 1e-13 and outputs tanh([Re h, Im h]) Why + by (real cell: tanh(h) Why + by) to 1e-13;
    the real cell's states are real."""
    t, p, (x, _) = _problem(cell_name, seed=1)
    cell = CELLS[cell_name]
    hs = hidden_states(p, x, cell=cell)
    want = _literal_states(p, x)
    assert jnp.iscomplexobj(hs) == (cell_name == "diagonal")
    np.testing.assert_allclose(np.asarray(hs), want if cell_name == "diagonal" else want.real, rtol=0, atol=1e-13)
    feats = np.concatenate([want[-1].real, want[-1].imag], -1) if cell_name == "diagonal" else want[-1].real
    out = np.tanh(feats) @ np.asarray(p.Why) + np.asarray(p.by)
    np.testing.assert_allclose(np.asarray(forward(p, x, cell=cell)), out, rtol=0, atol=1e-13)


def test_modulus_is_below_one_for_every_nu():
    """|lambda| = exp(-exp(nu)) < 1 and gamma in (0, 1] on nu in [-30, 30] (float64; float32 on
    [-15, 30]), whatever theta; and <= 1 with a finite gamma down to nu = -1000."""
    for dtype, low in ((jnp.float64, -30.0), (jnp.float32, -15.0)):
        nu = jnp.linspace(low, 30.0, 2001, dtype=dtype)
        theta = jnp.linspace(0.0, 2 * math.pi, 2001, dtype=dtype)
        lam = eigenvalues(DiagonalParams(nu, theta, None, None, None, None))
        assert float(jnp.max(jnp.abs(lam))) < 1.0
        gamma = input_scale(lam)
        assert float(jnp.min(gamma)) > 0 and float(jnp.max(gamma)) <= 1.0
    lam = eigenvalues(RealDiagonalParams(jnp.linspace(-1000.0, 30.0, 101), None, None, None))
    assert float(jnp.max(lam)) <= 1.0 and bool(jnp.all(jnp.isfinite(input_scale(lam))))


def test_gamma_derivative_in_nu():
    """d gamma / d nu through lambda equals the closed form e^nu e^{-2 e^nu} / sqrt(1 - e^{-2 e^nu})
    (to 1e-12 relative), for complex and real lambda."""
    nu = jnp.linspace(-6.0, 2.0, 41)
    s = np.exp(np.asarray(nu))
    want = s * np.exp(-2 * s) / np.sqrt(1 - np.exp(-2 * s))
    for make in (lambda v: DiagonalParams(v, jnp.full_like(v, 1.3), None, None, None, None),
                 lambda v: RealDiagonalParams(v, None, None, None)):
        got = jax.vmap(jax.grad(lambda v: input_scale(eigenvalues(make(v[None])))[0]))(nu)
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12)


def test_init_is_on_the_ring():
    """init_params: R_MIN <= |lambda| <= R_MAX, theta in [0, 2 pi), by = 0, B's standard deviation
    about 1/sqrt(2n) per part (1/sqrt(n) real), Why orthonormal columns; dtype kept."""
    n, m, k = 50, 400, 4
    for name, cell in CELLS.items():
        p = init_params(jax.random.PRNGKey(0), n, m, k, jnp.float32, cell)
        assert type(p)._fields == params_fields(cell) and all(a.dtype == jnp.float32 for a in p)
        r = np.abs(np.asarray(eigenvalues(p), np.complex128))
        assert R_MIN - 1e-6 <= r.min() and r.max() <= R_MAX + 1e-6 and r.max() - r.min() > 0.05
        assert not np.any(p.by)
        np.testing.assert_allclose(np.asarray(p.Why).T @ np.asarray(p.Why), np.eye(k), atol=1e-5)
        if name == "diagonal":
            assert 0 <= float(p.theta.min()) and float(p.theta.max()) < 2 * math.pi
            for b in (p.B_re, p.B_im):
                assert abs(float(jnp.std(b)) * math.sqrt(2 * n) - 1) < 0.05
        else:
            assert abs(float(jnp.std(p.B)) * math.sqrt(n) - 1) < 0.05


def test_the_real_cell_is_the_complex_one_with_theta_and_b_im_zero():
    """With theta = 0 and B_im = 0, Im h = 0 exactly and Re h is the real cell's h to 1e-14 (XLA's
    complex product need not round as the real one does); the outputs agree to 1e-14 and so do BPTT's updates of nu, B, Why (the rows reading Re h), by."""
    t, p, batch = _problem("diagonal", seed=3)
    p = p._replace(theta=jnp.zeros_like(p.theta), B_im=jnp.zeros_like(p.B_im))
    q = RealDiagonalParams(p.nu, p.B_re, p.Why[:HIDDEN], p.by)
    hc, hr = hidden_states(p, batch[0], cell=DIAGONAL), hidden_states(q, batch[0], cell=REAL)
    assert not np.any(hc.imag)
    np.testing.assert_allclose(hc.real, hr, rtol=0, atol=1e-14)
    np.testing.assert_allclose(forward(p, batch[0], cell=DIAGONAL), forward(q, batch[0], cell=REAL),
                               rtol=0, atol=1e-14)
    gc = _step("bptt", t.loss, "diagonal")(p, (), batch, {"reg_lambda": 0.0})[0]
    gr = _step("bptt", t.loss, "diagonal-real")(q, (), batch, {"reg_lambda": 0.0})[0]
    for a, b in ((gc.nu, gr.nu), (gc.B_re, gr.B), (gc.Why[:HIDDEN], gr.Why), (gc.by, gr.by)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-14 * float(jnp.max(jnp.abs(b))))


# -- the rules ----------------------------------------------------------------------------------
@pytest.mark.parametrize("task", ["temporal_order", "adding"])
@pytest.mark.parametrize("cell_name", list(CELLS))
def test_bptt_matches_finite_differences(cell_name, task):
    """Central differences (h = 1e-5) of E on every entry of every parameter: within 1e-6 relative
    (floored at 1e-2 of the parameter's largest derivative; the differences' rounding is ~1e-11)."""
    t, p, (x, y) = _problem(cell_name, task, seed=2)
    grads = _step("bptt", t.loss, cell_name)(p, (), (x, y), {"reg_lambda": 0.0})[0]
    assert type(grads) is type(p)
    loss_fn, cell = global_loss(t.loss), CELLS[cell_name]
    loss = jax.jit(lambda q: loss_fn(forward(q, x, cell=cell), y))
    eps = 1e-5
    for name in p._fields:
        arr, g = np.asarray(getattr(p, name)), np.asarray(getattr(grads, name))
        fd = np.zeros_like(arr)
        for idx in np.ndindex(*arr.shape):
            up, down = arr.copy(), arr.copy()
            up[idx] += eps
            down[idx] -= eps
            fd[idx] = float(loss(p._replace(**{name: jnp.asarray(up)}))
                            - loss(p._replace(**{name: jnp.asarray(down)}))) / (2 * eps)
        floor = 1e-2 * np.max(np.abs(fd))
        assert np.max(np.abs(fd)) > 0, name
        assert np.all(np.abs(g - fd) <= 1e-6 * np.maximum(floor, np.abs(fd))), (name, g, fd)


@pytest.mark.parametrize("cell_name", list(CELLS))
def test_readout_moves_only_why_and_by_as_bptt_does(cell_name):
    """The readout rule's Why and by are BPTT's (to 1e-14); every other update is 0."""
    t, p, batch = _problem(cell_name, seed=4)
    got = _step("readout", t.loss, cell_name)(p, (), batch, {})[0]
    want = _step("bptt", t.loss, cell_name)(p, (), batch, {"reg_lambda": 0.0})[0]
    for name in p._fields:
        if name in ("Why", "by"):
            np.testing.assert_allclose(getattr(got, name), getattr(want, name), rtol=0, atol=1e-14)
        else:
            assert not np.any(getattr(got, name)), name


def test_the_option_and_what_is_refused():
    """Only bptt, readout, rtrl, snap1, eprop (symmetric) and lra take the cells; reg_lambda, tau and a state before step 0
    are refused in one line; the cells change ids."""
    for name in ("uoro", "rflo", "fa", "lra_fdbk", "tptt"):
        with pytest.raises(ValueError, match=f"cell: rule '{name}' is defined for the .* cell only, "
                                             "got 'diagonal'"):
            TrainConfig(task="temporal_order", length=10, rule=name, cell="diagonal")
    with pytest.raises(ValueError, match=r"^reg_lambda: Pascanu's regularizer is defined for the srnn \| leaky "
                                         r"\| orthogonal cell only; the diagonal-real cell takes reg_lambda = 0$"):
        make_rule("bptt", hparams={"reg_lambda": 0.1}, cell=REAL)
    with pytest.raises(ValueError, match=r"tau: the diagonal cell has no leak \(tau = 1\); got 2\.0"):
        TrainConfig(task="temporal_order", length=10, cell="diagonal", tau=2.0)
    t, p, (x, _) = _problem()
    with pytest.raises(ValueError, match="cell: a state before step 0 .* got 'diagonal'"):
        forward(p, x, jnp.zeros((BATCH, HIDDEN)), cell=DIAGONAL)
    ids = {TrainConfig(task="temporal_order", length=10, cell=c).run_id() for c in ("srnn", *CELLS)}
    assert len(ids) == 3


# -- training, checkpoints, store ---------------------------------------------------------------
def _config(**over) -> TrainConfig:
    fields = dict(task="temporal_order", length=10, rule="bptt", lr=0.1, hidden=8, batch=10, max_iters=200,
                  val_every=100, val_size=200, patience=0, dtype="float64", cell="diagonal")
    return TrainConfig(**{**fields, **over})


@pytest.mark.parametrize("cell_name", list(CELLS))
def test_store_checkpoint_and_warm_start_keep_the_fields(cell_name, tmp_path):
    """A run stopped at 100 iterations and resumed from its checkpoint ends where the whole run
    ends; the store keeps the cell's fields by name and they warm-start a run."""
    cfg = _config(cell=cell_name, rule="readout" if cell_name == "diagonal-real" else "bptt")
    full, stored = resume_and_store(cfg, tmp_path)
    assert set(stored) == set(params_fields(CELLS[cell_name]))
    kept = cell_params(stored, CELLS[cell_name])
    assert all(np.array_equal(a, b) for a, b in zip(kept, full.params))
    warm = train([cfg.model_copy(update={"max_iters": 100})], initial_params=[stored])[0]
    assert type(warm.params) is type(full.params) and not np.array_equal(warm.params.Why, full.params.Why)


_CLI_SIZES = ("--hidden", "8", "--batch", "10", "--val-every", "100", "--val-size", "200", "--dtype", "float64")


@pytest.mark.parametrize("cell_name", list(CELLS))
def test_localrnn_train_cell_diagonal(cell_name, capsys, monkeypatch):
    """``--cell diagonal`` and ``diagonal-real`` are in ``localrnn train --help``; bptt for 300
    iterations on temporal order T = 10 (4 classes, chance 25 %) exits 0 well above chance."""
    monkeypatch.setenv("COLUMNS", "400")
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "orthogonal | diagonal | diagonal-real" in " ".join(capsys.readouterr().out.split())
    with pytest.raises(SystemExit) as exc:
        main(["train", "--task", "temporal-order", "--length", "10", "--rule", "bptt", "--cell", cell_name,
              "--lr", "0.1", "--max-iters", "300", "--json", *_CLI_SIZES])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert exc.value.code == 0 and summary["config"]["cell"] == cell_name
    assert summary["best_accuracy"] > 0.6, summary
