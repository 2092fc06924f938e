"""``localrnn train``'s rule flags, generated from the registered rules' schemas.

Every hyper-parameter (``Hparam``) and every public static option of every registered rule
becomes one flag, ``target_step`` -> ``--target-step``; a setting that several rules share
(``reg_lambda``) is one flag whose help names them. There is no per-rule table here: a rule
registered in :mod:`localrnn.rules` gets its flags, help and ranges from its own declaration.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Annotated, Any, Optional

import typer

from localrnn.cli.app import UsageError
from localrnn.rules import RULES, Setting

__all__ = ["RuleFlag", "flag_name", "rule_flags", "rule_parameters", "split_rule_values"]


def flag_name(name: str) -> str:
    """``target_step`` -> ``--target-step``."""
    return "--" + name.replace("_", "-")


@dataclass(frozen=True)
class RuleFlag:
    """One flag: the setting ``name`` as the rules that take it declare it."""

    name: str
    settings: dict[str, Setting]  # rule -> its declaration

    @property
    def first(self) -> Setting:
        return next(iter(self.settings.values()))

    def help(self) -> str:
        """The declaration's help, default and allowed values; per rule when they differ."""
        texts = {rule: s.describe(dashes=True) for rule, s in self.settings.items()}
        if len(texts) == 1:
            return next(iter(texts.values()))
        if len(set(texts.values())) == 1:
            return f"{next(iter(texts.values()))} (rules: {', '.join(texts)})"
        return " || ".join(f"{rule}: {text}" for rule, text in texts.items())


def rule_flags() -> dict[str, RuleFlag]:
    """``{setting name: RuleFlag}`` over every registered rule (RuntimeError if two rules
    declare one name with different kinds, types or choices: one flag cannot take both)."""
    flags: dict[str, RuleFlag] = {}
    for rule in RULES.values():
        for s in rule.settings():
            flag = flags.setdefault(s.name, RuleFlag(s.name, {}))
            first = flag.settings and flag.first
            if first and (first.kind, first.type, first.choices) != (s.kind, s.type, s.choices):
                raise RuntimeError(f"{flag_name(s.name)}: rule {rule.name!r} declares it unlike "
                                   f"rule(s) {', '.join(flag.settings)}")
            flag.settings[rule.name] = s
    return flags


def _choice_parser(choices: tuple[str, ...]):
    """Parse a ``Literal`` option: ``log-penalty`` and ``log_penalty`` both give ``log_penalty``."""
    shown = ", ".join(c.replace("_", "-") for c in choices)

    def parse(value: str) -> str:
        v = value.replace("-", "_")
        if v not in choices:
            raise typer.BadParameter(f"{value!r} is not allowed; allowed: {shown}")
        return v

    return parse


def _option_info(flag: RuleFlag) -> tuple[Any, Any]:
    """(python type, typer.Option) of ``flag``: float, int, on/off switch or a choice."""
    s, name = flag.first, flag_name(flag.name)
    panel = f"Options of rule{'s' if len(flag.settings) > 1 else ''} {', '.join(flag.settings)}"
    common = dict(help=flag.help(), rich_help_panel=panel, show_default=False)
    if s.type is bool:
        return bool, typer.Option(f"{name}/--no-{name[2:]}", **common)
    if s.choices:
        metavar = "[" + "|".join(c.replace("_", "-") for c in s.choices) + "]"
        return str, typer.Option(name, parser=_choice_parser(s.choices), metavar=metavar, **common)
    return s.type, typer.Option(name, **common)


def rule_parameters() -> list[inspect.Parameter]:
    """Keyword-only parameters (default None = not given) for a typer command signature."""
    params = []
    for name, flag in rule_flags().items():
        typ, option = _option_info(flag)
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                                        annotation=Annotated[Optional[typ], option]))
    return params


def split_rule_values(rule: str, values: dict[str, Any]) -> tuple[dict[str, float], dict[str, Any]]:
    """The given rule flags as ``(hparams, rule_options)`` for ``rule``; a UsageError for a flag
    the rule does not take."""
    takes = {s.name: s for s in RULES[rule].settings()}
    hparams, options = {}, {}
    for name, value in values.items():
        if value is None:
            continue
        if name not in takes:
            its = ", ".join(flag_name(n) for n in takes) or "none"
            raise UsageError(f"{flag_name(name)}: rule {rule!r} does not take this option; its options: {its}")
        (hparams if takes[name].kind == "hparam" else options)[name] = value
    return hparams, options
