"""The paper's experiments as package data: specs (``specs/*.toml``) read with
:mod:`importlib.resources`, so an installed wheel finds them without a checkout, and the
paper's printed numbers (:mod:`localrnn.paper.numbers`) that reports show beside ours."""

from __future__ import annotations

from importlib.resources import as_file, files
from pathlib import Path

__all__ = ["spec_dir", "spec_names"]


def spec_dir() -> Path:
    """Folder of the packaged experiment specs (a real path for an installed package)."""
    with as_file(files(__name__) / "specs") as p:
        return Path(p)


def spec_names() -> list[str]:
    """Names of the packaged specs (``table1``, ``figure2``, ...)."""
    return sorted(p.name.removesuffix(".toml") for p in files(__name__).joinpath("specs").iterdir()
                  if p.name.endswith(".toml"))
