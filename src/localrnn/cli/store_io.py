"""``localrnn export`` / ``localrnn import``: the results store as JSON lines, for git
(the format: localrnn/experiments/export.py, docs/protocols.md).

Bad input (no store, an unknown experiment, a file that cannot be read or has a malformed
line, an output folder that is missing) is one line on stderr, exit code 2, nothing written.
"""

from __future__ import annotations

import os
from enum import Enum
from typing import Annotated, Optional

import typer

from localrnn.cli.app import UsageError, app
from localrnn.cli.stores import StoreOpt, store_path, writable_store


class ParamsKept(str, Enum):
    tips = "tips"
    all = "all"
    none = "none"


def _summary(counts: dict[str, int], keys: tuple[str, ...]) -> str:
    return ", ".join(f"{counts.get(k, 0)} {k}" for k in keys)


@app.command("export")
def export_(
    out: Annotated[str, typer.Argument(metavar="OUT.jsonl", help="file to write (replaced atomically)")],
    store: StoreOpt = None,
    experiment: Annotated[Optional[list[str]], typer.Option("--experiment", help="only this experiment and its "
                                                            "trials (repeatable; default: all)")] = None,
    params: Annotated[ParamsKept, typer.Option("--params", help="trial states kept: tips (what a study needs to "
                                               "continue) | all | none")] = ParamsKept.tips,
) -> None:
    """Write the results store as JSON lines (sorted, one object a line: diffs well in git)."""
    from localrnn.experiments.export import export_jsonl
    from localrnn.experiments.store import Store

    path = store_path(store)
    if not os.path.isfile(path):
        raise UsageError(f"--store: no results store at {path}")
    folder = os.path.dirname(os.path.abspath(out))
    allowed = "allowed: a file in an existing folder that can be written"
    if not os.path.isdir(folder):
        raise UsageError(f"OUT.jsonl: folder {folder} does not exist; {allowed}")
    if os.path.isdir(out) or not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"OUT.jsonl: {out} cannot be written; {allowed}")
    with Store(path, create=False) as st:
        stored = st.experiments()
        for n in experiment or ():
            if n not in stored:
                raise UsageError(f"--experiment: no experiment {n!r}; stored: {', '.join(stored) or 'none'}")
        counts = export_jsonl(st, out, experiment or None, params.value)
    print(f"exported {_summary(counts, ('experiment', 'trial', 'metrics', 'ladder', 'state'))} lines to {out}")


@app.command("import")
def import_(
    src: Annotated[str, typer.Argument(metavar="IN.jsonl", help="a file written by localrnn export")],
    store: StoreOpt = None,
) -> None:
    """Merge a JSON-lines export into the results store (complete trials stay; sweeps then continue)."""
    from localrnn.experiments.export import import_lines, read_jsonl
    from localrnn.experiments.store import Store

    if not os.path.isfile(src):
        raise UsageError(f"IN.jsonl: no file {src}")
    try:
        lines = read_jsonl(src)  # the whole file is checked before the store is opened
    except OSError as e:
        raise UsageError(f"IN.jsonl: cannot read {src} ({e.strerror})") from None
    except ValueError as e:
        raise UsageError(str(e)) from None
    path = writable_store(store)
    new = not os.path.exists(path)
    try:
        with Store(path) as st:
            counts = import_lines(st, lines, src)
    except ValueError as e:  # rolled back: the store is as it was, and a new one is removed
        if new:
            for p in (path, path + "-wal", path + "-shm"):
                if os.path.exists(p):
                    os.remove(p)
        raise UsageError(str(e)) from None
    print(f"imported into {path}: {_summary(counts, ('experiments', 'trials', 'kept', 'ladders', 'states'))}")
