"""Feedback alignment through time (``fa``) and e-prop without leak (``eprop``): oracles in
float64 and the shared battery (docs/fa.md, docs/eprop.md).

Each oracle test was seen to fail with a line of the rule broken on purpose; the test's
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
from localrnn.rules import RULES, make_rule, register
from localrnn.rules.eprop import RULE as EPROP, EpropState
from localrnn.rules.fa import RULE as FA, FAState
from localrnn.tasks import get_task

from test_rule_battery import STEP_CHECKS, run_battery

TASKS = ["temporal_order", "random_permutation", "adding"]
LENGTH, HIDDEN, BATCH = 10, 5, 3
#: temporal order by default, the other tasks (another loss, other sizes) with -m slow
ONE_TASK_FAST = [TASKS[0]] + [pytest.param(t, marks=pytest.mark.slow) for t in TASKS[1:]]


@pytest.fixture(scope="module", autouse=True)
def registered():
    """Register fa and eprop for this module unless the package already does."""
    added = [r.name for r in (FA, EPROP) if r.name not in RULES]
    for r in (FA, EPROP):
        if r.name in added:
            register(r)
    yield
    for name in added:
        del RULES[name]


def _problem(task="temporal_order", seed=0):
    """Task, dense random float64 parameters (every entry matters; drawn by numpy, which costs no
    compilation), batch."""
    t = get_task(task)
    rng = np.random.default_rng(seed)
    shapes = Params((t.n_in, HIDDEN), (HIDDEN, HIDDEN), (HIDDEN,), (HIDDEN, t.n_out), (t.n_out,))
    params = Params(*(jnp.asarray(0.6 * rng.standard_normal(s)) for s in shapes))
    return t, params, t.sample(jax.random.PRNGKey(seed), LENGTH, BATCH, jnp.float64)


def _rel_err(a: Params, b: Params) -> dict[str, float]:
    """Per parameter, max |a - b| / max |b|."""
    return {name: float(jnp.max(jnp.abs(u - v)) / jnp.max(jnp.abs(v)))
            for name, u, v in zip(Params._fields, a, b)}


@functools.lru_cache(maxsize=None)
def _step(name: str, loss: str, **options):
    """The jitted step of rule ``name`` (one compilation per rule, loss, options and shapes)."""
    return jax.jit(make_rule(name, loss=loss, **options).step)


def _bptt(t, params, batch):
    """BPTT's gradient and the loss it records."""
    grads, _, rec = _step("bptt", t.loss)(params, (), batch, {"reg_lambda": jnp.float64(0.0)})
    return grads, rec["loss"]


# -- feedback alignment ---------------------------------------------------------------------------
@pytest.mark.parametrize("task,output_feedback",
                         [(t, "random") for t in TASKS] + [("temporal_order", "symmetric")]
                         + [pytest.param(t, "symmetric", marks=pytest.mark.slow) for t in TASKS[1:]])
def test_fa_with_the_true_transposes_is_bptt(task, output_feedback):
    """F_hh = Whh^T (and F_y = Why^T, with the random output feedback) put into the state: BPTT's
    gradient to 1e-12 relative, on every task; the recorded loss is BPTT's; the state is unchanged.

    Broken on purpose, it failed: ``d_t @ F_hh`` -> ``d_t @ F_hh.T`` in ``fa_deltas``;
    ``z[:-1], delta[1:]`` -> ``z[1:], delta[1:]`` for grad Whh; ``jnp.sum(delta, axis=(0, 1))`` ->
    ``jnp.sum(delta[1:], axis=(0, 1))`` for grad bh; ``1.0 - z_last * z_last`` -> ``1.0 - z_last``
    in ``output_signal``."""
    t, params, batch = _problem(task)
    bptt, loss = _bptt(t, params, batch)
    state = FAState(params.Whh.T, params.Why.T if output_feedback == "random" else ())
    grads, new_state, rec = _step("fa", t.loss, output_feedback=output_feedback)(params, state, batch, {})
    errs = _rel_err(grads, bptt)
    assert max(errs.values()) < 1e-12, errs
    np.testing.assert_allclose(rec["loss"], loss, rtol=1e-14)
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(new_state), jax.tree.leaves(state)))


def _feedback_matmul(F):
    """``a @ W`` whose backward pass sends the error to ``a`` through ``F`` instead of ``W^T``
    (and gives ``W`` its true cotangent ``a^T ct``)."""
    @jax.custom_vjp
    def mm(a, W):
        return a @ W

    mm.defvjp(lambda a, W: (a @ W, a), lambda a, ct: (ct @ F, a.T @ ct))
    return mm


@pytest.mark.parametrize("task", ONE_TASK_FAST)
def test_fa_is_autodiff_through_feedback_matmuls(task):
    """With its own random F_hh and F_y, fa equals jax.grad of a forward pass written here whose
    recurrent and readout products back-propagate through F_hh and F_y (1e-12 relative).

    Broken on purpose, it failed: ``params.Why.T if ... else F_y`` -> always ``params.Why.T`` in
    ``output_signal``; ``state.F_hh`` -> ``params.Whh.T`` in the step; and each line broken for the
    test above."""
    t, params, (x, y) = _problem(task)
    state = make_rule("fa", loss=t.loss, output_feedback="random").init(jax.random.PRNGKey(3), params)
    rec_mm, out_mm = _feedback_matmul(state.F_hh), _feedback_matmul(state.F_y)

    def surrogate(p):
        h = x[0] @ p.Wxh + p.bh
        for s in range(1, x.shape[0]):
            h = rec_mm(jnp.tanh(h), p.Whh) + x[s] @ p.Wxh + p.bh
        return global_loss(t.loss)(out_mm(jnp.tanh(h), p.Why) + p.by, y)

    grads = _step("fa", t.loss, output_feedback="random")(params, state, (x, y), {})[0]
    errs = _rel_err(grads, jax.jit(jax.grad(surrogate))(params))
    assert max(errs.values()) < 1e-12, errs


def test_fa_random_feedback_differs_from_bptt():
    """With the drawn F_hh the recurrent updates differ from BPTT's; Why and by stay exact.

    Broken on purpose, it failed: ``F_hh = orthogonal(...)`` -> ``F_hh = params.Whh.T`` in ``init``;
    ``state.F_hh`` -> ``params.Whh.T`` in the step."""
    t, params, batch = _problem()
    bptt = _bptt(t, params, batch)[0]
    for output_feedback in ("symmetric", "random"):
        rule = make_rule("fa", loss=t.loss, output_feedback=output_feedback)
        state = rule.init(jax.random.PRNGKey(1), params)
        errs = _rel_err(_step("fa", t.loss, output_feedback=output_feedback)(params, state, batch, {})[0], bptt)
        assert min(errs["Wxh"], errs["Whh"], errs["bh"]) > 1e-2, errs
        assert max(errs["Why"], errs["by"]) < 1e-12, errs


def test_feedback_matrices_are_drawn_like_the_weights():
    """F_hh (m, m) orthogonal like Whh, F_y (k, m) with orthonormal rows like Why^T; the same key
    gives the same matrices, another key others; the step never changes them; without the option
    there is no F_y (e-prop's symmetric state is empty).

    Broken on purpose, it failed: ``F_hh = orthogonal(...)`` -> ``F_hh = params.Whh.T`` in ``init``."""
    t, params, batch = _problem("temporal_order")
    m, k = HIDDEN, t.n_out
    rule = make_rule("fa", loss=t.loss, output_feedback="random")
    s = rule.init(jax.random.PRNGKey(5), params)
    assert s.F_hh.shape == (m, m) and s.F_y.shape == (k, m)
    np.testing.assert_allclose(s.F_hh @ s.F_hh.T, np.eye(m), atol=1e-12)
    np.testing.assert_allclose(s.F_y @ s.F_y.T, np.eye(k), atol=1e-12)
    again = rule.init(jax.random.PRNGKey(5), params)
    other = rule.init(jax.random.PRNGKey(6), params)
    assert all(np.array_equal(a, b) for a, b in zip(s, again))
    assert not np.allclose(s.F_hh, other.F_hh) and not np.allclose(s.F_y, other.F_y)
    # F_hh does not depend on whether F_y is drawn
    plain = make_rule("fa", loss=t.loss).init(jax.random.PRNGKey(5), params)
    assert plain.F_y == () and np.array_equal(plain.F_hh, s.F_hh)
    after = _step("fa", t.loss, output_feedback="random")(params, s, batch, {})[1]
    assert all(np.array_equal(a, b) for a, b in zip(after, s))
    ep = make_rule("eprop", loss=t.loss, feedback="random").init(jax.random.PRNGKey(5), params)
    assert ep.F_y.shape == (k, m) and np.allclose(ep.F_y @ ep.F_y.T, np.eye(k), atol=1e-12)
    assert make_rule("eprop", loss=t.loss).init(jax.random.PRNGKey(5), params) == EpropState(())


# -- e-prop -----------------------------------------------------------------------------------------
def _one_step_truncated_loss(p, x, y, loss):
    """E with z_{T-2} held constant, written out step by step (z_{-1} = 0)."""
    z = jnp.zeros((x.shape[1], p.Whh.shape[0]), x.dtype)
    for s in range(x.shape[0]):
        if s == x.shape[0] - 1:
            z = jax.lax.stop_gradient(z)  # z_{T-2}
        z = jnp.tanh(z @ p.Whh + x[s] @ p.Wxh + p.bh)
    return global_loss(loss)(z @ p.Why + p.by, y)


@pytest.mark.parametrize("task,length", [("temporal_order", LENGTH)]
                         + [pytest.param(t, n, marks=pytest.mark.slow)
                            for t, n in [("temporal_order", 1), ("random_permutation", LENGTH), ("adding", LENGTH)]])
def test_eprop_symmetric_is_one_step_truncated_bptt(task, length):
    """Symmetric e-prop equals the gradient of E with z_{T-2} held constant (1e-10 relative).

    Broken on purpose, it failed: ``z[-2]`` -> ``z[-1]`` (the trace read at z_t instead of
    z_{t-1}); ``x[-1].T @ signal`` -> ``x[-2].T @ signal``; ``1.0 - z_last * z_last`` -> ``1.0 - z_last``
    in ``output_signal``."""
    t, params, (x, y) = _problem(task)
    x = x[-length:]
    grads, _, rec = _step("eprop", t.loss)(params, EpropState(()), (x, y), {})
    e_val, oracle = jax.jit(jax.value_and_grad(_one_step_truncated_loss), static_argnums=3)(params, x, y, t.loss)
    if length == 1:  # no state before step 0: nothing for Whh
        assert not np.any(np.asarray(grads.Whh)) and not np.any(np.asarray(oracle.Whh))
        grads, oracle = grads._replace(Whh=jnp.ones(1)), oracle._replace(Whh=jnp.ones(1))
    errs = _rel_err(grads, oracle)
    assert max(errs.values()) < 1e-10, errs
    np.testing.assert_allclose(rec["loss"], e_val, rtol=1e-14)  # holding z_{T-2} changes no value


@pytest.mark.parametrize("task", ONE_TASK_FAST)
def test_eprop_random_is_its_definition(task):
    """Random e-prop equals a literal loop: forward pass, a trace for every weight at every step
    (z_{t-1}[i], x_t[i], 1), learning signal l[b, j] = sum_k g[b, k] F_y[k, j] (1 - z_{T-1}[b, j]^2),
    grad W[i, j] = sum_b l[b, j] e_{T-1}[b, i, j] (1e-12 relative).

    Broken on purpose, it failed: ``F_y`` ignored (``params.Why.T`` always) in ``output_signal``;
    ``z[-2]`` -> ``z[-1]``; ``x[-1].T @ signal`` -> ``x[-2].T @ signal``; ``1.0 - z_last * z_last`` ->
    ``1.0 - z_last``."""
    t, params, (x, y) = _problem(task)
    state = make_rule("eprop", loss=t.loss, feedback="random").init(jax.random.PRNGKey(2), params)
    grads = _step("eprop", t.loss, feedback="random")(params, state, (x, y), {})[0]

    P = jax.tree.map(np.asarray, params)
    X, F_y = np.asarray(x), np.asarray(state.F_y)
    T, B, n = X.shape
    m, k = P.Whh.shape[0], P.Why.shape[1]
    z = np.zeros((T, B, m))
    for s in range(T):
        for b in range(B):
            for j in range(m):
                h = P.bh[j] + sum(X[s, b, i] * P.Wxh[i, j] for i in range(n))
                if s > 0:
                    h += sum(z[s - 1, b, i] * P.Whh[i, j] for i in range(m))
                z[s, b, j] = np.tanh(h)
    out = z[-1] @ P.Why + P.by
    g = np.asarray(jax.grad(lambda o: global_loss(t.loss)(o, y))(jnp.asarray(out)))  # dE/dout
    e_hh, e_xh, e_b = np.zeros((T, B, m, m)), np.zeros((T, B, n, m)), np.ones((T, B, m))
    for s in range(T):
        for b in range(B):
            for j in range(m):
                for i in range(m):
                    e_hh[s, b, i, j] = z[s - 1, b, i] if s > 0 else 0.0
                for i in range(n):
                    e_xh[s, b, i, j] = X[s, b, i]
    ell = np.zeros((B, m))
    for b in range(B):
        for j in range(m):
            ell[b, j] = sum(g[b, q] * F_y[q, j] for q in range(k)) * (1 - z[-1, b, j] ** 2)
    want = Params(
        Wxh=np.array([[sum(ell[b, j] * e_xh[-1, b, i, j] for b in range(B)) for j in range(m)] for i in range(n)]),
        Whh=np.array([[sum(ell[b, j] * e_hh[-1, b, i, j] for b in range(B)) for j in range(m)] for i in range(m)]),
        bh=np.array([sum(ell[b, j] * e_b[-1, b, j] for b in range(B)) for j in range(m)]),
        Why=np.array([[sum(z[-1, b, i] * g[b, q] for b in range(B)) for q in range(k)] for i in range(m)]),
        by=np.array([sum(g[b, q] for b in range(B)) for q in range(k)]))
    errs = _rel_err(grads, want)
    assert max(errs.values()) < 1e-12, errs


def test_eprop_random_with_the_true_transpose_is_symmetric():
    """Random e-prop with F_y = Why^T put into its state equals symmetric e-prop, and with its
    drawn F_y it does not (Why, by exact in both).

    Broken on purpose, it failed: ``F_y`` ignored (``params.Why.T`` always) in ``output_signal``."""
    t, params, batch = _problem("temporal_order")
    rnd = _step("eprop", t.loss, feedback="random")
    want = _step("eprop", t.loss)(params, EpropState(()), batch, {})[0]
    errs = _rel_err(rnd(params, EpropState(params.Why.T), batch, {})[0], want)
    assert max(errs.values()) < 1e-14, errs
    state = make_rule("eprop", loss=t.loss, feedback="random").init(jax.random.PRNGKey(0), params)
    errs = _rel_err(rnd(params, state, batch, {})[0], want)
    assert min(errs["Wxh"], errs["Whh"], errs["bh"]) > 1e-2 and max(errs["Why"], errs["by"]) < 1e-14, errs


# -- the shared battery -------------------------------------------------------------------------------
def _forcing(rdef, **option):
    """``rdef`` built with ``option`` set (so that the battery's default case runs that variant)."""
    return dataclasses.replace(rdef, name=f"{rdef.name}_{'_'.join(map(str, option.values()))}",
                               build=lambda o, loss, record: rdef.build(o.model_copy(update=option),
                                                                         loss, record))


FA_RANDOM, EPROP_RANDOM = _forcing(FA, output_feedback="random"), _forcing(EPROP, feedback="random")


@pytest.mark.slow
@pytest.mark.parametrize("rdef", [FA_RANDOM, EPROP_RANDOM], ids=lambda r: r.name)
def test_step_checks_with_random_feedback(rdef):
    """All of the battery's step checks (shapes, float32 under jit, determinism, vmap over four
    configurations with different parameters, feedback matrices and batches, the recording path)
    for the random-feedback variants, which the registry's battery (run on each registered rule's
    default options) does not reach. Slow: the default options, whose fa state already holds a
    feedback matrix (F_hh), get the same checks from the registry's battery by default."""
    for check in STEP_CHECKS:
        check(rdef, {})


@pytest.mark.slow
@pytest.mark.parametrize("rdef", [FA, EPROP], ids=lambda r: r.name)
def test_whole_battery(rdef):
    """The whole shared battery (schema, every step check, the 300-iteration training run) for
    both rules with their default options (the registry's battery runs the same once they are
    registered, which is why it is marked slow here)."""
    run_battery(rdef)
