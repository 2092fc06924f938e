"""Learning-rule registry. Every rule follows the contract in :mod:`localrnn.rules._base`
(docs/extending.md: adding a rule touches its own file and this registry only).

>>> from localrnn.rules import make_rule
>>> rule = make_rule("bptt")
>>> rule.name
'bptt'
"""

from __future__ import annotations

from typing import Any

from localrnn.cells import Cell
from localrnn.rules._base import Hparam, NoOptions, Rule, RuleDef, Setting
from localrnn.rules import bptt as _bptt
from localrnn.rules import eprop as _eprop
from localrnn.rules import fa as _fa
from localrnn.rules import lra as _lra
from localrnn.rules import lra_fdbk as _lra_fdbk
from localrnn.rules import readout as _readout
from localrnn.rules import rtrl as _rtrl
from localrnn.rules import snap1 as _snap1
from localrnn.rules import tptt as _tptt
from localrnn.rules import uoro as _uoro

__all__ = ["Rule", "RuleDef", "Hparam", "NoOptions", "Setting", "RULES", "register", "get_rule",
           "make_rule", "resolve_options"]

RULES: dict[str, RuleDef] = {}


def register(rule: RuleDef) -> RuleDef:
    """Add a rule to the registry (by ``rule.name``); its settings need distinct names, and each
    ``Hparam.switches`` must name one of its boolean options."""
    fields = rule.options.model_fields
    both = sorted(set(rule.hparams) & set(fields))
    if both:
        raise ValueError(f"rule {rule.name!r}: {both[0]!r} is both a hyper-parameter and an option")
    for k, h in rule.hparams.items():
        if h.switches and (h.switches not in fields or fields[h.switches].annotation is not bool):
            raise ValueError(f"rule {rule.name!r}: {k} switches {h.switches!r}, which is not a boolean option")
    RULES[rule.name] = rule
    return rule


for _def in (_bptt.RULE, _readout.RULE, _lra.RULE, _tptt.RULE, _rtrl.RULE, _snap1.RULE, _uoro.RULE, _eprop.RULE,
             _eprop.RFLO, _fa.RULE, _lra_fdbk.RULE):
    register(_def)


def get_rule(name: str) -> RuleDef:
    """The registered rule ``name`` (``-`` may stand for ``_``, as in task names: ``lra-fdbk``);
    a ValueError lists the allowed names."""
    name = name.replace("-", "_")
    if name not in RULES:
        raise ValueError(f"unknown rule {name!r}; allowed: {', '.join(sorted(RULES))}")
    return RULES[name]


def resolve_options(name: str, options: dict[str, Any] | None = None,
                    hparams: dict[str, float] | None = None, cell: Cell | None = None):
    """Validated static options of rule ``name`` on ``cell`` (pydantic errors name the field)."""
    return get_rule(name).resolve(options, hparams, cell)


def make_rule(name: str, loss: str = "cross_entropy", record: bool = False,
              hparams: dict[str, float] | None = None, cell: Cell | None = None, **options: Any) -> Rule:
    """Build rule ``name`` with static ``options`` for a task whose global loss is ``loss``, on
    ``cell`` (default the SRNN; localrnn.cells)."""
    return get_rule(name).make(resolve_options(name, options, hparams, cell), loss, record, cell)
