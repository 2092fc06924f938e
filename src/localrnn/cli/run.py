"""``localrnn`` command line: train, tasks, rules, demo.

Bad input exits with code 2 and one line ``error: --option: what is wrong;
what is allowed``, before anything is computed or written.
"""

from __future__ import annotations

import json
import math
import re
import sys
from enum import Enum
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from localrnn.cli.app import Device, UsageError, _choose_device, app

# CLI option -> (kind, key): where each rule-specific option goes in TrainConfig.
RULE_FLAGS: dict[str, tuple[str, str]] = {
    "--reg-lambda": ("hparam", "reg_lambda"),
    "--target-step": ("hparam", "target_step"),
    "--c0": ("hparam", "c0"),
    "--c1": ("hparam", "c1"),
    "--alpha-i": ("hparam", "alpha_i"),
    "--alpha-g": ("hparam", "alpha_g"),
    "--sigma": ("hparam", "sigma"),
    "--inner-steps": ("option", "inner_steps"),
    "--force-normalize": ("option", "force_normalize"),
    "--local-loss": ("option", "local_loss"),
    "--update-layer0": ("option", "update_layer0"),
    "--variant": ("option", "variant"),
    "--local-grads": ("option", "local_grads"),
    "--inner-reference": ("option", "inner_reference"),
    "--normalization": ("option", "normalization"),
    "--layer-loss": ("option", "layer_loss"),
    "--regularizer": ("option", "regularizer"),
    "--validation-initial-state": ("option", "validation_initial_state"),
    "--inverse-optimizer": ("option", "inverse_optimizer"),
    "--wxh-by-bptt": ("option", "wxh_by_bptt"),
}
FIELD_FLAGS = {"task": "--task", "length": "--length", "rule": "--rule", "lr": "--lr",
               "optimizer": "--optimizer", "momentum": "--momentum", "hidden": "--hidden",
               "batch": "--batch", "max_iters": "--max-iters", "patience": "--patience",
               "val_every": "--val-every", "val_size": "--val-size", "val_seed": "--val-seed",
               "clip": "--clip", "dtype": "--dtype", "seed": "--seed"}
FIELD_FLAGS.update({f"hparams.{k}": flag for flag, (kind, k) in RULE_FLAGS.items() if kind == "hparam"})
FIELD_FLAGS.update({k: flag for flag, (kind, k) in RULE_FLAGS.items() if kind == "option"})


class Optimizer(str, Enum):
    sgd = "sgd"
    nesterov = "nesterov"
    adam = "adam"


class DType(str, Enum):
    float32 = "float32"
    float64 = "float64"


def _pydantic_error(err) -> UsageError:
    """First error of a pydantic ValidationError as ``--flag: message``."""
    e = err.errors()[0]
    loc = ".".join(str(p) for p in e["loc"])
    msg = e["msg"].removeprefix("Value error, ")
    flag = FIELD_FLAGS.get(loc)
    if flag is None and loc in ("", "__root__"):
        head, _, rest = msg.partition(": ")
        flag, msg = FIELD_FLAGS.get(head, head), rest or msg
        if flag.startswith("hparams"):
            flag = "--" + flag.split("'")[1].replace("_", "-") if "'" in msg else flag
    if "Input should be" in msg and "input" in e:
        msg = f"{msg}, got {e['input']!r}"
    return UsageError(f"{flag or loc}: {msg}")


def build_config(task: str, length: int, rule: str, values: dict[str, Any],
                 rule_flags: dict[str, Any]):
    """TrainConfig from CLI values; every problem is a UsageError naming the flag."""
    from pydantic import ValidationError

    from localrnn.config import TrainConfig
    from localrnn.rules import RULES
    from localrnn.tasks import TASKS, get_task

    try:
        task_name = get_task(task).name
    except ValueError:
        raise UsageError(f"--task: unknown task {task!r}; allowed: "
                         + ", ".join(t.cli_name for t in TASKS.values())) from None
    if rule not in RULES:
        raise UsageError(f"--rule: unknown rule {rule!r}; allowed: {', '.join(sorted(RULES))}")
    for name in ("lr", "clip"):
        v = values.get(name)
        if v is not None and not (math.isfinite(v) and v > 0):
            raise UsageError(f"--{name}: must be a finite number > 0, got {v}")
    rdef = RULES[rule]
    hparams: dict[str, float] = {}
    options: dict[str, Any] = {}
    for flag, value in rule_flags.items():
        if value is None:
            continue
        kind, key = RULE_FLAGS[flag]
        accepted = rdef.hparams if kind == "hparam" else rdef.options.model_fields
        if key not in accepted:
            takes = [f for f, (k, n) in RULE_FLAGS.items()
                     if n in (rdef.hparams if k == "hparam" else rdef.options.model_fields)]
            raise UsageError(f"{flag}: rule {rule!r} does not take this option; its options: "
                             + (", ".join(takes) or "none"))
        if isinstance(value, Enum):
            value = value.value
        if kind == "hparam":
            if not math.isfinite(value):
                raise UsageError(f"{flag}: must be finite, got {value}")
            hparams[key] = value
        else:
            options[key] = value.replace("-", "_") if isinstance(value, str) else value
    try:
        return TrainConfig(task=task_name, length=length, rule=rule, hparams=hparams,
                           rule_options=options, **{k: v for k, v in values.items() if v is not None})
    except ValidationError as err:
        raise _pydantic_error(err) from None


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
    batch: Annotated[int, typer.Option(help="batch size B")] = 20,
    max_iters: Annotated[int, typer.Option(help="iteration budget")] = 100_000,
    patience: Annotated[int, typer.Option(help="validations without a new best before stopping (0 = off)")] = 30,
    val_every: Annotated[int, typer.Option(help="iterations between validations")] = 100,
    val_size: Annotated[Optional[int], typer.Option(help="validation samples (SPEC: 10,000)")] = None,
    clip: Annotated[Optional[float], typer.Option(help="gradient-norm clipping threshold")] = None,
    reg_lambda: Annotated[Optional[float], typer.Option(help="regularizer weight lambda (bptt: Omega; lra: Algorithm 2)")] = None,
    inner_steps: Annotated[Optional[int], typer.Option(help="lra: K inner target steps")] = None,
    target_step: Annotated[Optional[float], typer.Option(help="lra: target step gamma")] = None,
    c0: Annotated[Optional[float], typer.Option(help="lra: weight-update normalization constant")] = None,
    c1: Annotated[Optional[float], typer.Option(help="lra: target-displacement normalization constant")] = None,
    force_normalize: Annotated[Optional[bool], typer.Option("--force-normalize", help="lra: always rescale to c")] = None,
    local_loss: Annotated[Optional[str], typer.Option(help="lra: mse | log-penalty")] = None,
    update_layer0: Annotated[Optional[bool], typer.Option("--update-layer0", help="lra: also train on L_0")] = None,
    variant: Annotated[Optional[str], typer.Option(help="lra: faithful | reference (published code)")] = None,
    local_grads: Annotated[Optional[str], typer.Option(help="lra, SPEC 7(a): one-step | unrolled")] = None,
    inner_reference: Annotated[Optional[str], typer.Option(help="lra, SPEC 7(b): target | forward")] = None,
    normalization: Annotated[Optional[str], typer.Option(help="lra, SPEC 7(c): algorithm1 | reference")] = None,
    layer_loss: Annotated[Optional[str], typer.Option(help="lra, SPEC 7(d): own | shifted")] = None,
    regularizer: Annotated[Optional[str], typer.Option(help="lra, SPEC 7(e): algorithm2 | reference")] = None,
    validation_initial_state: Annotated[Optional[str], typer.Option(help="lra, SPEC 7(f): zero | reference")] = None,
    alpha_i: Annotated[Optional[float], typer.Option(help="tptt: first-target step")] = None,
    alpha_g: Annotated[Optional[float], typer.Option(help="tptt: inverse-mapping learning rate")] = None,
    sigma: Annotated[Optional[float], typer.Option(help="tptt: noise std of the inverse update")] = None,
    inverse_optimizer: Annotated[Optional[str], typer.Option(help="tptt: sgd | nesterov")] = None,
    wxh_by_bptt: Annotated[Optional[bool], typer.Option("--wxh-by-bptt", help="tptt: train Wxh by BPTT")] = None,
    dtype: Annotated[DType, typer.Option()] = DType.float32,
    device: Annotated[Device, typer.Option()] = Device.cpu,
    checkpoint: Annotated[Optional[str], typer.Option(help="checkpoint file, written after every validation")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue from --checkpoint if it exists")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the final summary as one JSON object")] = False,
) -> None:
    """Train one configuration and print its summary."""
    rule_flags = {
        "--reg-lambda": reg_lambda, "--target-step": target_step, "--c0": c0, "--c1": c1,
        "--alpha-i": alpha_i, "--alpha-g": alpha_g, "--sigma": sigma, "--inner-steps": inner_steps,
        "--force-normalize": force_normalize, "--local-loss": local_loss,
        "--update-layer0": update_layer0, "--variant": variant, "--local-grads": local_grads,
        "--inner-reference": inner_reference, "--normalization": normalization,
        "--layer-loss": layer_loss, "--regularizer": regularizer,
        "--validation-initial-state": validation_initial_state,
        "--inverse-optimizer": inverse_optimizer, "--wxh-by-bptt": wxh_by_bptt,
    }
    values = {"lr": lr, "seed": seed, "optimizer": optimizer.value, "momentum": momentum,
              "hidden": hidden, "batch": batch, "max_iters": max_iters, "patience": patience,
              "val_every": val_every, "val_size": val_size, "clip": clip, "dtype": dtype.value}
    cfg = build_config(task, length, rule, values, rule_flags)
    if resume and not checkpoint:
        raise UsageError("--resume: needs --checkpoint PATH")
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


#: the demo: (task, T, rule, lr, extra config) -- BPTT beside the readout-only control
DEMO_RUNS = [
    ("temporal_order", 10, "bptt", 0.01, {}),
    ("temporal_order", 10, "readout", 0.01, {}),
    ("temporal_order", 10, "lra", 0.1, {"hparams": {"target_step": 0.1}}),
    ("temporal_order", 30, "bptt", 0.01, {}),
    ("temporal_order", 30, "readout", 0.01, {}),
]


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
    table.columns[0].no_wrap = True
    for r in rows:
        table.add_row(r.config.task.replace("_", " "), str(r.config.length), r.config.rule, r.status,
                      f"{100 * r.best_accuracy:.2f}%", str(r.iterations), f"{r.seconds:.1f}")
    console.print(table)
    console.print("At T=10 the readout-only control solves temporal order too: the task is degenerate "
                  "there (SPEC 2). Claims about credit assignment need T >= 20 and a rule that beats "
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


@app.command()
def rules() -> None:
    """List the learning rules with their hyper-parameters and options."""
    from localrnn.rules import RULES

    table = Table("rule", "what", "hyper-parameters (defaults)", "static options")
    for r in RULES.values():
        hp = ", ".join(f"{k}={v}" for k, v in r.defaults.items()) or "-"
        opts = ", ".join(f"{k}={f.default}" for k, f in r.options.model_fields.items()) or "-"
        table.add_row(r.name, r.summary, hp, opts)
    Console().print(table)
