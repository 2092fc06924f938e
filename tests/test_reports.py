"""Reports from the store alone: tables (paper beside ours, CI over seeds), figures, CLI."""

import json
import math

import jax.numpy as jnp
import numpy as np
import pytest

from localrnn.cli import main
from localrnn.config import TrainConfig
from localrnn.experiments.report import find_experiment, make_report, mean_ci, paper_value
from localrnn.rules._base import Rule
from localrnn.experiments.spec import parse_spec, plan
from localrnn.experiments.store import Store

T1 = {"name": "table1", "title": "T1", "seeds": 2,
      "grid": {"task": ["temporal_order"], "length": [10, 20]},
      "fixed": {"hidden": 8},
      "arms": [{"name": "LRA-diff", "rule": "lra", "optional": True, "fixed": {"c0": 1.0, "c1": 1.0},
                "grid": {"inner_steps": [10], "lr": [0.1, 0.01]}},
               {"name": "BPTT", "rule": "bptt", "grid": {"lr": [0.1, 0.01]}},
               {"name": "readout", "rule": "readout", "grid": {"lr": [0.1]}}],
      "report": {"rows": ["task", "arm", "inner_steps"], "columns": "length", "control": "readout",
                 "paper": "table1"}}


def _fake_store(path, accuracy, status=lambda lab: "failed", spec_dict=T1, experiment="table1:quick"):
    """Write the trials of ``spec_dict`` with made-up results (no training)."""
    spec = parse_spec(spec_dict)
    trials = plan(spec, "default")
    with Store(path) as st:
        st.add_experiment(experiment, "grid", {"spec": spec.model_dump(mode="json"), "budget": "default"})
        st.register_trials(experiment, [(t.trial_id, t.config, t.labels, None) for t in trials])
        st.write_results([(t.trial_id, {"status": status(t.labels), "best_accuracy": accuracy(t.labels),
                                        "best_iteration": 10, "iterations": 20, "seconds": 1.0, "history": []}, None)
                          for t in trials])
    return trials


def test_mean_ci():
    m, ci = mean_ci([0.5, 0.7])
    assert m == pytest.approx(0.6) and ci == pytest.approx(12.706 * math.sqrt(0.02) / math.sqrt(2))
    assert mean_ci([0.3]) == (0.3, 0.0)


def test_paper_values_reach_the_report_labels():
    """The report looks the paper up with the labels a cell's trials share (rule, c0, c1 ...)."""
    lra = {"rule": "lra", "c0": 1.0, "c1": 1.0}
    assert paper_value("table1", {**lra, "task": "temporal_order", "inner_steps": 20, "length": 20}) == (True, 99.81)
    assert paper_value("table1", {**lra, "task": "temporal_order", "inner_steps": 20, "length": 10}) == (True, "solved")
    assert paper_value("table1", {**lra, "task": "random_permutation", "inner_steps": 30, "length": 30}) == (True, 50.98)
    assert paper_value("table1", {**lra, "task": "temporal_order", "inner_steps": 10, "length": 40})[0] is False
    assert paper_value("table5", {"task": "random_permutation", "arm": "LRA-diff"}) == (True, None)
    assert paper_value("table5", {"task": "temporal_order", "arm": "BPTT"}) == (True, 120)


def test_grid_table_best_over_axes_mean_ci_over_seeds_paper_beside(tmp_path):
    def acc(lab):  # best lr is 0.1; seeds differ
        return {"LRA-diff": 0.8, "BPTT": 0.9, "readout": 0.6}[lab["arm"]] + (0.05 if lab["lr"] == 0.1 else 0) \
            + 0.01 * lab["seed"] - 0.1 * (lab["length"] == 20)
    path = str(tmp_path / "s.db")
    _fake_store(path, acc)
    with Store(path) as st:
        rep = make_report(st, "table1:quick", "markdown")
        csv_ = make_report(st, "table1:quick", "csv").text
        tex = make_report(st, "table1:quick", "latex").text
    lines = rep.text.splitlines()
    assert "| task | arm | inner_steps | T=10 | T=10 paper | T=20 | T=20 paper |" in lines
    bptt = next(d for d in rep.data if d["arm"] == "BPTT" and d["length"] == 10)
    assert bptt["seeds"] == 2 and bptt["accuracy_mean"] == pytest.approx(0.955)
    assert bptt["accuracy_ci95"] == pytest.approx(mean_ci([0.95, 0.96])[1]) and bptt["accuracy_ci95"] > 0
    rows = [l for l in lines if l.startswith("| temporal order")]
    if any(d["arm"] == "LRA-diff" for d in rep.data):  # lra registered: its row has the paper's numbers
        lra = next(l for l in rows if "LRA-diff" in l)  # T=10 is solved in the paper (✓), T=20 K=10 99.84
        assert lra.split(" | ")[3:6] == ["85.50 ± 6.35 (n=2)", "✓", "75.50 ± 6.35 (n=2)"]
        assert lra.endswith("| 99.84 |")
        assert next(d for d in rep.data if d["arm"] == "LRA-diff" and d["length"] == 10)["paper"] == "solved"
        bptt_row = next(l for l in rows if "BPTT" in l)
        assert bptt_row.endswith("|  |") and "✓" not in bptt_row  # BPTT: no paper value
    assert rows[-1].startswith("| temporal order | readout (control)")  # the control sits beside the rules
    assert "95.50 ± " in rep.text and "(n=2)" in rep.text
    assert csv_.splitlines()[0].startswith("task,arm,inner_steps,T=10")
    assert "\\begin{tabular}" in tex and "$\\pm$" in tex


def test_report_cli_and_runs_cli(tmp_path, capsys):
    path = str(tmp_path / "s.db")
    _fake_store(path, lambda lab: 0.5)
    with pytest.raises(SystemExit) as e:
        main(["report", "table1", "--store", path, "--json"])
    assert e.value.code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["experiment"] == "table1:quick" and out["kind"] == "table"
    with pytest.raises(SystemExit) as e:
        main(["runs", "--store", path, "--experiment", "table1:quick", "--rule", "bptt", "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert e.value.code == 0 and len(rows) == 8 and all(r["rule"] == "bptt" for r in rows)
    with pytest.raises(SystemExit) as e:
        main(["report", "table9", "--store", path])
    assert e.value.code == 2 and "no results" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["runs", "--store", str(tmp_path / "none.db")])
    assert e.value.code == 2 and not (tmp_path / "none.db").exists()


def _fake_lra_rule(T):
    """A rule with the LRA record contract: per-layer (T,) arrays under the four keys."""
    def step(params, state, batch, hp):
        x, y = batch
        from localrnn.model import forward
        from localrnn.losses import global_loss
        import jax
        loss, g = jax.value_and_grad(lambda p: global_loss("cross_entropy")(forward(p, x), y))(params)
        base = jnp.arange(1.0, T + 1) * loss
        return g, state, {"loss": loss, "local_loss": base, "target_displacement_norm": 2 * base,
                          "grad_Whh_norm": 3 * base, "grad_Wxh_norm": 4 * base}
    return Rule("fake", lambda k, p: (), step)


def test_record_run_and_gradient_flow_figure(tmp_path):
    from localrnn.experiments.diagnostics import RECORD_KEYS, record_run
    from localrnn.experiments.report import gradient_flow_figure

    cfg = TrainConfig(task="random_permutation", length=6, rule="bptt", hidden=8, batch=5, val_size=200,
                      max_iters=40, lr=0.05)
    result, records = record_run(cfg, every=10, rule=_fake_lra_rule(6))
    assert [it for it, _ in records] == [10, 20, 30, 40]
    assert all(records[0][1][k].shape == (6,) for k in RECORD_KEYS)
    assert result["iterations"] == 40 and result["status"] in ("solved", "failed")
    # the real BPTT rule records its own per-layer key
    _, bptt_records = record_run(cfg, every=20)
    assert bptt_records[0][1]["dE_dh_norm"].shape == (6,)
    with Store(str(tmp_path / "s.db")) as st:
        st.register_trials("f", [("t", cfg, {"arm": "fake"}, None)])
        st.write_records("t", records)
        recs = st.records("t")
    assert recs["local_loss"][1].shape == (4, 6)
    png = gradient_flow_figure([("fake", recs), ("bptt", {})], str(tmp_path / "f.png"), "title")
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_sensitivity_figure_relative_change_and_slope(tmp_path):
    from localrnn.experiments.report import sensitivity_figure, sensitivity_table

    acc = {0.0: 0.5, 0.1: 0.55, 1.0: 0.6, 2.0: 0.4}
    trials = [{"status": "failed", "best_accuracy": acc[lam] + 0.01 * s - 0.1 * (lr == 0.01),
               "labels": {"task": "temporal_order", "length": 20, "reg_lambda": lam, "lr": lr, "seed": s}}
              for lam in acc for s in (0, 1) for lr in (0.1, 0.01)]
    path, data = sensitivity_figure(trials, "reg_lambda", ["task", "length"], str(tmp_path / "f5.png"))
    assert open(path, "rb").read(4) == b"\x89PNG"
    assert [d["reg_lambda"] for d in data] == [0.0, 0.1, 1.0, 2.0] and data[0]["seeds"] == 2
    m0 = 0.505  # best over lr, mean over the two seeds
    assert [d["accuracy_mean"] for d in data] == pytest.approx([m0, 0.555, 0.605, 0.405], rel=1e-12)
    assert [d["relative_change"] for d in data] == pytest.approx([0.0, 0.05 / m0, 0.1 / m0, -0.1 / m0], rel=1e-12)
    assert data[0]["slope"] is None
    assert [d["slope"] for d in data[1:]] == pytest.approx([0.05 / 0.1, 0.05 / 0.9, -0.2 / 1.0], rel=1e-12)
    table = sensitivity_table(data, "reg_lambda", ["task", "length"], "F5")
    assert table.rows[1] == ["temporal order", "20", "0.1", "55.50", "9.901", "50.000"]


def test_diverged_run_keeps_its_best_and_is_marked(tmp_path):
    """A diverged trial (best 0.9 before diverging) beside a failed one (0.8): the cell is 90 % with †."""
    spec = {"name": "t", "seeds": 1, "fixed": {"task": "temporal_order", "length": 10, "hidden": 8},
            "arms": [{"name": "BPTT", "rule": "bptt", "grid": {"lr": [0.1, 0.01]}}],
            "report": {"rows": ["task", "arm"], "columns": "length"}}
    path = str(tmp_path / "s.db")
    _fake_store(path, lambda lab: 0.9 if lab["lr"] == 0.1 else 0.8,
                status=lambda lab: "diverged" if lab["lr"] == 0.1 else "failed", spec_dict=spec, experiment="t:q")
    with Store(path) as st:
        rep = make_report(st, "t:q", "markdown")
        tex = make_report(st, "t:q", "latex").text
    assert "| temporal order | BPTT | 90.00 † |" in rep.text.splitlines()
    assert rep.data[0]["accuracy_mean"] == pytest.approx(0.9) and rep.data[0]["diverged"] == 1
    assert any(n.startswith("† the best accuracy was reached by a run that later diverged") for n in rep.notes)
    assert "90.00 $^\\dagger$" in tex and "\\footnotesize $^\\dagger$ the best" in tex


def test_table4_report_shows_the_paper_value_beside_its_cell(tmp_path):
    spec = {"name": "table4", "seeds": 1, "fixed": {"task": "temporal_order", "length": 20, "hidden": 8},
            "arms": [{"name": "LRA-diff", "rule": "lra", "grid": {"c0": [0.0, 1.0], "c1": [0.1, 1.0],
                                                                   "lr": [0.1, 0.01], "inner_steps": [10]}}],
            "budget": {"default": {"note": "a tiny budget"}},
            "report": {"rows": ["arm", "c0", "c1"], "columns": "inner_steps", "paper": "table4"}}
    path = str(tmp_path / "s.db")
    _fake_store(path, lambda lab: 1.0 if lab["c0"] == 0.0 else 0.7, spec_dict=spec, experiment="table4:default",
                status=lambda lab: "solved" if lab["c0"] == 0.0 else "failed")
    with Store(path) as st:
        rep = make_report(st, "table4:default", "markdown")
    lines = rep.text.splitlines()
    assert "| arm | c0 | c1 | inner_steps=10 | inner_steps=10 paper |" in lines
    assert "| LRA-diff | 0.0 | 0.1 | 100.00 ✓ | 99.84 |" in lines
    assert "| LRA-diff | 1 | 1 | 70.00 |  |" in lines
    assert "budget: a tiny budget" in rep.notes and "budget: a tiny budget" in rep.text
    assert any("alpha = 0.1, gamma = 0.01, c0 = 0, c1 = 0.1" in n for n in rep.notes)


def test_ladder_table_arms_sharing_a_label_form_one_column_paper_beside():
    from localrnn.experiments.report import ladder_table

    spec = {"name": "table5", "arms": [{"name": "BPTT", "rule": "bptt"},
                                       {"name": "LRA-diff TO", "label": "LRA-diff", "rule": "lra"},
                                       {"name": "LRA-diff RP", "label": "LRA-diff", "rule": "lra"}],
            "grid": {"task": ["temporal_order", "random_permutation"]},
            "report": {"rows": ["task"], "paper": "table5"}}

    def ladder(arm, task, solved_up_to):
        return [{"labels": {"arm": arm, "task": task, "seed": 0}, "length": t, "step": t // 10, "warm_start": True,
                 "status": "solved" if t <= solved_up_to else "failed", "best_accuracy": 1.0, "iterations": 100}
                for t in range(10, solved_up_to + 20, 10)]
    ladders = {"a": ladder("BPTT", "temporal_order", 40), "b": ladder("LRA-diff", "temporal_order", 10),
               "c": ladder("LRA-diff", "random_permutation", 0), "d": ladder("BPTT", "random_permutation", 20)}
    table = ladder_table(ladders, spec)
    assert table.headers == ["task", "BPTT", "BPTT paper", "LRA-diff", "LRA-diff paper"]
    assert table.rows == [["temporal order", "40", "120", "10", "10"], ["random permutation", "20", "70", "0", "-"]]


TINY_T1 = """
name = "table1"
title = "tiny table 1"
seeds = 1
[fixed]
task = "temporal_order"
length = 10
hidden = 8
batch = 10
val_every = 50
[[arms]]
name = "BPTT"
rule = "bptt"
grid = { lr = [0.1, 0.01] }
[[arms]]
name = "readout"
rule = "readout"
grid = { lr = [0.1] }
[budget.quick]
max_iters = 200
patience = 2
fixed = { val_size = 300 }
[report]
rows = ["task", "arm"]
control = "readout"
paper = "table1"
"""


def test_reproduce_twice_second_does_no_training(tmp_path, capsys):
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "table1.toml").write_text(TINY_T1)
    store = str(tmp_path / "s.db")
    args = ["reproduce", "table1", "--budget", "quick", "--store", store, "--specs", str(specs)]
    with pytest.raises(SystemExit) as e:
        main(args)
    first = capsys.readouterr()
    assert e.value.code == 0 and "3 trained" in first.err
    with pytest.raises(SystemExit) as e:
        main(args)
    second = capsys.readouterr()
    assert e.value.code == 0 and "0 trained" in second.err and "3 already complete" in second.err
    assert first.out == second.out and "| temporal order | BPTT |" in first.out
    with pytest.raises(SystemExit) as e:
        main(["reproduce", "table7", "--store", store])
    assert e.value.code == 2
