"""The experiment kinds behind one protocol.

Every kind is a function ``run(store, spec, budget, executor=None, *, progress=None,
source="spec", **options) -> ExperimentSummary`` that runs what is missing of the spec
in the store and says what it did (``.experiment``, ``.notes``, ``.text``: one line).
``progress`` receives one-line messages. The CLI and the reproduce command look kinds
up here; a new kind is one function and one entry in :data:`KINDS`.
"""

from __future__ import annotations

from typing import Any, Callable

from localrnn.experiments.curriculum import run_curriculum
from localrnn.experiments.diagnostics import run_diagnostics
from localrnn.experiments.executors import Executor
from localrnn.experiments.spec import ExperimentSpec
from localrnn.experiments.store import Store
from localrnn.experiments.sweep import ExperimentSummary, run_sweep

__all__ = ["KINDS", "run_experiment", "ExperimentSummary"]

#: spec ``kind`` -> its runner
KINDS: dict[str, Callable[..., ExperimentSummary]] = {
    "grid": run_sweep,
    "curriculum": run_curriculum,
    "frontier": run_curriculum,  # a curriculum over seeds, reported as P(solved) against T
    "diagnostics": run_diagnostics,
}


def run_experiment(store: Store, spec: ExperimentSpec, budget: str, executor: Executor | None = None, *,
                   progress: Callable[[str], None] | None = None, source: str = "spec",
                   **options: Any) -> ExperimentSummary:
    """Run ``spec`` (any kind) under ``budget``; ``options`` go to its kind (e.g. ``warm_start``)."""
    return KINDS[spec.kind](store, spec, budget, executor, progress=progress, source=source, **options)
