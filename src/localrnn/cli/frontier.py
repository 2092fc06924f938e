"""``localrnn frontier``: run a frontier experiment (docs/frontier.md) and print its table and figure."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.console import Console

from localrnn.cli.app import Device, UsageError, _choose_device, app
from localrnn.cli.experiments import (AddressOpt, BudgetOpt, DeviceOpt, ExecutorName, ExecutorOpt, Format, JsonOpt,
                                      StoreOpt, WorkersOpt, _check_budget, _check_out_dir, _executor, _load,
                                      _print_report, _run_spec, _writable_store)


@app.command()
def frontier(
    spec_file: Annotated[str, typer.Argument(metavar="EXPERIMENT.toml",
                                         help="frontier experiment file (kind = \"frontier\"; docs/frontier.md)")],
    budget: BudgetOpt = "quick",
    store: StoreOpt = None,
    executor: ExecutorOpt = ExecutorName.local,
    address: AddressOpt = None,
    workers: WorkersOpt = None,
    warm_start: Annotated[Optional[bool], typer.Option("--warm-start/--cold-start",
                                                       help="continue from the solved weights (spec default: warm)")] = None,
    device: DeviceOpt = Device.cpu,
    out_dir: Annotated[str, typer.Option("--out-dir", help="where the figure is written")] = "figures",
    fmt: Annotated[Format, typer.Option("--format")] = Format.markdown,
    as_json: JsonOpt = False,
) -> None:
    """For each arm, task and seed, grow T while solved; print P(solved) against T (Wilson 95 %
    intervals), each seed's highest T, and write the figure. Resumes whatever the store holds."""
    spec = _load(spec_file)
    if spec.kind != "frontier":
        raise UsageError(f"{spec_file}: kind: must be \"frontier\" for this command, got {spec.kind!r}")
    _check_budget(spec, budget, spec_file)
    path = _writable_store(store)
    _check_out_dir(out_dir)
    _choose_device(device)
    ex = _executor(executor, address, workers)
    console = Console(stderr=True)
    from localrnn.experiments.report import make_report
    from localrnn.experiments.store import Store

    with Store(path) as st, ex:
        name = _run_spec(st, spec, budget, ex, console, spec_file, warm_start=warm_start)
        rep = make_report(st, name, fmt.value, out_dir)
    _print_report(rep, as_json)
