"""Every number of the paper's Tables I-V, typed a second time here (independently of
localrnn.paper.numbers) from Manchev & Garcia-Peraza-Herrera, "Can Local Representation
Alignment RNNs Solve Temporal Tasks?", with the check marks (solved) restored, and compared
cell by cell through the lookup the reports use (docs/paper.md)."""

import pytest

from localrnn.paper.numbers import PAPER, SOLVED, paper_value

TASKS = {"TO": "temporal_order", "3bit": "temporal_order_3bit", "RP": "random_permutation"}

# one line per (table half, task, T): the three K = 10 / 20 / 30 cells; "v" = the check mark
TABLES_I_TO_III = """
table1 -     TO   10  v v v
table1 -     TO   20  99.84 99.81 99.84
table1 -     TO   30  84.02 84.01 84.02
table1 -     3bit 10  v v v
table1 -     3bit 20  99.74 99.52 99.39
table1 -     3bit 30  71.09 70.60 68.42
table1 -     RP   10  50.90 50.54 50.93
table1 -     RP   20  51.06 51.07 51.23
table1 -     RP   30  50.91 50.92 50.98
table2 log   TO   10  v v v
table2 log   TO   20  99.84 99.81 99.84
table2 log   TO   30  61.99 79.66 79.35
table2 log   3bit 10  v v v
table2 log   3bit 20  99.74 99.52 99.39
table2 log   3bit 30  71.09 70.60 68.42
table2 log   RP   10  50.54 50.54 50.93
table2 log   RP   20  51.06 51.08 51.23
table2 log   RP   30  50.91 50.91 50.98
table2 mse   TO   10  v v v
table2 mse   TO   20  99.84 99.81 99.84
table2 mse   TO   30  83.50 82.32 80.98
table2 mse   3bit 10  v v v
table2 mse   3bit 20  99.74 99.52 99.39
table2 mse   3bit 30  71.09 70.60 68.42
table2 mse   RP   10  50.90 50.54 50.93
table2 mse   RP   20  51.06 51.07 51.23
table2 mse   RP   30  50.91 50.92 50.98
table3 c0    TO   10  v v v
table3 c0    TO   20  99.84 99.81 99.84
table3 c0    TO   30  83.13 81.45 80.76
table3 c0    3bit 10  v v v
table3 c0    3bit 20  99.74 99.52 99.39
table3 c0    3bit 30  70.80 69.44 66.88
table3 c0    RP   10  50.90 50.54 50.93
table3 c0    RP   20  51.06 51.07 51.23
table3 c0    RP   30  50.91 50.92 50.98
table3 c1    TO   10  v v v
table3 c1    TO   20  99.84 99.81 99.84
table3 c1    TO   30  84.02 84.01 84.02
table3 c1    3bit 10  v v v
table3 c1    3bit 20  99.74 99.52 99.39
table3 c1    3bit 30  71.09 70.60 68.42
table3 c1    RP   10  50.90 50.54 50.93
table3 c1    RP   20  51.06 51.07 51.23
table3 c1    RP   30  50.91 50.92 50.98
"""

HALF_LABELS = {"-": {"c0": 1.0, "c1": 1.0}, "log": {"local_loss": "log_penalty"}, "mse": {"local_loss": "mse"},
               "c0": {"c0": 0.0, "c1": 0.0}, "c1": {"c0": 1.0, "c1": 1.0}}

# Table V: highest T solved; None = the paper's "-"
TABLE_V = {("TO", "TPTT"): 150, ("TO", "BPTT"): 120, ("TO", "LRA-diff"): 10, ("TO", "LRA-diff (reg.)"): 20,
           ("3bit", "TPTT"): 150, ("3bit", "BPTT"): 70, ("3bit", "LRA-diff"): 10, ("3bit", "LRA-diff (reg.)"): 10,
           ("RP", "TPTT"): 300, ("RP", "BPTT"): 70, ("RP", "LRA-diff"): None, ("RP", "LRA-diff (reg.)"): 80}


def _cells_i_to_iii():
    for line in TABLES_I_TO_III.strip().splitlines():
        table, half, task, length, *vals = line.split()
        for k, v in zip((10, 20, 30), vals):
            labels = {"rule": "lra", "task": TASKS[task], "length": int(length), "inner_steps": k,
                      **HALF_LABELS[half]}
            yield table, labels, (SOLVED if v == "v" else float(v))


CELLS = list(_cells_i_to_iii())
CELLS += [("table4", {"rule": "lra", "task": "temporal_order", "length": 20, "c0": 0.0, "c1": 0.1,
                      "inner_steps": k}, 99.84) for k in (10, 20, 30)]
CELLS += [("table5", {"task": TASKS[t], "arm": arm}, v) for (t, arm), v in TABLE_V.items()]


@pytest.mark.parametrize("table,labels,value", CELLS, ids=[f"{t}-{i}" for i, (t, _, _) in enumerate(CELLS)])
def test_every_typed_cell(table, labels, value):
    assert paper_value(table, labels) == (True, value)


def test_every_entry_is_pinned_and_counts():
    assert sum(len(v) for v in PAPER.values()) == len(CELLS) == 27 + 54 + 54 + 3 + 12
    numbers = [v for _, _, v in CELLS if isinstance(v, float)]
    assert len([v for t, _, v in CELLS if t in ("table2", "table3") and isinstance(v, float)]) == 84
    assert len(numbers) == 21 + 84 + 3


@pytest.mark.parametrize("table,labels", [
    ("table1", {"rule": "lra", "task": "temporal_order", "length": 40, "inner_steps": 10, "c0": 1.0, "c1": 1.0}),
    ("table1", {"rule": "bptt", "task": "temporal_order", "length": 20, "inner_steps": 10, "c0": 1.0, "c1": 1.0}),
    ("table1", {"rule": "lra", "task": "temporal_order", "length": 20, "inner_steps": 10}),  # c not fixed
    ("table4", {"rule": "lra", "task": "temporal_order", "length": 20, "c0": 1.0, "c1": 1.0, "inner_steps": 10}),
    ("table5", {"task": "adding", "arm": "BPTT"}),
    ("table9", {"task": "temporal_order"}),
])
def test_blank_cells_are_not_reported(table, labels):
    assert paper_value(table, labels) == (False, None)


def test_cli_spelling_matches():
    assert paper_value("table2", {"rule": "lra", "task": "temporal-order", "length": 30, "inner_steps": 20,
                                  "local_loss": "log-penalty"}) == (True, 79.66)


# ---- the packaged specs follow the paper (docs/protocols.md) -------------------------------------

def _paper_plan(name, budget="paper"):
    from localrnn.experiments.spec import load_spec, plan
    from localrnn.paper import spec_dir

    return plan(load_spec(spec_dir() / f"{name}.toml"), budget)


def _axes(trials, arm):
    keys = ("lr", "target_step", "inner_steps", "c0", "c1", "reg_lambda", "local_loss", "variant")
    return {k: sorted({t.labels[k] for t in trials if t.labels["arm"] == arm and k in t.labels}, key=str)
            for k in keys}


ALPHA, GAMMA, KS = [0.001, 0.01, 0.1], [0.001, 0.01, 0.1, 1.0, 10.0], [10, 20, 30]


@pytest.mark.parametrize("name", ["table1", "table2", "table3"])
def test_tables_i_to_iii_have_three_readings_bptt_and_the_control(name):
    trials = _paper_plan(name)
    readings = {t.labels["variant"] for t in trials if t.labels["rule"] == "lra"}
    assert readings == {"fixed_target", "printed", "reference"}
    assert {"bptt", "readout"} <= {t.labels["rule"] for t in trials}
    lra_arm = next(t.labels["arm"] for t in trials if t.labels["rule"] == "lra")
    ax = _axes(trials, lra_arm)
    assert (ax["lr"], sorted(ax["target_step"]), ax["inner_steps"]) == (ALPHA, GAMMA, KS)
    assert {t.config.patience for t in trials} == {30} and {t.config.max_iters for t in trials} == {100_000}
    full = _paper_plan(name, "full")
    assert {t.config.patience for t in full} == {0} and {t.config.max_iters for t in full} == {100_000}


def test_table4_searches_alpha_gamma_with_c0_c1():
    trials = _paper_plan("table4")
    ax = _axes(trials, "LRA-diff fixed-target")
    assert ax["c0"] == ax["c1"] == [0.0, 0.01, 0.1, 1.0]
    assert (ax["lr"], sorted(ax["target_step"]), ax["inner_steps"]) == (ALPHA, GAMMA, KS)
    assert len(trials) == 3 * 4 * 4 * 3 * 5 * 3
    assert {(t.config.task, t.config.length) for t in trials} == {("temporal_order", 20)}


def test_figure5_uses_the_paper_grid_and_lambda_zero_as_reference():
    trials = _paper_plan("figure5")
    assert {(t.config.task, t.config.length) for t in trials} == {
        ("random_permutation", 20), ("temporal_order", 20), ("temporal_order_3bit", 10)}
    for arm in {t.labels["arm"] for t in trials}:
        ax = _axes(trials, arm)
        assert ax["reg_lambda"] == [0.0, 0.1, 1.0, 2.0]
        assert (ax["lr"], sorted(ax["target_step"]), ax["inner_steps"]) == (ALPHA, GAMMA, KS)


def test_table5_regularized_arm_keeps_normalization_on():
    trials = _paper_plan("table5")
    reg = [t for t in trials if t.labels["arm"] == "LRA-diff (reg.)"]
    assert reg and all(t.config.hparams["reg_lambda"] > 0 for t in reg)
    assert all(t.config.hparams["c0"] > 0 and t.config.hparams["c1"] > 0 for t in reg)
    lra = [t for t in trials if t.labels["arm"] == "LRA-diff"]
    assert {t.config.task for t in lra} == {"temporal_order", "temporal_order_3bit", "random_permutation"}
    assert len(lra) == 3  # one chosen setting per task
