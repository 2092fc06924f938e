"""Task generators against docs/tasks.md (Pascanu, Mikolov & Bengio 2013's generators)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from localrnn.tasks import TASKS, get_task, validation_set

N = 100_000


def _draw(name, length, n=N, seed=0, dtype=jnp.float32):
    x, y = get_task(name).sample(jax.random.PRNGKey(seed), length, n, dtype)
    return np.asarray(x), np.asarray(y)


@pytest.mark.parametrize("name", list(TASKS))
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_shapes_dtypes_determinism(name, dtype):
    task = TASKS[name]
    x, y = task.sample(jax.random.PRNGKey(3), 30, 7, dtype)
    assert x.shape == (30, 7, task.n_in) and y.shape == (7, task.n_out)
    assert x.dtype == dtype and y.dtype == dtype
    x2, y2 = task.sample(jax.random.PRNGKey(3), 30, 7, dtype)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    x3, _ = task.sample(jax.random.PRNGKey(4), 30, 7, dtype)
    assert not np.array_equal(x, x3)


def _positions(x, symbols):
    """(B,) time index of the single occurrence of ``symbols`` per sample and per range."""
    sym = x.argmax(-1).T  # (B, T)
    return sym, np.isin(sym, symbols)


@pytest.mark.parametrize("name,ranges", [
    ("temporal_order", lambda T, f: [(f, 2 * f), (T // 2, T // 2 + f)]),
    ("temporal_order_3bit", lambda T, f: [(f, 2 * f), (int(0.3 * T), int(0.3 * T) + f), (int(0.6 * T), int(0.6 * T) + f)]),
])
@pytest.mark.parametrize("length", [10, 20, 24, 37])
def test_temporal_order_markers(name, ranges, length):
    x, y = _draw(name, length)
    assert set(np.unique(x)) == {0.0, 1.0} and np.all(x.sum(-1) == 1)
    sym, marked = _positions(x, [0, 1])
    rs = ranges(length, length // 10)
    assert np.all(marked.sum(1) == len(rs))
    assert np.all((sym >= 0) & (sym <= 5))
    allowed = np.zeros(length, bool)
    for lo, hi in rs:
        allowed[lo:hi] = True
    t_marked = np.nonzero(marked)[1]
    assert np.all(allowed[t_marked]), "marker outside its range"
    assert set(np.unique(t_marked)) == set(np.nonzero(allowed)[0]), "an allowed position is never used"
    # class = sum_j 2^j v_j with v_j the marker symbols in time order
    bits = sym[marked].reshape(len(sym), len(rs))
    cls = (bits * 2 ** np.arange(len(rs))).sum(1)
    np.testing.assert_array_equal(cls, y.argmax(1))
    # uniform classes: chi-square at 1e-4 significance
    counts = np.bincount(cls, minlength=2 ** len(rs))
    assert stats.chisquare(counts).pvalue > 1e-4
    # distractors uniform over 2..5
    d = np.bincount(sym[~marked], minlength=6)[2:]
    assert stats.chisquare(d).pvalue > 1e-4


def test_3bit_positions_at_T24_follow_pascanu_not_multiples_of_f():
    """T = 24, f = 2: p0 in [2, 4), p1 in [7, 9) (int(0.3*24) = 7, not 3f = 6), p2 in [14, 16) (not 12)."""
    x, _ = _draw("temporal_order_3bit", 24, n=20_000)
    sym, marked = _positions(x, [0, 1])
    t = np.nonzero(marked)[1].reshape(-1, 3)
    assert [sorted(set(t[:, j].tolist())) for j in range(3)] == [[2, 3], [7, 8], [14, 15]]


@pytest.mark.parametrize("length", [2, 10, 50])
def test_random_permutation(length):
    x, y = _draw("random_permutation", length)
    sym = x.argmax(-1).T
    assert np.all(x.sum(-1) == 1)
    assert np.all(np.isin(sym[:, 0], [0, 1]))
    np.testing.assert_array_equal(sym[:, 0], y.argmax(1))
    assert np.all((sym[:, 1:] >= 2) & (sym[:, 1:] <= 99))
    assert set(np.unique(sym[:, 1:])) == set(range(2, 100))
    assert stats.chisquare(np.bincount(y.argmax(1), minlength=2)).pvalue > 1e-4
    assert y.shape[1] == 100 and np.all(y[:, 2:] == 0)


@pytest.mark.parametrize("length", [10, 30, 55])
def test_adding(length):
    x, y = _draw("adding", length)
    f = length // 10
    markers, values = x[..., 0].T, x[..., 1].T
    assert np.all((values >= 0) & (values <= 1)) and set(np.unique(markers)) == {0.0, 1.0}
    assert np.all(markers.sum(1) == 2)
    t = np.nonzero(markers)[1].reshape(-1, 2)
    assert set(np.unique(t[:, 0])) == set(range(0, f))
    assert set(np.unique(t[:, 1])) == set(range(f, f + (2 * length) // 5))
    target = 0.5 * (values[np.arange(len(t)), t[:, 0]] + values[np.arange(len(t)), t[:, 1]])
    np.testing.assert_allclose(y[:, 0], target, rtol=1e-6)
    # marker positions uniform within their ranges
    assert stats.chisquare(np.bincount(t[:, 1] - f)).pvalue > 1e-4


def test_validation_set_fixed_and_seeded():
    task = get_task("temporal-order")
    a = validation_set(task, 20, 2500, seed=5)
    b = validation_set(task, 20, 2500, seed=5)
    c = validation_set(task, 20, 2500, seed=6)
    assert a[0].shape == (20, 2500, 6)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])


def test_unknown_task_and_short_length():
    with pytest.raises(ValueError, match="allowed: temporal-order"):
        get_task("nope")
    with pytest.raises(ValueError, match="length must be >= 10"):
        get_task("adding").sample(jax.random.PRNGKey(0), 5, 2)
