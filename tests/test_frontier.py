"""The frontier (docs/frontier.md): Wilson intervals, P(solved) from ladders, the CLI, SIGKILL + resume."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest

from localrnn.experiments.report import first_separation, frontier_data, frontier_table, make_report, wilson
from localrnn.experiments.store import Store
from test_sweep import _complete_count

TINY_FRONTIER_TOML = """
name = "tinyfrontier"
kind = "frontier"
title = "tiny frontier"
seeds = 2

[curriculum]
start = 10
step = 2
max_length = 16

[fixed]
task = "temporal_order"
hidden = 8
batch = 20
val_size = 100
val_every = 25
patience = 0

[[arms]]
name = "BPTT"
rule = "bptt"
fixed = { lr = 0.1, clip = 1.0 }

[[arms]]
name = "readout"
rule = "readout"
fixed = { lr = 0.1 }

[budget.quick]
max_iters = 400

[report]
control = "readout"
"""


def test_wilson_matches_closed_form_values():
    # k = 0 and k = n: the interval touches 0 / 1; n = 5: known values of the Wilson score interval
    lo, hi = wilson(0, 5)
    assert lo == 0.0 and hi == pytest.approx(0.43449, abs=1e-4)
    lo, hi = wilson(5, 5)
    assert lo == pytest.approx(0.56551, abs=1e-4) and hi == 1.0
    lo, hi = wilson(3, 10)
    assert (lo, hi) == (pytest.approx(0.10779, abs=1e-4), pytest.approx(0.60322, abs=1e-4))
    assert all(math.isnan(x) for x in wilson(0, 0))


def _steps(seed, statuses, task="temporal_order", arm="A", start=10):
    return [{"step": i, "length": start + 10 * i, "status": s, "labels": {"task": task, "arm": arm, "seed": seed}}
            for i, s in enumerate(statuses)]


def test_p_solved_counts_seeds_whose_ladder_reached_t_and_marks_censoring():
    spec = {"name": "f", "arms": [{"name": "A"}], "curriculum": {"start": 10, "step": 10}}
    ladders = {"a": _steps(0, ["solved", "solved", "failed"]), "b": _steps(1, ["failed"]),
               "c": _steps(2, ["solved", "solved", "solved"])}
    (d,) = frontier_data(ladders, spec, max_length=30)
    assert d["highest"] == [20, 0, 30] and d["median"] == 20 and (d["min"], d["max"]) == (0, 30)
    assert d["censored"] == 1 and d["unfinished"] == 0
    assert [(p["length"], p["solved"], p["n"]) for p in d["p_solved"]] == [(10, 2, 3), (20, 2, 3), (30, 1, 3)]
    assert (d["p_solved"][2]["lo"], d["p_solved"][2]["hi"]) == wilson(1, 3)
    assert all(p["pending"] == 0 for p in d["p_solved"])
    # a ladder still climbing is counted as unfinished (its highest T is a lower bound)
    (d,) = frontier_data({"a": _steps(0, ["solved", "running"])}, spec, max_length=30)
    assert d["unfinished"] == 1 and d["highest"] == [10]


def test_first_separation_is_the_first_length_from_20_whose_intervals_are_apart():
    spec = {"name": "f", "arms": [{"name": "A"}, {"name": "B"}], "curriculum": {"start": 10, "step": 10}}
    five = lambda arm, statuses: {f"{arm}{s}": _steps(s, statuses, arm=arm) for s in range(5)}  # noqa: E731
    # A: every seed solves 10-30; B: every seed solves 10, none 20. At T = 10 both are 5/5 (overlap);
    # at T = 20 A's 5/5 [0.57, 1] lies above B's 0/5 [0, 0.43].
    a, b = frontier_data({**five("A", ["solved"] * 3 + ["failed"]), **five("B", ["solved", "failed"])},
                         spec, max_length=50)
    sep = first_separation(a, b)
    assert sep["length"] == 20 and (sep["a"]["solved"], sep["b"]["solved"]) == (5, 0)
    assert first_separation(b, a) is None  # B is never above A
    # 10 is below min_length: with min_length 10, B against an arm that fails T = 10 separates there
    (c,) = frontier_data(five("C", ["failed"]), {**spec, "arms": [{"name": "C"}]}, max_length=50)
    assert first_separation(b, c) is None and first_separation(b, c, min_length=10)["length"] == 10
    # 4 of 5 against 0 of 5 overlaps ([0.38, 0.96] and [0, 0.43]): no separation
    four = {**five("A", ["solved"] * 3 + ["failed"]), "A4": _steps(4, ["solved", "failed"], arm="A")}
    (a4,) = frontier_data(four, spec, max_length=50)
    assert first_separation(a4, b) is None
    # a pending seed counts both ways: 4 solved + 1 still running at T = 20 is not apart from 0/5
    run = {**five("A", ["solved"] * 3 + ["failed"]), "A4": _steps(4, ["solved", "running"], arm="A")}
    (ar,) = frontier_data(run, spec, max_length=50)
    assert first_separation(ar, b) is None


def test_ladders_of_an_arms_earlier_settings_are_left_out():
    # the spec was regenerated: arm A now fixes lr 0.1; seed 1's lr-0.01 ladder from before stays in
    # the store under the same label and seed and must not replace (or join) the current one
    spec = {"name": "f", "curriculum": {"start": 10, "step": 10},
            "arms": [{"name": "A, t", "label": "A", "fixed": {"task": "temporal-order", "lr": 0.1}}]}
    def lad(seed, statuses, lr):
        steps = _steps(seed, statuses)
        for st in steps:
            st["labels"].update(lr=lr, arm="A")
        return steps
    ladders = {"now0": lad(0, ["solved", "failed"], 0.1), "now1": lad(1, ["solved", "solved", "failed"], 0.1),
               "old1": lad(1, ["solved"], 0.01)}
    (d,) = frontier_data(ladders, spec, max_length=50)
    assert d["highest"] == [10, 20] and d["unfinished"] == 0


def test_a_ladder_still_climbing_is_pending_above_its_highest_t_not_failed():
    spec = {"name": "f", "arms": [{"name": "A"}], "curriculum": {"start": 10, "step": 10}}
    # seed 0 solved 20 and waits for its T = 30 rung; seed 1 failed at 20; seed 2 is running T = 20
    ladders = {"a": _steps(0, ["solved", "solved"]), "b": _steps(1, ["solved", "failed"]),
               "c": _steps(2, ["solved", "running"])}
    (d,) = frontier_data(ladders, spec, max_length=40)
    got = {p["length"]: (p["solved"], p["pending"]) for p in d["p_solved"]}
    assert got == {10: (3, 0), 20: (1, 1), 30: (0, 2), 40: (0, 2)}
    p30 = d["p_solved"][2]
    # the interval spans every ending: from 0/3's lower end to 2/3's upper end
    assert (p30["lo"], p30["hi"]) == (wilson(0, 3)[0], wilson(2, 3)[1])
    assert d["lengths_run"] == [10, 20]
    table = frontier_table([d], spec, "t", None)
    row = table.rows[0]
    assert row[3] == ">=20 10 >=10"  # unfinished ladders are lower bounds
    assert row[5].startswith(">=1/3 (1 pending)")  # T = 20: the only length >= 20 run
    assert len(row) == 7


def _cli(*args):
    return subprocess.Popen([sys.executable, "-m", "localrnn", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _ladders(path, experiment="tinyfrontier:quick"):
    with Store(path) as st:
        out = {}
        for key, steps in st.ladders(experiment).items():
            out[key] = [(s["step"], s["length"], s["status"], s["best_accuracy"], s["iterations"],
                         tuple((m["iteration"], m["val_errors"], m["train_loss"]) for m in st.metrics(s["trial_id"])))
                        for s in steps]
        return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted `localrnn frontier` run: (spec path, store path, its --json report)."""
    tmp = tmp_path_factory.mktemp("frontier")
    spec = tmp / "frontier.toml"
    spec.write_text(TINY_FRONTIER_TOML)
    ref = str(tmp / "ref.db")
    p = _cli("frontier", str(spec), "--store", ref, "--out-dir", str(tmp / "figs"), "--json")
    stdout, stderr = p.communicate(timeout=600)
    assert p.returncode == 0, stderr
    return spec, ref, json.loads(stdout)


def test_frontier_cli_prints_the_table_and_writes_the_figure(reference):
    _, ref, rep = reference
    assert os.path.exists(rep["path"]) and os.path.getsize(rep["path"]) > 10_000
    assert "P(solved T=16)" in rep["text"] and "readout" in rep["text"] and "Wilson" in rep["text"]
    assert [(d["arm"], len(d["highest"])) for d in rep["data"]] == [("BPTT", 2), ("readout", 2)]


def test_report_regenerates_the_frontier_from_the_store_alone(reference, tmp_path):
    _, ref, rep = reference
    with Store(ref) as st:
        again = make_report(st, "tinyfrontier:quick", "markdown", str(tmp_path))
    assert again.data == rep["data"] and again.text.split("wrote")[0] == rep["text"].split("wrote")[0]


def test_report_from_a_jsonl_export_alone_equals_the_report_from_the_store(reference, tmp_path):
    _, ref, rep = reference
    out = str(tmp_path / "frontier.jsonl")
    p = _cli("export", out, "--store", ref)
    assert p.wait(timeout=120) == 0
    p = _cli("report", "tinyfrontier", "--store", out, "--out-dir", str(tmp_path), "--json")
    stdout, stderr = p.communicate(timeout=120)
    assert p.returncode == 0, stderr
    assert json.loads(stdout)["data"] == rep["data"]


def test_frontier_cli_sigkill_mid_ladder_then_resume_gives_the_same_ladders(reference, tmp_path):
    spec, ref, rep = reference
    killed = str(tmp_path / "killed.db")
    total = _complete_count(ref)
    ladders = _ladders(ref)
    assert len(ladders) == 4  # 2 arms x 2 seeds
    assert any(len(steps) >= 3 for steps in ladders.values()), "a ladder must climb for the kill to land mid-ladder"

    p = _cli("frontier", str(spec), "--store", killed, "--out-dir", str(tmp_path))
    deadline = time.time() + 300
    while time.time() < deadline and p.poll() is None and _complete_count(killed) < 3:
        time.sleep(0.02)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert p.returncode == -signal.SIGKILL
    assert 3 <= _complete_count(killed) < total, "the kill must land part-way through the ladders"

    p = _cli("frontier", str(spec), "--store", killed, "--out-dir", str(tmp_path), "--json")
    stdout, stderr = p.communicate(timeout=600)
    assert p.returncode == 0, stderr
    assert _ladders(killed) == ladders
    assert json.loads(stdout)["data"] == rep["data"]
    with Store(killed) as st:  # every step written complete exactly once
        assert {t["completions"] for t in st.trials("tinyfrontier:quick")} == {1}


def test_frontier_command_rejects_a_spec_of_another_kind(tmp_path):
    spec = tmp_path / "grid.toml"
    spec.write_text(TINY_FRONTIER_TOML.replace('kind = "frontier"', 'kind = "curriculum"'))
    p = _cli("frontier", str(spec), "--store", str(tmp_path / "s.db"))
    _, stderr = p.communicate(timeout=120)
    assert p.returncode == 2 and "kind: must be \"frontier\"" in stderr and len(stderr.strip().splitlines()) == 1
    assert not (tmp_path / "s.db").exists()
