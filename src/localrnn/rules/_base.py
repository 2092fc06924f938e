"""The learning-rule contract (DESIGN.md).

A rule is built once from its static options and then used as a pure,
jit- and vmap-compatible function::

    grads, rule_state, record = rule.step(params, rule_state, batch, hparams)

* ``params``: :class:`localrnn.model.Params`.
* ``rule_state``: any pytree the rule carries between iterations (``()`` if none),
  created by ``rule.init(key, params)``.
* ``batch``: ``(x, y)``, ``x`` (T, B, n), ``y`` (B, k).
* ``hparams``: a dict of scalar arrays (traced), exactly the keys of the rule's
  ``RuleDef.hparams``; configs that differ only in these share one program.
* ``grads``: a ``Params`` of *descent directions* (the optimizer applies
  ``-lr * grads``), i.e. gradients for gradient-based rules.
* ``record``: a dict; always ``record["loss"]``, the global loss E at ``params``
  on this batch; with ``record=True`` at build time also per-layer diagnostics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, NamedTuple

import jax
import numpy as np
from pydantic import BaseModel, ConfigDict

from localrnn.model import Params

__all__ = ["Rule", "RuleDef", "Hparam", "NoOptions"]

Batch = tuple[jax.Array, jax.Array]
Hparams = Mapping[str, jax.Array]


class Rule(NamedTuple):
    """A built rule: ``init(key, params) -> state`` and ``step(...)`` as above."""

    name: str
    init: Callable[[jax.Array, Params], Any]
    step: Callable[[Params, Any, Batch, Hparams], tuple[Params, Any, dict]]
    #: state fed before step 0 at validation: "zero" (SPEC 1) or "reference" (SPEC 7(f))
    validation_initial_state: str = "zero"
    #: optional ``metrics(params, state) -> {name: scalar}`` recorded at every validation
    metrics: Callable[[Params, Any], dict] | None = None
    #: a config stops as ``diverged`` when a metric exceeds its limit (e.g. a spectral radius)
    metric_limits: Mapping[str, float] = {}


class NoOptions(BaseModel):
    """Static options of a rule that has none."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Hparam:
    """A traced hyper-parameter, declared once: everything else (CLI flag, help,
    range checks, spec validation, ``localrnn rules``) is derived from it.

    ``low``/``high``: allowed closed range (None = unbounded); values must be finite.
    ``switches``: name of a boolean static option that a non-zero value turns on
    (e.g. ``reg_lambda`` switches ``regularize`` on), so that a zero weight costs nothing.
    """

    default: float
    help: str
    low: float | None = 0.0
    high: float | None = None
    switches: str | None = None

    def check(self, name: str, value: float) -> str | None:
        """None if ``value`` is allowed, else what is wrong (one phrase naming the range)."""
        if not math.isfinite(value):
            return f"must be finite, got {value}"
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            return f"must be in {self.range_text()}, got {value}"
        return None

    def range_text(self) -> str:
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "inf" if self.high is None else f"{self.high:g}"
        return f"[{lo}, {hi}]"


@dataclass(frozen=True)
class RuleDef:
    """A registered rule, declared once.

    ``options``: pydantic model (frozen, extra="forbid") of static, structural
    options; each field's ``description`` is its help text and its constraints
    (``ge``, ``Literal``) its allowed values. Two configs with different options
    compile different programs.
    ``hparams``: traced hyper-parameters, name -> :class:`Hparam`.
    ``build(options, loss, record) -> Rule`` where ``loss`` names the task's
    global loss ("cross_entropy" | "mse").
    """

    name: str
    summary: str
    options: type[BaseModel]
    hparams: Mapping[str, Hparam]
    build: Callable[[BaseModel, str, bool], Rule]

    @property
    def defaults(self) -> dict[str, float]:
        """Default value of every traced hyper-parameter."""
        return {k: h.default for k, h in self.hparams.items()}

    def derive_options(self, options: BaseModel, hparams: Mapping[str, float]) -> BaseModel:
        """Turn on each option that a non-zero hyper-parameter switches on (``Hparam.switches``)."""
        update = {h.switches: True for k, h in self.hparams.items()
                  if h.switches and bool(np.any(np.asarray(hparams.get(k, h.default)) != 0))}
        return options.model_copy(update=update) if update else options


def zero_state(key: jax.Array, params: Params) -> tuple:
    """``init`` for rules without state."""
    return ()
