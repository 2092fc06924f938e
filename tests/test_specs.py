"""Experiment specs: precise errors before anything runs; the shipped specs are valid."""

import os
from pathlib import Path

import pytest

from localrnn.cli import main
from localrnn.experiments.spec import SpecError, load_spec, parse_spec, plan

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"

GOOD = """
name = "tiny"
seeds = 2
[fixed]
task = "temporal_order"
length = 10
hidden = 8
[[arms]]
name = "BPTT"
rule = "bptt"
grid = { lr = [0.1, 0.01] }
[budget.quick]
max_iters = 100
patience = 2
"""


def _cli(args, capsys):
    with pytest.raises(SystemExit) as e:
        main(args)
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def test_good_spec_expands_grid_times_seeds(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text(GOOD)
    trials = plan(load_spec(p), "quick")
    assert len(trials) == 4
    assert {(t.config.lr, t.config.seed) for t in trials} == {(0.1, 0), (0.1, 1), (0.01, 0), (0.01, 1)}
    assert all(t.config.max_iters == 100 and t.config.patience == 2 for t in trials)
    assert len({t.trial_id for t in trials}) == 4


@pytest.mark.parametrize("edit, field", [
    (("[[arms]]", "bogus = 1\n[[arms]]"), "bogus: unknown field"),                        # unknown top-level field
    (("grid = { lr = [0.1, 0.01] }", "grid = { lr = [0.1], foo = [1] }"), "arms[0].grid.foo: unknown field"),
    (("hidden = 8", 'hidden = "eight"'), "fixed.hidden: Input should be a valid integer"),  # wrong type
    (("grid = { lr = [0.1, 0.01] }", "grid = { lr = [] }"), "arms[0].grid.lr: empty list"),
    (("grid = { lr = [0.1, 0.01] }", 'grid = { lr = "0.1" }'), "arms[0].grid.lr: Input should be a valid list"),
    (('rule = "bptt"', 'rule = "nosuchrule"'), "arms[0].rule: unknown rule 'nosuchrule'"),
    (('task = "temporal_order"', 'task = "nosuchtask"'), "fixed.task: unknown task 'nosuchtask'"),
    (("max_iters = 100", "max_iters = -5"), "budget.quick.max_iters: Input should be greater than or equal to 1"),
    (("patience = 2", "patience = -1"), "budget.quick.patience: Input should be greater than or equal to 0"),
    (("seeds = 2", "seeds = 0"), "seeds: a seed count must be >= 1"),
    (("hidden = 8", "hidden = -8"), "fixed.hidden: Input should be greater than or equal to 1"),
    # the rule's schema: hyper-parameter ranges, and options a hyper-parameter switches are not keys
    (("grid = { lr = [0.1, 0.01] }", "grid = { lr = [0.1], reg_lambda = [0.1, -1.0] }"),
     "arms[0].grid.reg_lambda: must be in [0, inf], got -1.0"),
    (("grid = { lr = [0.1, 0.01] }", "grid = { lr = [0.1], reg_lambda = [nan] }"),
     "arms[0].grid.reg_lambda: must be finite, got nan"),
    (("grid = { lr = [0.1, 0.01] }", "grid = { lr = [0.1], regularize = [true] }"),
     "arms[0].grid.regularize: unknown field for rule 'bptt'; allowed: task, length, lr,"),
])
def test_bad_spec_rejected_naming_field_and_nothing_written(tmp_path, capsys, edit, field):
    old, new = edit
    assert old in GOOD
    p = tmp_path / "bad.toml"
    p.write_text(GOOD.replace(old, new, 1))
    with pytest.raises(SpecError, match=None) as e:
        load_spec(p)
    assert field in str(e.value), str(e.value)
    db = tmp_path / "store.db"
    code, out, err = _cli(["sweep", str(p), "--budget", "quick", "--store", str(db)], capsys)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and field in err, err
    assert not db.exists() and not list(tmp_path.glob("store.db*"))


def test_unknown_budget_and_bad_toml(tmp_path, capsys):
    p = tmp_path / "s.toml"
    p.write_text(GOOD)
    code, _, err = _cli(["sweep", str(p), "--budget", "huge", "--store", str(tmp_path / "x.db")], capsys)
    assert code == 2 and "--budget" in err and "quick" in err
    p.write_text("name = \n")
    code, _, err = _cli(["sweep", str(p), "--store", str(tmp_path / "x.db")], capsys)
    assert code == 2 and "not valid TOML" in err
    assert not (tmp_path / "x.db").exists()


def test_optional_arm_with_unregistered_rule_is_skipped():
    spec = parse_spec({"name": "s", "fixed": {"task": "temporal_order", "length": 10},
                       "arms": [{"name": "A", "rule": "bptt"},
                                {"name": "Z", "rule": "not_yet_written", "optional": True}]})
    trials = plan(spec, "default")
    assert [t.labels["arm"] for t in trials] == ["A"]


def test_budget_override_must_match_something():
    with pytest.raises(SpecError, match="budget.quick.grid.target_step: matches no arm"):
        parse_spec({"name": "s", "fixed": {"task": "temporal_order", "length": 10},
                    "arms": [{"name": "A", "rule": "bptt", "grid": {"lr": [0.1]}}],
                    "budget": {"quick": {"grid": {"target_step": [1.0]}}}})


def test_an_arm_may_run_its_own_seeds_and_a_budget_overrides_them():
    arms = [{"name": "A", "rule": "bptt", "seeds": [3, 7]}, {"name": "B", "rule": "readout"}]
    spec = parse_spec({"name": "s", "seeds": 2, "fixed": {"task": "temporal_order", "length": 10}, "arms": arms,
                       "budget": {"study": {}, "quick": {"seeds": 1}}})
    assert [(t.labels["arm"], t.labels["seed"]) for t in plan(spec, "study")] == [("A", 3), ("A", 7), ("B", 0), ("B", 1)]
    assert [(t.labels["arm"], t.labels["seed"]) for t in plan(spec, "quick")] == [("A", 0), ("B", 0)]
    with pytest.raises(SpecError, match=r"arms\[0\]\.seeds: repeated seeds in \[1, 1\]$"):
        parse_spec({"name": "s", "fixed": {"task": "temporal_order", "length": 10},
                    "arms": [{"name": "A", "rule": "bptt", "seeds": [1, 1]}]})


def test_a_budget_may_run_some_arms_by_label():
    """``budget.<name>.arms`` keeps the arms whose label (or name) it lists; a label that is no
    arm's is refused, naming the budget and the labels allowed."""
    arms = [{"name": "A to", "label": "A", "rule": "bptt", "fixed": {"task": "temporal_order"}},
            {"name": "A rp", "label": "A", "rule": "bptt", "fixed": {"task": "random_permutation"}},
            {"name": "B", "rule": "readout", "fixed": {"task": "temporal_order"}}]
    spec = parse_spec({"name": "s", "fixed": {"length": 10}, "arms": arms,
                       "budget": {"quick": {"arms": ["A"]}, "all": {}}})
    assert [t.labels["arm"] for t in plan(spec, "quick")] == ["A", "A"]
    assert [t.labels["arm"] for t in plan(spec, "all")] == ["A", "A", "B"]
    with pytest.raises(SpecError, match=r"budget\.quick\.arms: 'A to' labels no arm; allowed: 'A', 'B'$"):
        parse_spec({"name": "s", "fixed": {"length": 10}, "arms": arms, "budget": {"quick": {"arms": ["A to"]}}})


@pytest.mark.parametrize("path", sorted(EXPERIMENTS.glob("*.toml")), ids=lambda p: p.stem)
def test_shipped_specs_are_valid_in_every_budget(path):
    spec = load_spec(path)
    assert "quick" in spec.budget and len(spec.budget) >= 2  # a smoke test and the real thing
    for b in spec.budget:
        plan(spec, b, str(path))


def test_every_paper_target_has_a_spec():
    names = {p.stem for p in EXPERIMENTS.glob("*.toml")}
    assert {"table1", "table2", "table3", "table4", "table5", "figure2", "figure3", "figure4", "figure5"} <= names


def test_dry_run_lists_the_papers_grids(tmp_path, capsys, monkeypatch):
    """`sweep --dry-run` lists each arm's axes: Table IV searches alpha and gamma with c0, c1;
    Figure 5 has gamma's five values and lambda in {2, 1, 0.1} (0 as reference). Nothing written."""
    import json

    monkeypatch.chdir(tmp_path)
    code, out, _ = _cli(["sweep", str(EXPERIMENTS / "table4.toml"), "--budget", "paper", "--dry-run",
                         "--json"], capsys)
    assert code == 0
    axes = json.loads(out)["axes"]
    gammas = [0.001, 0.01, 0.1, 1.0, 10.0]
    for reading in ("fixed-target", "printed", "reference"):
        a = next(v for k, v in axes.items() if reading in k)
        assert a["lr"] == [0.001, 0.01, 0.1] and a["target_step"] == gammas
        assert a["c0"] == a["c1"] == [0.0, 0.01, 0.1, 1.0]
    code, out, _ = _cli(["sweep", str(EXPERIMENTS / "figure5.toml"), "--budget", "paper", "--dry-run",
                         "--json"], capsys)
    for a in json.loads(out)["axes"].values():
        assert a["target_step"] == gammas and a["reg_lambda"] == [0.0, 0.1, 1.0, 2.0]
    assert list(tmp_path.iterdir()) == []
