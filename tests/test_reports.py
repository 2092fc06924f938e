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
      "arms": [{"name": "LRA-diff", "rule": "lra", "optional": True, "grid": {"inner_steps": [10], "lr": [0.1, 0.01]}},
               {"name": "BPTT", "rule": "bptt", "grid": {"lr": [0.1, 0.01]}},
               {"name": "readout", "rule": "readout", "grid": {"lr": [0.1]}}],
      "report": {"rows": ["task", "arm", "inner_steps"], "columns": "length", "control": "readout",
                 "paper": "table1"}}


def _fake_store(path, accuracy):
    """Write the trials of T1 with made-up results (no training)."""
    spec = parse_spec(T1)
    trials = plan(spec, "default")
    with Store(path) as st:
        st.add_experiment("table1:quick", "grid", {"spec": spec.model_dump(mode="json"), "budget": "quick"})
        st.register_trials("table1:quick", [(t.trial_id, t.config, t.labels, None) for t in trials])
        st.write_results([(t.trial_id, {"status": "failed", "best_accuracy": accuracy(t.labels), "best_iteration": 10,
                                        "iterations": 20, "seconds": 1.0, "history": []}, None) for t in trials])
    return trials


def test_mean_ci():
    m, ci = mean_ci([0.5, 0.7])
    assert m == pytest.approx(0.6) and ci == pytest.approx(12.706 * math.sqrt(0.02) / math.sqrt(2))
    assert mean_ci([0.3]) == (0.3, 0.0)


def test_paper_numbers_match_spec6():
    assert paper_value("table1", {"task": "temporal_order", "arm": "LRA-diff", "inner_steps": 20, "length": 10}) == (True, 99.81)
    assert paper_value("table1", {"task": "random_permutation", "arm": "LRA-diff", "inner_steps": 30, "length": 30}) == (True, 50.98)
    assert paper_value("table1", {"task": "temporal_order", "arm": "LRA-diff", "inner_steps": 10, "length": 30})[0] is False
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
        lra = next(l for l in rows if "LRA-diff" in l)
        assert "99.84" in lra and "84.02" in lra
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


def test_sensitivity_figure(tmp_path):
    from localrnn.experiments.report import sensitivity_figure

    trials = [{"status": "failed", "best_accuracy": 0.5 + 0.1 * lam + 0.01 * s,
               "labels": {"task": "temporal_order", "length": 20, "reg_lambda": lam, "seed": s}}
              for lam in (0.1, 1.0, 2.0) for s in (0, 1)]
    path, data = sensitivity_figure(trials, "reg_lambda", ["task", "length"], str(tmp_path / "f5.png"))
    assert len(data) == 3 and data[0]["seeds"] == 2
    assert open(path, "rb").read(4) == b"\x89PNG"


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
