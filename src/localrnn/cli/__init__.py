"""``localrnn`` command line: the typer app and its commands.

``app`` (cli/app.py) holds the entry point and the error handling; the command
modules register their commands on it when imported here.
"""

from localrnn.cli.app import UsageError, app, main
from localrnn.cli import run as _run  # noqa: F401  (train, demo, tasks, rules)
from localrnn.cli import experiments as _experiments  # noqa: F401  (sweep, curriculum, frontier, runs, report, reproduce)
from localrnn.cli import store_io as _store_io  # noqa: F401  (export, import)
from localrnn.cli import analyze as _analyze  # noqa: F401  (analyze)

__all__ = ["app", "main", "UsageError"]
