"""LRA-diff on the diagonal cells (localrnn.diagonal_cell; docs/lra.md#the-diagonal-cells).

The phases are the other cells': layer t's pre-activation is the real vector
``a_t = features(h_t) = [Re h_t, Im h_t]`` (``h_t`` itself on diagonal-real), its activity
``z_t = tanh(a_t)`` (what the readout reads), and the step is the cell's linear one,

    a_t = S_t(a_{t-1}) = features(lambda * h(a_{t-1}) + gamma(lambda) x_t B),    a_{-1} = 0,

(``_cell.py``). Targets, searches and local losses are the other cells', in the local space the
options name (``_space.py``): by default the state space, ``L(a_t, hhat_t)`` with the targets
``hhat_t`` compared as they are; with ``local_space="activity"`` through ``tanh`` as on the SRNN. What differs is where the weights
enter: the recurrent parameters ``rec`` (nu, theta, B_re, B_im; nu, B) play Whh, Wxh and bh, and a
cotangent ``c`` at ``a_t`` reaches them by the vjp of the one-step map in ``rec`` at the point the
step was taken from (``_cell.diagonal_weights``), where the SRNN has ``z_{t-1}^T c``, ``x_t^T c``,
``sum c``:

* :func:`one_step_map`: each layer's cotangents through one step, ``a_{t-1}`` held;
* :func:`unrolled_map`: carried down the forward graph to t = 0 (option (a)), ``c <- c dS/da^T``;
* :class:`Algorithm2`: ``Omega_t = (||delta_t dS/da^T|| / ||delta_t|| - 1)^2`` by autodiff of the
  step, in ``rec`` directly and through ``a_{t-1}`` (the step is linear, so that second path and the
  term in every target search are 0; they are computed, not assumed).

The published code's Omega (option (e)) is refused (:func:`check_options`), and its validation
state (option (f)) by the rule's build, as on the leaky cell; so is option (a) in the state space,
where the unrolled target moves with the state and the input weights get no update.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from localrnn.diagonal_cell import drive, eigenvalues, features, hidden_states, input_scale
from localrnn.rules._credit import previous
from localrnn.rules._norms import ratio_penalty
from localrnn.rules.lra import regularizers
from localrnn.rules.lra._cell import diagonal_step, diagonal_weights, pull, recurrent_fields
from localrnn.rules.lra._pass import LayerTerms, Pass, add_terms
from localrnn.rules.lra._space import Space
from localrnn.rules.lra.options import LRAOptions

__all__ = ["NOT_AT_STEP0", "forward_pass", "one_step_map", "unrolled_map", "omega",
           "Algorithm2", "check_options"]

#: the parameters step 0 does not depend on (h_{-1} = 0, and gamma reads |lambda| only): their
#: layer-0 update is 0, as the SRNN's Whh's is, not the rounding of a derivative that is 0 (of order
#: 1e-21, which a forced Normalize would blow up to norm c0)
NOT_AT_STEP0 = ("theta",)


def check_options(o: LRAOptions, cell) -> None:
    """ValueError, naming the option, for what has no meaning on a diagonal cell."""
    if o.regularize and o.regularizer == "reference":
        raise ValueError(f"regularizer: 'reference' (the published code's Omega) scales the step's Jacobian "
                         f"by a tanh' that the {cell.name} cell's linear step does not have; with reg_lambda "
                         f"!= 0 it takes algorithm2")
    if o.local_space == "state" and o.local_grads == "unrolled":
        raise ValueError("local_grads: 'unrolled' moves the target a_t + (hhat_t - a_t) with a_t, and in the "
                         "state space the loss then cancels the input drive: B gets no update (with the own "
                         "layer loss no parameter does); allowed: one_step, or local_space activity")


def forward_pass(params, x: jax.Array, y: jax.Array, hp, cell, space: Space) -> Pass:
    """The forward pass on a diagonal cell (T >= 2), as the phases read it: ``hs`` = ``a_t``
    (T, B, 2m; (T, B, m) real), ``u`` = the drive ``features(gamma x_t B)``, ``eig`` = lambda."""
    dt = params.nu.dtype
    x = jnp.asarray(x, dt)
    y = jnp.asarray(y, dt)
    t_len, b, _ = x.shape
    if t_len < 2:
        raise ValueError(f"lra needs sequences of length T >= 2; got T={t_len}")
    lam = eigenvalues(params)
    hs = features(hidden_states(params, x))
    zs = jnp.tanh(hs)
    return Pass(x=x, y=y, wxh=None, whh=None, whh_t=None, why=params.Why, by=params.by,
                u=features(input_scale(lam) * drive(params, x)), hs=hs, zs=zs, zprev=previous(zs),
                gamma=jnp.asarray(hp["target_step"], dt), c0=jnp.asarray(hp["c0"], dt),
                c1=jnp.asarray(hp["c1"], dt), lam=jnp.asarray(hp["reg_lambda"], dt),
                inv_n=1.0 / (b * hs.shape[-1]), cell=cell, rec=params, eig=lam, space=space)


def one_step_map(p: Pass, terms: LayerTerms) -> dict:
    """Per-layer updates ``{name: (T, ...)}``, each cotangent through one step from the forward
    ``a_{t-1}`` (held)."""
    assert not terms.wxh_only, "the published code's Omega is refused on the diagonal cells"
    a_prev = previous(p.hs)
    out = terms.direct_rec
    for pos, cot in terms.full:
        out = add_terms(out, diagonal_weights(p, a_prev[pos], p.x[pos], cot))
    return out


def unrolled_map(p: Pass, terms: LayerTerms) -> dict:
    """Per-layer updates, each layer's cotangents carried down the forward graph to t = 0 (one
    chain per layer): at step j the chain's cotangent feeds ``rec`` through step j, then moves to
    ``a_{j-1}``."""
    assert not terms.wxh_only, "the published code's Omega is refused on the diagonal cells"
    t_len = p.hs.shape[0]
    rec = recurrent_fields(p.rec)
    injections = [(jnp.asarray(pos), cot) for pos, cot in terms.full]

    def body(carry, inp):
        e, acc = carry
        j, a_prev, x_j = inp
        for pos, val in injections:
            e = e + jnp.where((pos == j)[:, None, None], val, 0.0)
        _, vjp = jax.vjp(lambda r: diagonal_step(p.rec, r, a_prev, x_j), rec)
        acc = jax.tree.map(jnp.add, acc, jax.vmap(lambda c: vjp(c)[0])(e))
        return (pull(p, e, None), acc), None

    init = (jnp.zeros((t_len,) + p.hs.shape[1:], p.hs.dtype),
            jax.tree.map(lambda v: jnp.zeros((t_len,) + v.shape, v.dtype), rec))
    (_, acc), _ = jax.lax.scan(body, init, (jnp.arange(t_len), previous(p.hs), p.x), reverse=True)
    return add_terms(terms.direct_rec, acc)


def omega(p: Pass, rec: dict, delta: jax.Array, a: jax.Array) -> jax.Array:
    """Algorithm 2's Omega on the diagonal step with parameters ``rec``: ``J = delta dS/da^T`` at
    ``a`` (the vjp of the step in ``a``; its drive does not depend on ``a``, so x = 0 there),
    ``(||J|| / ||delta|| - 1)^2`` (0 where a norm is 0)."""
    x0 = jnp.zeros(a.shape[:-1] + p.x.shape[-1:], a.dtype)
    j = jax.vjp(lambda aa: diagonal_step(p.rec, rec, aa, x0), a)[1](delta)[0]
    return ratio_penalty(j, delta)


class Algorithm2(regularizers.Algorithm2):
    """Algorithm 2 on a diagonal cell: Omega of the step being updated, by autodiff (:func:`omega`);
    the searches' terms are the SRNN class's, with this ``_grad_h``."""

    @staticmethod
    def _grad_h(p, delta, a):
        return jax.grad(functools.partial(omega, p), argnums=2)(recurrent_fields(p.rec), delta, a)

    def layer_terms(self, p, delta, ell, s_idx):
        """``Omega_t`` at ``a_{s-1}``: ``rec`` directly and through ``a_{s-1}``."""
        sm1 = np.maximum(s_idx - 1, 0)
        has_below = jnp.asarray(s_idx >= 1)
        om_rec, om_a = jax.vmap(jax.grad(functools.partial(omega, p), argnums=(0, 2)),
                                in_axes=(None, 0, 0))(recurrent_fields(p.rec), delta, p.hs[sm1])

        def masked(v):
            return p.lam * jnp.where(has_below.reshape((-1,) + (1,) * (v.ndim - 1)), v, 0.0)

        return LayerTerms(full=[(sm1, masked(om_a))], direct_rec=jax.tree.map(masked, om_rec))
