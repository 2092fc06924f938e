"""``localrnn`` commands train, tasks, rules, demo.

Bad input exits with code 2 and one line ``error: --option: what is wrong;
what is allowed``, before anything is computed or written.
"""

from __future__ import annotations

import inspect
import json
import math
import os
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from localrnn.cli.app import Device, UsageError, _choose_device, app
from localrnn.cli.rule_flags import flag_name, rule_parameters, split_rule_values
from localrnn.cells import CELLS
from localrnn.errors import first_error


class Optimizer(str, Enum):
    sgd = "sgd"
    nesterov = "nesterov"
    adam = "adam"


class DType(str, Enum):
    float32 = "float32"
    float64 = "float64"


def _usage_error(err) -> UsageError:
    """A pydantic ValidationError of TrainConfig as ``--flag: message``."""
    where, msg = first_error(err)
    return UsageError(f"{flag_name(where.rsplit('.', 1)[-1])}: {msg}" if where else msg)


def build_config(task: str, length: int, rule: str, values: dict[str, Any], rule_values: dict[str, Any]):
    """TrainConfig from CLI values (``rule_values``: the generated rule flags, None = not given);
    every problem is a UsageError naming the flag."""
    from pydantic import ValidationError

    from localrnn.config import TrainConfig
    from localrnn.rules import get_rule

    try:
        rule = get_rule(rule).name
    except ValueError as e:
        raise UsageError(f"--rule: {e}") from None
    hparams, options = split_rule_values(rule, rule_values)
    try:
        return TrainConfig(task=task, length=length, rule=rule, hparams=hparams, rule_options=options,
                           **{k: v for k, v in values.items() if v is not None})
    except ValidationError as err:
        raise _usage_error(err) from None


def check_checkpoint(checkpoint: str | None, resume: bool) -> None:
    """``--resume`` needs an existing checkpoint; ``--checkpoint`` a writable folder (UsageError)."""
    if resume and not checkpoint:
        raise UsageError("--resume: needs --checkpoint PATH")
    if not checkpoint:
        return
    path = Path(checkpoint)
    if resume and not path.is_file():
        raise UsageError(f"--resume: no checkpoint at {checkpoint}")
    folder = path.parent
    if path.is_dir():
        raise UsageError(f"--checkpoint: {checkpoint} is a folder; give a file path")
    if not folder.is_dir():
        raise UsageError(f"--checkpoint: folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UsageError(f"--checkpoint: {checkpoint} cannot be written")


def _progress_printer(console: Console, total: int):
    """A rich progress bar on a terminal; nothing otherwise (returns (callback, progress))."""
    if not console.is_terminal:
        return None, None
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                        TextColumn("it {task.completed:>7.0f}/{task.total:.0f}"),
                        TextColumn("loss {task.fields[loss]}"), TextColumn("val acc {task.fields[acc]}"),
                        TimeElapsedColumn(), console=console, transient=False)
    bar = progress.add_task("training", total=total, loss="-", acc="-")

    def update(results):
        r = results[0]
        h = r.history[-1]
        progress.update(bar, completed=r.iterations, loss=f"{h['train_loss']:.4f}",
                        acc=f"{100 * h['val_accuracy']:.2f}%", description=r.status)
    return update, progress


def summary_line(r) -> str:
    reason = f" ({r.stop_reason})" if r.stop_reason else ""
    return (f"{r.config.rule} on {r.config.task} T={r.config.length}: {r.status}{reason}, best accuracy "
            f"{100 * r.best_accuracy:.2f}% ({round((1 - r.best_accuracy) * r.config.val_size)} errors "
            f"/ {r.config.val_size}) at iteration {r.best_iteration}, {r.iterations} iterations, "
            f"{r.seconds:.1f} s")


@app.command()
def train(
    task: Annotated[str, typer.Option(help="temporal-order | temporal-order-3bit | random-permutation | adding")],
    length: Annotated[int, typer.Option(help="sequence length T")],
    rule: Annotated[str, typer.Option(help="learning rule (see `localrnn rules`)")] = "bptt",
    lr: Annotated[float, typer.Option(help="learning rate alpha (alpha_f for TPTT)")] = 0.01,
    seed: Annotated[int, typer.Option(help="seed of initialization and training data")] = 0,
    optimizer: Annotated[Optimizer, typer.Option()] = Optimizer.sgd,
    momentum: Annotated[Optional[float], typer.Option(help="nesterov momentum")] = None,
    hidden: Annotated[int, typer.Option(help="hidden units m")] = 100,
    cell: Annotated[str, typer.Option(help=f"recurrent cell (docs/cells.md): {' | '.join(CELLS)}; "
                                           "`localrnn rules` says which rules take which")] = "srnn",
    tau: Annotated[float, typer.Option(help="leak time constant of the leaky cell, >= 1 (1 = no leak)")] = 1.0,
    batch: Annotated[int, typer.Option(help="batch size B")] = 20,
    max_iters: Annotated[int, typer.Option(help="iteration budget")] = 100_000,
    patience: Annotated[int, typer.Option(help="validations without a new best before stopping (0 = off)")] = 30,
    val_every: Annotated[int, typer.Option(help="iterations between validations")] = 100,
    val_size: Annotated[Optional[int], typer.Option(help="validation samples (the paper: 10,000)")] = None,
    validation: Annotated[str, typer.Option(help="fixed | fresh: validate on one fixed set, or on a fresh draw "
                                                 "at every validation as the TPTT code does")] = "fixed",
    clip: Annotated[Optional[float], typer.Option(help="gradient-norm clipping threshold")] = None,
    dtype: Annotated[DType, typer.Option()] = DType.float32,
    device: Annotated[Device, typer.Option()] = Device.cpu,
    checkpoint: Annotated[Optional[str], typer.Option(help="checkpoint file, written after every validation")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue from the existing --checkpoint")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the final summary as one JSON object")] = False,
    **rule_values: Any,
) -> None:
    """Train one configuration and print its summary. The rule flags below come from each
    rule's declaration (`localrnn rules` lists them); a rule takes only its own."""
    values = {"lr": lr, "seed": seed, "optimizer": optimizer.value, "momentum": momentum,
              "hidden": hidden, "cell": cell, "tau": tau, "batch": batch, "max_iters": max_iters,
              "patience": patience, "val_every": val_every, "val_size": val_size, "clip": clip,
              "validation": validation, "dtype": dtype.value}
    cfg = build_config(task, length, rule, values, rule_values)
    check_checkpoint(checkpoint, resume)
    _choose_device(device)

    from localrnn.train import train_one

    console = Console(stderr=as_json)
    callback, progress = _progress_printer(console, cfg.max_iters)
    try:
        if progress:
            with progress:
                result = train_one(cfg, checkpoint=checkpoint, resume=resume, progress=callback)
        else:
            result = train_one(cfg, checkpoint=checkpoint, resume=resume)
    except KeyboardInterrupt:
        console.print("interrupted" + (f"; resume with --checkpoint {checkpoint} --resume" if checkpoint else ""))
        raise typer.Exit(130)
    console.print(summary_line(result), highlight=False)
    if as_json:
        print(json.dumps(result.summary()))


_TRAIN_CORE = [p for p in inspect.signature(train, eval_str=True).parameters.values()
               if p.kind is not inspect.Parameter.VAR_KEYWORD]


def _refresh_train_flags() -> None:
    """train's signature: its own flags, then one per rule setting in the registry (read now,
    so that a rule registered after import gets its flags too)."""
    train.__signature__ = inspect.Signature(_TRAIN_CORE + rule_parameters())


train.refresh_flags = _refresh_train_flags
_refresh_train_flags()


#: the demo: (task, T, rule, lr, extra config) -- BPTT beside the readout-only control
DEMO_RUNS = [
    ("temporal_order", 10, "bptt", 0.01, {}),
    ("temporal_order", 10, "readout", 0.01, {}),
    ("temporal_order", 10, "lra", 0.1, {"hparams": {"target_step": 0.1}}),
    ("temporal_order", 30, "bptt", 0.01, {}),
    ("temporal_order", 30, "readout", 0.01, {}),
]


def _rule_label(cfg) -> str:
    """The rule's name, with its reading where it has several (e.g. ``lra fixed-target``)."""
    variant = getattr(cfg.resolved_options, "variant", None)
    return f"{cfg.rule} {variant.replace('_', '-')}" if variant else cfg.rule


@app.command()
def demo(
    max_iters: Annotated[int, typer.Option(help="iteration budget per run")] = 5000,
    as_json: Annotated[bool, typer.Option("--json", help="print the results as JSON")] = False,
) -> None:
    """Short end-to-end demo on CPU: BPTT beside the readout-only control (and LRA-diff)
    on temporal order at T=10 (degenerate: the markers sit at fixed positions) and T=30."""
    from localrnn.config import TrainConfig
    from localrnn.rules import RULES
    from localrnn.train import train_one

    _choose_device(Device.cpu)
    console = Console(stderr=as_json)
    rows = []
    for task, length, rule, lr, extra in DEMO_RUNS:
        if rule not in RULES:
            continue
        cfg = TrainConfig(task=task, length=length, rule=rule, lr=lr, max_iters=max_iters, **extra)
        callback, progress = _progress_printer(console, cfg.max_iters)
        if progress:
            progress.update(progress.task_ids[0], description=f"{rule} T={length}")
            with progress:
                r = train_one(cfg, progress=callback)
        else:
            r = train_one(cfg)
        console.print(summary_line(r), highlight=False)
        rows.append(r)
    table = Table("task", "T", "rule", "status", "best acc.", "iterations", "seconds",
                  title="localrnn demo (success = 0 errors on 10,000 validation samples)")
    table.columns[0].no_wrap = table.columns[2].no_wrap = True
    for r in rows:
        table.add_row(r.config.task.replace("_", " "), str(r.config.length), _rule_label(r.config), r.status,
                      f"{100 * r.best_accuracy:.2f}%", str(r.iterations), f"{r.seconds:.1f}")
    console.print(table)
    console.print("At T=10 the readout-only control solves temporal order too: the task is degenerate "
                  "there (docs/tasks.md). Claims about credit assignment need T >= 20 and a rule that beats "
                  "the control.", highlight=False)
    if as_json:
        print(json.dumps([r.summary() for r in rows]))


@app.command()
def tasks(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the tasks with their sizes, loss and chance level."""
    from localrnn.tasks import TASKS

    rows = [{"name": t.cli_name, "inputs": t.n_in, "outputs": t.n_out, "loss": t.loss,
             "min_length": t.min_length, "chance": t.chance, "description": t.description}
            for t in TASKS.values()]
    if as_json:
        print(json.dumps(rows))
        return
    table = Table("task", "n in", "k out", "loss", "min T", "chance", "what")
    for r in rows:
        chance = "-" if math.isnan(r["chance"]) else f"{100 * r['chance']:.1f}%"
        table.add_row(r["name"], str(r["inputs"]), str(r["outputs"]), r["loss"], str(r["min_length"]),
                      chance, r["description"])
    Console().print(table)


def rule_table() -> list[dict]:
    """Every registered rule with its settings, as its schema declares them."""
    from localrnn.rules import RULES

    return [{"name": r.name, "summary": r.summary, "cells": list(r.cells),
             "settings": [{"name": s.name, "kind": s.kind, "type": s.type.__name__, "default": s.default,
                           "allowed": list(s.choices) if s.choices else s.range, "help": s.help}
                          for s in r.settings()]}
            for r in RULES.values()]


@app.command()
def rules(as_json: Annotated[bool, typer.Option("--json", help="print the rules as JSON")] = False) -> None:
    """List the learning rules: each hyper-parameter (traced; configs that differ only in these
    train together) and static option with its default, allowed values and help."""
    rows = rule_table()
    if as_json:
        print(json.dumps(rows))
        return
    console = Console()
    for r in rows:
        table = Table("setting", "kind", "default", "allowed", "help", title_justify="left",
                      title=f"{r['name']}: {r['summary']} (cells: {', '.join(r['cells'])})")
        table.columns[0].no_wrap = table.columns[2].no_wrap = True
        for s in r["settings"]:
            allowed = " | ".join(s["allowed"]) if isinstance(s["allowed"], list) else s["allowed"] or "-"
            table.add_row(s["name"], "hyper-parameter" if s["kind"] == "hparam" else "option",
                          str(s["default"]), allowed, s["help"])
        if not r["settings"]:
            table.add_row("-", "-", "-", "-", "no settings")
        console.print(table)
    console.print("On the command line: --name-with-dashes (`localrnn train --help`); in experiment "
                  "files: the name as printed.", highlight=False)
