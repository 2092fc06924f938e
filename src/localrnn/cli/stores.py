"""The ``--store`` option and the store helpers every command that reads or writes results shares
(sweep, frontier, runs, report, export, import, analyze)."""

from __future__ import annotations

import os
from typing import Annotated, Optional

import typer

from localrnn.cli.app import UsageError

__all__ = ["StoreOpt", "store_path", "read_store", "writable_store"]

StoreOpt = Annotated[Optional[str], typer.Option("--store", help="results store (default $LOCALRNN_STORE or ./localrnn.db); "
                                                 "commands that only read also take an export, FILE.jsonl")]


def store_path(store: str | None) -> str:
    """``--store``, or the default store ($LOCALRNN_STORE or ./localrnn.db)."""
    from localrnn.experiments.store import default_store_path

    return store or default_store_path()


def read_store(path: str):
    """The store at ``path`` for reading: a SQLite file, or a JSON-lines export (``.jsonl``) read
    into memory (``localrnn export``)."""
    from localrnn.experiments.export import open_store

    if not os.path.exists(path):
        raise UsageError(f"--store: no results store at {path}")
    try:
        return open_store(path)
    except ValueError as e:
        raise UsageError(f"--store: {e}") from None


def writable_store(store: str | None) -> str:
    """The store path of a command that writes it: an existing folder that can be written,
    and, if the store exists already, a writable file (checked before anything runs)."""
    path = store_path(store)
    folder = os.path.dirname(os.path.abspath(path))
    allowed = "allowed: a file in an existing folder that can be written"
    if not os.path.isdir(folder):
        raise UsageError(f"--store: folder {folder} does not exist; {allowed}")
    if os.path.isdir(path) or (os.path.exists(path) and not os.access(path, os.R_OK | os.W_OK)):
        raise UsageError(f"--store: {path} is not a writable file; {allowed}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"--store: folder {folder} cannot be written; {allowed}")
    return path
