"""The credit diagnostic (docs/credit.md): every rule's record carries the cosine between its
recurrent update and BPTT's gradient, overall and per step, float64.

The oracle for BPTT's per-step parts G_t is independent of the engine: E written with its own copy
of (Whh, Wxh, bh) at every step and differentiated with plain autodiff; the gradient for step t's
copy is G_t. Each rule's per-step cosines are then checked against what the rule's definition gives:
1 at every step for BPTT, RTRL and feedback alignment with the true transposes; the last step only
for e-prop without leak; SnAp-1's literal loop with step t's immediate terms kept; the per-layer
updates of LRA-diff; 0 for the readout; no split (NaN) for UORO.

Broken on purpose, each seen failing here: ``bptt_lags`` without the cell's ``drive`` (leaky case);
``lags_from_deltas`` pairing ``z_prev`` with ``delta`` shifted by one step; snap1's ``after``
products starting at d_t instead of d_{t+1}; eprop's weights ``keep^t`` instead of ``keep^(T-1-t)``.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from localrnn.cells import SRNN, Cell, make_cell
from localrnn.losses import global_loss
from localrnn.model import Params, readout
from localrnn.rules import get_rule, make_rule
from localrnn.rules._credit import bptt_lags, cosine
from localrnn.rules.eprop import EpropState
from localrnn.rules.fa import FAState
from localrnn.rules.lra import lra_core
from localrnn.rules.lra.options import LRAOptions

from test_fa_eprop import _problem
from test_rtrl_snap1 import literal_loop

LEAKY = make_cell("leaky", 3.0)


def per_step_parts(params: Params, x, y, loss: str, cell: Cell) -> np.ndarray:
    """G_t (T, |theta|) by autodiff of E with a separate copy of (Whh, Wxh, bh) at every step."""
    T = x.shape[0]
    loss_fn = global_loss(loss)

    def E(whh, wxh, bh):
        h = None
        for t in range(T):
            u = x[t] @ wxh[t] + bh[t]
            h = cell.first(u) if t == 0 else cell.step(whh[t], h, u)
        return loss_fn(readout(params, h), y)

    copies = [jnp.stack([a] * T) for a in (params.Whh, params.Wxh, params.bh)]
    g = jax.grad(E, argnums=(0, 1, 2))(*copies)
    return np.concatenate([np.asarray(a).reshape(T, -1) for a in g], axis=1)


def _flat(p: Params) -> np.ndarray:
    return np.concatenate([np.asarray(p.Whh).ravel(), np.asarray(p.Wxh).ravel(), np.asarray(p.bh).ravel()])


def _cos(a, b) -> np.ndarray:
    return np.asarray(cosine(jnp.asarray(a), jnp.asarray(b)))


@functools.lru_cache(maxsize=None)
def _step(name: str, loss: str, cell: Cell = SRNN, **options):
    return jax.jit(make_rule(name, loss=loss, record=True, cell=None if cell is SRNN else cell, **options).step)


@pytest.mark.parametrize("cell", [SRNN, LEAKY], ids=["srnn", "leaky"])
def test_bptt_parts_are_the_gradients_of_per_step_copies(cell):
    t, params, (x, y) = _problem(seed=1)
    lags, whole = bptt_lags(params, (x, y), t.loss, cell)
    want = per_step_parts(params, x, y, t.loss, cell)
    got = np.concatenate([np.asarray(a).reshape(x.shape[0], -1) for a in lags], axis=1)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12 * np.max(np.abs(want)))
    np.testing.assert_allclose(np.asarray(whole), want.sum(axis=0), rtol=0, atol=1e-12 * np.max(np.abs(want)))


@pytest.mark.parametrize("name,cell", [("bptt", SRNN), ("bptt", LEAKY), ("rtrl", SRNN), ("rtrl", LEAKY)])
def test_exact_rules_have_cosine_one_everywhere(name, cell):
    t, params, batch = _problem(seed=2)
    hp = {"reg_lambda": jnp.float64(0.0)} if name == "bptt" else {}
    rec = _step(name, t.loss, cell)(params, (), batch, hp)[2]
    np.testing.assert_allclose(rec["credit_cosine"], 1.0, atol=1e-12)
    np.testing.assert_allclose(rec["credit_cosine_overall"], 1.0, atol=1e-12)


@pytest.mark.parametrize("cell", [SRNN, LEAKY], ids=["srnn", "leaky"])
def test_fa_with_the_true_transposes_has_cosine_one(cell):
    t, params, batch = _problem(seed=3)
    rec = _step("fa", t.loss, cell)(params, FAState(params.Whh.T, ()), batch, {})[2]
    np.testing.assert_allclose(rec["credit_cosine"], 1.0, atol=1e-12)


def test_fa_with_random_feedback_per_step_cosines_are_its_deltas():
    """Random F_hh: the per-step cosines are those of FA's own parts (z_{t-1}^T delta_t, ...)
    against the oracle's G_t; the last step's part is BPTT's (F_y = Why^T) -> cosine 1 there."""
    t, params, (x, y) = _problem(seed=4)
    F_hh = jnp.asarray(np.random.default_rng(0).standard_normal(params.Whh.shape) * 0.5)
    grads, _, rec = _step("fa", t.loss)(params, FAState(F_hh, ()), (x, y), {})
    want_g = per_step_parts(params, x, y, t.loss, SRNN)
    assert abs(float(rec["credit_cosine"][-1]) - 1.0) < 1e-12
    assert float(np.min(rec["credit_cosine"][1:-1])) < 0.99  # earlier steps drift from BPTT's
    np.testing.assert_allclose(rec["credit_cosine_overall"], _cos(_flat(grads), want_g.sum(0)), atol=1e-12)


def test_eprop_without_leak_credits_the_last_step_only():
    t, params, (x, y) = _problem(seed=5)
    rec = _step("eprop", t.loss)(params, EpropState(()), (x, y), {})[2]
    want = np.zeros(x.shape[0])
    want[-1] = 1.0  # its only part is BPTT's part at T-1 (one-step truncation)
    np.testing.assert_allclose(rec["credit_cosine"], want, atol=1e-12)


def test_rflo_on_the_leaky_cell_credits_earlier_steps_through_the_leak():
    """Per step t its part is keep^(T-1-t) drive (z_{t-1}^T l, x_t^T l, sum l): check against
    that written out with numpy, and that steps before T-1 now get credit."""
    t, params, (x, y) = _problem(seed=6)
    state = EpropState(params.Why.T)  # symmetric signal l = delta
    grads, _, rec = _step("rflo", t.loss, LEAKY)(params, state, (x, y), {})
    from localrnn.model import hidden_states

    z = np.tanh(np.asarray(hidden_states(params, x, cell=LEAKY)))
    z_prev = np.concatenate([np.zeros_like(z[:1]), z[:-1]])
    l = np.asarray(jax.grad(lambda h: global_loss(t.loss)(readout(params, h), y))(jnp.asarray(
        np.arctanh(z[-1]))))  # delta = dE/dh_{T-1}
    T = x.shape[0]
    parts = np.stack([LEAKY.keep ** (T - 1 - s) * LEAKY.drive * np.concatenate(
        [(z_prev[s].T @ l).ravel(), (np.asarray(x[s]).T @ l).ravel(), l.sum(0)]) for s in range(T)])
    np.testing.assert_allclose(parts.sum(0), _flat(grads), rtol=0, atol=1e-10 * np.max(np.abs(parts)))
    g = per_step_parts(params, x, y, t.loss, LEAKY)
    np.testing.assert_allclose(rec["credit_cosine"], _cos(parts, g), atol=1e-10)
    np.testing.assert_allclose(rec["credit_norm"], np.linalg.norm(parts, axis=1), rtol=1e-10)
    np.testing.assert_allclose(rec["bptt_credit_norm"], np.linalg.norm(g, axis=1), rtol=1e-10)
    assert float(np.abs(rec["credit_cosine"][-3])) > 1e-3


@pytest.mark.parametrize("cell", [SRNN, LEAKY], ids=["srnn", "leaky"])
def test_snap1_per_step_parts_are_its_literal_loop_with_one_step_kept(cell):
    t, params, (x, y) = _problem(seed=7)
    rec = _step("snap1", t.loss, cell)(params, (), (x, y), {})[2]
    T = x.shape[0]
    parts = np.stack([_flat(literal_loop(params, x, y, t.loss, diagonal=True, tau=cell.tau, only_step=s))
                      for s in range(T)])
    want = _cos(parts, per_step_parts(params, x, y, t.loss, cell))
    np.testing.assert_allclose(rec["credit_cosine"], want, atol=1e-10)
    np.testing.assert_allclose(rec["credit_norm"], np.linalg.norm(parts, axis=1), rtol=1e-10)


def test_lra_per_layer_cosines():
    """LRA-diff (fixed-target, K = 1): cosines of lra_core's per-layer updates against G_t."""
    t, params, (x, y) = _problem(seed=8)
    hparams = {k: jnp.float64(v) for k, v in {**get_rule("lra").defaults, "target_step": 1.0}.items()}
    opts = LRAOptions(variant="fixed_target", inner_steps=1)
    rule = jax.jit(make_rule("lra", loss=t.loss, record=True, variant="fixed_target", inner_steps=1).step)
    grads, _, rec = rule(params, (), (x, y), hparams)
    out = lra_core(params, x, y, hparams, opts, t.loss)
    parts = np.concatenate([np.asarray(out[k]).reshape(x.shape[0], -1)
                            for k in ("grad_Whh_per_layer", "grad_Wxh_per_layer", "grad_bh_per_layer")], axis=1)
    g = per_step_parts(params, x, y, t.loss, SRNN)
    np.testing.assert_allclose(rec["credit_cosine"], _cos(parts, g), atol=1e-12)
    np.testing.assert_allclose(rec["credit_cosine_overall"], _cos(_flat(grads), g.sum(0)), atol=1e-12)


def test_readout_gets_zero_and_uoro_no_split():
    t, params, batch = _problem(seed=9)
    rec = _step("readout", t.loss)(params, (), batch, {})[2]
    assert np.all(np.asarray(rec["credit_cosine"]) == 0) and float(rec["credit_cosine_overall"]) == 0
    uoro = make_rule("uoro", loss=t.loss, record=True)
    grads, _, rec = jax.jit(uoro.step)(params, uoro.init(jax.random.PRNGKey(0), params), batch, {})
    assert np.all(np.isnan(np.asarray(rec["credit_cosine"]))) and np.all(np.isnan(np.asarray(rec["credit_norm"])))
    g = per_step_parts(params, *batch, t.loss, SRNN).sum(0)
    np.testing.assert_allclose(rec["credit_cosine_overall"], _cos(_flat(grads), g), atol=1e-12)


TINY_CREDIT_TOML = '''
name = "tiny_credit"
kind = "diagnostics"
title = "tiny credit"
[fixed]
task = "temporal_order"
length = 10
hidden = 8
batch = 4
[[arms]]
name = "BPTT"
rule = "bptt"
fixed = { lr = 0.1 }
[[arms]]
name = "e-prop"
rule = "eprop"
fixed = { lr = 0.1 }
[budget.quick]
max_iters = 40
record_every = 20
fixed = { val_size = 100 }
[report]
figure = "credit"
'''


def test_a_credit_experiment_records_and_draws(tmp_path):
    """A diagnostics spec with ``report.figure = "credit"``: every record carries the credit keys
    (BPTT's cosines 1, e-prop's the last step only) and the report draws the credit figure from the
    store alone."""
    from localrnn.experiments.kinds import run_experiment
    from localrnn.experiments.report import make_report
    from localrnn.experiments.spec import load_spec
    from localrnn.experiments.store import Store

    path = tmp_path / "tiny_credit.toml"
    path.write_text(TINY_CREDIT_TOML)
    store = Store(str(tmp_path / "s.db"))
    run_experiment(store, load_spec(str(path)), "quick")
    trials = {t["labels"]["arm"]: t for t in store.trials("tiny_credit:quick")}
    for arm, want_last_only in (("BPTT", False), ("e-prop", True)):
        its, cos = store.records(trials[arm]["trial_id"])["credit_cosine"]
        assert list(its) == [20, 40] and cos.shape == (2, 10)
        np.testing.assert_allclose(cos[:, -1], 1.0, atol=1e-5)
        if want_last_only:
            np.testing.assert_allclose(cos[:, :-1], 0.0, atol=1e-6)
        else:
            np.testing.assert_allclose(cos, 1.0, atol=1e-5)
    rep = make_report(store, "tiny_credit:quick", "markdown", str(tmp_path / "out"))
    assert rep.path.endswith(".png") and (tmp_path / "out" / "tiny_credit_quick.png").stat().st_size > 10_000
