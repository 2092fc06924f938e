"""RTRL and SnAp-1 (docs/rtrl.md), float64.

RTRL is checked against BPTT's gradient, SnAp-1 against a literal loop: RTRL written plainly,
one sample and one step at a time, with the Jacobian D_t replaced by its diagonal. The same
loop with the full Jacobian must give BPTT's gradient, which checks the loop itself.

Lines broken on purpose, each making the tests named fail (then restored):
- rtrl.py, the immediate term of P^Whh dropped (``+ z_prev[:, None, :, None] * eye[...]``), or
  D built with ``(1 - z_prev ** 2)[:, None, :]`` (the derivative of the receiving unit instead of
  the sending one), or P^bh contracted over the wrong axis of D (``"bki,biq->bkq"``), or delta
  taken at h_{T-2} (``hs[-2]``): test_rtrl_equals_bptt and test_rtrl_equals_the_literal_loop fail;
- rtrl.py, the size check skipped (``if need > limit_mib`` -> ``if False``):
  test_rtrl_refuses_an_influence_over_the_limit fails;
- snap1.py, the self-weight ``Whh[0, 0]`` used for every unit, or ``d`` applied along the sending
  unit (``d[:, :, None] * p_hh``), or the decay dropped from p^Wxh, or the ``+ 1.0`` of p^bh
  dropped: test_snap1_equals_the_literal_diagonal_loop and test_snap1_is_exact_when_whh_is_diagonal
  fail;
- this file, the oracle's ``D = np.diag(np.diag(D))`` removed:
  test_snap1_equals_the_literal_diagonal_loop fails.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from localrnn.cells import make_cell
from localrnn.config import TrainConfig
from localrnn.model import Params
from localrnn.rules import RULES, register
from localrnn.rules import rtrl, snap1
from localrnn.tasks import get_task
from localrnn.train import train_one

from test_rule_battery import check_schema, run_battery

TASKS = [("temporal_order", 10, 5), ("random_permutation", 6, 4), ("adding", 10, 5)]  # task, T, m
B = 3


@pytest.fixture(scope="module")
def registered():
    """Register both rules for this module (unless the package already does), then leave the
    registry as it was."""
    added = [r for r in (rtrl.RULE, snap1.RULE) if r.name not in RULES]
    for r in added:
        register(r)
    yield
    for r in added:
        del RULES[r.name]


def _problem(task, length, hidden, seed=0, batch=B):
    """The task's sizes and loss with float64 numpy draws: dense parameters (every entry and bias
    matters) and dense normal inputs (every row of Wxh gets a gradient); one-hot targets for
    classification, normal ones for regression. (Eager task sampling and orthogonal
    initialization would cost seconds of compilation per task.)"""
    t = get_task(task)
    rng = np.random.default_rng(seed)
    n, m, k = t.n_in, hidden, t.n_out
    draw = lambda *shape, scale=1.0: jnp.asarray(scale * rng.normal(size=shape))  # noqa: E731
    params = Params(Wxh=draw(n, m, scale=n ** -0.5), Whh=draw(m, m, scale=1.2 * m ** -0.5),
                    bh=draw(m, scale=0.3), Why=draw(m, k, scale=m ** -0.5), by=draw(k, scale=0.3))
    x = draw(length, batch, n)
    y = (jnp.asarray(np.eye(k)[rng.integers(0, k, batch)]) if t.loss == "cross_entropy"
         else draw(batch, k))
    return t, params, (x, y)


@functools.lru_cache(maxsize=None)
def _jitted(name: str, loss: str, record: bool, options: tuple, tau: float = 1.0):
    """The jitted step of rule ``name``, one per build (on the leaky cell when ``tau`` > 1): tests
    of the same sizes share its compiles."""
    rdef = {"rtrl": rtrl.RULE, "snap1": snap1.RULE}.get(name) or RULES[name]
    cell = make_cell("leaky", tau) if tau != 1.0 else None
    return jax.jit(rdef.make(rdef.resolve(dict(options)), loss, record, cell).step)


def _step(rdef, params, batch, loss, record=False, tau=1.0, **options):
    """One jitted step of ``rdef`` built with ``options`` (these rules have no state or
    hyper-parameters): (grads, state, record)."""
    return _jitted(rdef.name, loss, record, tuple(sorted(options.items())), tau)(params, (), batch, {})


def _assert_close(got: Params, want: Params, rtol=1e-10, names=Params._fields):
    """Each named array within ``rtol`` of the largest entry of ``want``'s array."""
    for name in names:
        g, w = np.asarray(getattr(got, name)), np.asarray(getattr(want, name))
        scale = np.max(np.abs(w))
        assert scale > 0, name
        np.testing.assert_allclose(g, w, rtol=0, atol=rtol * scale, err_msg=name)


def _rel_diff(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return np.linalg.norm(a - b) / np.linalg.norm(b)


def literal_loop(params: Params, x, y, loss: str, diagonal: bool, tau: float = 1.0,
                 only_step: int | None = None) -> Params:
    """RTRL written plainly: per sample, P (m x |theta|), theta = (Whh, Wxh, bh) flattened row-major
    in that order; P_t = D_t^T P_{t-1} + I_t with D_t[i, j] = Whh[i, j] (1 - z_{t-1}[i]^2), or its
    diagonal; grad theta = sum_b delta[b] P_{T-1}[b]; Why, by by hand from dE/dout. With ``tau``
    > 1, the leaky cell (docs/cells.md): h_t = (1 - 1/tau) h_{t-1} + (1/tau)(z_{t-1} Whh + x_t Wxh
    + bh), D_t = (1 - 1/tau) 1 + (1/tau) D_t(SRNN), immediate terms times 1/tau. ``only_step``: keep
    the immediate terms of that step only (the rule's credit to it, tests/test_credit.py)."""
    keep, drive = 1.0 - 1.0 / tau, 1.0 / tau
    Wxh, Whh, bh, Why, by = (np.asarray(a) for a in params)
    x, y = np.asarray(x), np.asarray(y)
    T, nb, n = x.shape
    m, k = Why.shape
    n_theta = m * m + n * m + m
    g_theta, g_why, g_by = np.zeros(n_theta), np.zeros((m, k)), np.zeros(k)
    for b in range(nb):
        P = np.zeros((m, n_theta))
        z_prev, h = np.zeros(m), np.zeros(m)
        for t in range(T):
            h = keep * h + drive * (z_prev @ Whh + x[t, b] @ Wxh + bh)
            D = np.zeros((m, m))
            for i in range(m):
                for j in range(m):
                    D[i, j] = keep * (i == j) + drive * Whh[i, j] * (1.0 - z_prev[i] ** 2)
            if diagonal:
                D = np.diag(np.diag(D))
            I = np.zeros((m, n_theta))
            for j in range(m):
                for i in range(m):
                    I[j, i * m + j] = drive * z_prev[i]
                for i in range(n):
                    I[j, m * m + i * m + j] = drive * x[t, b, i]
                I[j, m * m + n * m + j] = drive
            if only_step is not None and t != only_step:
                I[:] = 0.0
            P_new = np.zeros_like(P)
            for j in range(m):
                for i in range(m):
                    P_new[j] += D[i, j] * P[i]
            P = P_new + I
            z_prev = np.tanh(h)
        z = z_prev
        out = z @ Why + by
        if loss == "cross_entropy":
            e = np.exp(out - out.max())
            d_out = (e / e.sum() - y[b]) / nb
        else:
            d_out = 2.0 * (out - y[b]) / (nb * k)
        delta = (d_out @ Why.T) * (1.0 - z ** 2)
        g_theta += delta @ P
        g_why += np.outer(z, d_out)
        g_by += d_out
    return Params(Wxh=g_theta[m * m:m * m + n * m].reshape(n, m), Whh=g_theta[:m * m].reshape(m, m),
                  bh=g_theta[m * m + n * m:], Why=g_why, by=g_by)


def _bptt(t, params, batch, tau=1.0):
    return _jitted("bptt", t.loss, False, (), tau)(params, (), batch, {"reg_lambda": jnp.float64(0.0)})


# -- the leaky cell (docs/cells.md) ------------------------------------------------------------
LEAKY_TAUS = [2.0, 5.0]


@pytest.mark.parametrize("tau", LEAKY_TAUS)
def test_on_the_leaky_cell_rtrl_is_bptt_and_snap1_its_diagonal_loop(tau):
    """On the leaky cell: the literal loop with the full Jacobian is BPTT's gradient (autodiff
    through the leaky map), RTRL equals both, and SnAp-1 equals the loop with diag(D_t) -- each to
    1e-10 relative.

    Broken on purpose, each seen failing here: ``Cell.jacobian`` without the ``keep * eye`` term;
    rtrl's immediate terms without the factor ``cell.drive``; snap1's ``c * z_prev`` as ``z_prev``;
    ``Cell.jacobian_diagonal`` without ``keep``."""
    t, params, (x, y) = _problem("temporal_order", 10, 5, seed=4)
    want = _bptt(t, params, (x, y), tau)[0]
    _assert_close(literal_loop(params, x, y, t.loss, diagonal=False, tau=tau), want)
    _assert_close(_step(rtrl.RULE, params, (x, y), t.loss, tau=tau)[0], want)
    _assert_close(_step(snap1.RULE, params, (x, y), t.loss, tau=tau)[0],
                  literal_loop(params, x, y, t.loss, diagonal=True, tau=tau))


# -- RTRL ------------------------------------------------------------------------------------
@pytest.mark.parametrize("task,length,hidden", TASKS)
def test_rtrl_equals_bptt(task, length, hidden):
    """All five arrays equal BPTT's gradient to 1e-10 relative, and the recorded loss is E."""
    t, params, batch = _problem(task, length, hidden)
    want, _, want_rec = _bptt(t, params, batch)
    got, _, rec = _step(rtrl.RULE, params, batch, t.loss)
    _assert_close(got, want)
    np.testing.assert_allclose(rec["loss"], want_rec["loss"], rtol=1e-13)


@pytest.mark.parametrize("task,length,hidden", TASKS)
def test_rtrl_equals_the_literal_loop(task, length, hidden):
    """The rule against the loop with the full Jacobian; the loop itself against BPTT."""
    t, params, (x, y) = _problem(task, length, hidden, seed=1)
    oracle = literal_loop(params, x, y, t.loss, diagonal=False)
    _assert_close(oracle, _bptt(t, params, (x, y))[0])
    _assert_close(_step(rtrl.RULE, params, (x, y), t.loss)[0], oracle)


def test_rtrl_refuses_an_influence_over_the_limit(registered):
    """B 20 x m 32 x |theta| 1248 x 8 bytes = 6.1 MiB: refused under a 6 MiB limit (in a step, at
    trace time, and through the training loop, before any training), allowed under 7; the
    message names the option and the size needed."""
    assert rtrl.influence_mib(20, 6, 32, 8) == 20 * 32 * (32 * 32 + 6 * 32 + 32) * 8 / 2 ** 20
    t, params, batch = _problem("temporal_order", 10, 32, batch=20)
    message = (r"^max_influence_mb: rtrl's influence dh/dtheta needs 6\.1 MiB per configuration .*"
               r"over the limit of 6 MiB; raise --max-influence-mb to at least 7")
    with pytest.raises(ValueError, match=message):
        _step(rtrl.RULE, params, batch, t.loss, max_influence_mb=6)
    rtrl.check_influence_size(7, 20, 6, 32, 8)  # no error
    rtrl.check_influence_size(6, 20, 6, 32, 4)  # float32 needs half
    cfg = TrainConfig(task="temporal_order", length=10, rule="rtrl", hidden=32, batch=20, max_iters=2,
                      val_every=2, val_size=10, dtype="float64", rule_options={"max_influence_mb": 6})
    with pytest.raises(ValueError, match=message):
        train_one(cfg)


def test_record_gives_the_influence_norm_per_step():
    """``influence_norm`` (T,): the norm of P_t over the batch. At t = 0 only the immediate terms
    of Wxh (x_0[i] in column j of unit j: m ||x_0||^2 per sample) and bh (1 per unit) are there,
    for RTRL and for SnAp-1's kept entries; later steps differ between the two."""
    t, params, (x, y) = _problem("temporal_order", 10, 5)
    want0 = np.sqrt(5 * np.sum(np.asarray(x[0]) ** 2) + B * 5)
    norms = {}
    for rdef in (rtrl.RULE, snap1.RULE):
        norms[rdef.name] = rec = _step(rdef, params, (x, y), t.loss, record=True)[2]["influence_norm"]
        assert rec.shape == (10,) and bool(jnp.all(jnp.isfinite(rec)))
        np.testing.assert_allclose(rec[0], want0, rtol=1e-14)
    assert _rel_diff(norms["snap1"][-1], norms["rtrl"][-1]) > 1e-2


# -- SnAp-1 ----------------------------------------------------------------------------------
@pytest.mark.parametrize("task,length,hidden", TASKS)
def test_snap1_equals_the_literal_diagonal_loop(task, length, hidden):
    """All five arrays equal the literal loop with diag(D_t) to 1e-10 relative; the loss is E."""
    t, params, (x, y) = _problem(task, length, hidden, seed=2)
    got, _, rec = _step(snap1.RULE, params, (x, y), t.loss)
    _assert_close(got, literal_loop(params, x, y, t.loss, diagonal=True))
    np.testing.assert_allclose(rec["loss"], _bptt(t, params, (x, y))[2]["loss"], rtol=1e-13)


def test_snap1_differs_from_rtrl():
    """Off-diagonal recurrent paths matter: the recurrent updates differ by more than 1 %,
    while the readout's are the same."""
    t, params, batch = _problem("temporal_order", 10, 5)
    a = _step(snap1.RULE, params, batch, t.loss)[0]
    b = _step(rtrl.RULE, params, batch, t.loss)[0]
    for name in ("Whh", "Wxh", "bh"):
        assert _rel_diff(getattr(a, name), getattr(b, name)) > 1e-2, name
    _assert_close(a, b, names=("Why", "by"))


def test_snap1_is_exact_when_whh_is_diagonal():
    """With a diagonal Whh, D_t is diagonal and SnAp-1 is RTRL: BPTT's gradient to 1e-10."""
    t, params, batch = _problem("adding", 10, 5)
    params = params._replace(Whh=jnp.diag(jnp.diag(params.Whh)))
    _assert_close(_step(snap1.RULE, params, batch, t.loss)[0], _bptt(t, params, batch)[0])


def test_snap1_whh_is_exact_for_two_steps():
    """T = 2: P_0 has no Whh part (z_{-1} = 0), so SnAp-1's Whh update is BPTT's; Wxh's is not."""
    t, params, (x, y) = _problem("adding", 10, 5)
    batch = (x[-2:], y)
    got, want = _step(snap1.RULE, params, batch, t.loss)[0], _bptt(t, params, batch)[0]
    _assert_close(got, want, names=("Whh", "Why", "by"))
    assert _rel_diff(got.Wxh, want.Wxh) > 1e-2


# -- the shared battery ------------------------------------------------------------------------
# tests/test_rule_battery.py runs every check on every registered rule. Here the schema check
# runs by default; the step checks (a dozen compiles, plus eager task sampling and orthogonal
# initialization) and the 300-iteration training run with -m slow.
@pytest.mark.parametrize("rdef", [rtrl.RULE, snap1.RULE], ids=lambda r: r.name)
def test_battery_schema(rdef):
    check_schema(rdef)


@pytest.mark.slow
@pytest.mark.parametrize("rdef", [rtrl.RULE, snap1.RULE], ids=lambda r: r.name)
def test_battery(rdef, registered):
    run_battery(rdef)
