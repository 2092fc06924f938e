"""The analysis lens (docs/analysis.md) on constructed cases with known answers, in float64:
a recurrent matrix with a known spectrum, maps with known fixed points, quadratics with a known top
Hessian eigenvalue, the Rademacher estimate against the exact influence, RTRL as the influence's
oracle, a literal step-by-step transcription of the cells for every per-sample quantity, and the
verdict on hand-made measures at either side of each threshold."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from localrnn.analysis.attractors import fixed_points
from localrnn.analysis.gradient_flow import hidden_grad_norms, marker_ratio
from localrnn.analysis.memory import recurrence_spectra, state_jacobian_norms
from localrnn.analysis.recurrence import map_jacobian, step_map
from localrnn.analysis.sensitivity import influence_norms, influence_norms_estimate, rademacher_probes
from localrnn.analysis.smoothness import loss_jump, top_hessian_eigenvalue
from localrnn.analysis.task_facts import task_facts
from localrnn.analysis.verdict import verdict
from localrnn.cells import Cell
from localrnn.losses import cross_entropy
from localrnn.model import Params
from localrnn.rules import get_rule, resolve_options
from localrnn.tasks import get_task

CELLS = [Cell("srnn", 1.0), Cell("leaky", 3.0)]
F64 = jnp.float64


def _params(seed: int, n: int = 3, m: int = 4, k: int = 2, scale: float = 0.6) -> Params:
    rng = np.random.default_rng(seed)
    a = lambda *s: jnp.asarray(scale * rng.standard_normal(s), F64)  # noqa: E731
    return Params(Wxh=a(n, m), Whh=a(m, m), bh=a(m), Why=a(m, k), by=a(k))


def _inputs(seed: int, T: int = 6, B: int = 3, n: int = 3):
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.standard_normal((T, B, n)), F64)
    y = jax.nn.one_hot(rng.integers(0, 2, B), 2, dtype=F64)
    return x, y


def _literal_step(p: Params, cell: Cell, h, x_t):
    """h_t = (1 - 1/tau) h_{t-1} + (1/tau)(tanh(h_{t-1}) Whh + x_t Wxh + bh), as docs/cells.md writes it."""
    return (1.0 - 1.0 / cell.tau) * h + (1.0 / cell.tau) * (jnp.tanh(h) @ p.Whh + x_t @ p.Wxh + p.bh)


def _literal_states(p: Params, cell: Cell, xb, eps):
    """h_t of one sample (T, m) step by step, eps_t added to h_t; h_0 = (1/tau)(x_0 Wxh + bh)."""
    h = (xb[0] @ p.Wxh + p.bh) / cell.tau + eps[0]
    hs = [h]
    for t in range(1, xb.shape[0]):
        h = _literal_step(p, cell, h, xb[t]) + eps[t]
        hs.append(h)
    return jnp.stack(hs)


# -- memory ------------------------------------------------------------------------
@pytest.mark.parametrize("cell", CELLS, ids=lambda c: c.name)
def test_known_spectrum_in_the_linear_regime(cell):
    """Whh = Q diag(s) Q^T, Wxh = 0, bh = 0: h stays 0, so D_t = (1-1/tau) I + (1/tau) Whh exactly;
    its eigenvalues are r_i = 1 - 1/tau + s_i/tau, it is symmetric, and ||dh_{T-1}/dh_t|| = max|r|^(T-1-t).
    Broken on purpose, each seen to fail: the identity appended before the products instead of after
    (``[eye[None], Ms]``); ``spectral_radius`` without ``jnp.abs``; the leak dropped from
    ``Cell.jacobian`` (``return D`` always)."""
    s = np.array([-0.8, 0.6, 0.3, 0.1])  # leaky, tau = 3: r = 0.867, not 0.8
    q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((4, 4)))
    p = _params(1)._replace(Whh=jnp.asarray(q @ np.diag(s) @ q.T, F64), Wxh=jnp.zeros((3, 4), F64),
                            bh=jnp.zeros(4, F64))
    x, _ = _inputs(2, T=7)
    r = np.max(np.abs(1 - 1 / cell.tau + s / cell.tau))
    norms = np.asarray(state_jacobian_norms(p, cell, x))
    np.testing.assert_allclose(norms, np.broadcast_to(r ** np.arange(6, -1, -1.0)[:, None], (7, 3)), rtol=1e-12)
    sp = recurrence_spectra(p, cell, x)
    np.testing.assert_allclose([sp["W_radius"], sp["W_sigma_max"]], [0.8, 0.8], rtol=1e-12)
    np.testing.assert_allclose(np.asarray(sp["D_radius"]), r, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(sp["D_sigma_max"]), r, rtol=1e-12)


@pytest.mark.parametrize("cell", CELLS, ids=lambda c: c.name)
def test_memory_and_gradient_flow_match_a_literal_transcription(cell):
    """Per sample: ||dh_{T-1}/dh_t||_2, rho and sigma_max of D_t (numpy eig / svd of the literal
    step's Jacobian), ||dE_b/dh_t|| (E_b the loss of sample b alone) and the marker ratio, against
    autodiff of the step-by-step cell. Broken on purpose, each seen to fail: the product order
    reversed (``M @ D_next``); ``hidden_grad_norms`` without the factor B; ``marker_ratio`` dividing by
    ``norms[0]``."""
    p, (x, y) = _params(3), _inputs(4)
    T, B, m = x.shape[0], x.shape[1], 4
    norms = np.asarray(state_jacobian_norms(p, cell, x))
    g = np.asarray(hidden_grad_norms(p, cell, (x, y), "cross_entropy"))
    sp = recurrence_spectra(p, cell, x)
    zero = jnp.zeros((T, m), F64)
    jac = jax.jit(jax.jacfwd(lambda e, xb: _literal_states(p, cell, xb, e)[-1]))  # (m, T, m)
    grad = jax.jit(jax.grad(lambda e, xb, yb: cross_entropy(
        jnp.tanh(_literal_states(p, cell, xb, e)[-1:]) @ p.Why + p.by, yb[None])))
    step_jac = jax.jit(jax.vmap(jax.jacfwd(lambda h, x_t: _literal_step(p, cell, h, x_t))))
    for b in range(B):
        J = np.asarray(jac(zero, x[:, b]))
        np.testing.assert_allclose(norms[:, b], [np.linalg.norm(J[:, t, :], 2) for t in range(T)], rtol=1e-10)
        np.testing.assert_allclose(g[:, b], np.linalg.norm(np.asarray(grad(zero, x[:, b], y[b])), axis=1),
                                   rtol=1e-10)
        hs = _literal_states(p, cell, x[:, b], zero)
        D = np.asarray(step_jac(hs[:-1], x[1:, b]))  # (T-1, m, m), the usual orientation
        np.testing.assert_allclose(np.asarray(sp["D_radius"][:, b]), np.max(np.abs(np.linalg.eigvals(D)), axis=-1),
                                   rtol=1e-10)
        np.testing.assert_allclose(np.asarray(sp["D_sigma_max"][:, b]), np.linalg.norm(D, 2, axis=(1, 2)),
                                   rtol=1e-10)
    first = jnp.array([1, 0, 4])
    np.testing.assert_allclose(np.asarray(marker_ratio(jnp.asarray(g), first)),
                               [g[1, 0] / g[-1, 0], g[0, 1] / g[-1, 1], g[4, 2] / g[-1, 2]], rtol=1e-14)


@pytest.mark.parametrize("task", ["temporal_order", "temporal_order_3bit", "random_permutation", "adding"])
def test_first_marker_is_the_first_informative_input(task):
    """The first step whose input is a bit (or adding's marker), inside the task's window.
    Broken on purpose: ``marker_channels`` of temporal order (0, 2) fails here."""
    facts, T = task_facts(task), 40
    x, _ = jax.jit(get_task(task).generator, static_argnums=(1, 2))(jax.random.PRNGKey(0), T, 50)
    first = np.asarray(facts.first_marker(x))
    lo, hi = facts.first_marker_window(T)
    if task == "adding":
        want = np.argmax(np.asarray(x[..., 0]) > 0, axis=0)
    else:
        want = np.argmax(np.asarray(jnp.argmax(x, axis=-1)) < 2, axis=0)
    np.testing.assert_array_equal(first, want)
    assert np.all((first >= lo) & (first < hi))


# -- sensitivity ---------------------------------------------------------------------
@pytest.mark.parametrize("cell", CELLS, ids=lambda c: c.name)
def test_influence_norms_match_rtrl(cell):
    """Exact ||P_t||_F per sample (forward mode), theta_rec = (Whh, Wxh, bh), against the influence
    RTRL carries (its record: sqrt(sum_b ||P_t^b||_F^2)). Broken on purpose: ``RECURRENT_FIELDS``
    without ``bh`` fails here."""
    p, batch = _params(5), _inputs(6)
    rule = get_rule("rtrl").make(resolve_options("rtrl", {}, {}), "cross_entropy", True, cell)
    _, _, rec = jax.jit(rule.step)(p, rule.init(jax.random.PRNGKey(0), p), batch, {})
    mine = np.asarray(influence_norms(p, cell, batch[0]))
    np.testing.assert_allclose(np.sqrt(np.sum(mine ** 2, axis=1)), np.asarray(rec["influence_norm"]), rtol=1e-12)


def test_rademacher_estimate_is_unbiased_within_its_spread():
    """mean_k ||P_t v_k||^2 estimates ||P_t||_F^2; with G = P^T P its variance per probe is
    2 (||G||_F^2 - sum_i G_ii^2): with K = 400 probes every (t, b) lies within 5 sigma/sqrt(K) of the
    exact value, and the probes are +-1. Broken on purpose: probes drawn from {0, 1} (``choice([0.0,
    1.0])``) and the square root dropped from the estimate each fail here."""
    p, (x, _) = _params(7), _inputs(8)
    cell, K = CELLS[0], 400
    V = rademacher_probes(p, K, x.shape[1], seed=3)
    assert all(set(np.unique(np.asarray(v))) == {-1.0, 1.0} for v in V)
    est = np.asarray(influence_norms_estimate(p, cell, x, V)) ** 2
    for b in range(x.shape[1]):
        theta = (p.Whh, p.Wxh, p.bh)

        def states(th):
            return _literal_states(p._replace(Whh=th[0], Wxh=th[1], bh=th[2]), cell, x[:, b],
                                   jnp.zeros((x.shape[0], 4), F64))

        jac = jax.jacfwd(states)(theta)
        P = np.concatenate([np.asarray(j).reshape(x.shape[0], 4, -1) for j in jac], axis=2)  # (T, m, d)
        for t in range(x.shape[0]):
            G = P[t].T @ P[t]
            exact = np.trace(G)
            sigma = np.sqrt(2 * (np.sum(G ** 2) - np.sum(np.diag(G) ** 2)))
            assert abs(est[t, b] - exact) <= 5 * sigma / np.sqrt(K) + 1e-12 * exact, (t, b, est[t, b], exact)


# -- attractors ----------------------------------------------------------------------
def test_fixed_points_of_a_tanh_map():
    """h -> a tanh(h): for a = 2, three fixed points, 0 unstable (slope 2) and +-h* stable, h* the
    limit of iterating the map from 1 (it is stable); for a = 1/2 only 0, stable. Broken on purpose:
    the stability test ``radius <= 1.0 -> > 1.0`` and the convergence test ``r < tol -> r < 1e3`` (extra
    unconverged points) each fail here."""
    starts = jnp.linspace(-3.0, 3.0, 13, dtype=F64)[:, None]
    h = 1.0
    for _ in range(200):
        h = 2.0 * np.tanh(h)
    fp = fixed_points(lambda h, u: 2.0 * jnp.tanh(h), starts)
    order = np.argsort(fp["points"][:, 0])
    np.testing.assert_allclose(fp["points"][order, 0], [-h, 0.0, h], atol=1e-12)
    np.testing.assert_array_equal(fp["stable"][order], [True, False, True])
    np.testing.assert_allclose(fp["radius"][order], [2 * (1 - np.tanh(h) ** 2), 2.0, 2 * (1 - np.tanh(h) ** 2)],
                               rtol=1e-10)
    fp = fixed_points(lambda h, u: 0.5 * jnp.tanh(h), starts)
    np.testing.assert_allclose(fp["points"], [[0.0]], atol=1e-12)
    assert fp["stable"].tolist() == [True] and fp["converged"] == 13
    fp = fixed_points(lambda h, u: h + 1e-3, starts)  # no fixed point: nothing converges
    assert fp["converged"] == 0 and fp["points"].shape == (0, 1)


@pytest.mark.parametrize("cell", CELLS, ids=lambda c: c.name)
def test_cell_map_with_known_fixed_points(cell):
    """The cell's map with Whh = 2 I, Wxh = 0, bh = 0 acts per unit as h -> 2 tanh(h) (the leak keeps the
    fixed points and their stability): 3^2 fixed points, 2^2 stable; the cell's Jacobian there equals
    autodiff of the map (the row-vector D^T). Broken on purpose: ``map_jacobian`` without the transpose
    fails the Jacobian check (with an asymmetric Whh below)."""
    p = _params(9, m=2)._replace(Whh=2.0 * jnp.eye(2, dtype=F64), Wxh=jnp.zeros((3, 2), F64), bh=jnp.zeros(2, F64))
    g = np.linspace(-3, 3, 7)
    starts = jnp.asarray(np.stack(np.meshgrid(g, g), -1).reshape(-1, 2), F64)
    u = jnp.zeros(3, F64)
    fp = fixed_points(step_map(p, cell), starts, map_jacobian(p, cell), u)
    assert len(fp["points"]) == 9 and int(fp["stable"].sum()) == 4
    q = _params(10, m=3)
    h = jnp.asarray([0.3, -1.2, 0.7], F64)
    x = jnp.asarray([1.0, 0.0, -0.5], F64)
    np.testing.assert_allclose(map_jacobian(q, cell)(h, x), jax.jacfwd(step_map(q, cell))(h, x), rtol=1e-13)


# -- smoothness ----------------------------------------------------------------------
@pytest.mark.parametrize("evs,top", [([4.0, 1.0, 0.5, -0.2, 0.1], 4.0), ([-6.0, 2.0, 1.0, 0.5, 0.3], -6.0)])
def test_top_hessian_eigenvalue_of_a_quadratic(evs, top):
    """E(theta) = 1/2 theta^T H theta + c^T theta over a pytree {a: (3,), b: (2,)} with H = Q diag(evs) Q^T:
    the eigenvalue of largest magnitude, with its sign. Broken on purpose: returning the norm of Hv
    instead of the Rayleigh quotient loses the sign of -6."""
    q, _ = np.linalg.qr(np.random.default_rng(11).standard_normal((5, 5)))
    H = jnp.asarray(q @ np.diag(evs) @ q.T, F64)
    c = jnp.arange(5.0, dtype=F64)

    def loss(t):
        v = jnp.concatenate([t["a"], t["b"]])
        return 0.5 * v @ H @ v + c @ v

    params = {"a": jnp.ones(3, F64), "b": jnp.zeros(2, F64)}
    np.testing.assert_allclose(float(top_hessian_eigenvalue(loss, params, jax.random.PRNGKey(0))), top, rtol=1e-10)
    after = {"a": jnp.zeros(3, F64), "b": jnp.ones(2, F64)}
    np.testing.assert_allclose(float(loss_jump(loss, params, after)), float(loss(after) - loss(params)), rtol=1e-14)


# -- verdict ----------------------------------------------------------------------------
def _measures(ratio=1e-2, cos=None, eig=None, jumps=None, stable=4, classes=4):
    m = {"gradient_flow": {"marker_ratio_median": ratio},
         "credit": None if cos is None else {"cosine_at_first_marker": cos},
         "attractors": {"classes": classes, "inputs": {"zero": {"n_stable": 1}, "mean": {"n_stable": stable}}},
         "smoothness": None}
    if eig is not None or jumps is not None:
        m["smoothness"] = {"lr": 0.1, "top_eigenvalues": eig or [], "loss_jumps": [j for j, _ in jumps or []],
                           "losses": [e for _, e in jumps or []]}
    return m


@pytest.mark.parametrize("measures,names", [
    (_measures(ratio=0.9e-6), ["vanishing credit"]),
    (_measures(ratio=1.1e-6), ["undetermined"]),
    (_measures(cos=0.09), ["vanishing credit"]),
    (_measures(cos=0.11), ["undetermined"]),
    # 2/alpha = 20: above it at 2 of 10 validations (20 % > 10 %) is rough; at 1 of 10 (10 %) is not
    (_measures(eig=[21.0, 21.0] + [1.0] * 8), ["rough loss"]),
    (_measures(eig=[21.0] + [19.9] * 9), ["undetermined"]),
    (_measures(jumps=[(1.01, 1.0)]), ["rough loss"]),
    (_measures(jumps=[(0.99, 1.0)]), ["undetermined"]),
    (_measures(stable=3), ["missing attractors"]),
    (_measures(stable=4), ["undetermined"]),
    (_measures(ratio=1e-9, stable=0, jumps=[(2.0, 1.0)]), ["vanishing credit", "rough loss", "missing attractors"]),
])
def test_verdict_at_either_side_of_each_threshold(measures, names):
    """Broken on purpose, each seen to fail: ``ratio < VANISHING_RATIO`` as ``<= 1e-5``; the rough
    fraction ``> ROUGH_FRACTION`` as ``>=``; ``best < k`` as ``best <= k``."""
    assert list(verdict(measures).names) == names


def test_verdict_says_what_was_not_checked():
    v = verdict({"gradient_flow": {}, "attractors": {"classes": None, "inputs": {"mean": {"n_stable": 1}}}})
    assert v.names == ("undetermined",)
    assert [r.split(":")[0] for r in v.reasons] == ["vanishing credit", "rough loss", "missing attractors"]
    assert all("not checked" in r for r in v.reasons)
    text = verdict(_measures(ratio=1e-9)).text()
    assert "1e-09" in text and "1e-06" in text and "0.1" not in text.split("\n")[1].split(";")[0]


def test_orthogonal_cell_is_analyzed_as_the_srnn_at_its_effective_whh():
    """On the orthogonal cell (Whh = W0 expm(A - A^T)) every measure is the SRNN's at the effective
    Whh (exact identity; breaking ``effective`` in recurrence.py, e.g. analyzing W0 alone, fails)."""
    from localrnn.analysis import analyze
    from localrnn.config import TrainConfig
    from localrnn.model import effective_params, init_params
    from localrnn.cells import make_cell

    cell = make_cell("orthogonal")
    cfg = TrainConfig(task="temporal_order", length=10, hidden=4, cell="orthogonal", dtype="float64", val_size=20)
    own = init_params(jax.random.PRNGKey(3), 6, 4, 4, jnp.float64, cell)
    own = own._replace(A=0.4 * jax.random.normal(jax.random.PRNGKey(4), own.A.shape, jnp.float64))
    srnn = effective_params(own, cell)
    assert float(jnp.max(jnp.abs(srnn.Whh - own.W0))) > 1e-2  # A moved the matrix
    kw = dict(samples=6, starts=8, seed=0)
    got = analyze(own._asdict(), cfg, **kw)
    want = analyze(srnn._asdict(), TrainConfig(**{**cfg.model_dump(), "cell": "srnn"}), **kw)
    for part in ("memory", "gradient_flow", "sensitivity"):
        assert got[part] == want[part], part
    assert got["attractors"]["inputs"] == want["attractors"]["inputs"]
