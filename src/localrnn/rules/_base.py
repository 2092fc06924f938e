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

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, NamedTuple

import jax
from pydantic import BaseModel, ConfigDict

from localrnn.model import Params

__all__ = ["Rule", "RuleDef", "NoOptions"]

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
class RuleDef:
    """A registered rule.

    ``options``: pydantic model (frozen, extra="forbid") of static, structural
    options; two configs with different options compile different programs.
    ``hparams``: traced hyper-parameters with their defaults.
    ``build(options, loss, record) -> Rule`` where ``loss`` names the task's
    global loss ("cross_entropy" | "mse").
    ``derive_options(options, hparams) -> options`` lets a rule turn a value into
    a structural switch (e.g. skip a regularizer whose weight is 0).
    """

    name: str
    summary: str
    options: type[BaseModel]
    hparams: Mapping[str, float]
    build: Callable[[BaseModel, str, bool], Rule]
    derive_options: Callable[[BaseModel, Mapping[str, float]], BaseModel] = field(
        default=lambda options, hparams: options)


def zero_state(key: jax.Array, params: Params) -> tuple:
    """``init`` for rules without state."""
    return ()
