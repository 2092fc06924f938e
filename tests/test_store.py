"""The SQLite results store."""

import sqlite3

import numpy as np
import pytest

from localrnn.config import TrainConfig
from localrnn.experiments.store import Store


def _cfg(**kw):
    d = dict(task="temporal_order", length=10, rule="bptt", hidden=8, val_size=200, max_iters=100)
    d.update(kw)
    return TrainConfig(**d)


def _result(status="solved", acc=1.0):
    return {"status": status, "best_accuracy": acc, "best_iteration": 100, "iterations": 100, "seconds": 1.5,
            "history": [{"iteration": 50, "train_loss": 0.7, "val_loss": float("nan"), "val_accuracy": 0.5,
                         "val_errors": 100},
                        {"iteration": 100, "train_loss": 0.1, "val_loss": 0.05, "val_accuracy": acc,
                         "val_errors": 0}]}


def test_wal_mode_and_roundtrip(tmp_path):
    path = str(tmp_path / "s.db")
    a, b = _cfg(), _cfg(lr=0.1)
    with Store(path) as st:
        st.add_experiment("e:quick", "grid", {"spec": {"name": "e"}, "budget": "quick"})
        st.register_trials("e:quick", [(a.run_id(), a, {"arm": "A", "lr": 0.01}, None),
                                        (b.run_id(), b, {"arm": "A", "lr": 0.1}, None)])
        assert [t["status"] for t in st.trials("e:quick")] == ["pending", "pending"]
        assert st.complete_ids([a.run_id(), b.run_id()]) == set()
        st.set_status([a.run_id(), b.run_id()], "running")
        st.write_results([(a.run_id(), _result(), {"Wxh": np.ones((6, 8)), "Whh": np.eye(8), "bh": np.zeros(8),
                                                   "Why": np.ones((8, 4)), "by": np.zeros(4)})])
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with Store(path) as st:
        ta = st.trial(a.run_id())
        assert ta["status"] == "solved" and ta["completions"] == 1 and ta["best_accuracy"] == 1.0
        assert TrainConfig(**ta["config"]) == a  # resolved config as JSON, round-trips
        assert st.trial(b.run_id())["status"] == "running"
        assert st.complete_ids([a.run_id(), b.run_id()]) == {a.run_id()}
        m = st.metrics(a.run_id())
        assert [r["iteration"] for r in m] == [50, 100] and m[0]["val_loss"] is None
        assert np.array_equal(st.params(a.run_id())["Whh"], np.eye(8))
        assert st.params(b.run_id()) is None
        assert [t["trial_id"] for t in st.trials("e:quick", status="running")] == [b.run_id()]
        assert st.trials("e:quick")[0]["labels"]["arm"] == "A"
        # a complete trial is not reset by set_status
        st.set_status([a.run_id()], "interrupted")
        assert st.trial(a.run_id())["status"] == "solved"
        st.register_trials("e:quick", [(a.run_id(), a, {"arm": "A", "lr": 0.01}, None)])  # idempotent
        assert st.trial(a.run_id())["status"] == "solved"


def test_failed_write_leaves_nothing(tmp_path):
    a = _cfg()
    with Store(str(tmp_path / "s.db")) as st:
        st.register_trials("e", [(a.run_id(), a, {}, None)])
        bad = _result()
        bad["history"].append({"iteration": 150})  # missing fields: the insert fails part-way
        with pytest.raises(KeyError):
            st.write_results([(a.run_id(), bad, None)])
        t = st.trial(a.run_id())
        assert t["status"] == "pending" and t["completions"] == 0 and st.metrics(a.run_id()) == []


def test_records_and_ladders(tmp_path):
    a, b = _cfg(), _cfg(length=20)
    with Store(str(tmp_path / "s.db")) as st:
        st.register_trials("c", [("t1", a, {"arm": "A"}, None), ("t2", b, {"arm": "A"}, {"from": "t1"})])
        st.write_records("t1", [(10, {"local_loss": np.arange(3.0), "global_loss": 0.5}),
                                (20, {"local_loss": np.arange(3.0) + 1, "global_loss": 0.25})])
        rec = st.records("t1")
        its, vals = rec["local_loss"]
        assert its.tolist() == [10, 20] and vals.shape == (2, 3) and vals[1, 2] == 3.0
        assert rec["global_loss"][1].tolist() == [0.5, 0.25]
        st.write_result("t1", _result())
        st.write_result("t2", _result("failed", 0.8))
        st.write_ladder_step("c", "L", 0, 10, "t1", True, {"arm": "A"})
        st.write_ladder_step("c", "L", 1, 20, "t2", True, {"arm": "A"})
        lad = st.ladders("c")["L"]
        assert [(s["length"], s["status"]) for s in lad] == [(10, "solved"), (20, "failed")]
        assert st.trial("t2")["init"] == {"from": "t1"}


def test_final_state_keeps_the_rule_state(tmp_path):
    """A warm start's state: parameters and the rule state's leaves, in order, exactly."""
    a = _cfg()
    params = {"Wxh": np.ones((6, 8)), "Whh": np.eye(8), "bh": np.zeros(8), "Why": np.ones((8, 4)), "by": np.zeros(4)}
    leaves = [np.full((8, 8), 0.5), np.arange(8.0), np.zeros((8, 8)), np.ones(8), np.asarray([1, 2], np.uint32)]
    with Store(str(tmp_path / "s.db")) as st:
        st.register_trials("e", [("t", a, {}, None), ("u", a, {}, None)])
        st.write_results([("t", _result(), {"params": params, "rule_state": leaves}), ("u", _result(), params)])
        got = st.final_state("t")
        assert [g.dtype for g in got["rule_state"]] == [v.dtype for v in leaves]
        assert all(np.array_equal(g, v) for g, v in zip(got["rule_state"], leaves))
        assert set(got["params"]) == set(params) and np.array_equal(st.params("t")["Whh"], np.eye(8))
        assert st.final_state("u")["rule_state"] == []  # a bare params mapping (rule without state)
