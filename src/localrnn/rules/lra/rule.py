"""RNN-LRA-diff assembled from its phases (Algorithm 1; Algorithm 2 when lambda != 0; docs/lra.md).

:func:`build_phases` reads the options once and picks the function of every phase: the output layer
and top target (``top.py``), the target search of the reading (``search.py``), the layer losses and
the weight map (``updates.py``), the regularizer (``regularizers.py``) and which updates Normalize
rescales. :func:`lra_core` runs them in the algorithm's order.

Weight updates of layer t are Normalize(., c0)'d (Whh, Wxh and bh; option (c) ``reference``: Whh
and Wxh only). Layers 1..T-1 are updated; ``update_layer0`` also applies ``ell_0`` to Wxh and bh.

On the diagonal cells (``diagonal.py``) the forward pass, the weight maps and Algorithm 2's terms
are the cell's, and each recurrent parameter's layer-t update is Normalize(., c0)'d (the cell has no
bias, so option (c) leaves every one of them normalized); the updates are ``grad_<name>`` and
``grad_<name>_per_layer`` for ``name`` in nu, theta, B_re, B_im (real: nu, B).

Record (``record=True``), per layer t (T,): ``local_loss`` = ``ell_t``;
``target_displacement_norm`` = ||D|| of the last step of the search that produced ``zhat_t``
(the paper's Delta h_t); ``grad_Whh_norm``, ``grad_Wxh_norm`` = norms of the layer's
(normalized) update (0 for layers not updated; not on the diagonal cells, which have no Whh, and
neither are the credit cosines).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from localrnn.cells import SRNN, Cell
from localrnn.losses import global_loss
from localrnn.model import Params
from localrnn.rules._base import Rule, RuleDef, zero_state
from localrnn.rules._credit import credit_record
from localrnn.rules.lra import diagonal
from localrnn.rules.lra._math import local_loss_parts, normalize
from localrnn.rules.lra._pass import Pass, forward_pass
from localrnn.rules.lra._space import SPACES
from localrnn.rules.lra.options import HPARAMS, LRAOptions
from localrnn.rules.lra.regularizers import NoRegularizer, pick_regularizer
from localrnn.rules.lra.search import make_layer_search, search_layers
from localrnn.rules.lra.top import output_gradients, top_target
from localrnn.rules.lra.updates import (first_path_terms, one_step_map, own_losses,
                                        second_path_terms, shifted_losses, unrolled_map)

__all__ = ["Phases", "build_phases", "lra_core", "RULE"]


def _identity(d: jax.Array, c: jax.Array) -> jax.Array:
    return d


@dataclass(frozen=True)
class Phases:
    """The function of every phase, chosen from the options (see :func:`build_phases`)."""

    e_fn: Callable                 # global loss E(out, y)
    forward_pass: Callable         # (params, x, y, hp, cell) -> Pass: the SRNN-map cells' or a diagonal cell's
    f: Callable                    # local loss L(p, r) = mean f(p - r)
    fp: Callable                   # f'
    reg: NoRegularizer
    normalize: Callable            # Normalize(d, c), forced or not
    normalize_reference: Callable  # Normalize where option (c) adds it (top), else identity
    normalize_bias: Callable       # Normalize for grad bh, or identity (option (c))
    top_steps: int
    search_own: Callable
    search_shifted: Callable | None
    losses: Callable               # own_losses | shifted_losses
    weight_map: Callable           # one_step_map | unrolled_map
    shifted: bool
    unrolled: bool
    first_updated_layer: int


@functools.lru_cache(maxsize=128)
def build_phases(o: LRAOptions, loss: str, diagonal_cell: bool = False) -> Phases:
    """Pick every phase's function from the options, once per (options, global loss, whether the
    cell is diagonal)."""
    f, fp = local_loss_parts(o.local_loss)
    if diagonal_cell:
        reg = diagonal.Algorithm2() if o.regularize else NoRegularizer()
    else:
        reg = pick_regularizer(o)
    norm = functools.partial(normalize, force=o.force_normalize)
    reference_norm = o.normalization == "reference"
    forward = o.inner_reference == "forward"
    shifted = o.layer_loss == "shifted"
    unrolled = o.local_grads == "unrolled"
    search = functools.partial(make_layer_search, fp, reg, norm, o.inner_steps, forward,
                               unrolled=unrolled)
    return Phases(
        e_fn=global_loss(loss), f=f, fp=fp, reg=reg, normalize=norm,
        forward_pass=functools.partial(diagonal.forward_pass, space=SPACES[o.local_space]) if diagonal_cell
        else forward_pass,
        normalize_reference=norm if reference_norm else _identity,
        normalize_bias=_identity if reference_norm else norm,
        top_steps=o.top_steps,
        search_own=search(own=True),
        search_shifted=search(own=False) if (forward and shifted) else None,
        losses=shifted_losses if shifted else own_losses,
        weight_map=(diagonal.unrolled_map if unrolled else diagonal.one_step_map) if diagonal_cell
        else (unrolled_map if unrolled else one_step_map),
        shifted=shifted, unrolled=unrolled,
        first_updated_layer=0 if o.update_layer0 else 1)


def _layer_weights(p: Pass, ph: Phases, hhat):
    """``(ell, the weight map's per-layer updates)`` before Normalize (lines 16-18)."""
    ll = ph.losses(p, hhat, ph.f, ph.fp)
    terms = first_path_terms(ll)
    if ph.unrolled:
        terms = terms + second_path_terms(p, ll, hhat, ph.shifted)
    terms = terms + ph.reg.layer_terms(p, ll.delta, ll.ell, ll.s_idx)
    return ll.ell, ph.weight_map(p, terms)


def _layer_updates(p: Pass, ph: Phases, hhat):
    """Per-layer losses and normalized, masked weight updates (lines 16-18)."""
    ell, (g_hh, g_xh, g_b) = _layer_weights(p, ph, hhat)
    per_layer = jax.vmap(ph.normalize, in_axes=(0, None))
    g_hh = per_layer(g_hh, p.c0)
    g_xh = per_layer(g_xh, p.c0)
    g_b = jax.vmap(ph.normalize_bias, in_axes=(0, None))(g_b, p.c0)
    tt = np.arange(p.zs.shape[0])
    updated = jnp.asarray(tt >= ph.first_updated_layer)
    g_hh = jnp.where(jnp.asarray(tt >= 1)[:, None, None], g_hh, 0.0)
    g_xh = jnp.where(updated[:, None, None], g_xh, 0.0)
    g_b = jnp.where(updated[:, None], g_b, 0.0)
    return ell, g_hh, g_xh, g_b


def _diagonal_layer_updates(p: Pass, ph: Phases, hhat):
    """Per-layer losses and updates ``{name: (T, ...)}`` of a diagonal cell's recurrent parameters,
    each Normalize(., c0)'d per layer and 0 for the layers not updated (theta never at layer 0:
    :data:`diagonal.NOT_AT_STEP0`)."""
    ell, grads = _layer_weights(p, ph, hhat)
    tt = np.arange(p.zs.shape[0])

    def finish(name, g):
        g = jax.vmap(ph.normalize, in_axes=(0, None))(g, p.c0)
        updated = tt >= (1 if name in diagonal.NOT_AT_STEP0 else ph.first_updated_layer)
        return jnp.where(jnp.asarray(updated).reshape((-1,) + (1,) * (g.ndim - 1)), g, 0.0)

    return ell, {k: finish(k, g) for k, g in grads.items()}


def lra_core(params: Params, x: jax.Array, y: jax.Array, hp, o: LRAOptions,
             loss: str = "cross_entropy", cell: Cell = SRNN) -> dict[str, jax.Array]:
    """One LRA-diff update on the batch ``(x, y)`` for the network of ``cell``: summed and per-layer
    updates plus diagnostics.

    Returns a dict: ``grad_Wxh``, ``grad_Whh``, ``grad_bh``, ``grad_Why``, ``grad_by`` (summed
    over layers), ``grad_Wxh_per_layer`` (T, n, m), ``grad_Whh_per_layer`` (T, m, m),
    ``grad_bh_per_layer`` (T, m), ``local_loss`` (T,), ``target_displacement_norm`` (T,), ``loss``.
    On a diagonal cell ``grad_<name>`` and ``grad_<name>_per_layer`` of its recurrent parameters
    (nu, theta, B_re, B_im; real: nu, B) stand for the Wxh, Whh and bh entries.
    """
    ph = build_phases(o, loss, cell.diagonal)  # a diagonal cell's options were checked in _build
    p = ph.forward_pass(params, x, y, hp, cell)                                 # lines 2-6
    e_val, g_why, g_by = output_gradients(p, ph.e_fn, ph.reg, ph.normalize_reference)  # line 7
    hhat_top, d_top = top_target(p, ph.e_fn, ph.reg, ph.normalize_reference,    # lines 8-13
                                 ph.top_steps)
    hhat_below, d_below = search_layers(p, hhat_top, ph.search_own, ph.search_shifted)  # 19-26
    hhat = jnp.concatenate([hhat_below, hhat_top[None]], axis=0)  # (T, B, m)
    d_last = jnp.concatenate([d_below, d_top[None]], axis=0)
    common = {"grad_Why": g_why, "grad_by": g_by,
              "target_displacement_norm": jnp.sqrt(jnp.sum(d_last ** 2, axis=(1, 2))), "loss": e_val}
    if cell.diagonal:
        ell, per_layer = _diagonal_layer_updates(p, ph, hhat)                    # lines 16-18
        return {**{f"grad_{k}": jnp.sum(g, axis=0) for k, g in per_layer.items()},
                **{f"grad_{k}_per_layer": g for k, g in per_layer.items()}, "local_loss": ell, **common}
    ell, g_hh, g_xh, g_b = _layer_updates(p, ph, hhat)                           # lines 16-18
    return {
        "grad_Wxh": jnp.sum(g_xh, axis=0), "grad_Whh": jnp.sum(g_hh, axis=0),
        "grad_bh": jnp.sum(g_b, axis=0),
        "grad_Wxh_per_layer": g_xh, "grad_Whh_per_layer": g_hh, "grad_bh_per_layer": g_b,
        "local_loss": ell, **common,
    }


def _build(options: LRAOptions, loss: str, record: bool, cell: Cell = SRNN) -> Rule:
    global_loss(loss)  # validate the name early
    if options.local_space == "state" and not cell.diagonal:
        raise ValueError("local_space: 'state' (local losses on h itself) is defined for the diagonal | "
                         "diagonal-real cells only; allowed here: activity")
    if (cell.leaks or cell.diagonal) and options.validation_initial_state == "reference":
        tau = f" (tau = {cell.tau:g})" if cell.leaks else ""
        raise ValueError(f"validation_initial_state: 'reference' feeds a state before step 0, defined "
                         f"for the srnn cell only; got cell {cell.name!r}{tau}; allowed: zero")
    if cell.diagonal:
        diagonal.check_options(options, cell)
        return Rule("lra", zero_state, _diagonal_step(options, loss, record, cell))

    def step(params: Params, state, batch, hparams):
        x, y = batch
        out = lra_core(params, x, y, hparams, options, loss, cell)
        grads = Params(Wxh=out["grad_Wxh"], Whh=out["grad_Whh"], bh=out["grad_bh"],
                       Why=out["grad_Why"], by=out["grad_by"])
        return grads, state, layer_record(out, record, params, batch, loss, grads, cell)

    return Rule("lra", zero_state, step, validation_initial_state=options.validation_initial_state)


def _diagonal_step(options: LRAOptions, loss: str, record: bool, cell: Cell):
    """The rule's step on a diagonal cell: updates in the cell's parameters; the record holds the
    loss, and with ``record`` the per-layer local loss and target displacement norm."""
    def step(params, state, batch, hparams):
        x, y = batch
        out = lra_core(params, x, y, hparams, options, loss, cell)
        grads = params._replace(**{k: out[f"grad_{k}"] for k in params._fields})
        rec = {"loss": out["loss"]}
        if record:
            rec.update(local_loss=out["local_loss"], target_displacement_norm=out["target_displacement_norm"])
        return grads, state, rec

    return step


RULE = RuleDef(
    name="lra",
    summary="RNN-LRA-diff (Algorithm 1; Algorithm 2 regularizer when reg_lambda != 0)",
    options=LRAOptions,
    hparams=HPARAMS,
    build=_build,
    cells=("srnn", "leaky", "orthogonal", "diagonal", "diagonal-real"),
)


def layer_record(out: dict, record: bool, params: Params, batch, loss: str, grads: Params,
                 cell: Cell = SRNN) -> dict:
    """The step's record from a target-based pass's outputs: the loss, and with ``record`` the
    per-layer local loss, target displacement norm, Frobenius norms of the Whh, Wxh updates and the
    credit cosines of the per-layer updates against BPTT's parts (localrnn.rules._credit)."""
    rec = {"loss": out["loss"]}
    if record:
        lags = (out["grad_Whh_per_layer"], out["grad_Wxh_per_layer"], out["grad_bh_per_layer"])
        rec.update(credit_record(params, batch, loss, grads, lags, cell))
        rec["local_loss"] = out["local_loss"]
        rec["target_displacement_norm"] = out["target_displacement_norm"]
        rec["grad_Whh_norm"] = jnp.sqrt(jnp.sum(out["grad_Whh_per_layer"] ** 2, axis=(1, 2)))
        rec["grad_Wxh_norm"] = jnp.sqrt(jnp.sum(out["grad_Wxh_per_layer"] ** 2, axis=(1, 2)))
    return rec
