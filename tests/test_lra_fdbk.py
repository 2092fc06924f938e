"""LRA with feedback matrices (``lra_fdbk``, docs/lra-fdbk.md): a literal loop of the definition in
float64, the feedback state (fixed and learned), and the shared battery.

Each test that checks the update was seen to fail with a line of the rule broken on purpose; its
docstring names the lines.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from localrnn.losses import global_loss
from localrnn.model import Params
from localrnn.rules import RULES, register
from localrnn.rules.lra_fdbk import RULE as LRA_FDBK, FdbkState
from localrnn.tasks import get_task

from test_rule_battery import STEP_CHECKS, run_battery

LENGTH, HIDDEN, BATCH = 10, 4, 3


@pytest.fixture(scope="module", autouse=True)
def registered():
    """Register lra_fdbk for this module unless the package already does."""
    added = LRA_FDBK.name not in RULES
    if added:
        register(LRA_FDBK)
    yield
    if added:
        del RULES[LRA_FDBK.name]


def _problem(task="temporal_order", seed=0):
    """Task, dense random float64 parameters and feedback matrices, batch."""
    t = get_task(task)
    rng = np.random.default_rng(seed)
    shapes = Params((t.n_in, HIDDEN), (HIDDEN, HIDDEN), (HIDDEN,), (HIDDEN, t.n_out), (t.n_out,))
    params = Params(*(jnp.asarray(0.6 * rng.standard_normal(s)) for s in shapes))
    state = FdbkState(F_hh=jnp.asarray(0.6 * rng.standard_normal((HIDDEN, HIDDEN))),
                      F_y=jnp.asarray(0.6 * rng.standard_normal((t.n_out, HIDDEN))))
    return t, params, state, t.sample(jax.random.PRNGKey(seed), LENGTH, BATCH, jnp.float64)


@functools.lru_cache(maxsize=None)
def _step(loss: str, **options):
    rdef = LRA_FDBK
    return jax.jit(rdef.build(rdef.options(**options), loss, False).step)


def _hp(**over):
    return {k: jnp.asarray(v, jnp.float64) for k, v in {**LRA_FDBK.defaults, **over}.items()}


# -- the literal definition, written out independently ------------------------------------------------
def _normalize(d, c, force=False):
    """if c > 0 and ||d|| >= c (forced: d != 0): d c / ||d||  (traced c; n is never 0 here)."""
    n = jnp.sqrt(jnp.sum(d * d))
    rescale = (c > 0) & (n > 0) & (True if force else n >= c)
    return jnp.where(rescale, d * (c / n), d)


def _local(z, zhat, kind):
    d = z - zhat
    return jnp.mean(d * d) if kind == "mse" else jnp.mean(jnp.log(1.0 + d * d))


@functools.partial(jax.jit, static_argnums=(4, 6, 7))
def _literal(params, state, x, y, loss, hp, local_loss="mse", force=False):
    """The rule as docs/lra-fdbk.md defines it: Python loops over the layers, jax.grad for every
    derivative, an explicit list of per-layer targets."""
    wxh, whh, bh, why, by = params
    gamma, c0, c1 = (hp[k] for k in ("target_step", "c0", "c1"))
    e_fn = global_loss(loss)
    t_len = x.shape[0]
    h, z, zp = [], [], jnp.zeros((x.shape[1], whh.shape[0]))
    for t in range(t_len):                                      # forward pass
        zprev = zp
        h.append(zprev @ whh + x[t] @ wxh + bh)
        z.append(jnp.tanh(h[t]))
        zp = z[t]
    zhat = [None] * t_len
    g = jax.grad(lambda o: e_fn(o, y))(z[-1] @ why + by)           # dE/dout
    zhat[-1] = jnp.tanh(h[-1] - gamma * _normalize(g @ state.F_y, c1, force))
    for t in range(t_len - 1, 0, -1):                           # target of layer t-1 from layer t
        e_t = jax.grad(lambda zz: _local(zz, zhat[t], local_loss))(z[t])
        zhat[t - 1] = jnp.tanh(h[t - 1] - gamma * _normalize((e_t * (1 - z[t] ** 2)) @ state.F_hh, c1, force))
    g_hh, g_xh, g_b = jnp.zeros_like(whh), jnp.zeros_like(wxh), jnp.zeros_like(bh)
    for t in range(1, t_len):                                   # weight updates; none for layer 0
        def ell(w_hh, w_xh, b_h, t=t):
            return _local(jnp.tanh(z[t - 1] @ w_hh + x[t] @ w_xh + b_h), zhat[t], local_loss)
        d_hh, d_xh, d_b = jax.grad(ell, argnums=(0, 1, 2))(whh, wxh, bh)
        g_hh = g_hh + _normalize(d_hh, c0, force)
        g_xh = g_xh + _normalize(d_xh, c0, force)
        g_b = g_b + _normalize(d_b, c0, force)
    d_why, d_by = jax.grad(lambda a, b: e_fn(z[-1] @ a + b, y), argnums=(0, 1))(why, by)
    return Params(g_xh, g_hh, g_b, d_why, d_by)


def _max_err(a: Params, b: Params) -> float:
    return max(float(jnp.max(jnp.abs(u - v))) for u, v in zip(a, b))


CASES = [  # (task, hparam overrides, options): c's large (Normalize idle), small (it rescales), 0 (off)
    ("temporal_order", {}, {}),
    ("temporal_order", {"target_step": 20.0, "c0": 1e-3, "c1": 1e-2}, {}),
    ("temporal_order", {"target_step": 0.5, "c0": 0.0, "c1": 0.0}, {}),
    pytest.param("temporal_order", {"c0": 1e-3, "c1": 1e-2}, {"local_loss": "log_penalty"},
                 marks=pytest.mark.slow),
    pytest.param("temporal_order", {"c0": 1.0, "c1": 1.0}, {"force_normalize": True}, marks=pytest.mark.slow),
    pytest.param("adding", {"target_step": 3.0, "c0": 1e-3, "c1": 1e-2}, {}, marks=pytest.mark.slow),
    pytest.param("random_permutation", {"c0": 1e-3, "c1": 1e-2}, {"local_loss": "log_penalty"},
                 marks=pytest.mark.slow),
]


@pytest.mark.parametrize("task,over,options", CASES)
def test_rule_is_its_literal_definition(task, over, options):
    """The rule's update equals the literal loop to 1e-12 of its largest entry (float64), for
    Normalize idle, rescaling and off (by default), both local losses and forced normalization
    (-m slow).

    Seen to fail with each of these lines of lra_fdbk.py broken, one at a time: ``delta_t @ p.whh_t``
    for ``delta_t @ state.F_hh`` (Whh^T in place of F_hh); ``d = delta_t @ state.F_hh`` (the c1
    Normalize of the layer displacement dropped); ``d_top = g @ state.F_y`` (the top's Normalize
    dropped); ``(1.0 - z_t * z_t)`` removed from delta_t; ``per_layer(g_hh, p.c0)`` -> ``g_hh``
    (the c0 Normalize dropped); ``>= 1`` -> ``>= 0`` in ``above0`` (layer 0 updated)."""
    t, params, state, (x, y) = _problem(task)
    hp = _hp(**over)
    got = _step(t.loss, **options)(params, state, (x, y), hp)[0]
    want = _literal(params, state, x, y, t.loss, hp, options.get("local_loss", "mse"),
                    options.get("force_normalize", False))
    assert _max_err(got, want) < 1e-12 * max(1.0, max(float(jnp.max(jnp.abs(w))) for w in want))
    assert float(jnp.max(jnp.abs(want.Whh))) > 1e-6  # the check is not vacuous


def test_the_checked_cases_reach_every_line():
    """In the small-c case (gamma = 20) Normalize rescales the top displacement, at least one
    layer's displacement below it and some weight updates, and layer 0's local loss is far from 0,
    so the literal test sees every Normalize call and the missing layer-0 update. (At gamma = 1 the
    displacements shrink by about 2 ||F_hh|| / (B m) per layer, so that layer 0's is ~1e-14.)"""
    t, params, state, (x, y) = _problem()
    hp = _hp(target_step=20.0, c0=1e-3, c1=1e-2)
    rec = jax.jit(LRA_FDBK.build(LRA_FDBK.options(), t.loss, True).step)(params, state, (x, y), hp)[2]
    clipped = np.isclose(np.asarray(rec["target_displacement_norm"]), 1e-2, rtol=1e-12, atol=0)
    assert clipped[-1] and clipped[:-1].any()
    assert float(rec["local_loss"][0]) > 1e-12
    small = _literal(params, state, x, y, t.loss, hp)
    off_c0 = _literal(params, state, x, y, t.loss, _hp(target_step=20.0, c0=0.0, c1=1e-2))
    assert _max_err(small, off_c0) > 1e-6


def test_fixed_feedback_never_changes():
    """Without learn_feedback the state's F matrices come back unchanged, step after step
    (feedback_lr and feedback_decay set, to show they are ignored). Seen to fail with the
    ``if options.learn_feedback:`` guard replaced by ``if True:``."""
    t, params, state, (x, y) = _problem()
    step = _step(t.loss)
    s = state
    for i in range(3):
        grads, s, _ = step(params, s, (x, y), _hp(feedback_lr=0.5, feedback_decay=0.1))
        params = jax.tree.map(lambda p, d: p - 0.1 * d, params, grads)
    np.testing.assert_array_equal(np.asarray(s.F_hh), np.asarray(state.F_hh))
    np.testing.assert_array_equal(np.asarray(s.F_y), np.asarray(state.F_y))


def test_learned_feedback_update():
    """With learn_feedback: the update itself is the fixed rule's, F_y stays, and
    F_hh <- (1 - kappa) F_hh - eta_F G_hh^T to 1e-14. Seen to fail with ``grads.Whh.T`` ->
    ``grads.Whh`` and with ``keep`` dropped."""
    t, params, state, (x, y) = _problem()
    hp = _hp(feedback_lr=0.3, feedback_decay=0.05)
    grads, s, _ = _step(t.loss, learn_feedback=True)(params, state, (x, y), hp)
    fixed = _step(t.loss)(params, state, (x, y), hp)[0]
    assert _max_err(grads, fixed) == 0.0
    np.testing.assert_array_equal(np.asarray(s.F_y), np.asarray(state.F_y))
    want = 0.95 * state.F_hh - 0.3 * grads.Whh.T
    assert float(jnp.max(jnp.abs(s.F_hh - want))) < 1e-14
    assert float(jnp.max(jnp.abs(s.F_hh - state.F_hh))) > 1e-3


def test_feedback_matrices_are_drawn_like_the_weights():
    """init: F_hh (m, m) orthogonal as Whh is, F_y (k, m) with orthonormal rows (Why^T's draw);
    both differ from the weights and depend on the key."""
    t = get_task("temporal_order")
    from localrnn.model import init_params
    m = 12  # the battery's size: the draws' compiled ops are shared with its checks
    params = init_params(jax.random.PRNGKey(0), t.n_in, m, t.n_out, jnp.float64)
    rule = LRA_FDBK.build(LRA_FDBK.options(), t.loss, False)
    s = rule.init(jax.random.PRNGKey(1), params)
    assert s.F_hh.shape == (m, m) and s.F_y.shape == (t.n_out, m)
    assert s.F_hh.dtype == s.F_y.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(s.F_hh @ s.F_hh.T), np.eye(m), atol=1e-12)
    np.testing.assert_allclose(np.asarray(s.F_y @ s.F_y.T), np.eye(t.n_out), atol=1e-12)
    assert float(jnp.max(jnp.abs(s.F_hh - params.Whh.T))) > 1e-2
    assert float(jnp.max(jnp.abs(rule.init(jax.random.PRNGKey(2), params).F_hh - s.F_hh))) > 1e-2


# -- the shared battery -------------------------------------------------------------------------------
LEARNED = dataclasses.replace(
    LRA_FDBK, name="lra_fdbk_learned",
    build=lambda o, loss, record: LRA_FDBK.build(o.model_copy(update={"learn_feedback": True}), loss, record))


#: run by default: shapes/finiteness and vmap over configurations; the other three with -m slow
FAST_CHECKS = [c if c.__name__ in ("check_shapes_and_finiteness", "check_vmap_over_configs_equals_loop")
               else pytest.param(c, marks=pytest.mark.slow) for c in STEP_CHECKS]


@pytest.mark.parametrize("check", FAST_CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
def test_step_checks(check):
    """The battery's step checks (shapes, float32 under jit, determinism, vmap over four
    configurations with different parameters, feedback matrices and batches, the recording path)
    with the default options; float32, determinism and recording (more compilations) with -m slow."""
    check(LRA_FDBK, {})


@pytest.mark.slow
@pytest.mark.parametrize("check", STEP_CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
def test_step_checks_learned_feedback(check):
    """The same checks with learn_feedback on (the state returned changes)."""
    check(LEARNED, {})


@pytest.mark.slow
def test_whole_battery():
    """Schema, every step check and the 300-iteration training run (default options)."""
    run_battery(LRA_FDBK)
