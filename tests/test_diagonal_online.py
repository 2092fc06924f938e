"""RTRL, SnAp-1 and e-prop on the diagonal cells (localrnn.rules._diagonal), float64.

    e_t^p = lambda e_{t-1}^p + dh_t/dp (immediate, gamma's path in nu included),
    grad p = sum_b Re(conj(dE/dRe h + i dE/dIm h) e_{T-1}^p)

Oracle: BPTT (autodiff through the cell's forward pass, itself checked against finite differences
in tests/test_diagonal_cell.py): every rule's update equals BPTT's on the same batch to 1e-10
relative, complex and real cells, both losses; SnAp-1 = RTRL = e-prop (symmetric) exactly there.
RFLO and random-feedback e-prop refuse the cells.

Lines broken on purpose, each making the tests named fail (then restored):
- _diagonal.py, ``dgamma_nu * d_t`` dropped from e^nu (gamma without gradient):
  test_update_equals_bptt[*] fail on nu;
- _diagonal.py, B_im's pairing ``1j * e_b`` -> ``e_b``: test_update_equals_bptt[*-diagonal-*] fail;
- _diagonal.py, ``e_th = lam * e_th + dlam_th * hp`` -> ``lam * e_th`` (the i lambda h term dropped):
  test_update_equals_bptt[*-diagonal-*] fail on theta;
- eprop.py, the ``feedback != "symmetric"`` refusal removed: test_random_feedback_is_refused fails.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from localrnn.config import TrainConfig
from localrnn.rules import make_rule

from test_diagonal_cell import CELLS, _problem

RULES = ("rtrl", "snap1", "eprop")


@functools.lru_cache(maxsize=None)
def _step(rule: str, loss: str, cell_name: str):
    return jax.jit(make_rule(rule, loss=loss, cell=CELLS[cell_name]).step)


def _update(rule, t, p, batch, cell_name):
    hp = {"reg_lambda": 0.0} if rule == "bptt" else {}
    return _step(rule, t.loss, cell_name)(p, (), batch, hp)


@pytest.mark.parametrize("task", ["temporal_order", "adding"])
@pytest.mark.parametrize("cell_name", list(CELLS))
@pytest.mark.parametrize("rule", RULES)
def test_update_equals_bptt(rule, cell_name, task):
    """Every field of the update equals BPTT's to 1e-10 relative (of the field's largest entry);
    the loss is BPTT's."""
    t, p, batch = _problem(cell_name, task=task, seed=7)
    got, _, rec = _update(rule, t, p, batch, cell_name)
    want, _, rec_b = _update("bptt", t, p, batch, cell_name)
    assert type(got) is type(p)
    for name in p._fields:
        g, w = np.asarray(getattr(got, name)), np.asarray(getattr(want, name))
        assert np.max(np.abs(w)) > 0, name
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-10 * np.max(np.abs(w)), err_msg=name)
    assert set(rec) == {"loss"}
    np.testing.assert_allclose(float(rec["loss"]), float(rec_b["loss"]), rtol=1e-14)


@pytest.mark.parametrize("cell_name", list(CELLS))
def test_snap1_equals_rtrl_equals_eprop(cell_name):
    """The identity on these cells: SnAp-1's and symmetric e-prop's updates equal RTRL's to 1e-12
    relative (and so BPTT's, test_update_equals_bptt), on random parameters and a random batch."""
    t, p, batch = _problem(cell_name, seed=11)
    ref = _update("rtrl", t, p, batch, cell_name)[0]
    for rule in ("snap1", "eprop"):
        got = _update(rule, t, p, batch, cell_name)[0]
        for name in p._fields:
            w = np.asarray(getattr(ref, name))
            np.testing.assert_allclose(np.asarray(getattr(got, name)), w, rtol=0,
                                       atol=1e-12 * np.max(np.abs(w)), err_msg=f"{rule}.{name}")


def test_random_feedback_is_refused():
    """e-prop with random feedback refuses the diagonal cells in one line; rflo does not take them."""
    for cell_name in CELLS:
        with pytest.raises(ValueError, match=r"^feedback: eprop on the diagonal(-real)? cell takes symmetric "
                                             r"feedback only .* got 'random'$"):
            make_rule("eprop", feedback="random", cell=CELLS[cell_name])
        with pytest.raises(ValueError, match=f"cell: rule 'rflo' is defined for the .* cell only, got '{cell_name}'"):
            TrainConfig(task="temporal_order", length=10, rule="rflo", cell=cell_name)
