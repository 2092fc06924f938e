"""``analyze``: every measure of docs/analysis.md on one network, as plain JSON-ready values,
and the verdict read from them.

All measures run in float64 on the first ``samples`` samples of the config's fixed validation set,
with no state before step 0 (docs/network.md).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from localrnn.analysis import diagonal
from localrnn.analysis.attractors import MERGE, TOL, fixed_points
from localrnn.analysis.gradient_flow import hidden_grad_norms, marker_ratio
from localrnn.analysis.memory import recurrence_spectra, state_jacobian_norms
from localrnn.analysis.recurrence import RECURRENT_FIELDS, as_float64, effective, map_jacobian, step_map, trajectory
from localrnn.analysis.sensitivity import (influence_norms, influence_norms_estimate, n_recurrent,
                                          rademacher_probes)
from localrnn.analysis.smoothness import EIGEN_KEY, SMOOTHNESS_KEYS, loss_jump, top_hessian_eigenvalue
from localrnn.analysis.task_facts import task_facts
from localrnn.analysis.verdict import verdict
from localrnn.config import TrainConfig
from localrnn.losses import global_loss
from localrnn.model import Params, cell_params, forward
from localrnn.tasks import get_task, validation_set

__all__ = ["analyze", "EXACT_INFLUENCE_MIB"]

#: the exact influence (jacfwd) is used while it needs at most this many MiB, else Rademacher probes
EXACT_INFLUENCE_MIB = 64.0


def _list(a) -> list:
    return [None if not math.isfinite(v) else v for v in np.asarray(a, float).ravel().tolist()]


def _median_max(a) -> dict[str, list]:
    """Per row of ``a`` (rows, samples): the median and the max over samples."""
    a = np.asarray(a, float)
    return {"median": _list(np.median(a, axis=1)), "max": _list(np.max(a, axis=1))}


def _positive(name: str, value: int, low: int = 1) -> None:
    if not (isinstance(value, (int, np.integer)) and value >= low):
        raise ValueError(f"{name}: must be an integer >= {low}, got {value!r}")


def _credit(records: Mapping | None, window: tuple[int, int]) -> dict | None:
    """The rule's per-lag cosine with BPTT at the first marker's window, from the last stored record."""
    if not records or "credit_cosine" not in records:
        return None
    its, cos = records["credit_cosine"]
    last = np.asarray(cos, float)[-1]
    if np.all(np.isnan(last)):
        return None
    lo, hi = window
    return {"iteration": int(np.asarray(its)[-1]), "window": [lo, max(hi, lo + 1)],
            "cosine_at_first_marker": float(np.nanmean(last[lo:max(hi, lo + 1)])),
            "cosine_by_t": _list(last)}


def _attractors(p: Params, cfg: TrainConfig, cell, hs: jax.Array, n_starts: int, seed: int,
                max_symbols: int | None) -> dict:
    """Fixed points under each constant input, from ``n_starts`` states drawn from the trajectories ``hs``."""
    facts = task_facts(cfg.task)
    T, B, m = hs.shape
    pick = np.random.default_rng(seed).choice(T * B, min(n_starts, T * B), replace=False)
    starts = hs.reshape(T * B, m)[pick]
    F, jac = step_map(p, cell), map_jacobian(p, cell)
    out = {}
    for name, x in facts.constant_inputs(max_symbols).items():
        fp = fixed_points(F, starts, jac, jnp.asarray(x, jnp.float64))
        order = np.argsort(fp["radius"])
        out[name] = {"n_fixed": int(len(fp["points"])), "n_stable": int(fp["stable"].sum()),
                     "converged_starts": fp["converged"], "radius": _list(fp["radius"][order]),
                     "norm": _list(np.linalg.norm(fp["points"][order], axis=1) if len(order) else [])}
    tried = len(facts.distractors[:max_symbols])
    return {"classes": facts.classes, "starts": int(len(starts)), "tol": TOL, "merge": MERGE,
            "symbols": f"{tried} of {len(facts.distractors)} distractor symbols", "inputs": out}


def _smoothness(p, cfg: TrainConfig, n: int, key: jax.Array, rule_state: Sequence | None) -> dict:
    """Top Hessian eigenvalue of E on ``n`` validation samples, and the loss jump of one update of the
    config's rule and optimizer (fresh optimizer state) from these parameters (the cell's own:
    on the orthogonal cell over A: W0 is held, its block is 0)."""
    from localrnn.train import train_one

    task = get_task(cfg.task)
    x, y = validation_set(task, cfg.length, n, cfg.val_seed, jnp.float64)
    loss = global_loss(task.loss)
    cell = cfg.model_cell

    def loss_fn(q):
        return loss(forward(q, x, cell=cell), y)

    eig = float(top_hessian_eigenvalue(jax.jit(loss_fn), p, key))
    one = TrainConfig(**{**cfg.model_dump(), "max_iters": 1, "val_every": 1, "val_size": 1, "patience": 0})
    r = train_one(one, initial_params=[{k: getattr(p, k) for k in p._fields}],
                  initial_rule_state=None if not rule_state else [list(rule_state)])
    after = as_float64(r.params)
    before_loss = float(loss_fn(p))
    return {"source": "one update", "samples": n, "iterations": 30, "lr": cfg.lr, "top_eigenvalues": [eig],
            "losses": [before_loss], "loss_jumps": [float(loss_jump(loss_fn, p, after))]}


def _recorded_smoothness(records: Mapping | None, cfg: TrainConfig) -> dict | None:
    """The smoothness series the run recorded along training (``Store.records``), or None: per
    recorded iteration E before the update, its jump, and the top eigenvalue if it was recorded."""
    before, jump = SMOOTHNESS_KEYS[0], SMOOTHNESS_KEYS[2]
    if not records or jump not in records or before not in records:
        return None
    its, jumps = records[jump]
    eig = _list(records[EIGEN_KEY][1]) if EIGEN_KEY in records else []
    return {"source": "recorded", "samples": None, "iterations": 30 if eig else None, "lr": cfg.lr,
            "recorded_iterations": [int(i) for i in np.asarray(its)], "top_eigenvalues": eig,
            "losses": _list(records[before][1]), "loss_jumps": _list(jumps)}


def _flow_and_sensitivity(g, first, theta: list, n_theta: int, exact: bool, probes: int, infl) -> dict:
    """The ``gradient_flow`` and ``sensitivity`` parts of the result from the norms ``g`` and ``infl`` (T, B)."""
    ratio = np.asarray(marker_ratio(g, first))
    return {"gradient_flow": {"hidden_grad_norm": _median_max(g), "first_marker_median": float(np.median(first)),
                              "marker_ratio_median": float(np.median(ratio)),
                              "marker_ratio_max": float(np.max(ratio))},
            "sensitivity": {"theta": theta, "n_theta": n_theta,
                            "method": "exact (forward mode)" if exact else f"Rademacher estimate, {probes} probes",
                            "influence_norm_mean": _list(jnp.mean(infl, axis=1)),
                            "influence_norm_max": _list(jnp.max(infl, axis=1))}}


def _diagonal(p, cfg: TrainConfig, samples: int, probes: int, max_symbols: int | None, seed: int) -> dict:
    """The measures of a diagonal cell (localrnn.analysis.diagonal): memory and attractors in closed
    form from lambda, gradient flow and sensitivity by autodiff; credit, smoothness and verdict by
    the caller."""
    task, facts, cell, T = get_task(cfg.task), task_facts(cfg.task), cfg.model_cell, cfg.length
    x, y = validation_set(task, T, samples, cfg.val_seed, jnp.float64)
    mem = diagonal.memory_closed_form(p, T)
    r, B = mem["radius"], samples
    g = diagonal.hidden_grad_norms(p, cell, (x, y), task.loss)
    first = facts.first_marker(x)
    fields = diagonal.recurrent_fields(p)
    n_theta = sum(getattr(p, f).size for f in fields)
    width = p.Why.shape[0]
    exact = T * samples * width * n_theta * 8 / 2 ** 20 <= EXACT_INFLUENCE_MIB
    infl = diagonal.influence_norms(p, x) if exact else diagonal.influence_norms_estimate(
        p, x, diagonal.rademacher_probes(p, probes, samples, seed))
    F, horizon, inputs = diagonal.step_map(p), diagonal.memory_horizon(p), {}
    for name, u in facts.constant_inputs(max_symbols).items():
        u = jnp.asarray(u, jnp.float64)
        h = diagonal.fixed_point(p, u)
        inputs[name] = {"n_fixed": 1, "n_stable": 1, "converged_starts": None, "radius": [r],
                        "norm": [float(jnp.linalg.norm(h))], "residual": float(jnp.linalg.norm(F(h, u) - h))}
    same = lambda v: {"median": [v] * (T - 1), "max": [v] * (T - 1)}  # noqa: E731
    return {
        "config": cfg.model_dump(mode="json"), "samples": samples, "t": list(range(T)),
        "memory": {"state_jacobian_norm": _median_max(np.repeat(mem["state_jacobian_norm"][:, None], B, 1)),
                   "W_radius": r, "W_sigma_max": r, "D_t": list(range(1, T)), "D_radius": same(r),
                   "D_sigma_max": same(r), "closed_form": "D_t = diag(lambda); rho = sigma_max = max |lambda|"},
        **_flow_and_sensitivity(g, first, list(fields), int(n_theta), exact, probes, infl),
        "attractors": {"classes": facts.classes, "starts": 0, "tol": TOL, "merge": MERGE, "linear": True,
                       "memory_horizon": {"median": float(np.median(horizon)), "max": float(np.max(horizon))},
                       "symbols": f"{len(facts.distractors[:max_symbols])} of {len(facts.distractors)} distractor "
                                  "symbols", "inputs": inputs},
        "credit": None, "smoothness": None,
    }


def analyze(params: Params | Mapping[str, Any], config: TrainConfig, *, samples: int = 100, hessian: bool = False,
            hessian_samples: int = 1000, probes: int = 32, starts: int = 100, max_symbols: int | None = None,
            records: Mapping | None = None, rule_state: Sequence | None = None, seed: int = 0) -> dict:
    """Every measure on ``params`` of ``config``'s network (docs/analysis.md) and the verdict.

    ``samples``: validation samples for the per-sample measures (median / max / mean over them);
    ``hessian``: also the smoothness measures on ``hessian_samples`` samples (costly);
    ``probes``: Rademacher probes per sample when the exact influence would be too large;
    ``starts``: fixed-point searches per constant input; ``max_symbols``: distractor symbols tried
    at most (None: all); ``records``: the run's stored records (``Store.records``), for the rule's
    per-lag cosine and the smoothness series recorded along training (when present they are the
    smoothness measures and ``hessian`` adds nothing); ``rule_state``: the rule's stored state (its
    leaves), for the update of the one-update loss jump. Returns a dict of lists and numbers
    (JSON-serializable).
    """
    _positive("samples", samples)
    _positive("hessian_samples", hessian_samples)
    _positive("probes", probes)
    _positive("starts", starts)
    if max_symbols is not None:
        _positive("max_symbols", max_symbols)
    own = as_float64(cell_params(params, config.model_cell) if isinstance(params, Mapping) else params)
    if config.model_cell.diagonal:
        result = _diagonal(own, config, samples, probes, max_symbols, seed)
        result["credit"] = _credit(records, task_facts(config.task).first_marker_window(config.length))
        result["smoothness"] = _recorded_smoothness(records, config)
        if result["smoothness"] is None and hessian:
            result["smoothness"] = _smoothness(own, config, hessian_samples, jax.random.PRNGKey(seed), rule_state)
        result["verdict"] = verdict(result).as_dict()
        return result
    p, cell = effective(own, config.model_cell)  # the map the cell iterates, in the SRNN's layout
    task, facts = get_task(config.task), task_facts(config.task)
    T = config.length
    x, y = validation_set(task, T, samples, config.val_seed, jnp.float64)

    jac_norms = state_jacobian_norms(p, cell, x)
    spectra = recurrence_spectra(p, cell, x)
    g = hidden_grad_norms(p, cell, (x, y), task.loss)
    first = facts.first_marker(x)

    m = p.Whh.shape[0]
    exact = T * samples * m * n_recurrent(p) * 8 / 2 ** 20 <= EXACT_INFLUENCE_MIB
    infl = influence_norms(p, cell, x) if exact else influence_norms_estimate(
        p, cell, x, rademacher_probes(p, probes, samples, seed))

    result: dict[str, Any] = {
        "config": config.model_dump(mode="json"),
        "samples": samples,
        "t": list(range(T)),
        "memory": {"state_jacobian_norm": _median_max(jac_norms),
                   "W_radius": float(spectra["W_radius"]), "W_sigma_max": float(spectra["W_sigma_max"]),
                   "D_t": list(range(1, T)), "D_radius": _median_max(spectra["D_radius"]),
                   "D_sigma_max": _median_max(spectra["D_sigma_max"])},
        **_flow_and_sensitivity(g, first, list(RECURRENT_FIELDS), n_recurrent(p), exact, probes, infl),
        "attractors": _attractors(p, config, cell, trajectory(p, cell, x), starts, seed, max_symbols),
        "credit": _credit(records, facts.first_marker_window(T)),
        "smoothness": _recorded_smoothness(records, config),
    }
    if result["smoothness"] is None and hessian:
        result["smoothness"] = _smoothness(own, config, hessian_samples, jax.random.PRNGKey(seed), rule_state)
    result["verdict"] = verdict(result).as_dict()
    return result
