"""Per-layer gradient-flow records (docs/protocols.md, the paper's Figures 2-4).

A diagnostics run is an ordinary training run in the loop's recording mode
(:func:`localrnn.train.train` with ``record_every``): same initialization, data stream,
optimizer and divergence guard, with the rule built with ``record=True``. It trains
``max_iters`` iterations (rounded up to a multiple of ``every``) and validates once, at
the end; every ``every`` iterations it keeps the rule's per-layer record of the last
iteration and the mean global loss of the ``every`` iterations before it. The LRA
rule's record holds ``local_loss``, ``target_displacement_norm``, ``grad_Whh_norm`` and
``grad_Wxh_norm``, each of shape (T,); any rule's record keys are kept as they come
(BPTT gives ``dE_dh_norm``). A spec's ``[smoothness]`` adds the smoothness keys of
:mod:`localrnn.analysis.smoothness` to every record. Each trial keeps its final parameters and
rule state, so ``localrnn analyze`` reads it with its records.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Callable

from localrnn.analysis.smoothness import SmoothnessRecording
from localrnn.config import TrainConfig
from localrnn.experiments.executors import Executor
from localrnn.experiments.spec import ExperimentSpec, active_arms, plan
from localrnn.experiments.store import Store
from localrnn.experiments.sweep import ExperimentSummary, _state_of, experiment_name, make_jobs
from localrnn.rules import Rule
from localrnn.train import train

__all__ = ["record_run", "run_diagnostics", "recording_config", "RECORD_KEYS"]

#: per-layer keys of the LRA record (the contract figures read)
RECORD_KEYS = ("local_loss", "target_displacement_norm", "grad_Whh_norm", "grad_Wxh_norm")


def recording_config(cfg: TrainConfig, every: int) -> TrainConfig:
    """``cfg`` trained for ``ceil(max_iters / every) * every`` iterations, validated only at the end."""
    total = -(-cfg.max_iters // every) * every
    return cfg.model_copy(update={"max_iters": total, "val_every": total, "patience": 0})


def record_run(cfg: TrainConfig, every: int = 10, rule: Rule | None = None,
               smoothness: SmoothnessRecording | None = None) -> tuple[dict, list[tuple[int, dict[str, Any]]]]:
    """Train ``cfg`` recording every ``every`` iterations (see the module docstring).

    Returns ``(result, records)``: ``result`` the run's result as the store keeps it,
    ``records`` a list of ``(iteration, {name: array})`` with ``global_loss`` and the rule's
    record entries (and the smoothness keys with ``smoothness``). ``rule`` overrides the built rule (tests).
    """
    r = train([recording_config(cfg, every)], record_every=every, rule=rule, smoothness=smoothness)[0]
    return r.to_dict(), r.records


def run_diagnostics(store: Store, spec: ExperimentSpec, budget: str, executor: Executor | None = None, *,
                    progress: Callable[[str], None] | None = None, source: str = "spec") -> ExperimentSummary:
    """Record every trial of a ``diagnostics`` spec in this process (``executor`` is not used:
    records stay in the driver); trials recorded before are skipped."""
    trials = plan(spec, budget, source)
    _, notes = active_arms(spec, source)
    every = spec.budget[budget].record_every or spec.record_every
    name = experiment_name(spec, budget)
    store.add_experiment(name, "diagnostics", {"spec": spec.model_dump(mode="json"), "budget": budget,
                                               "record_every": every})
    init: dict[str, Any] = {"diagnostics": True, "every": every}
    smooth = None
    if spec.smoothness is not None:  # only then: trial ids without it are as before
        init["smoothness"] = spec.smoothness.model_dump()
        smooth = SmoothnessRecording(samples=spec.smoothness.samples, hessian=spec.smoothness.hessian)
    ids = [hashlib.sha256(json.dumps({"run_id": t.trial_id, **init}, sort_keys=True).encode()).hexdigest()[:16]
           for t in trials]
    store.register_trials(name, [(tid, t.config, t.labels, init) for tid, t in zip(ids, trials)])
    done = store.complete_ids(ids)
    todo = [i for i, tid in enumerate(ids) if tid not in done]
    summary = ExperimentSummary(experiment=name, kind="diagnostics", total=len(ids),
                                skipped=len(ids) - len(todo), notes=notes)
    for job in make_jobs([trials[i] for i in todo]):
        picked = [todo[j] for j in job]
        store.set_status([ids[i] for i in picked], "running")
        results = train([recording_config(trials[i].config, every) for i in picked], record_every=every,
                        smoothness=smooth)
        for i, r in zip(picked, results):
            store.write_records(ids[i], r.records)
            d = r.to_dict(keep_state=True)
            store.write_result(ids[i], d, _state_of(d))
            if progress:
                progress(f"{trials[i].labels['arm']}: {r.status} ({r.iterations} iterations)")
        summary.ran += len(picked)
    summary.text = f"{name}: {summary.ran} of {summary.total} runs recorded now"
    return summary
