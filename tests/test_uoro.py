"""UORO (docs/uoro.md) in float64: a literal loop, unbiasedness against BPTT, the noise key, the battery.

A test whose docstring lists lines of ``src/localrnn/rules/uoro.py`` broken on purpose was seen
to fail with each of them (one at a time, then restored).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import localrnn  # noqa: F401  (enables x64)
from localrnn import get_task, init_params, make_rule
from localrnn.cells import make_cell
from localrnn.config import TrainConfig
from localrnn.model import Params
from localrnn.rules import RULES, register
from localrnn.rules import uoro
from localrnn.train import train_one

from test_rule_battery import STEP_CHECKS, check_schema, check_short_run_lowers_the_loss, rule_cases

F64 = jnp.float64


@pytest.fixture(scope="module")
def registered():
    """Register UORO for this module (unless the package already does), then leave the
    registry as it was."""
    added = "uoro" not in RULES
    if added:
        register(uoro.RULE)
    yield uoro.RULE
    if added:
        del RULES["uoro"]


@functools.lru_cache(maxsize=None)
def _rule(loss="cross_entropy", record=False, tau=1.0):
    cell = make_cell("leaky", tau) if tau != 1.0 else None
    return uoro.RULE.make(uoro.RULE.resolve(), loss, record, cell)


@functools.lru_cache(maxsize=None)
def _step(loss="cross_entropy", record=False, tau=1.0):
    """The rule's step, compiled once per structure."""
    return jax.jit(_rule(loss, record, tau).step)


def _problem(seed=0, T=6, B=4, m=5, task="temporal_order"):
    """Float64 parameters moved off the orthogonal init (non-orthogonal Whh, nonzero biases),
    and a batch; returns ``(params, (x, y), loss)``."""
    return (*_problem_arrays(jax.random.PRNGKey(seed), T, B, m, task), get_task(task).loss)


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4))  # one compile instead of many eager ones
def _problem_arrays(key, T, B, m, task):
    t = get_task(task)
    k = jax.random.split(key, 6)
    p = init_params(k[0], t.n_in, m, t.n_out, F64)
    p = Params(Wxh=p.Wxh + 0.3 * jax.random.normal(k[1], p.Wxh.shape, F64),
               Whh=1.1 * p.Whh + 0.2 * jax.random.normal(k[2], p.Whh.shape, F64),
               bh=0.1 * jax.random.normal(k[3], p.bh.shape, F64),
               Why=p.Why, by=0.1 * jax.random.normal(k[4], p.by.shape, F64))
    x, y = t.sample(k[5], max(T, t.min_length), B, F64)
    return p, (x[:T], y)  # a prefix: short sequences keep the tests fast


def _theta(g: Params) -> jax.Array:
    """theta = (Whh, Wxh, bh) flattened in that order."""
    return jnp.concatenate([g.Whh.ravel(), g.Wxh.ravel(), g.bh.ravel()])


# -- the literal oracle: explicit Jacobian matrices, one sample and one step at a time -----------
def literal_uoro(p: Params, x, y, nu, loss: str, tau: float = 1.0) -> dict:
    """UORO written out with numpy: D_t and I_t as matrices, u and theta~ per sample; on the
    leaky cell with time constant ``tau`` (1 = the SRNN; docs/cells.md).

    Returns the recurrent update as flat theta (Whh, Wxh, bh), dE/dWhy, dE/dby and E.
    """
    Wxh, Whh, bh, Why, by = (np.asarray(a) for a in p)
    x, y, nu = np.asarray(x), np.asarray(y), np.asarray(nu)
    T, B, n = x.shape
    m, k = Why.shape
    P = m * m + n * m + m
    eps = 1e-7
    keep, drive = 1.0 - 1.0 / tau, 1.0 / tau
    us, tts, z_last = [], [], []
    for b in range(B):
        h_prev = np.zeros(m)
        u, tt = np.zeros(m), np.zeros(P)                       # u_{-1} = 0, theta~_{-1} = 0
        for t in range(T):
            z_prev = np.tanh(h_prev)                           # z_{-1} = tanh(0) = 0
            D = np.zeros((m, m))                               # D_0 = 0
            if t >= 1:
                for i in range(m):
                    for j in range(m):
                        D[i, j] = keep * (i == j) + drive * Whh[i, j] * (1.0 - z_prev[i] ** 2)
            I = np.zeros((m, P))                               # I[j, :] = dh_t[j]/dtheta
            for j in range(m):
                for i in range(m):
                    I[j, i * m + j] = drive * z_prev[i]
                for i in range(n):
                    I[j, m * m + i * m + j] = drive * x[t, b, i]
                I[j, m * m + n * m + j] = drive
            a = u @ D
            g = nu[t, b] @ I
            rho0 = np.sqrt((np.linalg.norm(tt) + eps) / (np.linalg.norm(a) + eps))
            rho1 = np.sqrt((np.linalg.norm(g) + eps) / (np.linalg.norm(nu[t, b]) + eps))
            u = rho0 * a + rho1 * nu[t, b]
            tt = tt / rho0 + g / rho1
            h_prev = keep * h_prev + drive * (z_prev @ Whh + x[t, b] @ Wxh + bh)
        us.append(u)
        tts.append(tt)
        z_last.append(np.tanh(h_prev))
    z = np.array(z_last)
    out = z @ Why + by
    if loss == "cross_entropy":
        sm = np.exp(out - out.max(axis=1, keepdims=True))
        sm /= sm.sum(axis=1, keepdims=True)
        E = -np.mean(np.sum(y * np.log(sm), axis=1))
        d_out = (sm - y) / B
    else:
        E = np.mean((out - y) ** 2)
        d_out = 2.0 * (out - y) / (B * k)
    delta = (d_out @ Why.T) * (1.0 - z ** 2)                   # dE/dh_{T-1}
    theta = sum((delta[b] @ us[b]) * tts[b] for b in range(B))
    return {"theta": theta, "Why": z.T @ d_out, "by": d_out.sum(axis=0), "loss": E}


def _rule_noise(state: uoro.UOROState, shape) -> jax.Array:
    """The signs the rule draws from ``state`` (the same split as its step)."""
    return uoro.draw_noise(jax.random.split(state.key)[1], shape, F64)


@pytest.mark.parametrize("task,tau", [("temporal_order", 1.0), ("adding", 1.0), ("temporal_order", 3.0)])
def test_equals_a_literal_loop_given_the_same_noise(task, tau):
    """The rule equals ``literal_uoro`` fed the signs the rule drew, to 1e-10 (two tasks: both
    losses, one-hot and real-valued inputs; and the leaky cell, tau = 3).

    Broken on purpose, each seen failing here: rho0 and rho1 swapped in ``u_new`` and ``tt_new``;
    ``_per_sample(1.0 / rho0, tt)`` replaced by ``tt`` (no division by rho0); ``EPS = 1e-3``;
    the jvp replaced by ``a = u @ params.Whh`` (the factor 1 - z_{t-1}^2 of D_t dropped);
    ``_one_step`` ignoring the cell (the SRNN map on the leaky case).
    """
    p, (x, y), loss = _problem(seed=3, T=6, B=4, m=5, task=task)
    state = _rule(loss, tau=tau).init(jax.random.PRNGKey(7), p)
    grads, _, rec = _step(loss, tau=tau)(p, state, (x, y), {})
    ref = literal_uoro(p, x, y, _rule_noise(state, x.shape[:2] + p.bh.shape), loss, tau)
    np.testing.assert_allclose(_theta(grads), ref["theta"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(grads.Why, ref["Why"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(grads.by, ref["by"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(rec["loss"], ref["loss"], rtol=0, atol=1e-12)
    assert np.max(np.abs(ref["theta"])) > 1e-3  # the comparison is not between zeros


def test_each_batch_gets_fresh_noise_and_the_seed_fixes_it():
    """``init`` keeps the key it is given; every step returns a new key, so the next batch draws
    new signs; the same state gives the same update.

    Broken on purpose: the step returned ``state`` unchanged (the key not split): fails here.
    """
    p, batch, loss = _problem(seed=1)
    rule, step = _rule(loss), _step(loss)
    s0 = rule.init(jax.random.PRNGKey(11), p)
    np.testing.assert_array_equal(s0.key, rule.init(jax.random.PRNGKey(11), p).key)
    g0, s1, _ = step(p, s0, batch, {})
    g0_again, s1_again, _ = step(p, s0, batch, {})
    np.testing.assert_array_equal(_theta(g0), _theta(g0_again))
    np.testing.assert_array_equal(s1.key, s1_again.key)
    assert not np.array_equal(s1.key, s0.key)
    g1, s2, _ = step(p, s1, batch, {})
    assert not np.array_equal(s2.key, s1.key)
    assert np.max(np.abs(_theta(g1) - _theta(g0))) > 1e-6


def test_record_norms_and_exact_readout():
    """With ``record=True`` the rule reports per-step norms of u_t and theta~_t (length T) and
    the same update; ``Why``, ``by`` get BPTT's gradient and ``loss`` is BPTT's E."""
    p, batch, loss = _problem(seed=2)
    state = _rule(loss).init(jax.random.PRNGKey(0), p)
    g, _, rec = _step(loss, record=True)(p, state, batch, {})
    g_plain = _step(loss)(p, state, batch, {})[0]
    np.testing.assert_allclose(_theta(g), _theta(g_plain), rtol=0, atol=1e-13)
    T = batch[0].shape[0]
    assert rec["u_norm"].shape == (T,) and rec["theta_tilde_norm"].shape == (T,)
    assert bool(jnp.all(rec["u_norm"] > 0)) and bool(jnp.all(jnp.isfinite(rec["theta_tilde_norm"])))
    gb, _, rb = make_rule("bptt", loss=loss).step(p, (), batch, {"reg_lambda": jnp.asarray(0.0, F64)})
    np.testing.assert_allclose(g.Why, gb.Why, rtol=0, atol=1e-13)
    np.testing.assert_allclose(g.by, gb.by, rtol=0, atol=1e-13)
    np.testing.assert_allclose(rec["loss"], rb["loss"], rtol=0, atol=1e-13)


# -- unbiasedness: the mean over independent draws tends to BPTT's gradient ----------------------
@functools.lru_cache(maxsize=None)
def _draw_program(loss: str):
    """``(params, batch, keys) -> updates`` (one flat theta per key), vmapped over keys, compiled once."""
    rule = _rule(loss)

    def one(p, batch, key):
        return _theta(rule.step(p, uoro.UOROState(key), batch, {})[0])

    return jax.jit(jax.vmap(one, in_axes=(None, None, 0)))


def _bptt_theta(p, batch, loss) -> np.ndarray:
    """BPTT's gradient of E with respect to theta (flat)."""
    bptt = make_rule("bptt", loss=loss)
    return np.asarray(_theta(bptt.step(p, (), batch, {"reg_lambda": jnp.asarray(0.0, F64)})[0]))


def _draws(p, batch, loss, key, n_draws) -> np.ndarray:
    """``n_draws`` UORO updates (flat theta), each from its own noise key."""
    return np.asarray(_draw_program(loss)(p, batch, jax.random.split(key, n_draws)))


def _check_tends_to_bptt(draws_small: list[np.ndarray], draws_large: list[np.ndarray], exact: np.ndarray):
    """Root-mean-square (over replicates) error norm of the mean: large/small in [0.35, 0.7];
    every coordinate of every mean within 5 standard errors; coordinates that never vary are exact."""
    err = lambda ds: np.sqrt(np.mean([np.sum((d.mean(0) - exact) ** 2) for d in ds]))  # noqa: E731
    ratio = err(draws_large) / err(draws_small)
    assert 0.35 <= ratio <= 0.7, (ratio, err(draws_small), err(draws_large))
    for d in draws_small + draws_large:
        se = d.std(axis=0, ddof=1) / np.sqrt(len(d))
        dev = np.abs(d.mean(0) - exact)
        varies = se > 0
        assert np.all(dev[~varies] < 1e-12), dev[~varies]
        z = dev[varies] / se[varies]
        assert np.max(z) < 5.0, (np.argmax(z), np.max(z))
    return ratio


def _replicated(seed: int, replicates: int) -> float:
    """``_check_tends_to_bptt`` on problem ``seed`` with ``replicates`` sets of 4,000 + 16,000 draws."""
    p, batch, loss = _problem(seed=seed, T=6, B=4, m=5)
    reps = [_draws(p, batch, loss, jax.random.PRNGKey(1000 * seed + r), 20_000) for r in range(replicates)]
    return _check_tends_to_bptt([d[:4000] for d in reps], [d[4000:] for d in reps], _bptt_theta(p, batch, loss))


def test_mean_over_draws_tends_to_bptt():
    """m = 5, T = 6, B = 4: from N = 4,000 to N = 16,000 independent draws (disjoint sets) the
    error norm of the mean against BPTT's gradient shrinks by a factor in [0.35, 0.7] (1/2
    expected), and every coordinate is within 5 standard errors of BPTT's.

    The error norm is the root mean square over 4 independent replicates at each N (80,000 draws
    in all). With one replicate the ratio depends on luck: the error norm is dominated by ~15-20
    effective coordinates, and over 96 keys one replicate landed in [0.35, 0.7] for 80 (83 %);
    the 4-replicate ratio was in [0.44, 0.66] for all 24 groups of those keys, 8 replicates in
    [0.46, 0.57]. The z-check never failed.

    Broken on purpose, each seen failing here: ``_per_sample(1.0 / rho0, tt)`` replaced by ``tt``
    (ratio 0.93); the jvp replaced by ``a = u @ params.Whh`` (the factor 1 - z_{t-1}^2 of D_t
    dropped; ratio 0.98). Swapping rho0 and rho1 passes here, as it should: the estimate stays
    unbiased (rho1 is even in nu_t and g odd, so both cross terms keep mean zero); only the
    literal loop above catches it.
    """
    _replicated(seed=0, replicates=4)


@pytest.mark.slow
def test_mean_over_draws_tends_to_bptt_on_more_problems():
    """As above with 8 replicates, on two other problems (other weights and batches)."""
    for seed in (1, 2):
        _replicated(seed=seed, replicates=8)


# -- the shared battery, and a training run ------------------------------------------------------
#: UORO's learning rate for the battery's short run. Its single-draw update is about ten times
#: longer than the gradient (m = 32, T = 10), and at the battery's lr 0.05 plain SGD random-walks
#: Whh away: the validation loss ends at 1.39-1.42 (seeds 0-2; seed 0 starts at 1.47), where
#: readout-only training reaches 0.86-0.92.
#: At 0.01 UORO solves the task in 300 iterations (seeds 0-2), and at 0.02 in two of three.
BATTERY_LR = 0.01


def test_passes_the_shared_battery(registered):
    """The battery's checks (test_rule_battery.run_battery), its short run at ``BATTERY_LR``."""
    check_schema(registered)
    for hp_over in rule_cases(registered):
        for check in STEP_CHECKS:
            check(registered, hp_over)
    check_short_run_lowers_the_loss(registered, lr=BATTERY_LR)


def test_credit_reaches_the_recurrent_weights(registered):
    """The battery's short run (temporal order, T = 10, m = 32, 300 iterations, lr 0.01) is
    solved: zero validation errors, which readout-only training cannot reach (its loss only
    goes 1.47 -> 1.29 there). The program is the battery's (same structure): no new compile.

    Broken on purpose: ``c = jnp.sum(delta * u, axis=1)`` replaced by zeros (no recurrent update):
    fails here.
    """
    cfg = TrainConfig(task="temporal_order", length=10, rule="uoro", lr=BATTERY_LR, hidden=32,
                      max_iters=300, val_every=100, val_size=1000, patience=0, dtype="float32")
    r = train_one(cfg)
    assert r.status == "solved", r.history
