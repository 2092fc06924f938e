"""The learning-rule contract and the schema each rule declares once (docs/extending.md).

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

import functools
import math
from dataclasses import dataclass
from typing import Any, Callable, Literal, Mapping, NamedTuple, get_args, get_origin

import jax
import numpy as np
from pydantic import BaseModel, ConfigDict
from pydantic.fields import FieldInfo

from localrnn.cells import Cell
from localrnn.model import Params, effective_params

__all__ = ["Rule", "RuleDef", "Hparam", "NoOptions", "Setting", "on_cell_params"]

Batch = tuple[jax.Array, jax.Array]
Hparams = Mapping[str, jax.Array]


class Rule(NamedTuple):
    """A built rule: ``init(key, params) -> state`` and ``step(...)`` as above."""

    name: str
    init: Callable[[jax.Array, Params], Any]
    step: Callable[[Params, Any, Batch, Hparams], tuple[Params, Any, dict]]
    #: state fed before step 0 at validation: "zero" (docs/network.md) or "reference"
    #: (docs/lra.md#published-code-options, validation_initial_state)
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

    def check(self, value: float) -> str | None:
        """None if ``value`` is allowed, else what is wrong (one phrase naming the range)."""
        if not math.isfinite(value):
            return f"must be finite, got {value}"
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            return f"must be in {self.range_text()}, got {value}"
        return None

    def range_text(self) -> str:
        return interval_text(self.low, self.high)


def interval_text(low: float | None, high: float | None, low_open: bool = False,
                  high_open: bool = False) -> str:
    """``[0, inf]``, ``(0, 1]``, ...: an allowed range as the error messages and help show it."""
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    return f"{'(' if low_open else '['}{lo}, {hi}{')' if high_open else ']'}"


@dataclass(frozen=True)
class Setting:
    """One user-facing setting of a rule (a hyper-parameter or a public static option), as the
    CLI flags, ``localrnn rules`` and spec validation see it.

    ``type``: float | int | bool | str; ``choices``: the allowed values of a ``Literal`` option;
    ``range``: the allowed interval (``[0, inf]``) or None.
    """

    name: str
    kind: Literal["hparam", "option"]
    type: type
    default: Any
    help: str
    choices: tuple[str, ...] | None = None
    range: str | None = None

    def describe(self, dashes: bool = False) -> str:
        """``help; default d; allowed ...`` in one line (``dashes``: choices as the CLI spells them)."""
        spell = (lambda v: str(v).replace("_", "-")) if dashes else str
        allowed = " | ".join(map(spell, self.choices)) if self.choices else self.range
        default = spell(self.default) if self.choices else self.default
        parts = [self.help, f"default {default}"] + ([f"allowed {allowed}"] if allowed else [])
        return "; ".join(p for p in parts if p)


def _option_setting(name: str, field: FieldInfo) -> Setting:
    """A static option's :class:`Setting`, read from its pydantic field."""
    ann = field.annotation
    if get_origin(ann) is Literal:
        return Setting(name, "option", str, field.default, field.description or "",
                       choices=tuple(str(v) for v in get_args(ann)))
    bound = {k: getattr(m, k) for m in field.metadata for k in ("ge", "gt", "le", "lt") if hasattr(m, k)}
    low, high = bound.get("ge", bound.get("gt")), bound.get("le", bound.get("lt"))
    low_open, high_open = "gt" in bound, "lt" in bound
    bounded = low is not None or high is not None
    return Setting(name, "option", ann if ann in (bool, int, float) else str, field.default,
                   field.description or "",
                   range=interval_text(low, high, low_open, high_open) if bounded else None)


@dataclass(frozen=True)
class RuleDef:
    """A registered rule, declared once.

    ``options``: pydantic model (frozen, extra="forbid") of static, structural
    options; each field's ``description`` is its help text and its constraints
    (``ge``, ``Literal``) its allowed values. Two configs with different options
    compile different programs.
    ``hparams``: traced hyper-parameters, name -> :class:`Hparam`.
    ``build(options, loss, record, cell) -> Rule`` where ``loss`` names the task's
    global loss ("cross_entropy" | "mse") and ``cell`` is the recurrent cell
    (:class:`localrnn.cells.Cell`, default the SRNN).
    ``cells``: the cells the rule is defined for; a config naming another is refused. On a cell
    with parameters of its own (orthogonal) the rule is built for the SRNN and runs on the
    effective parameters (:func:`on_cell_params`): ``build`` never sees that cell.
    """

    name: str
    summary: str
    options: type[BaseModel]
    hparams: Mapping[str, Hparam]
    build: Callable[..., Rule]
    cells: tuple[str, ...] = ("srnn",)

    def make(self, options: BaseModel, loss: str, record: bool, cell: Cell | None = None) -> Rule:
        """``build`` with ``cell`` (default the SRNN); ValueError naming ``cell`` if the rule
        is not defined for it."""
        if cell is None or cell.name == "srnn":
            return self.build(options, loss, record)
        if cell.name not in self.cells:
            raise ValueError(f"cell: rule {self.name!r} is defined for the {' | '.join(self.cells)} cell only, "
                             f"got {cell.name!r}")
        if cell.parametrized:
            return on_cell_params(self.build(options, loss, record), cell)
        return self.build(options, loss, record, cell)

    @property
    def defaults(self) -> dict[str, float]:
        """Default value of every traced hyper-parameter."""
        return {k: h.default for k, h in self.hparams.items()}

    @property
    def internal_options(self) -> frozenset[str]:
        """Options a hyper-parameter switches on (``Hparam.switches``): set by the rule, not by users."""
        return frozenset(h.switches for h in self.hparams.values() if h.switches)

    def settings(self) -> list[Setting]:
        """The user-facing settings: every hyper-parameter, then every public static option."""
        return list(self._settings)

    @functools.cached_property
    def _settings(self) -> tuple[Setting, ...]:
        # read once per rule: spec planning asks for them for every key of every trial
        hps = [Setting(k, "hparam", float, h.default, h.help, range=h.range_text())
               for k, h in self.hparams.items()]
        return tuple(hps + [_option_setting(k, f) for k, f in self.options.model_fields.items()
                            if k not in self.internal_options])

    def check_hparams(self, hparams: Mapping[str, float]) -> None:
        """ValueError ``name: what is wrong`` for an unknown or out-of-range hyper-parameter."""
        for name, value in hparams.items():
            if name not in self.hparams:
                allowed = ", ".join(self.hparams) or "none"
                raise ValueError(f"{name}: rule {self.name!r} has no hyper-parameter {name!r}; "
                                 f"allowed: {allowed}")
            problem = self.hparams[name].check(value)
            if problem:
                raise ValueError(f"{name}: {problem}")

    def resolve(self, options: Mapping[str, Any] | None = None,
                hparams: Mapping[str, float] | None = None, cell: Cell | None = None) -> BaseModel:
        """Validated static options (pydantic errors name the field), derived from ``hparams``; an
        options model may give a cell its own defaults (it reads ``cell`` from the validation context)."""
        validated = self.options.model_validate(dict(options or {}), context={"cell": cell})
        return self.derive_options(validated, {**self.defaults, **(hparams or {})})

    def derive_options(self, options: BaseModel, hparams: Mapping[str, float]) -> BaseModel:
        """Turn on each option that a non-zero hyper-parameter switches on (``Hparam.switches``)."""
        update = {h.switches: True for k, h in self.hparams.items()
                  if h.switches and bool(np.any(np.asarray(hparams.get(k, h.default)) != 0))}
        return options.model_copy(update=update) if update else options


def on_cell_params(rule: Rule, cell: Cell) -> Rule:
    """``rule`` (built for the SRNN) on ``cell``'s own parameters: it sees the SRNN parameters the
    cell iterates (``Whh = cell.recurrent(params)``, :func:`localrnn.model.effective_params`) and
    its directions become the cell's by :meth:`Cell.descend` (orthogonal: A's is the VJP of
    ``A -> Whh`` applied to the rule's Whh direction)."""
    def effective(params):
        return effective_params(params, cell)

    def step(params, state, batch, hparams):
        grads, state, rec = rule.step(effective(params), state, batch, hparams)
        return cell.descend(params, grads), state, rec

    metrics = rule.metrics and (lambda params, state: rule.metrics(effective(params), state))
    return rule._replace(init=lambda key, params: rule.init(key, effective(params)), step=step, metrics=metrics)


def zero_state(key: jax.Array, params: Params) -> tuple:
    """``init`` for rules without state."""
    return ()
