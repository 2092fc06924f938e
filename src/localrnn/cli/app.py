"""The ``localrnn`` typer app, its error type and entry point.

Bad input exits with code 2 and one line ``error: --option: what is wrong;
what is allowed``, before anything is computed or written.
"""

from __future__ import annotations

import re
import sys
from enum import Enum

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Train RNNs with local learning rules (LRA-diff, TPTT) beside BPTT on long-range tasks.")


class UsageError(Exception):
    """A bad option value: reported as one line, exit code 2."""

    exit_code = 2

    def format_message(self) -> str:
        return str(self)


class Device(str, Enum):
    cpu = "cpu"
    gpu = "gpu"


def _choose_device(device: Device) -> None:
    """Pin JAX to the requested platform before any computation (exit 2 if unavailable)."""
    import jax

    if device is Device.cpu:
        jax.config.update("jax_platforms", "cpu")
        return
    try:
        jax.devices("gpu")
    except RuntimeError:
        raise UsageError("--device: gpu requested but JAX has no GPU backend here; allowed: cpu "
                         "(install jax[cuda12] on a machine with a GPU for gpu)") from None
    jax.config.update("jax_default_device", jax.devices("gpu")[0])


def _one_line(msg: str, option: str | None) -> str:
    """click's messages as ``--option: what is wrong``."""
    msg = " ".join(msg.split())
    m = re.match(r"Invalid value for '(--[\w-]+)'(?: / '[^']*')?: (?:Value error, )?(.*)", msg)
    if m:
        return f"{m.group(1)}: {m.group(2)}"
    m = re.match(r"No such option: (--?[\w-]+)(.*)", msg)
    if m:
        return f"{m.group(1)}: no such option{m.group(2)}; see --help for the options"
    if option and not msg.startswith("-"):
        return f"{option}: {msg}"
    return msg


def main(argv: list[str] | None = None) -> None:
    """Entry point: click's usage errors become one line on stderr and exit code 2."""
    for info in app.registered_commands:  # flags read from a registry (train's rule flags) are read now
        getattr(info.callback, "refresh_flags", lambda: None)()
    command = typer.main.get_command(app)
    try:
        rv = command.main(args=argv if argv is not None else sys.argv[1:], prog_name="localrnn",
                          standalone_mode=False)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    except Exception as e:  # click's usage errors (typer vendors click) and ours
        if not (hasattr(e, "format_message") and hasattr(e, "exit_code")):
            raise
        msg = _one_line(e.format_message(), getattr(e, "option_name", None))
        print(f"error: {msg}", file=sys.stderr)
        sys.exit(e.exit_code)
    sys.exit(rv if isinstance(rv, int) else 0)
