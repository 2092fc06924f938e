"""Experiment commands (sweep, curriculum, runs, report, reproduce) registered on the CLI app."""

from localrnn.cli import app  # noqa: F401
