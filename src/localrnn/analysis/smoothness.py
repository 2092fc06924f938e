"""Smoothness of the loss (docs/analysis.md): the largest-magnitude eigenvalue of the Hessian of
E over all parameters, and the jump of E across one update.

Power iteration on Hessian-vector products ``Hv = d/de grad E(theta + e v)`` (forward over
reverse mode): ``v <- Hv / ||Hv||`` converges to the eigenvector of the eigenvalue of largest
magnitude; the eigenvalue, with its sign, is the Rayleigh quotient ``v^T H v``. Plain gradient
descent with step alpha is stable along that direction only while ``|lambda| < 2 / alpha``.

Along training (:class:`SmoothnessRecording`, the training loop's recording mode): at each
recorded iteration, on the first N samples of the config's fixed validation set, in float64,
with ``theta`` the parameters before the recorded iteration's update and ``theta'`` after it::

    smoothness_loss_before = E(theta)      smoothness_loss_after = E(theta')
    smoothness_loss_jump   = E(theta') - E(theta)
    smoothness_top_eigenvalue = v^T H(theta) v   (``hessian=True``; 30 power iterations)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import jax
import jax.numpy as jnp

__all__ = ["hvp", "top_hessian_eigenvalue", "loss_jump", "SmoothnessRecording", "smoothness_record",
           "SMOOTHNESS_KEYS", "EIGEN_KEY"]

#: the record keys a smoothness recording adds (the eigenvalue only with ``hessian=True``)
SMOOTHNESS_KEYS = ("smoothness_loss_before", "smoothness_loss_after", "smoothness_loss_jump",
                   "smoothness_top_eigenvalue")
EIGEN_KEY = SMOOTHNESS_KEYS[3]
#: the power iterations' start: one fixed key, so a record can be recomputed from stored parameters
EIGEN_KEY_SEED = 0


def _vdot(a, b) -> jax.Array:
    return sum(jnp.vdot(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def hvp(loss_fn: Callable, params, v):
    """``H v``, H the Hessian of ``loss_fn`` at ``params`` (pytrees of the same structure)."""
    return jax.jvp(jax.grad(loss_fn), (params,), (v,))[1]


def top_hessian_eigenvalue(loss_fn: Callable, params, key: jax.Array, iters: int = 30) -> jax.Array:
    """The Hessian eigenvalue of largest magnitude, signed, after ``iters`` power iterations from a
    random start (``key``)."""
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(key, len(leaves))
    v = jax.tree.unflatten(tree, [jax.random.normal(k, a.shape, a.dtype) for k, a in zip(keys, leaves)])

    def normalized(w):
        n = jnp.sqrt(_vdot(w, w))
        return jax.tree.map(lambda a: a / n, w)

    v = jax.lax.fori_loop(0, iters, lambda _, w: normalized(hvp(loss_fn, params, w)), normalized(v))
    return _vdot(v, hvp(loss_fn, params, v))


def loss_jump(loss_fn: Callable, before, after) -> jax.Array:
    """``E(after) - E(before)``: how much one update raised the loss on a fixed set."""
    return loss_fn(after) - loss_fn(before)


@dataclass(frozen=True)
class SmoothnessRecording:
    """What the recording mode measures at each recorded iteration (opt-in: it costs two forward
    passes over ``samples`` samples, and with ``hessian`` ``iters + 1`` Hessian-vector products)."""

    samples: int = 1000
    hessian: bool = False
    iters: int = 30

    def __post_init__(self):
        for name, low in (("samples", 1), ("iters", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(f"smoothness.{name}: must be an integer >= {low}, got {v!r}")
        if not isinstance(self.hessian, bool):
            raise ValueError(f"smoothness.hessian: must be true or false, got {self.hessian!r}")


def smoothness_record(loss_fn: Callable, before, after, opts: SmoothnessRecording) -> dict[str, jax.Array]:
    """The record of one update ``before -> after`` (see the module docstring); ``loss_fn`` is E on
    the fixed samples, in float64, and both parameter pytrees are cast to float64 first."""
    f64 = lambda t: jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), t)  # noqa: E731
    before, after = f64(before), f64(after)
    e0, e1 = loss_fn(before), loss_fn(after)
    rec = {SMOOTHNESS_KEYS[0]: e0, SMOOTHNESS_KEYS[1]: e1, SMOOTHNESS_KEYS[2]: e1 - e0}
    if opts.hessian:
        rec[EIGEN_KEY] = top_hessian_eigenvalue(loss_fn, before, jax.random.PRNGKey(EIGEN_KEY_SEED), opts.iters)
    return rec
