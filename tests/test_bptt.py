"""BPTT and Pascanu's Omega against central finite differences (float64)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from localrnn.losses import global_loss
from localrnn.model import forward, init_params
from localrnn.rules import make_rule
from localrnn.rules.bptt import loss_and_hidden_grads, pascanu_omega
from localrnn.tasks import get_task


def _problem(task="temporal_order", length=10, batch=5, hidden=16, seed=0):
    t = get_task(task)
    kp, kb, kn = jax.random.split(jax.random.PRNGKey(seed), 3)
    params = init_params(kp, t.n_in, hidden, t.n_out, jnp.float64)
    # move off the symmetric init so that biases and all entries matter
    params = jax.tree.map(lambda p, k: p + 0.3 * jax.random.normal(k, p.shape, jnp.float64), params,
                          type(params)(*jax.random.split(kn, 5)))
    return t, params, t.sample(kb, length, batch, jnp.float64)


def _flat(tree):
    return jnp.concatenate([a.ravel() for a in jax.tree.leaves(tree)])


def _fd_check(f, params, grad, n_dirs=12, eps=1e-5, seed=1):
    f = jax.jit(f)
    """Directional derivatives along random directions and along single coordinates."""
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(seed), n_dirs)
    g = _flat(grad)
    errs = []
    dirs = [jax.tree.unflatten(treedef, [jax.random.normal(jax.random.fold_in(k, i), l.shape, l.dtype)
                                         for i, l in enumerate(leaves)]) for k in keys]
    # coordinate directions: one entry in each parameter
    for i, l in enumerate(leaves):
        e = [jnp.zeros_like(a) for a in leaves]
        e[i] = e[i].ravel().at[l.size // 2].set(1.0).reshape(l.shape)
        dirs.append(jax.tree.unflatten(treedef, e))
    for d in dirs:
        plus = f(jax.tree.map(lambda p, v: p + eps * v, params, d))
        minus = f(jax.tree.map(lambda p, v: p - eps * v, params, d))
        fd = (plus - minus) / (2 * eps)
        an = jnp.dot(g, _flat(d))
        scale = jnp.linalg.norm(g) * jnp.linalg.norm(_flat(d))
        errs.append(float(jnp.abs(fd - an) / scale))
    return max(errs)


@pytest.mark.parametrize("task,length", [("temporal_order", 10), ("random_permutation", 7), ("adding", 12)])
def test_bptt_gradient_matches_finite_differences(task, length):
    t, params, (x, y) = _problem(task, length)
    loss_fn = global_loss(t.loss)
    rule = make_rule("bptt", loss=t.loss)
    grads, _, rec = rule.step(params, (), (x, y), {"reg_lambda": jnp.float64(0.0)})
    f = lambda p: loss_fn(forward(p, x), y)  # noqa: E731
    np.testing.assert_allclose(rec["loss"], f(params), rtol=1e-12)
    assert _fd_check(f, params, grads) < 1e-6


def test_hidden_grads_match_finite_differences():
    t, params, (x, y) = _problem()
    _, _, g_h = loss_and_hidden_grads(params, (x, y))
    from localrnn.rules.bptt import _hidden_states_perturbed
    from localrnn.model import readout

    def f(eps):
        return global_loss(t.loss)(readout(params, _hidden_states_perturbed(params, x, eps)[-1]), y)
    base = jnp.zeros_like(g_h)
    for idx in [(0, 0, 0), (3, 2, 5), (9, 4, 15)]:
        e = base.at[idx].set(1e-6)
        fd = (f(e) - f(-e)) / 2e-6
        assert abs(fd - g_h[idx]) <= 1e-6 * float(jnp.abs(g_h).max())


def test_omega_gradient_matches_finite_differences():
    """d Omega / d params with dE/dh held constant, and the rule's total gradient."""
    t, params, (x, y) = _problem("random_permutation", 8)
    _, g_e, g_h = loss_and_hidden_grads(params, (x, y))
    omega_fixed = lambda p: pascanu_omega(p, x, g_h)  # noqa: E731
    g_om = jax.grad(omega_fixed)(params)
    assert float(omega_fixed(params)) > 1e-3  # the regularizer is active here
    assert _fd_check(omega_fixed, params, g_om) < 1e-6
    lam = 0.3
    rule = make_rule("bptt", hparams={"reg_lambda": lam})
    grads, _, rec = rule.step(params, (), (x, y), {"reg_lambda": jnp.float64(lam)})
    expected = jax.tree.map(lambda a, b: a + lam * b, g_e, g_om)
    for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(expected)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(rec["omega"], omega_fixed(params), rtol=1e-12)


def test_omega_literal_definition():
    """Omega equals a literal loop over t of (||g_{t+1} dh_{t+1}/dh_t|| / ||g_{t+1}|| - 1)^2."""
    t, params, (x, y) = _problem("random_permutation", 6)
    _, _, g_h = loss_and_hidden_grads(params, (x, y))
    from localrnn.model import hidden_states
    hs = hidden_states(params, x)
    total = 0.0
    for s in range(x.shape[0] - 1):
        jac = jax.jacobian(lambda h: jnp.tanh(h) @ params.Whh)(hs[s])  # (B,m,B,m)
        carried = jnp.einsum("bj,bjck->ck", g_h[s + 1], jac)
        total += (jnp.linalg.norm(carried) / jnp.linalg.norm(g_h[s + 1]) - 1) ** 2
    np.testing.assert_allclose(pascanu_omega(params, x, g_h), total, rtol=1e-12)


def test_omega_zero_error_is_finite():
    t, params, (x, y) = _problem("random_permutation", 5)
    zero = jnp.zeros((5, 5, 16), jnp.float64)
    assert float(pascanu_omega(params, x, zero)) == 0.0
    g = jax.grad(pascanu_omega)(params, x, zero)
    assert all(bool(jnp.all(jnp.isfinite(a))) for a in jax.tree.leaves(g))
