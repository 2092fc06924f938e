"""User-facing configuration of one training run, validated by pydantic.

Every error names the field, the value and what is allowed. A config splits
into *structure* (what must be equal for configs to share one compiled,
vmapped program: task, length, rule and its static options, sizes, optimizer,
dtype, validation set) and *values* (learning rate, clip, rule hyper-parameters,
seed, budget), which may differ between configs trained together.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from localrnn.cells import CELLS, Cell, CellName, make_cell
from localrnn.errors import first_error
from localrnn.rules import get_rule, resolve_options
from localrnn.tasks import get_task

__all__ = ["TrainConfig"]


# Fields added after studies were stored: in a config's key and id only where not at their defaults.
LATER_FIELDS = ("cell", "tau", "validation")


class TrainConfig(BaseModel):
    """One training run (docs/protocols.md). Defaults are the paper's protocol.

    Every rule setting is checked against the rule's schema (its ``Hparam`` ranges and its
    options model), so the CLI, specs and the Python API reject the same values. Errors that
    involve several fields name the one to blame first: ``hparams.target_step: must be ...``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    task: str = Field(description="task name (temporal_order, temporal_order_3bit, random_permutation, adding)")
    length: int = Field(description="sequence length T")
    rule: str = "bptt"
    rule_options: dict[str, Any] = Field(default_factory=dict, description="static options of the rule")
    hparams: dict[str, float] = Field(default_factory=dict, description="traced hyper-parameters of the rule")
    lr: float = 0.01
    optimizer: Literal["sgd", "nesterov", "adam"] = "sgd"
    momentum: float = Field(0.9, ge=0.0, lt=1.0, description="momentum of the nesterov optimizer")
    hidden: int = Field(100, ge=1)
    cell: CellName = Field("srnn", description=f"recurrent cell (docs/cells.md): {' | '.join(CELLS)}")
    tau: float = Field(1.0, description="leak time constant of the leaky cell, >= 1 (1 = no leak)")
    batch: int = Field(20, ge=1)
    max_iters: int = Field(100_000, ge=1)
    patience: int = Field(30, ge=0, description="validations without a new best before stopping; 0 = never")
    val_every: int = Field(100, ge=1)
    val_size: int = Field(10_000, ge=1)
    val_seed: int = Field(20_000_000, ge=0)
    validation: Literal["fixed", "fresh"] = Field(
        "fixed", description="validation samples: one fixed set of val_size (seeded by val_seed), or a "
        "fresh draw of val_size at every validation as the TPTT code does (docs/protocols.md)")
    clip: float | None = Field(None, description="gradient-norm clipping threshold; None = off")
    dtype: Literal["float32", "float64"] = "float32"
    seed: int = Field(0, ge=0)

    @field_validator("task")
    @classmethod
    def _task_known(cls, v: str) -> str:
        return get_task(v).name

    @field_validator("rule")
    @classmethod
    def _rule_known(cls, v: str) -> str:
        return get_rule(v).name

    @field_validator("lr")
    @classmethod
    def _lr_positive(cls, v: float) -> float:
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"must be a finite number > 0, got {v}")
        return v

    @field_validator("clip")
    @classmethod
    def _clip_positive(cls, v: float | None) -> float | None:
        if v is not None and not (math.isfinite(v) and v > 0):
            raise ValueError(f"must be a finite number > 0 (or omitted), got {v}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "TrainConfig":
        task = get_task(self.task)
        if self.length < task.min_length:
            raise ValueError(f"length: {task.cli_name} needs length >= {task.min_length}, got {self.length}")
        make_cell(self.cell, self.tau)
        rule = get_rule(self.rule)
        if self.cell not in rule.cells:
            raise ValueError(f"cell: rule {rule.name!r} is defined for the {' | '.join(rule.cells)} cell only, "
                             f"got {self.cell!r}")
        try:
            rule.check_hparams(self.hparams)
        except ValueError as e:
            raise ValueError(f"hparams.{e}") from None
        try:
            rule.resolve(self.rule_options, self.hparams)
        except ValidationError as err:
            where, msg = first_error(err)
            raise ValueError(f"rule_options.{where}: {msg}") from None
        try:  # what only building the rule can tell: an option its cell cannot take
            rule.make(self.resolved_options, task.loss, False, self.model_cell)
        except ValueError as e:
            raise ValueError(f"rule_options.{e}") from None
        return self

    # -- derived -------------------------------------------------------------
    @property
    def resolved_hparams(self) -> dict[str, float]:
        """The rule's hyper-parameters with defaults filled in."""
        return {**get_rule(self.rule).defaults, **self.hparams}

    @property
    def resolved_options(self):
        """The rule's static options, validated and derived (pydantic model)."""
        return resolve_options(self.rule, self.rule_options, self.hparams, self.model_cell)

    @property
    def model_cell(self) -> Cell:
        """The recurrent cell (localrnn.cells) this config trains."""
        return make_cell(self.cell, self.tau)

    def _later_fields(self) -> dict[str, Any]:
        """Fields added after studies were stored, only where they differ from their defaults
        (``cell`` and ``tau`` for a cell other than the SRNN; ``validation`` when fresh): the keys
        and ids of the configs stored before them stay what they were (stored studies resume)."""
        out: dict[str, Any] = {} if self.cell == "srnn" else {"cell": self.cell, "tau": self.tau}
        if self.validation != "fixed":
            out["validation"] = self.validation
        return out

    def structure_key(self) -> str:
        """Configs with equal keys train together as one vmapped program."""
        return json.dumps({
            "task": self.task, "length": self.length, "rule": self.rule,
            "options": self.resolved_options.model_dump(mode="json"),
            "optimizer": self.optimizer, "momentum": self.momentum, "hidden": self.hidden,
            "batch": self.batch, "val_every": self.val_every, "val_size": self.val_size,
            "val_seed": self.val_seed, "dtype": self.dtype, **self._later_fields(),
        }, sort_keys=True)

    def run_id(self) -> str:
        """Stable hash of the resolved config (seed included)."""
        payload = {k: v for k, v in self.model_dump(mode="json").items() if k not in LATER_FIELDS}
        payload.update(self._later_fields())
        payload["hparams"] = self.resolved_hparams
        payload["rule_options"] = self.resolved_options.model_dump(mode="json")
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
