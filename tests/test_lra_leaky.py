"""LRA-diff on the leaky cell (docs/lra.md#other-cells), float64.

The rule on ``leaky`` (tau in {1, 4}) equals the per-step literal transcription
tests/oracles/lra_leaky_literal.py (plain autodiff of the cell's one-step map) to 1e-9 relative, for
every reading and regularizer; that oracle at tau = 1 equals the SRNN oracles; the rule at tau = 1 is
the SRNN rule bit for bit; the autodiff Omega derivatives the leaky path uses equal the SRNN's closed
forms; short runs of each reading stay finite; the CLI trains and refuses what it cannot do.

Lines broken on purpose (monkeypatched, each restored), with the rule's largest relative error
against the oracle at tau = 4 (intact: 1e-12 or less):
- ``_cell.to_drive`` returning ``g`` (the 1/tau of the weight derivatives dropped): 0.14;
- ``regularizers.omega_code_cell`` with ``tanh(h)`` for the diagonal ``tanh(h[b, b])``: 0.06;
- ``pull`` in ``updates`` (the unrolled chain and the shifted target's path) as the SRNN's
  ``(g Whh^T) * (1 - z^2)``, no leak: 1.06;
- ``regularizers.grad_h`` always taking the SRNN's closed form: 1.67.
The 1/tau in ``first_gradient``'s ``gz`` cannot be seen: the published Omega is invariant to the scale
of its error.
"""

from __future__ import annotations

import functools
import math
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from oracles.lra_leaky_literal import lra_leaky_literal  # noqa: E402
from oracles.lra_literal import lra_literal, small_problem  # noqa: E402
from oracles.lra_printed_literal import lra_printed_literal  # noqa: E402

from localrnn.cells import SRNN, make_cell  # noqa: E402
from localrnn.cli import main  # noqa: E402
from localrnn.config import TrainConfig  # noqa: E402
from localrnn.rules import make_rule  # noqa: E402
from localrnn.rules.lra import LRAOptions, lra_core  # noqa: E402
from localrnn.rules.lra._math import omega_alg2_grad_h, omega_code_grad_h, safe_norm  # noqa: E402
from localrnn.rules.lra.regularizers import omega_cell, omega_code_cell  # noqa: E402
from localrnn.train import train_one  # noqa: E402

REFERENCE = dict(local_grads="unrolled", inner_reference="forward", normalization="reference",
                 layer_loss="shifted", regularizer="reference")


def hp(lam=0.0, c0=1.0, c1=1.0, gamma=1.0):
    return {"target_step": gamma, "c0": c0, "c1": c1, "reg_lambda": lam}


# (id, T, global loss, static options of the rule, hyper-parameter points): every reading, both
# regularizers, each published-code option alone, both local and global losses, forced Normalize
CASES = [
    ("fixed_target-T5-K3", 5, "cross_entropy", dict(inner_steps=3),
     [hp(0.0, 1.0, 1.0), hp(0.1, 1e-3, 1.0)]),
    ("fixed_target-T3-K2-logp-forced-layer0", 3, "mse",
     dict(inner_steps=2, local_loss="log_penalty", force_normalize=True, update_layer0=True),
     [hp(0.1, 1e-3, 1e-3, gamma=10.0)]),
    ("printed-T5-K3", 5, "cross_entropy", dict(inner_steps=3, variant="printed"),
     [hp(0.0, 1e-3, 1e-3), hp(0.1, 1.0, 1e-3)]),
    ("reference-T5-K2", 5, "cross_entropy",
     dict(inner_steps=2, variant="reference", validation_initial_state="zero"),
     [hp(0.0, 1e-3, 1e-3, gamma=10.0), hp(0.1, 1.0, 1.0)]),
    ("reference-one_step-T4-K2-logp", 4, "cross_entropy",
     dict(inner_steps=2, variant="reference", validation_initial_state="zero", local_grads="one_step",
          local_loss="log_penalty"), [hp(0.1, 1e-3, 1e-3)]),
] + [(f"{k}-alone-T4-K2", 4, "cross_entropy", dict(inner_steps=2, **{k: v}), [hp(0.1, 1e-3, 1e-3)])
     for k, v in REFERENCE.items()]


def _oracle_kwargs(opts: LRAOptions) -> dict:
    d = opts.model_dump()
    for k in ("regularize", "validation_initial_state", "variant"):
        d.pop(k)
    return {**d, "printed": opts.variant == "printed"}


def _rel_close(fast: dict, slow: dict, rtol: float) -> None:
    """Every array within ``rtol`` of the oracle's, relative to the array's largest entry."""
    errs = {k: float(jnp.max(jnp.abs(jnp.asarray(fast[k]) - slow[k]))) / max(float(jnp.max(jnp.abs(slow[k]))), 1e-300)
            for k in slow}
    bad = {k: v for k, v in errs.items() if not v <= rtol}
    assert not bad, f"relative errors above {rtol}: {bad}"


@functools.lru_cache(maxsize=None)
def _fast(opts: LRAOptions, loss: str, tau: float):
    cell = make_cell("leaky", tau)
    return jax.jit(lambda p, x, y, h: lra_core(p, x, y, h, opts, loss, cell))


#: tau = 1 is also checked bit for bit against the SRNN rule below; its oracle cases run with -m slow
#: except the first
TAUS = [(c, 4.0) for c in CASES] + [pytest.param(c, 1.0, marks=() if i == 0 else pytest.mark.slow)
                                    for i, c in enumerate(CASES)]


@pytest.mark.parametrize("case,tau", TAUS, ids=[f"{c[0]}-tau4" for c in CASES] + [f"{c[0]}-tau1" for c in CASES])
def test_rule_on_the_leaky_cell_matches_the_literal_oracle(case, tau):
    _, T, loss, options, points = case
    params, x, y = small_problem(T, loss)
    opts = LRAOptions(**options, regularize=any(p["reg_lambda"] != 0 for p in points))
    for point in points:
        fast = _fast(opts, loss, tau)(params, x, y, {k: jnp.asarray(v, jnp.float64) for k, v in point.items()})
        slow = lra_leaky_literal(params, x, y, tau=tau, loss=loss, **_oracle_kwargs(opts), **point)
        _rel_close(fast, slow, 1e-9)
        assert float(jnp.max(jnp.abs(slow["grad_Whh"]))) > 0


@pytest.mark.parametrize("case", [CASES[0], CASES[3], CASES[-1]], ids=lambda c: c[0])
def test_leaky_oracle_at_tau_one_is_the_srnn_oracle(case):
    _, T, loss, options, points = case
    params, x, y = small_problem(T, loss)
    opts = LRAOptions(**options, regularize=True)
    point = points[-1]
    leaky = lra_leaky_literal(params, x, y, tau=1.0, loss=loss, **_oracle_kwargs(opts), **point)
    kw = _oracle_kwargs(opts)
    kw.pop("printed")
    _rel_close(leaky, lra_literal(params, x, y, loss=loss, **kw, **point), 1e-12)


def test_leaky_oracle_at_tau_one_is_the_printed_oracle():
    params, x, y = small_problem(5)
    point = hp(0.1, 1.0, 1e-3)
    leaky = lra_leaky_literal(params, x, y, tau=1.0, inner_steps=3, inner_reference="forward",
                              printed=True, **point)
    _rel_close(leaky, lra_printed_literal(params, x, y, inner_steps=3, **point), 1e-12)


@pytest.mark.parametrize("options", [pytest.param(dict(inner_steps=3), marks=pytest.mark.slow),
                                     pytest.param(dict(inner_steps=3, variant="printed"), marks=pytest.mark.slow),
                                     dict(inner_steps=3, variant="reference")], ids=["fixed", "printed", "reference"])
def test_tau_one_is_the_srnn_rule_bit_for_bit(options):
    params, x, y = small_problem(6)
    opts = LRAOptions(**options, regularize=True)
    point = {k: jnp.asarray(v, jnp.float64) for k, v in hp(0.1, 1e-3, 1.0).items()}
    srnn = jax.jit(lambda p, xx, yy, h: lra_core(p, xx, yy, h, opts, "cross_entropy", SRNN))(params, x, y, point)
    leaky = _fast(opts, "cross_entropy", 1.0)(params, x, y, point)
    for k in srnn:
        assert np.array_equal(srnn[k], leaky[k]), k


def test_autodiff_omega_equals_the_closed_forms_on_the_srnn():
    """The leaky path differentiates the cell's Omega by autodiff; on the SRNN that equals the
    closed forms the SRNN path uses (an exact identity, to rounding)."""
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(3), 3)
    delta = jax.random.normal(k1, (4, 6), jnp.float64)
    w = jax.random.normal(k2, (6, 6), jnp.float64)
    h = jax.random.normal(k3, (4, 6), jnp.float64)
    auto = jax.grad(omega_cell, argnums=3)(SRNN, delta, w, h)
    th = jnp.tanh(h)
    closed = omega_alg2_grad_h(delta @ w.T, th, 1.0 - th * th, safe_norm(delta))
    np.testing.assert_allclose(auto, closed, rtol=1e-12, atol=1e-15)
    auto_code = jax.grad(omega_code_cell, argnums=3)(SRNN, delta, w, h)
    np.testing.assert_allclose(auto_code, omega_code_grad_h(delta @ w.T, h, safe_norm(delta)), rtol=1e-12,
                               atol=1e-15)


READINGS = {"fixed_target": {}, "printed": {"variant": "printed"},
            "reference": {"variant": "reference", "validation_initial_state": "zero"},
            "regularized": {}}


@pytest.mark.parametrize("reading", [r if r == "regularized" else pytest.param(r, marks=pytest.mark.slow)
                                     for r in READINGS])
def test_short_run_on_the_leaky_cell_stays_finite(reading):
    cfg = TrainConfig(task="temporal_order", length=10, rule="lra", hidden=16, max_iters=300, val_every=100,
                      val_size=500, patience=0, lr=0.1, cell="leaky", tau=4.0, dtype="float32",
                      rule_options=READINGS[reading],
                      hparams={"reg_lambda": 0.1} if reading == "regularized" else {})
    r = train_one(cfg)
    assert r.status != "diverged" and len(r.history) == 3
    assert all(math.isfinite(h["val_loss"]) for h in r.history), r.history


def test_cli_trains_lra_on_the_leaky_cell(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--task", "temporal-order", "--length", "10", "--rule", "lra", "--cell", "leaky",
              "--tau", "4", "--hidden", "16", "--max-iters", "100", "--val-every", "100",
              "--inner-steps", "3", "--checkpoint", str(tmp_path / "run.ckpt"), "--json"])
    assert exc.value.code == 0, capsys.readouterr().err


def test_reference_validation_state_is_refused_on_the_leaky_cell(tmp_path, capsys):
    """The published code's state before step 0 exists on the SRNN only (docs/lra.md#other-cells):
    one line naming the option, exit 2 on the CLI."""
    with pytest.raises(SystemExit) as exc:
        main(["train", "--task", "temporal-order", "--length", "10", "--rule", "lra", "--cell", "leaky",
              "--tau", "4", "--variant", "reference", "--checkpoint", str(tmp_path / "run.ckpt")])
    out, err = capsys.readouterr()
    assert (exc.value.code, out) == (2, "")
    assert err.strip().startswith("error: --validation-initial-state: 'reference'") and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match=r"^validation_initial_state: 'reference' .* srnn cell only; "
                                         r"got cell 'leaky' \(tau = 4\); allowed: zero$"):
        make_rule("lra", "cross_entropy", variant="reference", cell=make_cell("leaky", 4.0))
    make_rule("lra", "cross_entropy", variant="reference", validation_initial_state="zero",
              cell=make_cell("leaky", 4.0))


def test_the_config_itself_refuses_what_the_cell_cannot_take():
    """TrainConfig (so specs and the Python API, not only the CLI) refuses the published validation's
    state before step 0 on a leaking cell, naming the option."""
    from localrnn.config import TrainConfig

    with pytest.raises(ValueError, match=r"rule_options\.validation_initial_state: "):
        TrainConfig(task="temporal_order", length=10, rule="lra", cell="leaky", tau=4.0,
                    rule_options={"variant": "reference"})
