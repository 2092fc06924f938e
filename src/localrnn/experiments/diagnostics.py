"""Per-layer gradient-flow records (SPEC 5, Figures 2-4).

:func:`record_run` trains one config like :func:`localrnn.train.train` (same
initialization, data stream and optimizer) with the rule built with
``record=True``, in compiled chunks of ``every`` iterations, and keeps the
per-layer record of the last iteration of every chunk with the chunk's mean global
loss. The LRA rule's record holds ``local_loss``, ``target_displacement_norm``,
``grad_Whh_norm`` and ``grad_Wxh_norm``, each of shape (T,); any rule's record
keys are kept as they come (BPTT gives ``dE_dh_norm``).
"""

from __future__ import annotations

import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from localrnn.config import TrainConfig
from localrnn.model import init_params
from localrnn.rules import get_rule
from localrnn.tasks import get_task

__all__ = ["record_run", "RECORD_KEYS"]

#: per-layer keys of the LRA record (the contract figures read)
RECORD_KEYS = ("local_loss", "target_displacement_norm", "grad_Whh_norm", "grad_Wxh_norm")


def record_run(cfg: TrainConfig, every: int = 10, rule=None) -> tuple[dict, list[tuple[int, dict[str, Any]]]]:
    """Train ``cfg`` for ``cfg.max_iters`` iterations, recording every ``every``.

    Returns ``(result, records)``: ``result`` a RunResult-like dict (status from the
    final validation), ``records`` a list of ``(iteration, {name: array})`` with
    ``global_loss`` (mean over the chunk) and the rule's record entries.
    ``rule`` overrides the built rule (tests).
    """
    from localrnn.train import _clip_by_norm, evaluate_params, make_optimizer, SOLVED_ERROR_RATE

    task = get_task(cfg.task)
    dtype = jnp.dtype(cfg.dtype)
    rule = rule or get_rule(cfg.rule).build(cfg.resolved_options, task.loss, True)
    opt = make_optimizer(cfg.optimizer, cfg.momentum)
    hp = {k: jnp.asarray(v, dtype) for k, v in cfg.resolved_hparams.items()}
    lr = jnp.asarray(cfg.lr, dtype)
    clip = jnp.asarray(np.inf if cfg.clip is None else cfg.clip, dtype)

    k_init, k_data, k_rule = jax.random.split(jax.random.PRNGKey(cfg.seed), 3)
    params = init_params(k_init, task.n_in, cfg.hidden, task.n_out, dtype)
    state = (params, opt.init(params), rule.init(k_rule, params), k_data)

    def one(carry, _):
        params, opt_state, rule_state, key = carry
        key, k_batch = jax.random.split(key)
        batch = task.sample(k_batch, cfg.length, cfg.batch, dtype)
        grads, rule_state, rec = rule.step(params, rule_state, batch, hp)
        grads = _clip_by_norm(grads, clip)
        direction, opt_state = opt.update(grads, opt_state, params)
        params = jax.tree.map(lambda p, d: p - lr * d, params, direction)
        return (params, opt_state, rule_state, key), rec

    @jax.jit
    def chunk(carry):
        carry, recs = jax.lax.scan(one, carry, None, length=every)
        last = jax.tree.map(lambda a: a[-1], recs)
        last["global_loss"] = jnp.mean(recs["loss"])
        return carry, last

    evaluate = jax.jit(lambda p: evaluate_params(p, task, cfg.length, cfg.val_size, cfg.val_seed, dtype,
                                                 rule.validation_initial_state))
    t0 = time.perf_counter()
    records: list[tuple[int, dict[str, Any]]] = []
    done, diverged = 0, False
    while done < cfg.max_iters:
        state, rec = chunk(state)
        done += every
        rec = {k: np.asarray(v) for k, v in rec.items() if k != "loss"}
        records.append((done, rec))
        if not np.isfinite(rec["global_loss"]):
            diverged = True
            break
    errors, val_loss = (np.asarray(a) for a in evaluate(state[0]))
    acc = 1.0 - int(errors) / cfg.val_size
    status = ("diverged" if diverged else
              "solved" if int(errors) < SOLVED_ERROR_RATE * cfg.val_size else "failed")
    result = {"status": status, "best_accuracy": acc, "best_iteration": done, "iterations": done,
              "seconds": time.perf_counter() - t0,
              "history": [{"iteration": done, "train_loss": float(records[-1][1]["global_loss"]),
                           "val_loss": float(val_loss), "val_accuracy": acc, "val_errors": int(errors)}]}
    return result, records


def run_diagnostics(store, spec, budget: str, *, progress=None, source: str = "spec"):
    """Record every trial of a ``diagnostics`` spec (in this process); skips recorded ones."""
    import hashlib
    import json

    from localrnn.experiments.spec import active_arms, plan
    from localrnn.experiments.sweep import experiment_name

    trials = plan(spec, budget, source)
    _, notes = active_arms(spec, source)
    every = spec.budget[budget].record_every or spec.record_every
    name = experiment_name(spec, budget)
    store.add_experiment(name, "diagnostics", {"spec": spec.model_dump(mode="json"), "budget": budget,
                                               "record_every": every})
    items = []
    for t in trials:
        init = {"diagnostics": True, "every": every}
        tid = hashlib.sha256(json.dumps({"run_id": t.trial_id, **init}, sort_keys=True).encode()).hexdigest()[:16]
        items.append((tid, t, init))
    store.register_trials(name, [(tid, t.config, t.labels, init) for tid, t, init in items])
    done = store.complete_ids(tid for tid, _, _ in items)
    ran = 0
    for tid, t, _ in items:
        if tid in done:
            continue
        store.set_status([tid], "running")
        result, records = record_run(t.config, every)
        store.write_records(tid, records)
        store.write_result(tid, result)
        ran += 1
        if progress:
            progress(f"{t.labels['arm']}: {result['status']} ({result['iterations']} iterations)")
    return {"experiment": name, "ran": ran, "total": len(items), "notes": notes}
