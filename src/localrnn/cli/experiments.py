"""Experiment commands (sweep, curriculum, frontier, runs, report, reproduce) registered on the CLI app.

Every command takes ``--store PATH`` (default ``$LOCALRNN_STORE`` or ``./localrnn.db``);
those that train take ``--executor local|process|ray``; those that print results take
``--json``. A bad spec or option is one line on stderr, exit code 2, before anything runs
or is written.
"""

from __future__ import annotations

import json
import os
import sys
import time
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from localrnn.cli.app import Device, UsageError, _choose_device, app
from localrnn.cli.stores import StoreOpt, read_store, store_path, writable_store

TARGETS = ("table1", "table2", "table3", "table4", "table5", "figure2", "figure3", "figure4", "figure5")


class ExecutorName(str, Enum):
    local = "local"
    process = "process"
    ray = "ray"


class Format(str, Enum):
    markdown = "markdown"
    csv = "csv"
    latex = "latex"


ExecutorOpt = Annotated[ExecutorName, typer.Option("--executor", help="local (in-process) | process (one per core) | ray")]
AddressOpt = Annotated[Optional[str], typer.Option("--address", help="ray: address of an existing cluster (default: start a local Ray)")]
WorkersOpt = Annotated[Optional[int], typer.Option("--workers", help="process: pool size (default: cores); ray: CPUs of the local Ray (default 2)")]
BudgetOpt = Annotated[str, typer.Option("--budget", help="budget named in the spec (e.g. quick, paper, study)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print the result as JSON")]
DeviceOpt = Annotated[Device, typer.Option("--device", help="local executor: cpu | gpu")]
MaxGroupOpt = Annotated[Optional[int], typer.Option(
    "--max-group", help="configs per vmapped job at most (default 64): bounds memory and how long one job "
                        "runs; smaller jobs compile more often")]


def _load(path: str):
    from localrnn.experiments.spec import SpecError, load_spec

    try:
        return load_spec(path)
    except SpecError as e:
        raise UsageError(str(e)) from None


def _check_budget(spec, budget: str, source: str) -> None:
    if budget not in spec.budget:
        raise UsageError(f"--budget: {source} has no budget {budget!r}; allowed: {', '.join(spec.budget)}")


def _executor(name: ExecutorName, address: str | None, workers: int | None):
    from localrnn.experiments.executors import make_executor

    if workers is not None and workers < 1:
        raise UsageError(f"--workers: must be >= 1, got {workers}")
    if address and name is not ExecutorName.ray:
        raise UsageError("--address: only for --executor ray")
    if name is ExecutorName.ray:
        try:
            import ray  # noqa: F401
        except ImportError:
            raise UsageError("--executor: ray is not installed; allowed: local, process "
                             "(or pip install 'localrnn[ray]')") from None
    try:
        return make_executor(name.value, workers=workers, address=address)
    except (RuntimeError, ConnectionError, ValueError) as e:
        raise UsageError(f"--executor: {e}") from None


def _progress(console: Console, label: str):
    """One line per progress message, with the seconds since the experiment started."""
    t0 = time.perf_counter()

    def cb(message: str) -> None:
        console.print(f"  {label}: {message} ({time.perf_counter() - t0:.0f} s)", highlight=False)
    return cb


def _spec_dir(specs: str | None):
    """Where ``reproduce`` finds its specs: ``--specs``, ``$LOCALRNN_EXPERIMENTS``, or the
    paper's specs shipped inside the package (``localrnn/paper/specs``)."""
    if specs:
        return Path(specs)
    env = os.environ.get("LOCALRNN_EXPERIMENTS")
    if env:
        return Path(env)
    from localrnn.paper import spec_dir

    return spec_dir()


def _run_spec(store, spec, budget: str, executor, console: Console, source: str, **options) -> str:
    """Run what is missing of one spec (any kind); returns the experiment name."""
    from localrnn.experiments.kinds import run_experiment

    s = run_experiment(store, spec, budget, executor, progress=_progress(console, spec.name), source=source,
                       **options)
    for n in s.notes:
        console.print(f"note: {n}", highlight=False)
    console.print(s.text, highlight=False)
    return s.experiment


def _group_options(max_group: int | None) -> dict:
    """``--max-group``: checked (>= 1) and passed on only when given."""
    if max_group is None:
        return {}
    if max_group < 1:
        raise UsageError(f"--max-group: must be >= 1, got {max_group}")
    return {"max_group": max_group}


def _check_out_dir(out_dir: str) -> None:
    """``--out-dir`` must be a writable folder or one that can be created (checked, not created)."""
    path = os.path.abspath(out_dir)
    probe = path
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    allowed = "allowed: a writable folder, or a new folder inside one"
    if not os.path.isdir(probe):
        raise UsageError(f"--out-dir: {out_dir} cannot be created: {probe} is not a folder; {allowed}")
    if not os.access(probe, os.W_OK | os.X_OK):
        what = "written" if probe == path else f"created ({probe} cannot be written)"
        raise UsageError(f"--out-dir: {out_dir} cannot be {what}; {allowed}")


def _print_dry_run(name: str, budget: str, trials, as_json: bool) -> None:
    """Trial and group counts, and per arm every axis that varies with its values."""
    from localrnn.experiments.spec import plan_axes

    groups = len({t.config.structure_key() for t in trials})
    out = {"spec": name, "budget": budget, "trials": len({t.trial_id for t in trials}),
           "structure_groups": groups, "axes": plan_axes(trials)}
    if as_json:
        print(json.dumps(out))
        return
    print(f"{name} [{budget}]: {out['trials']} trials in {groups} structure groups")
    for arm, axes in out["axes"].items():
        grid = "; ".join(f"{k} {{{', '.join(str(v) for v in vals)}}}" for k, vals in axes.items())
        print(f"  {arm}: {grid or 'one setting'}")


@app.command()
def sweep(
    spec_file: Annotated[str, typer.Argument(metavar="EXPERIMENT.toml", help="experiment file (docs/protocols.md)")],
    budget: BudgetOpt = "quick",
    store: StoreOpt = None,
    executor: ExecutorOpt = ExecutorName.local,
    address: AddressOpt = None,
    workers: WorkersOpt = None,
    device: DeviceOpt = Device.cpu,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="validate and count the trials; run nothing")] = False,
    max_group: MaxGroupOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a grid spec: every trial not yet complete in the store, vmapped by shared structure."""
    from localrnn.experiments.spec import SpecError, plan

    spec = _load(spec_file)
    _check_budget(spec, budget, spec_file)
    if dry_run:
        try:
            trials = plan(spec, budget, spec_file)
        except SpecError as e:
            raise UsageError(str(e)) from None
        _print_dry_run(spec.name, budget, trials, as_json)
        return
    path = writable_store(store)
    options = _group_options(max_group)
    _choose_device(device)
    ex = _executor(executor, address, workers)
    console = Console(stderr=True)
    from localrnn.experiments.store import Store

    with Store(path) as st, ex:
        name = _run_spec(st, spec, budget, ex, console, spec_file, **options)
        if as_json:
            print(json.dumps([_trial_json(t) for t in st.trials(name)]))


def _ladder_command(kind: str, doc: str):
    """The command that runs a spec of ``kind`` (curriculum | frontier) and prints its report."""

    def command(
        spec_file: Annotated[str, typer.Argument(metavar="EXPERIMENT.toml",
                                             help="experiment file whose kind is the command's name")],
        budget: BudgetOpt = "quick",
        store: StoreOpt = None,
        executor: ExecutorOpt = ExecutorName.local,
        address: AddressOpt = None,
        workers: WorkersOpt = None,
        warm_start: Annotated[Optional[bool], typer.Option(
            "--warm-start/--cold-start", help="continue from the solved weights (spec default: warm)")] = None,
        device: DeviceOpt = Device.cpu,
        out_dir: Annotated[str, typer.Option("--out-dir", help="where figures are written")] = "figures",
        fmt: Annotated[Format, typer.Option("--format")] = Format.markdown,
        max_group: MaxGroupOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        spec = _load(spec_file)
        if spec.kind != kind:
            raise UsageError(f"{spec_file}: kind: must be \"{kind}\" for this command, got {spec.kind!r}")
        _check_budget(spec, budget, spec_file)
        path = writable_store(store)
        _check_out_dir(out_dir)
        options = _group_options(max_group)
        _choose_device(device)
        ex = _executor(executor, address, workers)
        console = Console(stderr=True)
        from localrnn.experiments.report import make_report
        from localrnn.experiments.store import Store

        with Store(path) as st, ex:
            name = _run_spec(st, spec, budget, ex, console, spec_file, warm_start=warm_start, **options)
            rep = make_report(st, name, fmt.value, out_dir)
        _print_report(rep, as_json)

    command.__doc__ = doc
    return command


app.command("curriculum")(_ladder_command(
    "curriculum", "Grow T from the spec's start by its step while solved (docs/protocols.md); print the ladder table."))
app.command("frontier")(_ladder_command(
    "frontier", "For each arm, task and seed, grow T while solved (docs/frontier.md); print each seed's highest T "
    "and P(solved at T) with Wilson 95 % intervals, and write the figure. Resumes what the store holds."))


def _trial_json(t: dict) -> dict:
    keep = ("trial_id", "run_id", "status", "task", "rule", "length", "seed", "best_accuracy", "best_iteration",
            "iterations", "seconds", "completions", "labels", "experiment", "config", "init")
    return {k: t[k] for k in keep if k in t}


@app.command()
def runs(
    store: StoreOpt = None,
    experiment: Annotated[Optional[str], typer.Option(help="only trials of this experiment (e.g. table1:quick)")] = None,
    status: Annotated[Optional[str], typer.Option(help="pending | running | solved | failed | diverged | interrupted")] = None,
    rule: Annotated[Optional[str], typer.Option()] = None,
    task: Annotated[Optional[str], typer.Option()] = None,
    length: Annotated[Optional[int], typer.Option()] = None,
    seed: Annotated[Optional[int], typer.Option()] = None,
    limit: Annotated[int, typer.Option(help="rows shown at most (0 = all)")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """List stored trials, filtered."""
    from localrnn.experiments.store import STATUSES

    path = store_path(store)
    if status is not None and status not in STATUSES:
        raise UsageError(f"--status: unknown status {status!r}; allowed: {', '.join(STATUSES)}")
    if task is not None:
        task = task.replace("-", "_")
    with read_store(path) as st:
        if experiment is not None and st.experiment(experiment) is None:
            raise UsageError(f"--experiment: no experiment {experiment!r}; stored: "
                             f"{', '.join(st.experiments()) or 'none'}")
        rows = st.trials(experiment, status=status, rule=rule, task=task, length=length, seed=seed)
    if as_json:
        print(json.dumps([_trial_json(t) for t in rows]))
        return
    from rich.table import Table

    shown = rows if limit == 0 else rows[:limit]
    table = Table("trial", "status", "rule", "task", "T", "seed", "best acc", "iters", "s", "labels")
    for t in shown:
        lab = {k: v for k, v in (t.get("labels") or {}).items()
               if k not in ("rule", "task", "length", "seed")}
        acc = "" if t["best_accuracy"] is None else f"{100 * t['best_accuracy']:.2f}%"
        table.add_row(t["trial_id"], t["status"], t["rule"], t["task"], str(t["length"]), str(t["seed"]), acc,
                      str(t["iterations"] or ""), "" if t["seconds"] is None else f"{t['seconds']:.1f}",
                      json.dumps(lab) if lab else "")
    Console(width=200).print(table)
    if len(shown) < len(rows):
        print(f"({len(rows) - len(shown)} more; --limit 0 shows all)")


def _print_report(rep, as_json: bool) -> None:
    if as_json:
        print(json.dumps(rep.as_json()))
        return
    print(rep.text, end="" if rep.text.endswith("\n") else "\n")


def _check_html(page: str) -> str:
    """``--html``: a new or writable ``.html`` file in an existing writable folder (checked, nothing written)."""
    allowed = "allowed: a .html file in an existing folder that can be written"
    folder = os.path.dirname(os.path.abspath(page))
    if not page.endswith(".html"):
        raise UsageError(f"--html: {page} does not end in .html; {allowed}")
    if not os.path.isdir(folder):
        raise UsageError(f"--html: folder {folder} does not exist; {allowed}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"--html: folder {folder} cannot be written; {allowed}")
    if os.path.isdir(page) or (os.path.exists(page) and not os.access(page, os.W_OK)):
        raise UsageError(f"--html: {page} is not a writable file; {allowed}")
    return page


def _command_line(ctx: typer.Context) -> str:
    """The command as typed (``sys.argv`` of a ``localrnn`` process), or, called in-process
    (``main([...])``), its name with the arguments and options set on the command line."""
    import shlex

    if os.path.basename(sys.argv[0]) in ("localrnn", "__main__.py") and sys.argv[1:2] == [ctx.info_name]:
        return shlex.join(["localrnn", *sys.argv[1:]])
    parts = ctx.command_path.split()
    for p in ctx.command.params:
        source = ctx.get_parameter_source(p.name)
        if source is None or source.name != "COMMANDLINE":
            continue
        v = ctx.params[p.name]
        v = v.value if isinstance(v, Enum) else v
        if not p.opts[0].startswith("-"):  # an argument
            parts.append(str(v))
        elif getattr(p, "is_flag", False):
            parts.append(p.opts[0] if v else (p.secondary_opts or p.opts)[0])
        else:
            parts += [p.opts[0], str(v)]
    return shlex.join(parts)


@app.command()
def report(
    ctx: typer.Context,
    name: Annotated[Optional[str], typer.Argument(help="table1..table5 | figure2..figure5 | a stored experiment "
                                                  "name (optional with --html: all stored experiments)")] = None,
    budget: Annotated[Optional[str], typer.Option(help="which budget's results (default: the one stored)")] = None,
    store: StoreOpt = None,
    fmt: Annotated[Format, typer.Option("--format", help="table format")] = Format.markdown,
    out_dir: Annotated[str, typer.Option("--out-dir", help="where figures are written")] = "figures",
    html: Annotated[Optional[str], typer.Option("--html", metavar="PAGE.html",
                                                help="write one self-contained HTML page (tables, figures inline, "
                                                     "captions, run metadata) instead of printing")] = None,
    analyze: Annotated[Optional[list[str]], typer.Option(
        "--analyze", metavar="TRIAL", help="with --html: add the analysis (figures, verdict; docs/analysis.md) "
                                           "of this stored trial; repeat for more")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print a table or write a figure from the results store alone (no training); --html: one page."""
    from localrnn.experiments.report import find_experiment, make_report

    if name is None and html is None:
        raise UsageError("NAME: missing; allowed: table1..table5 | figure2..figure5 | a stored experiment name, "
                         "or none with --html PAGE.html (every stored experiment)")
    if analyze and html is None:
        raise UsageError("--analyze: only with --html PAGE.html (the page's analysis sections); "
                         "for one run alone use `localrnn analyze TRIAL`")
    if html is not None:
        _check_html(html)
    path = store_path(store)
    _check_out_dir(out_dir)
    with read_store(path) as st:
        if name is None:
            exps = [e for e in st.experiments()
                    if budget is None or (st.experiment(e) or {}).get("spec", {}).get("budget") == budget]
            if not exps and not analyze:
                raise UsageError((f"--budget: no experiment with budget {budget!r}" if budget else "--store: no "
                                  "experiment") + f" in {path}; stored: {', '.join(st.experiments()) or 'none'}")
        else:
            exp = find_experiment(st, name, budget)
            if exp is None:
                raise UsageError(f"{name}: no results for it in {path}" + (f" (budget {budget})" if budget else "")
                                 + f"; stored: {', '.join(st.experiments()) or 'none'}; "
                                 f"run `localrnn reproduce {name}`")
            exps = [exp]
        if html is not None:
            from localrnn.experiments.report.html import html_report

            def warn(exp_name: str, e: Exception) -> None:
                print(f"note: {exp_name}: report failed: {e}", file=sys.stderr)

            analyses = []
            if analyze:
                from localrnn.cli.analyze import page_sections

                analyses = page_sections(analyze, path, out_dir)
            html_report(st, exps, html, command=_command_line(ctx), fig_dir=out_dir, on_error=warn, store_path=path,
                        analyses=analyses)
            if as_json:
                print(json.dumps({"html": os.path.abspath(html), "experiments": exps, "analyzed": analyze or []}))
            else:
                print(f"wrote {html} ({len(exps)} experiment{'s' if len(exps) != 1 else ''}"
                      + (f", {len(analyses)} analyzed trial{'s' if len(analyses) != 1 else ''})" if analyses else ")"))
            return
        rep = make_report(st, exps[0], fmt.value, out_dir)
    _print_report(rep, as_json)


@app.command()
def reproduce(
    target: Annotated[str, typer.Argument(help="table1..table5 | figure2..figure5 | all")],
    budget: Annotated[str, typer.Option(help="quick (minutes on 2 cores) | paper (the paper's settings)")] = "quick",
    store: StoreOpt = None,
    executor: ExecutorOpt = ExecutorName.local,
    address: AddressOpt = None,
    workers: WorkersOpt = None,
    specs: Annotated[Optional[str], typer.Option("--specs", help="folder of the specs (default: ./experiments "
                                                  "or the package's)")] = None,
    out_dir: Annotated[str, typer.Option("--out-dir", help="where figures are written")] = "figures",
    fmt: Annotated[Format, typer.Option("--format", help="table format")] = Format.markdown,
    device: DeviceOpt = Device.cpu,
    as_json: JsonOpt = False,
) -> None:
    """Run what is missing for a paper table or figure, then report it from the store."""
    if target != "all" and target not in TARGETS:
        raise UsageError(f"target: unknown {target!r}; allowed: {', '.join(TARGETS)}, all")
    folder = _spec_dir(specs)
    names = list(TARGETS) if target == "all" else [target]
    loaded = []
    for n in names:  # validate every spec before anything runs
        f = folder / f"{n}.toml"
        if not f.is_file():
            raise UsageError(f"--specs: no spec {f}")
        spec = _load(str(f))
        _check_budget(spec, budget, str(f))
        loaded.append((n, str(f), spec))
    path = writable_store(store)
    _check_out_dir(out_dir)
    _choose_device(device)
    ex = _executor(executor, address, workers)
    console = Console(stderr=True)
    from localrnn.experiments.report import make_report
    from localrnn.experiments.store import Store

    reports = []
    t0 = time.perf_counter()
    with Store(path) as st, ex:
        for n, f, spec in loaded:
            exp = _run_spec(st, spec, budget, ex, console, f)
            reports.append(make_report(st, exp, fmt.value, out_dir))
    console.print(f"done in {time.perf_counter() - t0:.0f} s", highlight=False)
    if as_json:
        print(json.dumps([r.as_json() for r in reports]))
        return
    for r in reports:
        print(r.text, end="" if r.text.endswith("\n") else "\n")
        if len(reports) > 1:
            print()
