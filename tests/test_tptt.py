"""TPTT (docs/tptt.md) against a literal, step-by-step transcription in float64.

The oracle below loops over time in Python and takes ``jax.grad`` of each local
loss separately, with the quantities docs/tptt.md holds constant passed in as
constants (closed over, so no gradient can flow into them).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import localrnn  # noqa: F401  (enables x64)
from localrnn import get_task, init_params, make_rule
from localrnn.losses import global_loss, mse
from localrnn.model import Params, forward
from localrnn.rules import get_rule
from localrnn.rules.tptt import TPTTState, propagate_targets, spectral_radii, spectral_radius

F64 = jnp.float64
HP = {"alpha_i": 0.1, "alpha_g": 0.001, "sigma": 0.0, "inverse_momentum": 0.9}


# -- fixtures ---------------------------------------------------------------------
def _problem(seed=0, T=5, B=4, m=12, task="temporal_order", dtype=F64):
    """Params and inverse moved away from their init (non-orthogonal, nonzero biases)."""
    t = get_task(task)
    k = jax.random.split(jax.random.PRNGKey(seed), 8)
    p = init_params(k[0], t.n_in, m, t.n_out, dtype)
    p = Params(
        Wxh=p.Wxh + 0.3 * jax.random.normal(k[1], p.Wxh.shape, dtype),
        Whh=1.2 * p.Whh + 0.2 * jax.random.normal(k[2], p.Whh.shape, dtype),
        bh=0.1 * jax.random.normal(k[3], p.bh.shape, dtype),
        Why=p.Why, by=0.1 * jax.random.normal(k[4], p.by.shape, dtype),
    )
    rule = make_rule("tptt")
    s = rule.init(k[5], p)
    s = s._replace(Vhh=s.Vhh + 0.3 * jax.random.normal(k[6], s.Vhh.shape, dtype),
                   ch=0.1 * jax.random.normal(k[7], s.ch.shape, dtype))
    x, y = t.sample(jax.random.PRNGKey(seed + 100), max(T, t.min_length), B, dtype)
    return p, s, (x[:T], y), t.loss  # a prefix: short sequences keep the test fast


@functools.lru_cache(maxsize=None)
def _step(loss="cross_entropy", record=True, **options):
    """One compiled step per structure (options include the derived ``noise``)."""
    return jax.jit(make_rule("tptt", loss=loss, record=record, **options).step)


def _hp(dtype=F64, **kw):
    return {k: jnp.asarray(v, dtype) for k, v in {**HP, **kw}.items()}


# -- the literal oracle ---------------------------------------------------------------
def F(p, x_t, s):
    return jnp.tanh(s @ p.Whh + x_t @ p.Wxh + p.bh)


def G(p, V, c, x_t, s):
    return jnp.tanh(x_t @ p.Wxh + s @ V + c)


def literal_forward(p, x):
    zs, s = [], jnp.zeros((x.shape[1], p.Whh.shape[0]), x.dtype)
    for t in range(x.shape[0]):
        s = F(p, x[t], s)
        zs.append(s)
    return zs


def literal_targets(p, V, c, x, zs, top):
    """zhat_{t-1} = z_{t-1} - G(x_t, z_t) + G(x_t, zhat_t), one t at a time."""
    T = len(zs)
    zh = [None] * T
    zh[T - 1] = top
    for t in range(T - 1, 0, -1):
        zh[t - 1] = zs[t - 1] - G(p, V, c, x[t], zs[t]) + G(p, V, c, x[t], zh[t])
    return zh


def literal_step(p, state, batch, hp, loss, inverse_optimizer="nesterov", wxh_by_bptt=False):
    x, y = batch
    T = x.shape[0]
    loss_fn = global_loss(loss)
    zs = literal_forward(p, x)
    z_prev = [jnp.zeros_like(zs[0])] + zs[:-1]
    E = lambda q: loss_fn(forward(q, x), y)  # noqa: E731  (the global loss, full graph)
    e_val = E(p)
    g_full = jax.grad(E)(p)
    g_top = jax.grad(lambda zl: loss_fn(zl @ p.Why + p.by, y))(zs[-1])

    # inverse: sum_t grad MSE(G(x_t, F(x_t, c_{t-1})), c_{t-1}) wrt (Vhh, ch), c_{t-1} constant
    key, k_noise = jax.random.split(state.key)
    noise = jax.random.normal(k_noise, (T,) + zs[0].shape, x.dtype)
    gV, gc = jnp.zeros_like(state.Vhh), jnp.zeros_like(state.ch)
    for t in range(T):
        cp = z_prev[t] + hp["sigma"] * noise[t] if float(hp["sigma"]) != 0 else z_prev[t]
        a, b = jax.grad(lambda V, c: mse(G(p, V, c, x[t], F(p, x[t], cp)), cp),
                        argnums=(0, 1))(state.Vhh, state.ch)
        gV, gc = gV + a, gc + b
    if inverse_optimizer == "nesterov":
        mu, lr = hp["inverse_momentum"], hp["alpha_g"]
        vV = mu * state.velocity[0] - lr * gV
        vc = mu * state.velocity[1] - lr * gc
        V, c, vel = state.Vhh + mu * vV - lr * gV, state.ch + mu * vc - lr * gc, (vV, vc)
    else:
        V, c, vel = state.Vhh - hp["alpha_g"] * gV, state.ch - hp["alpha_g"] * gc, ()

    # targets with the updated inverse
    zh = literal_targets(p, V, c, x, zs, zs[-1] - hp["alpha_i"] * g_top)

    # forward: sum_t grad MSE(F(x_t, z_{t-1}), zhat_t) wrt (Whh, Wxh, bh), z_{t-1}, zhat_t constant
    dWhh, dWxh, dbh = jnp.zeros_like(p.Whh), jnp.zeros_like(p.Wxh), jnp.zeros_like(p.bh)
    for t in range(T):
        def local(Whh, Wxh, bh, t=t):
            return mse(jnp.tanh(z_prev[t] @ Whh + x[t] @ Wxh + bh), zh[t])
        a, b, cc = jax.grad(local, argnums=(0, 1, 2))(p.Whh, p.Wxh, p.bh)
        dWhh, dWxh, dbh = dWhh + a, dWxh + b, dbh + cc
    if wxh_by_bptt:
        dWxh = g_full.Wxh
    grads = Params(Wxh=dWxh, Whh=dWhh, bh=dbh, Why=g_full.Why, by=g_full.by)
    local_losses = [float(mse(zs[t], zh[t])) for t in range(T)]
    return grads, TPTTState(V, c, vel, key), e_val, zh, local_losses


def _close(a, b, rtol=1e-11, atol=1e-13):
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=rtol, atol=atol)


# -- 1. targets ---------------------------------------------------------------------
@pytest.mark.parametrize("T", [1, 2, 9])
def test_targets_compiled_equal_python_loop(T):
    p, s, (x, y), loss = _problem(seed=T, T=10)
    x = x[:T]
    zs = literal_forward(p, x)
    top = zs[-1] + 0.5 * jax.random.normal(jax.random.PRNGKey(7), zs[-1].shape, F64)
    want = literal_targets(p, s.Vhh, s.ch, x, zs, top)
    got = jax.jit(propagate_targets)(jnp.stack(zs), x @ p.Wxh, s.Vhh, s.ch, top)
    assert got.shape == (T,) + zs[0].shape and got.dtype == F64
    np.testing.assert_allclose(np.asarray(got), np.stack([np.asarray(w) for w in want]),
                               rtol=1e-12, atol=1e-14)
    # the recursion is not trivial: targets differ from the forward activities at every t
    assert all(float(jnp.max(jnp.abs(got[t] - zs[t]))) > 1e-4 for t in range(T))


# -- 2. every gradient equals jax.grad of its local loss --------------------------------
@pytest.mark.parametrize("inverse_optimizer,sigma,wxh_by_bptt,task", [
    ("nesterov", 0.0, False, "temporal_order"), ("nesterov", 0.3, True, "temporal_order"),
    ("sgd", 0.3, False, "temporal_order"), ("sgd", 0.0, True, "adding")])  # adding: E is the MSE
def test_step_equals_literal_local_gradients(inverse_optimizer, sigma, wxh_by_bptt, task):
    p, s0, batch, loss = _problem(seed=1, task=task)
    opts = dict(inverse_optimizer=inverse_optimizer, wxh_by_bptt=wxh_by_bptt, noise=sigma != 0)
    rule = make_rule("tptt", loss=loss, **opts)
    s = rule.init(jax.random.PRNGKey(3), p)._replace(Vhh=s0.Vhh, ch=s0.ch)
    hp = _hp(sigma=sigma, alpha_i=0.7, alpha_g=0.05)  # large steps: the update is visible
    step = _step(loss, True, **opts)
    want_s = s
    # two steps, so that the Nesterov velocity of the first step enters the second
    for it in range(2):
        g, s, rec = step(p, s, batch, hp)
        want_g, want_s, e_val, zh, local = literal_step(p, want_s, batch, hp, loss,
                                                        inverse_optimizer, wxh_by_bptt)
        _close(g, want_g)
        _close(s, want_s)
        np.testing.assert_allclose(float(rec["loss"]), float(e_val), rtol=1e-13)
        np.testing.assert_allclose(np.asarray(rec["local_loss"]), local, rtol=1e-10, atol=1e-15)
        assert not jnp.allclose(s.Vhh, s0.Vhh)  # the inverse moved
        p = jax.tree.map(lambda a, b: a - 0.1 * b, p, g)  # params change between the steps


def test_record_diagnostics():
    p, s, batch, loss = _problem(seed=4, T=8)
    g, s2, rec = _step(loss, True, inverse_optimizer="nesterov", wxh_by_bptt=False,
                       noise=False)(p, s, batch, _hp())
    _, _, _, zh, local = literal_step(p, s, batch, _hp(), loss)
    zs = literal_forward(p, batch[0])
    z_prev = [jnp.zeros_like(zs[0])] + zs[:-1]
    for t in range(8):
        delta = jax.grad(lambda a: mse(jnp.tanh(a), zh[t]))(jnp.arctanh(zs[t]))
        np.testing.assert_allclose(float(rec["grad_Whh_norm"][t]),
                                   float(jnp.linalg.norm(z_prev[t].T @ delta)),
                                   rtol=1e-6, atol=1e-14)
        np.testing.assert_allclose(float(rec["grad_Wxh_norm"][t]),
                                   float(jnp.linalg.norm(batch[0][t].T @ delta)), rtol=1e-6)
        np.testing.assert_allclose(float(rec["target_displacement_norm"][t]),
                                   float(jnp.linalg.norm(zh[t] - zs[t])), rtol=1e-10)
    assert float(rec["grad_Whh_norm"][0]) == 0.0  # z_{-1} = 0
    for k in ("local_loss", "inverse_loss", "target_displacement_norm"):
        assert rec[k].shape == (8,)
    # without record=True only the cheap scalars
    _, _, rec0 = jax.eval_shape(make_rule("tptt", loss=loss).step, p, s, batch, _hp())
    assert set(rec0) == {"loss", "spectral_radius_Whh", "spectral_radius_Vhh"}


# -- spectral radius guard ---------------------------------------------------------------
def test_spectral_radius_matches_eigvals():
    rng = np.random.default_rng(0)
    mats = [rng.normal(size=(100, 100)) / 10 * s for s in (0.3, 1.0, 4.0)]
    mats.append(np.linalg.qr(rng.normal(size=(100, 100)))[0])
    mats.append(np.triu(rng.normal(size=(30, 30))))  # strongly non-normal, real spectrum
    for i, a in enumerate(mats):
        want = np.max(np.abs(np.linalg.eigvals(a)))
        slack = 1.02 if i == 4 else 1.003  # the excess grows with the eigenvector condition
        for dt in (jnp.float32, F64):
            got = float(jax.jit(spectral_radius)(jnp.asarray(a, dt)))
            assert want <= got * (1 + 1e-5) and got <= want * slack, (i, want, got)
    assert float(spectral_radius(jnp.zeros((5, 5), F64))) < 1e-100
    p, s, batch, loss = _problem()
    _, s2, rec = _step(loss, True, inverse_optimizer="nesterov", wxh_by_bptt=False,
                       noise=False)(p, s, batch, _hp())
    r = spectral_radii(p, s2)
    np.testing.assert_allclose(float(rec["spectral_radius_Whh"]), float(r["spectral_radius_Whh"]))
    np.testing.assert_allclose(float(rec["spectral_radius_Vhh"]), float(r["spectral_radius_Vhh"]))
    np.testing.assert_allclose(float(r["spectral_radius_Vhh"]),
                               np.max(np.abs(np.linalg.eigvals(np.asarray(s2.Vhh)))), rtol=5e-3)


# -- engine properties: vmap over configs, dtypes, options ---------------------------------
def test_vmap_over_configs_equals_loop():
    p, s, batch, loss = _problem(seed=5)
    opts = dict(inverse_optimizer="nesterov", wxh_by_bptt=True, noise=True)
    rule = make_rule("tptt", loss=loss, record=True, **opts)
    configs = [dict(alpha_i=0.1, alpha_g=0.001, sigma=0.1, inverse_momentum=0.9),
               dict(alpha_i=1.0, alpha_g=0.01, sigma=0.5, inverse_momentum=0.5),
               dict(alpha_i=0.01, alpha_g=0.1, sigma=0.0, inverse_momentum=0.0)]
    keys = jax.random.split(jax.random.PRNGKey(9), 3)
    states = [rule.init(k, p) for k in keys]
    hps = [_hp(**c) for c in configs]
    stack = lambda xs: jax.tree.map(lambda *a: jnp.stack(a), *xs)  # noqa: E731
    g_v, s_v, r_v = jax.jit(jax.vmap(rule.step, in_axes=(None, 0, None, 0)))(
        p, stack(states), batch, stack(hps))
    step = _step(loss, True, **opts)  # compiled already by the oracle test
    for i in range(3):
        g, s_i, r = step(p, states[i], batch, hps[i])
        _close(jax.tree.map(lambda a: a[i], (g_v, s_v, r_v["loss"])), (g, s_i, r["loss"]),
               rtol=1e-10, atol=1e-12)


def test_float32_dtype_preserved():
    """float32 end to end with noise and all options on, checked at trace level (where a
    dtype promotion would show); the training test below runs float32 for real."""
    dtype = jnp.float32
    p, _, batch, loss = _problem(seed=6, dtype=dtype, m=20, T=12)
    for opts in ({"inverse_optimizer": "sgd", "wxh_by_bptt": True},
                 {"inverse_optimizer": "nesterov", "wxh_by_bptt": False}):
        rule = make_rule("tptt", loss=loss, record=True, noise=True, **opts)
        out = jax.eval_shape(rule.step, p, rule.init(jax.random.PRNGKey(0), p), batch,
                             _hp(dtype, sigma=0.2))
        g, s2, rec = out
        for a in jax.tree.leaves((g, s2.Vhh, s2.ch, s2.velocity, rec)):
            assert a.dtype == dtype


def test_options_and_defaults():
    rd = get_rule("tptt")
    assert rd.defaults == {"alpha_i": 0.1, "alpha_g": 0.001, "sigma": 0.0, "inverse_momentum": 0.9}
    o = rd.options()
    assert o.inverse_optimizer == "nesterov" and o.wxh_by_bptt is False and o.noise is False
    with pytest.raises(Exception, match="inverse_optimizer"):
        rd.options(inverse_optimizer="adam")
    with pytest.raises(Exception, match="extra"):
        rd.options(nope=1)
    from localrnn.rules import resolve_options
    assert resolve_options("tptt", {}, {"sigma": 0.1}).noise is True
    assert resolve_options("tptt", {}, {"sigma": 0.0}).noise is False
    p = init_params(jax.random.PRNGKey(0), 6, 10, 4, F64)
    s = make_rule("tptt").init(jax.random.PRNGKey(1), p)
    np.testing.assert_allclose(np.asarray(s.Vhh @ s.Vhh.T), np.eye(10), atol=1e-12)
    assert float(jnp.max(jnp.abs(s.ch))) == 0.0
    assert s.velocity[0].shape == (10, 10)
    assert make_rule("tptt", inverse_optimizer="sgd").init(jax.random.PRNGKey(1), p).velocity == ()


# -- 3. a short training run lowers the validation loss --------------------------------------
def test_short_training_lowers_validation_loss_temporal_order_T10():
    """Temporal order, T=10, batch 20, hidden 100, float32; TPTT defaults (alpha_i 0.1,
    alpha_g 0.001, Nesterov inverse), forward by plain SGD with alpha_f = 0.1; 300 steps;
    validation: a fixed batch of 1000 samples (seed 123)."""
    task, T, steps = get_task("temporal_order"), 10, 300
    dtype = jnp.float32
    rule = make_rule("tptt", loss=task.loss)
    p0 = init_params(jax.random.PRNGKey(0), task.n_in, 100, task.n_out, dtype)
    s0 = rule.init(jax.random.PRNGKey(1), p0)
    hp = _hp(dtype)
    lr = jnp.asarray(0.1, dtype)
    xv, yv = task.sample(jax.random.PRNGKey(123), T, 1000, dtype)
    val_loss = jax.jit(lambda q: global_loss(task.loss)(forward(q, xv), yv))

    @jax.jit
    def run(p, s):
        def body(carry, key):
            p, s = carry
            g, s, rec = rule.step(p, s, task.sample(key, T, 20, dtype), hp)
            return (jax.tree.map(lambda a, b: a - lr * b, p, g), s), rec["loss"]
        return jax.lax.scan(body, (p, s), jax.random.split(jax.random.PRNGKey(2), steps))

    (p1, s1), losses = run(p0, s0)
    before, after = float(val_loss(p0)), float(val_loss(p1))
    assert np.all(np.isfinite(np.asarray(losses)))
    assert all(a.dtype == dtype and bool(jnp.all(jnp.isfinite(a)))
               for a in jax.tree.leaves((p1, s1.Vhh, s1.ch, s1.velocity)))
    assert after < 0.8 * before, (before, after)
    # the recurrent weights (not only the readout) were changed by the rule
    assert float(jnp.linalg.norm(p1.Whh - p0.Whh)) > 1e-3
