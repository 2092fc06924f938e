"""Experiment specs: TOML files validated by pydantic (see ``experiments/``).

A spec names its settings once and expands into training configs::

    name = "table1"
    kind = "grid"                 # grid | curriculum | frontier | diagnostics
    title = "Table I: ..."
    seeds = 1                     # a count (0..n-1) or a list of seeds
    [fixed]                       # settings shared by every arm
    hidden = 100
    [grid]                        # axes shared by every arm (lists of values)
    task = ["temporal_order", "random_permutation"]
    length = [10, 20, 30]
    [[arms]]                      # one learning rule with its own settings and axes
    name = "LRA-diff"
    rule = "lra"
    optional = true               # skip (with a note) when the rule is not registered
    seeds = 10                    # this arm's seeds, in place of the spec's
    fixed = { c0 = 1.0, c1 = 1.0 }
    grid = { lr = [0.1, 0.01], target_step = [1.0, 0.1], inner_steps = [10, 20, 30] }
    [budget.quick]                # named budgets: iteration limits and overrides
    arms = ["LRA-diff"]           # only these arms, by label (default: all)
    max_iters = 2000
    patience = 10
    fixed = { val_size = 1000 }
    grid = { target_step = [1.0] }   # replaces that axis wherever it exists
    [budget.paper]
    max_iters = 100000
    patience = 30
    [smoothness]                  # diagnostics only, opt-in: E before/after each recorded update
    samples = 1000                # on the validation set's first N (at most val_size)
    hessian = true                # and the top Hessian eigenvalue (30 power iterations)
    [report]                      # how the report lays the results out
    rows = ["task", "arm", "inner_steps"]
    columns = "length"

A key of ``fixed``/``grid`` is a field of :class:`~localrnn.config.TrainConfig`
(``lr``, ``hidden``, ``task``, ...), a hyper-parameter of the arm's rule
(``target_step``, ``reg_lambda``, ...) or one of its static options
(``inner_steps``, ``local_loss``, ...). Every problem is a :class:`SpecError`
naming the field, found before anything runs.
"""

from __future__ import annotations

import itertools
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from localrnn.errors import first_error

__all__ = ["LADDER_KINDS", "SpecError", "ExperimentSpec", "Arm", "Budget", "PlannedTrial", "SmoothnessSpec",
           "load_spec", "parse_spec", "plan", "plan_axes", "arm_rules"]

#: kinds whose trials are curriculum ladders (the length is the curriculum's start)
LADDER_KINDS = ("curriculum", "frontier")

#: TrainConfig fields a spec does not set by name (rule and seeds have their own places)
_RESERVED_KEYS = ("rule", "seed", "seeds", "hparams", "rule_options")


class SpecError(ValueError):
    """A bad experiment spec; the message names the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_grid(grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
    for k, v in grid.items():
        if len(v) == 0:
            raise ValueError(f"{k}: empty list; give at least one value")
        if len({repr(x) for x in v}) != len(v):
            raise ValueError(f"{k}: repeated values in {v}")
    return grid


class Budget(_Strict):
    """A named budget: limits and overrides applied on top of the spec."""

    max_iters: int | None = Field(None, ge=1, description="iteration limit per run")
    patience: int | None = Field(None, ge=0, description="validations without a new best; 0 = never")
    seeds: int | list[int] | None = None
    max_length: int | None = Field(None, ge=1, description="curriculum: longest T tried")
    record_every: int | None = Field(None, ge=1, description="diagnostics: iterations between records")
    note: str = Field("", description="what this budget is, shown under the report's table")
    arms: list[str] | None = Field(None, min_length=1, description="the arms this budget runs, by label "
                                   "(or name where an arm has no label); default all")
    fixed: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, list[Any]] = Field(default_factory=dict)

    _grid_ok = field_validator("grid")(classmethod(lambda cls, v: _check_grid(v)))

    @field_validator("seeds")
    @classmethod
    def _seeds_ok(cls, v):
        return _check_seeds(v)


def _check_seeds(v):
    if v is None:
        return v
    if isinstance(v, int):
        if v < 1:
            raise ValueError(f"a seed count must be >= 1, got {v}")
        return v
    if not v:
        raise ValueError("empty list; give at least one seed")
    if any(s < 0 for s in v):
        raise ValueError(f"seeds must be >= 0, got {v}")
    if len(set(v)) != len(v):
        raise ValueError(f"repeated seeds in {v}")
    return v


class Arm(_Strict):
    """One learning rule with its settings and grid axes."""

    name: str = Field(min_length=1)
    label: str | None = Field(None, description="the arm's name in trial labels and reports (default: name); "
                              "arms that share one, e.g. one rule's per-task settings, form one column")
    rule: str
    optional: bool = False
    paper_arm: str | None = Field(None, description="the arm's name in the paper's table (report.paper), "
                                  "where a report shows the published number beside it")
    seeds: int | list[int] | None = Field(None, description="this arm's seeds in place of the spec's (a "
                                          "budget's seeds override both)")
    fixed: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, list[Any]] = Field(default_factory=dict)

    _grid_ok = field_validator("grid")(classmethod(lambda cls, v: _check_grid(v)))

    @field_validator("seeds")
    @classmethod
    def _seeds_ok(cls, v):
        return _check_seeds(v)

    @property
    def report_name(self) -> str:
        """The arm's name in trial labels and reports: its label, else its name."""
        return self.label or self.name


class CurriculumSpec(_Strict):
    start: int = Field(10, ge=1)
    step: int = Field(10, ge=1)
    max_length: int = Field(300, ge=1)
    warm_start: bool = True


class SmoothnessSpec(_Strict):
    """A diagnostics experiment's opt-in smoothness record (docs/analysis.md)."""

    samples: int = Field(1000, ge=1, description="the validation set's first N samples (at most val_size)")
    hessian: bool = Field(False, description="also the top Hessian eigenvalue (30 power iterations of HVPs)")


class ReportSpec(_Strict):
    rows: list[str] = Field(default_factory=lambda: ["task", "arm"])
    columns: str = "length"
    control: str | None = Field(None, description="arm shown beside the others as the readout-only control")
    paper: str | None = Field(None, description="key of the paper's numbers (localrnn.paper.numbers)")
    x: str | None = Field(None, description="figure x axis (figure5: reg_lambda)")
    figure: Literal["gradient_flow", "credit"] = Field(
        "gradient_flow", description="a diagnostics experiment's figure: per-layer gradient flow over "
                                     "iterations (Figures 2-4) or credit against lag per rule (docs/credit.md)")


class ExperimentSpec(_Strict):
    """A whole experiment (one paper table or figure)."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    kind: Literal["grid", "curriculum", "frontier", "diagnostics"] = "grid"
    title: str = ""
    description: str = ""
    seeds: int | list[int] = 1
    fixed: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    arms: list[Arm] = Field(min_length=1)
    budget: dict[str, Budget] = Field(default_factory=lambda: {"default": Budget()})
    curriculum: CurriculumSpec = Field(default_factory=CurriculumSpec)
    record_every: int = Field(10, ge=1)
    smoothness: SmoothnessSpec | None = Field(None, description="diagnostics: also record the loss jump (and "
                                              "the top Hessian eigenvalue) at each recorded iteration")
    report: ReportSpec = Field(default_factory=ReportSpec)

    _grid_ok = field_validator("grid")(classmethod(lambda cls, v: _check_grid(v)))

    @field_validator("seeds")
    @classmethod
    def _seeds_ok(cls, v):
        return _check_seeds(v)

    @model_validator(mode="after")
    def _names_unique(self) -> "ExperimentSpec":
        names = [a.name for a in self.arms]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"arms: repeated arm name {dup[0]!r}")
        if not self.budget:
            raise ValueError("budget: give at least one named budget")
        if self.smoothness is not None and self.kind != "diagnostics":
            raise ValueError(f"smoothness: recorded by a diagnostics experiment only; this kind is {self.kind!r}")
        return self


@dataclass
class PlannedTrial:
    """One run of an experiment: its config and the labels reports group by."""

    config: Any  # TrainConfig
    labels: dict[str, Any] = field(default_factory=dict)

    @property
    def trial_id(self) -> str:
        return self.config.run_id()


def plan_axes(trials: list[PlannedTrial]) -> dict[str, dict[str, list[Any]]]:
    """Per arm, every setting that varies across its trials with its sorted values
    (``{arm: {"lr": [0.001, 0.01, 0.1], "target_step": [...], "seed": [0, 1]}}``): what a
    dry run lists so that a reader can check a grid against the paper's."""
    seen: dict[str, dict[str, set]] = {}
    for t in trials:
        c = t.config
        values = {"task": c.task, "length": c.length, "lr": c.lr, "seed": c.seed, "cell": c.cell, "tau": c.tau,
                  **c.resolved_hparams, **c.resolved_options.model_dump(mode="json")}
        arm = seen.setdefault(str(t.labels.get("arm", c.rule)), {})
        for k, v in values.items():
            arm.setdefault(k, set()).add(v)
    return {a: {k: sorted(v, key=lambda x: (str(type(x)), x)) for k, v in keys.items() if len(v) > 1}
            for a, keys in seen.items()}


def parse_spec(data: dict, source: str = "spec") -> ExperimentSpec:
    """Validate a spec given as a dict (raises :class:`SpecError`)."""
    try:
        spec = ExperimentSpec(**data) if isinstance(data, dict) else ExperimentSpec.model_validate(data)
    except ValidationError as err:
        where, msg = first_error(err)
        raise SpecError(f"{source}: {where}: {msg}" if where else f"{source}: {msg}") from None
    for b in spec.budget:
        plan(spec, b, source=source)  # every config must be valid in every budget
    return spec


def load_spec(path: str | Path) -> ExperimentSpec:
    """Read and validate a TOML spec (raises :class:`SpecError` naming the file and field)."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise SpecError(f"{path}: cannot read: {e.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{path}: not valid TOML: {e}") from None
    return parse_spec(data, source=str(path))


def arm_rules(spec: ExperimentSpec) -> dict[str, bool]:
    """``{arm name: rule registered?}``."""
    from localrnn.rules import RULES

    return {a.name: a.rule in RULES for a in spec.arms}


def _keys(rule: str) -> dict[str, str]:
    """The keys a spec may set for ``rule``, each with where it goes in a TrainConfig: field |
    hparam | option (the rule's schema: its hyper-parameters and public options)."""
    from localrnn.config import TrainConfig
    from localrnn.rules import get_rule

    fields = {k: "field" for k in TrainConfig.model_fields if k not in _RESERVED_KEYS}
    return {**fields, **{s.name: s.kind for s in get_rule(rule).settings()}}


def _route(rule: str, key: str) -> str | None:
    """Where ``key`` goes in a TrainConfig for ``rule``: field | hparam | option | None."""
    return _keys(rule).get(key)


def _allowed(rule: str) -> str:
    return ", ".join(_keys(rule))


def _seeds(v: int | list[int]) -> list[int]:
    return list(range(v)) if isinstance(v, int) else list(v)


def active_arms(spec: ExperimentSpec, source: str = "spec") -> tuple[list[tuple[int, Arm]], list[str]]:
    """Arms whose rule is registered, and notes on optional arms that were skipped."""
    from localrnn.rules import RULES

    arms, notes = [], []
    for i, arm in enumerate(spec.arms):
        if arm.rule in RULES:
            arms.append((i, arm))
        elif arm.optional:
            notes.append(f"arm {arm.name!r} skipped: rule {arm.rule!r} is not registered")
        else:
            raise SpecError(f"{source}: arms[{i}].rule: unknown rule {arm.rule!r}; allowed: "
                            f"{', '.join(sorted(RULES))}")
    return arms, notes


def _arm_settings(spec: ExperimentSpec, where: str, arm: Arm, source: str):
    """The spec's and the arm's settings as ``(fixed, grid)``, ``{key: (path in the spec, value)}``
    (the arm's override the spec's); every key must be one the arm's rule takes."""
    fixed: dict[str, tuple[str, Any]] = {k: (f"fixed.{k}", v) for k, v in spec.fixed.items()}
    grid: dict[str, tuple[str, list]] = {k: (f"grid.{k}", v) for k, v in spec.grid.items()}
    both = sorted(set(arm.fixed) & set(arm.grid))
    if both:
        raise SpecError(f"{source}: {where}.grid.{both[0]}: also set in {where}.fixed; give it in one place")
    for k, v in arm.fixed.items():
        grid.pop(k, None)
        fixed[k] = (f"{where}.fixed.{k}", v)
    for k, v in arm.grid.items():
        fixed.pop(k, None)
        grid[k] = (f"{where}.grid.{k}", v)
    for k, (path, _) in [*fixed.items(), *grid.items()]:
        if k in _RESERVED_KEYS:
            raise SpecError(f"{source}: {path}: set {k} through the arm's rule / the spec's seeds, not here")
        if _route(arm.rule, k) is None:
            raise SpecError(f"{source}: {path}: unknown field for rule {arm.rule!r}; allowed: {_allowed(arm.rule)}")
    return fixed, grid


def plan(spec: ExperimentSpec, budget: str, source: str = "spec") -> list[PlannedTrial]:
    """Expand ``spec`` under ``budget`` into trials (grid x seeds), validating every config.

    For a curriculum the ``length`` is the curriculum's start; for the others the
    grid's. Raises :class:`SpecError` naming the field.
    """
    from localrnn.config import TrainConfig
    from localrnn.tasks import get_task

    if budget not in spec.budget:
        raise SpecError(f"{source}: budget: no budget {budget!r}; allowed: {', '.join(spec.budget)}")
    b = spec.budget[budget]
    arms, _ = active_arms(spec, source)
    if b.arms is not None:
        known = list(dict.fromkeys(a.report_name for a in spec.arms))
        for name in b.arms:
            if name not in known:
                raise SpecError(f"{source}: budget.{budget}.arms: {name!r} labels no arm; allowed: "
                                f"{', '.join(repr(k) for k in known)}")
        arms = [(i, a) for i, a in arms if a.report_name in b.arms]
    used_budget_keys: set[str] = set()
    out: list[PlannedTrial] = []
    for i, arm in arms:
        where = f"arms[{i}]"
        fixed, grid = _arm_settings(spec, where, arm, source)
        # budget overrides (applied where the key makes sense for the rule)
        for k, v in b.fixed.items():
            if _route(arm.rule, k) is not None:
                used_budget_keys.add(f"fixed.{k}")
                grid.pop(k, None)
                fixed[k] = (f"budget.{budget}.fixed.{k}", v)
        if b.max_iters is not None:
            fixed["max_iters"] = (f"budget.{budget}.max_iters", b.max_iters)
        if b.patience is not None:
            fixed["patience"] = (f"budget.{budget}.patience", b.patience)
        for k, v in b.grid.items():
            if k in grid:
                used_budget_keys.add(f"grid.{k}")
                grid[k] = (f"budget.{budget}.grid.{k}", v)
        if spec.kind in LADDER_KINDS:
            if "length" in fixed or "length" in grid:
                p = (fixed.get("length") or grid.get("length"))[0]
                raise SpecError(f"{source}: {p}: a curriculum sets the length itself (curriculum.start)")
            fixed["length"] = ("curriculum.start", spec.curriculum.start)
        elif "length" not in fixed and "length" not in grid:
            raise SpecError(f"{source}: {where}: no length; set length in fixed or grid")
        if "task" not in fixed and "task" not in grid:
            raise SpecError(f"{source}: {where}: no task; set task in fixed or grid")
        task_path, task_vals = (fixed["task"][0], [fixed["task"][1]]) if "task" in fixed else grid["task"]
        for v in task_vals:
            try:
                get_task(str(v))
            except ValueError as e:
                raise SpecError(f"{source}: {task_path}: {e}") from None
        keys = list(grid)
        seeds = _seeds(next(v for v in (b.seeds, arm.seeds, spec.seeds) if v is not None))
        for combo in itertools.product(*(grid[k][1] for k in keys)):
            values = {k: v for k, (_, v) in fixed.items()}
            values.update(zip(keys, combo))
            for seed in seeds:
                cfg = _make_config(TrainConfig, arm.rule, values, seed, fixed, grid, source)
                labels = {"arm": arm.report_name, "rule": arm.rule, "seed": seed,
                          **{k: _plain(v) for k, v in values.items()}}
                out.append(PlannedTrial(cfg, labels))
    unused = sorted({f"fixed.{k}" for k in b.fixed} | {f"grid.{k}" for k in b.grid})
    unused = [u for u in unused if u not in used_budget_keys]
    if unused and arms:
        raise SpecError(f"{source}: budget.{budget}.{unused[0]}: matches no arm's settings")
    small = [t.config.val_size for t in out if spec.smoothness and t.config.val_size < spec.smoothness.samples]
    if small:
        raise SpecError(f"{source}: smoothness.samples: {spec.smoothness.samples} exceeds val_size {small[0]} "
                        f"(budget {budget}); allowed: 1 .. {min(small)}")
    return out


def _plain(v: Any) -> Any:
    return v.replace("-", "_") if isinstance(v, str) else v


def _make_config(TrainConfig, rule: str, values: dict, seed: int, fixed: dict, grid: dict, source: str):
    kw: dict[str, Any] = {"rule": rule, "seed": seed, "hparams": {}, "rule_options": {}}
    for k, v in values.items():
        kind = _route(rule, k)
        if kind == "field":
            kw[k] = v
        elif kind == "hparam":
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                path = (grid.get(k) or fixed.get(k))[0]
                raise SpecError(f"{source}: {path}: Input should be a number, got {v!r}")
            kw["hparams"][k] = float(v)
        else:
            kw["rule_options"][k] = _plain(v)
    try:
        return TrainConfig(**kw)
    except ValidationError as err:  # ranges and allowed values: the rule's schema, checked by TrainConfig
        where, msg = first_error(err)
        key = where.rsplit(".", 1)[-1]
        path = (grid.get(key) or fixed.get(key) or (key,))[0]
        raise SpecError(f"{source}: {path}: {msg}") from None
    except ValueError as err:  # unknown task/rule raised inside validators
        raise SpecError(f"{source}: {err}") from None
