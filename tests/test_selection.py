"""Hyper-parameter choice for the frontier (docs/frontier.md) and the generated frontier spec."""

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from localrnn.experiments.selection import choose_settings, rank_settings

ROOT = Path(__file__).resolve().parent.parent


def _t(lr, seed, status, iterations, acc, task="temporal_order", arm="A"):
    return {"labels": {"task": task, "arm": arm, "rule": "bptt", "length": 20, "lr": lr, "seed": seed},
            "status": status, "iterations": iterations, "best_accuracy": acc, "config": {"max_iters": 1000}}


def test_rank_by_seeds_solved_then_iterations_then_accuracy_then_grid_order():
    trials = [_t(0.1, 0, "failed", 1000, 0.99), _t(0.1, 1, "failed", 1000, 0.99),   # 0 solved
              _t(0.2, 0, "solved", 900, 1.0), _t(0.2, 1, "failed", 1000, 0.98),    # 1 solved, mean 950
              _t(0.3, 0, "solved", 100, 1.0), _t(0.3, 1, "failed", 1000, 0.5),     # 1 solved, mean 550
              _t(0.4, 0, "solved", 100, 1.0), _t(0.4, 1, "failed", 1000, 0.6),     # same, better accuracy
              _t(0.5, 0, "solved", 100, 1.0), _t(0.5, 1, "failed", 1000, 0.6)]     # tie: grid order
    rows = rank_settings(trials)[("temporal_order", "A")]
    assert [r["labels"]["lr"] for r in rows] == [0.4, 0.5, 0.3, 0.2, 0.1]
    assert rows[0]["mean_iterations"] == 550 and rows[0]["solved"] == 1 and rows[0]["seeds"] == 2
    (c,) = choose_settings(trials)
    assert c["settings"] == {"lr": 0.4} and c["complete"]
    trials[-1]["status"] = "running"
    assert not choose_settings(trials)[0]["complete"]


def test_the_frontier_spec_is_what_the_committed_selection_chooses(tmp_path):
    """experiments/frontier.toml equals scripts/frontier_spec.py's output from the committed
    selection export: every arm carries its chosen setting; arms whose selection is not complete are
    left out and named in a comment."""
    export = ROOT / "results" / "frontier_selection.jsonl"
    if not export.exists():
        pytest.fail("results/frontier_selection.jsonl is missing")
    out = tmp_path / "frontier.toml"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "frontier_spec.py"), "--store", str(export),
                    "--out", str(out)], check=True, capture_output=True)
    assert out.read_text() == (ROOT / "experiments" / "frontier.toml").read_text()
    spec = tomllib.loads(out.read_text())
    assert len(spec["arms"]) >= 27 and spec["seeds"] == 5  # the 27 arms of the first piece, plus any new arm chosen


def test_the_readme_frontier_blocks_are_what_the_committed_exports_give():
    """README.md's selection, frontier and paper-protocol blocks are regenerated from results/*.jsonl
    alone (scripts/readme_frontier.py); --check fails when they differ."""
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "readme_frontier.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_the_readme_analysis_block_is_what_the_committed_analyses_give():
    """README.md's analysis examples block is regenerated from docs/analysis_examples/*/analysis.json
    (scripts/analysis_examples.py readme); --check fails when they differ."""
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "analysis_examples.py"), "readme", "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
