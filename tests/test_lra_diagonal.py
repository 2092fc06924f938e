"""LRA-diff on the diagonal cells (docs/lra.md#the-diagonal-cells), float64.

The rule on ``diagonal`` and ``diagonal-real`` equals the per-step literal transcription
tests/oracles/lra_diagonal_literal.py (the cell's step in complex arithmetic, plain jax.grad/vjp) to
1e-9 relative, for the fixed-target and printed readings at K = 1, 2 and 3, the reference preset,
each published-code option (a)-(d) alone and Algorithm 2's regularizer, with the local losses in the
state space (the cells' default, L(a_t, hhat_t)) and in the activity space (through tanh); at K = 1 the printed and
fixed-target readings coincide; the real cell's update is the complex cell's at theta = 0,
B_im = 0 and a readout blind to Im h; the CLI trains, and what has no meaning on the cell (the
published code's Omega, its validation state) is refused in one line.

Lines broken on purpose (each in a copy of the package, then discarded), with the oracle cases
(case x cell, 24 in all) that then failed and the largest relative error (intact: 9e-11 at most):
- ``_cell._recur`` with ``jnp.conj(lam)`` (the step rotating the wrong way): the 12 complex-cell
  cases (the real cell's lambda is real), errors 1.9 to 1e6;
- ``_cell.pull`` on the diagonal cells returning ``g`` (the error carried down without lambda): 24 of
  24, up to 3.1;
- ``_cell.diagonal_weights`` with ``a`` held at 0 instead of the step's point: 22 of 24 (all but
  option (a) alone, whose weights come from the unrolled chain), up to 2.1;
- ``diagonal.unrolled_map`` without the ``pull`` (chains not carried down): the 6 unrolled cases, up
  to 3.2;
- ``updates.second_path_terms``'s diagonal branch at the forward ``p.hs[:-1]`` for ``hhat[:-1]``:
  the 4 reference cases (option (a) with (d)), 2e-6 to 0.08;
- ``rule._diagonal_layer_updates`` without Normalize: 20 of 24 (those with c0 = 1e-3 or forced), up
  to 180;
- ``diagonal.Algorithm2.layer_terms`` without its ``direct_rec`` (Omega's part in nu): the 20 cases
  with lambda != 0, nu, up to 2.1;
- the state space's ``slope`` returning ``1 - z^2`` (a tanh' left in the state space): every
  state-space case, on both cells;
- ``updates.own_losses`` comparing ``p.zs`` (the activities) in place of ``p.ls``: every state-space
  case with the own layer loss;
- ``diagonal.NOT_AT_STEP0`` empty (theta's layer-0 update left as computed, rounding of 1e-21 that
  forced Normalize scales to c0): the one complex-cell case with update_layer0 and forced Normalize,
  0.91.
"""

from __future__ import annotations

import functools
import json
import math
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from oracles.lra_diagonal_literal import lra_diagonal_literal  # noqa: E402
from test_lra_leaky import _rel_close, hp  # noqa: E402  (relative closeness; hyper-parameter points)

from localrnn.cells import make_cell  # noqa: E402
from localrnn.cli import main  # noqa: E402
from localrnn.config import TrainConfig  # noqa: E402
from localrnn.diagonal_cell import DiagonalParams, RealDiagonalParams  # noqa: E402
from localrnn.rules import make_rule  # noqa: E402
from localrnn.rules.lra import LRAOptions, lra_core  # noqa: E402
from localrnn.train import train_one  # noqa: E402

CELLS = ("diagonal", "diagonal-real")
REFERENCE = dict(local_grads="unrolled", inner_reference="forward", normalization="reference",
                 layer_loss="shifted")


def problem(cell_name: str, T: int, loss: str = "cross_entropy", B: int = 4, n: int = 3, m: int = 3,
            seed: int = 0):
    """Random float64 parameters (|lambda| in [0.5, 0.95], theta in [0, 2 pi), B and Why large enough
    that targets move visibly), one-hot inputs, targets."""
    k = 1 if loss == "mse" else 3
    rng = np.random.default_rng(seed)
    nu = np.log(-np.log(rng.uniform(0.5, 0.95, m)))
    if cell_name == "diagonal-real":
        p = RealDiagonalParams(nu, rng.standard_normal((n, m)), rng.standard_normal((m, k)),
                               0.2 * rng.standard_normal(k))
    else:
        p = DiagonalParams(nu, rng.uniform(0, 2 * np.pi, m), 0.8 * rng.standard_normal((n, m)),
                           0.8 * rng.standard_normal((n, m)), rng.standard_normal((2 * m, k)),
                           0.2 * rng.standard_normal(k))
    x = np.eye(n)[rng.integers(0, n, (T, B))]
    y = rng.uniform(0, 1, (B, 1)) if loss == "mse" else np.eye(k)[rng.integers(0, k, B)]
    return jax.tree.map(jnp.asarray, p), jnp.asarray(x), jnp.asarray(y)


# (id, T, global loss, static options, hyper-parameter points): both readings the cell takes at
# K = 1, 2, 3, the reference preset, each published-code option alone, Algorithm 2, both local and
# global losses, forced Normalize, layer 0's update
CASES = [
    ("fixed_target-T5-K3", 5, "cross_entropy", dict(inner_steps=3),
     [hp(0.0, 1.0, 1.0), hp(0.1, 1e-3, 1.0)]),
    ("fixed_target-T4-K1", 4, "cross_entropy", dict(inner_steps=1), [hp(0.1, 1e-3, 1e-3, gamma=10.0)]),
    ("fixed_target-T3-K2-logp-forced-layer0", 3, "mse",
     dict(inner_steps=2, local_loss="log_penalty", force_normalize=True, update_layer0=True),
     [hp(0.1, 1e-3, 1e-3, gamma=10.0)]),
    ("printed-T5-K3", 5, "cross_entropy", dict(inner_steps=3, variant="printed"),
     [hp(0.0, 1e-3, 1e-3), hp(0.1, 1.0, 1e-3)]),
    ("printed-T4-K2", 4, "cross_entropy", dict(inner_steps=2, variant="printed"), [hp(0.0, 1.0, 1.0)]),
    ("reference-T5-K2", 5, "cross_entropy",
     dict(inner_steps=2, variant="reference", validation_initial_state="zero", regularizer="algorithm2"),
     [hp(0.0, 1e-3, 1e-3, gamma=10.0), hp(0.0, 1.0, 1.0)]),
    # forced: unforced, option (a)'s first step (two nearly cancelling paths) and option (b)'s pull
    # toward the forward pass bring the targets onto it within a few layers here, where Omega is the
    # ratio of two norms of rounding size
    ("reference-T5-K2-forced", 5, "cross_entropy",
     dict(inner_steps=2, variant="reference", validation_initial_state="zero", regularizer="algorithm2",
          force_normalize=True), [hp(0.1, 1e-2, 1e-2)]),
    ("reference-one_step-T4-K2-logp", 4, "cross_entropy",
     dict(inner_steps=2, variant="reference", validation_initial_state="zero", regularizer="algorithm2",
          local_grads="one_step", local_loss="log_penalty"), [hp(0.1, 1e-3, 1e-3)]),
] + [(f"{k}-alone-T4-K2", 4, "cross_entropy", dict(inner_steps=2, **{k: v}), [hp(0.1, 1e-3, 1e-3)])
     for k, v in REFERENCE.items()]


def _oracle_kwargs(opts: LRAOptions) -> dict:
    d = opts.model_dump()
    for k in ("regularize", "regularizer", "validation_initial_state", "variant"):
        d.pop(k)
    return {**d, "printed": opts.variant == "printed"}


@functools.lru_cache(maxsize=None)
def _fast(opts: LRAOptions, loss: str, cell_name: str):
    cell = make_cell(cell_name)
    return jax.jit(lambda p, x, y, h: lra_core(p, x, y, h, opts, loss, cell))


def _point(point: dict) -> dict:
    return {k: jnp.asarray(v, jnp.float64) for k, v in point.items()}


SPACES = ("state", "activity")


def _slow(case_id: str, cell: str, space: str) -> bool:
    """By default: every case in the state space but each option alone on the real cell; in the
    activity space the complex cell's cases but each option alone. The rest with -m slow."""
    return "alone" in case_id and (cell == "diagonal-real" or space == "activity") or (
        space == "activity" and cell == "diagonal-real")


def _refused(options: dict, space: str) -> bool:
    """Option (a) in the state space is refused (test_unrolled_gradients_in_the_state_space_...)."""
    return space == "state" and LRAOptions(**options).local_grads == "unrolled"


ORACLE_CASES = [pytest.param(c, cell, space, id=f"{c[0]}-{cell}-{space}",
                             marks=pytest.mark.slow if _slow(c[0], cell, space) else ())
                for c in CASES for cell in CELLS for space in SPACES if not _refused(c[3], space)]


@pytest.mark.parametrize("case,cell_name,space", ORACLE_CASES)
def test_rule_on_the_diagonal_cell_matches_the_literal_oracle(case, cell_name, space):
    _, T, loss, options, points = case
    params, x, y = problem(cell_name, T, loss)
    opts = LRAOptions(**options, local_space=space, regularize=any(p["reg_lambda"] != 0 for p in points))
    for point in points:
        fast = _fast(opts, loss, cell_name)(params, x, y, _point(point))
        slow = lra_diagonal_literal(params, x, y, loss=loss, **_oracle_kwargs(opts), **point)
        assert set(fast) == set(slow), set(fast) ^ set(slow)
        _rel_close(fast, slow, 1e-9)
        assert all(float(jnp.max(jnp.abs(slow[f"grad_{k}"]))) > 0 for k in ("nu", "B_re" if "B_re" in
                                                                             params._fields else "B"))


@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize("cell_name", CELLS)
def test_printed_equals_fixed_target_at_k_one(cell_name, space):
    """At K = 1 the top loop and every search take one step with the target fixed: the readings agree."""
    params, x, y = problem(cell_name, 5, seed=1)
    point = _point(hp(0.1, 1e-3, 1.0))
    fixed = _fast(LRAOptions(inner_steps=1, regularize=True, local_space=space), "cross_entropy",
                  cell_name)(params, x, y, point)
    printed = _fast(LRAOptions(inner_steps=1, variant="printed", regularize=True, local_space=space),
                    "cross_entropy", cell_name)(params, x, y, point)
    _rel_close(printed, fixed, 1e-13)


@pytest.mark.parametrize("options,space", [(dict(inner_steps=3), "state"), (dict(inner_steps=3), "activity"),
                                           (dict(inner_steps=2, **REFERENCE), "activity")],
                         ids=["fixed_target-state", "fixed_target-activity", "reference-activity"])
def test_the_real_cell_is_the_complex_one_with_theta_and_b_im_zero(options, space):
    """With theta = 0, B_im = 0 and Why's Im rows 0, Im h and every target's Im part stay 0, so the
    complex cell's update of (nu, B_re, Why's Re rows, by) is the real cell's and theta, B_im get 0.
    Its local losses are means over twice the entries (half as large): forced Normalize with
    c0, c1 > 0 removes that scale, so the updates are equal."""
    real, x, y = problem("diagonal-real", 5, seed=2)
    m = real.nu.shape[0]
    cplx = DiagonalParams(real.nu, jnp.zeros(m), real.B, jnp.zeros_like(real.B),
                          jnp.concatenate([real.Why, jnp.zeros_like(real.Why)]), real.by)
    opts = LRAOptions(**options, force_normalize=True, local_space=space)
    point = _point(hp(0.0, 1e-2, 1e-2, gamma=3.0))
    r = _fast(opts, "cross_entropy", "diagonal-real")(real, x, y, point)
    c = _fast(opts, "cross_entropy", "diagonal")(cplx, x, y, point)
    pairs = [("grad_nu", "grad_nu"), ("grad_B", "grad_B_re"), ("grad_by", "grad_by")]
    for kr, kc in pairs:
        np.testing.assert_allclose(c[kc], r[kr], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(c["grad_Why"][:m], r["grad_Why"], rtol=1e-12, atol=1e-15)
    assert not np.any(c["grad_theta"]) and not np.any(c["grad_B_im"]) and not np.any(c["grad_Why"][m:])
    assert float(jnp.max(jnp.abs(r["grad_nu"]))) > 0


READINGS = {"fixed_target": {}, "printed": {"variant": "printed"},
            "reference": {"variant": "reference", "validation_initial_state": "zero", "local_space": "activity"}}


@pytest.mark.parametrize("reading", [pytest.param(r, marks=() if r == "fixed_target" else pytest.mark.slow)
                                     for r in READINGS])
def test_short_run_on_the_diagonal_cell_stays_finite(reading):
    cfg = TrainConfig(task="temporal_order", length=10, rule="lra", hidden=16, max_iters=300, val_every=100,
                      val_size=500, patience=0, lr=0.1, cell="diagonal", dtype="float32",
                      rule_options={"inner_steps": 3, **READINGS[reading]})
    r = train_one(cfg)
    assert r.status != "diverged" and len(r.history) == 3
    assert all(math.isfinite(h["val_loss"]) for h in r.history), r.history


def test_cli_trains_lra_on_the_diagonal_cell(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--task", "temporal-order", "--length", "10", "--rule", "lra", "--cell", "diagonal-real",
              "--hidden", "8", "--max-iters", "100", "--val-every", "100", "--val-size", "200",
              "--inner-steps", "2", "--json"])
    out, err = capsys.readouterr()
    assert exc.value.code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["config"]["cell"] == "diagonal-real"


def test_what_the_cell_cannot_take_is_refused_in_one_line(capsys):
    """The published code's Omega (reg_lambda != 0 with regularizer = reference, as the reference
    preset sets it) and its state before step 0 have no meaning on the linear step: one line naming
    the option, exit 2 on the CLI; the config refuses them too."""
    for argv, head in [(["--variant", "reference", "--reg-lambda", "0.1", "--validation-initial-state", "zero"],
                        "error: --regularizer: 'reference' (the published code's Omega)"),
                       (["--variant", "reference"], "error: --validation-initial-state: 'reference'")]:
        with pytest.raises(SystemExit) as exc:
            main(["train", "--task", "temporal-order", "--length", "10", "--rule", "lra", "--cell", "diagonal",
                  *argv])
        out, err = capsys.readouterr()
        assert (exc.value.code, out) == (2, "")
        assert err.strip().startswith(head) and len(err.strip().splitlines()) == 1, err
    with pytest.raises(ValueError, match=r"^regularizer: 'reference' .* the diagonal-real cell's linear step "
                                         r"does not have; with reg_lambda != 0 it takes algorithm2$"):
        make_rule("lra", "cross_entropy", hparams={"reg_lambda": 0.1}, regularizer="reference",
                  cell=make_cell("diagonal-real"))
    with pytest.raises(ValueError, match=r"rule_options\.validation_initial_state: .* got cell 'diagonal'; "
                                         r"allowed: zero"):
        TrainConfig(task="temporal_order", length=10, rule="lra", cell="diagonal", rule_options={"variant": "reference"})
    make_rule("lra", "cross_entropy", variant="reference", validation_initial_state="zero", local_space="activity",
              cell=make_cell("diagonal"))
    make_rule("lra", "cross_entropy", hparams={"reg_lambda": 0.1}, cell=make_cell("diagonal"))


def test_the_local_space_is_the_state_on_the_diagonal_cells_by_default():
    """Resolved for a diagonal cell (config, make_rule, the CLI) the option defaults to ``state``;
    elsewhere to ``activity``; an explicit value stands. The state space is refused elsewhere in one
    line. Runs stored before the option existed keep their ids: an SRNN LRA config's, and a
    diagonal-cell config's once it names ``activity`` (ids taken from the frontier store)."""
    def cfg(cell, **opts):
        return TrainConfig(task="temporal_order", length=10, rule="lra", cell=cell, rule_options=opts)

    assert cfg("diagonal").resolved_options.local_space == "state"
    assert cfg("diagonal-real", variant="printed").resolved_options.local_space == "state"
    assert cfg("diagonal", local_space="activity").resolved_options.local_space == "activity"
    assert cfg("srnn").resolved_options.local_space == "activity"
    assert "local_space" not in cfg("srnn").resolved_options.model_dump()
    assert make_rule("lra", cell=make_cell("diagonal")) is not None
    for cell in ("srnn", "leaky", "orthogonal"):
        with pytest.raises(ValueError, match=r"local_space: 'state' .* diagonal \| diagonal-real cells only; "
                                             r"allowed here: activity"):
            cfg(cell, local_space="state")
    stored = dict(batch=20, dtype="float32", hidden=100, length=10, lr=0.1, max_iters=20000, patience=0,
                  task="random_permutation", rule="lra", seed=0, val_every=100, val_seed=20000000,
                  val_size=10000, hparams={"c0": 1.0, "c1": 1.0, "target_step": 10.0})
    srnn = TrainConfig(**{**stored, "hparams": {"c0": 1.0, "c1": 1.0, "target_step": 1.0}},
                       rule_options={"inner_steps": 10, "variant": "printed"})
    assert srnn.run_id() == "fb7033cc592fe815"
    diag = dict(stored, cell="diagonal")
    old = {"inner_steps": 1, "variant": "fixed_target"}
    assert TrainConfig(**diag, rule_options={**old, "local_space": "activity"}).run_id() == "e47bd442b0760ada"
    assert TrainConfig(**diag, rule_options=old).run_id() != "e47bd442b0760ada"


def test_the_state_space_is_refused_off_the_diagonal_cells_on_the_cli(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--task", "temporal-order", "--length", "10", "--rule", "lra", "--local-space", "state"])
    out, err = capsys.readouterr()
    assert (exc.value.code, out) == (2, "")
    assert err.strip() == ("error: --local-space: 'state' (local losses on h itself) is defined for the "
                           "diagonal | diagonal-real cells only; allowed here: activity")


@pytest.mark.parametrize("options", [dict(local_grads="unrolled"), dict(REFERENCE),
                                     dict(local_grads="unrolled", layer_loss="shifted")],
                         ids=["a-own", "reference", "a-shifted"])
def test_unrolled_gradients_in_the_state_space_leave_the_input_weights_alone_and_are_refused(options):
    """Why option (a) is refused in the state space: its target a_t(theta) + (hhat_t - a_t) moves with
    a_t, so L(a_t, target) does not depend on the weights, and the shifted loss
    L(S(a_t), S(a_t + c)) only through lambda (the drive cancels): B's update is exactly 0, and every
    update with the own loss. The activity space's tanh breaks both cancellations."""
    params, x, y = problem("diagonal", 5)
    point = _point(hp(0.0, 1.0, 1.0))
    state = _fast(LRAOptions(inner_steps=2, local_space="state", **options), "cross_entropy", "diagonal")(
        params, x, y, point)
    activity = _fast(LRAOptions(inner_steps=2, **options), "cross_entropy", "diagonal")(params, x, y, point)
    zero = ("nu", "theta", "B_re", "B_im") if options.get("layer_loss") != "shifted" else ("B_re", "B_im")
    for k in zero:
        assert not np.any(state[f"grad_{k}"]), k
        assert float(jnp.max(jnp.abs(activity[f"grad_{k}"]))) > 1e-6, k
    with pytest.raises(ValueError, match=r"^local_grads: 'unrolled' moves the target .* allowed: one_step, or "
                                         r"local_space activity$"):
        make_rule("lra", "cross_entropy", local_space="state", cell=make_cell("diagonal"), **options)
