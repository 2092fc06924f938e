"""The results store as JSON lines: export, import, open_store, and the export / import commands."""

import json
import math
import os

import numpy as np
import pytest

from localrnn.config import TrainConfig
from localrnn.experiments import export as ex
from localrnn.experiments.export import export_jsonl, import_jsonl, open_store, read_jsonl
from localrnn.experiments.store import Store


def _cfg(**kw):
    return TrainConfig(**{"task": "temporal_order", "length": 10, "rule": "bptt", "hidden": 8, "val_size": 50,
                          "max_iters": 100, **kw})


def _result(status="solved", acc=1.0):
    return {"status": status, "best_accuracy": acc, "best_iteration": 100, "iterations": 100, "seconds": 1.5,
            "history": [{"iteration": 50, "train_loss": 0.7, "val_loss": float("nan"), "val_accuracy": 0.5,
                         "val_errors": 25},
                        {"iteration": 100, "train_loss": 0.1, "val_loss": 0.05, "val_accuracy": acc,
                         "val_errors": 0}]}


def _state(k):
    return {"params": {"Wxh": np.full((6, 8), k), "Whh": np.eye(8) * k, "bh": np.zeros(8), "Why": np.ones((8, 4)),
                       "by": np.zeros(4)}, "rule_state": [np.arange(3.0) + k]}


# a grid experiment (a solved trial with records and a state, a pending one) and a curriculum with
# three ladders: solved, solved, failed | solved, running | solved
_GRID = [("g1", {"lr": 0.1}, _result()), ("g2", {"lr": 0.2}, None)]
_LADDERS = {"A": [("a0", "solved"), ("a1", "solved"), ("a2", "failed")],
            "B": [("b0", "solved"), ("b1", "running")],
            "C": [("c0", "solved")]}


def _build(path, reverse=False):
    """A store written row by row; ``reverse`` inserts everything in the opposite order."""
    order = (lambda xs: list(xs)[::-1]) if reverse else list
    st = Store(path)
    exps = [("grid:quick", "grid"), ("cur:quick", "curriculum")]
    for name, kind in order(exps):
        st.add_experiment(name, kind, {"spec": {"name": name.split(":")[0]}, "budget": "quick"})
    for tid, labels, r in order(_GRID):
        st.register_trials("grid:quick", [(tid, _cfg(lr=labels["lr"]), {"arm": "BPTT", **labels}, None)])
        if r is not None:
            st.write_result(tid, r, _state(1.0))
            st.write_records(tid, [(it, {"local_loss": [0.5 * it, float("nan")], "norm": 2.0 * it})
                                   for it in order([10, 20])])
    for ladder, steps in order(_LADDERS.items()):
        parent = None
        for step, (tid, status) in enumerate(steps):
            init = {"curriculum": True, "warm_start": True, "from": parent}
            st.register_trials("cur:quick", [(tid, _cfg(length=10 * (step + 1), seed=ord(ladder)),
                                              {"ladder": ladder, "step": step}, init)])
            st.write_ladder_step("cur:quick", ladder, step, 10 * (step + 1), tid, True, {"arm": "BPTT"})
            if status == "running":
                st.set_status([tid], "running")
            else:
                st.write_result(tid, _result(status, 1.0 if status == "solved" else 0.4), _state(step + 2.0))
            parent = tid
    return st


def _plain(v):
    """Arrays as lists and NaN as a string, so that == compares contents."""
    if isinstance(v, np.ndarray):
        v = v.tolist()
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, float) and math.isnan(v):
        return "nan"
    return v


def _contents(st):
    """Everything a store holds, through its public reading methods."""
    out = {"experiments": {n: st.experiment(n) for n in st.experiments()},
           "members": {n: st.trials(n) for n in st.experiments()},
           "ladders": {n: st.ladders(n) for n in st.experiments()}, "trials": {}}
    for t in st.trials():
        tid = t["trial_id"]
        out["trials"][tid] = {"row": t, "metrics": st.metrics(tid), "records": st.records(tid),
                              "state": st.final_state(tid)}
    return _plain(out)


def _state_ids(path):
    return [o["trial_id"] for _, o in read_jsonl(path) if o["type"] == "state"]


def test_round_trip_gives_the_same_store_and_the_same_bytes(tmp_path):
    src = _build(str(tmp_path / "a.db"))
    counts = export_jsonl(src, str(tmp_path / "a.jsonl"), params="all")
    assert counts == {"header": 1, "experiment": 2, "membership": 8, "ladder": 6, "trial": 8, "metrics": 6,
                      "records": 1, "state": 6}
    with Store(str(tmp_path / "b.db")) as dst:
        got = import_jsonl(dst, str(tmp_path / "a.jsonl"))
        assert got == {"experiments": 2, "trials": 8, "kept": 0, "memberships": 8, "ladders": 6, "states": 6}
        assert _contents(dst) == _contents(src)
        assert np.isnan(dst.records("g1")["local_loss"][1][:, 1]).all()
        export_jsonl(dst, str(tmp_path / "b.jsonl"), params="all")
    assert (tmp_path / "b.jsonl").read_bytes() == (tmp_path / "a.jsonl").read_bytes()
    src.close()


def _untimed(text):
    return [{k: v for k, v in json.loads(line).items() if k not in ("created", "updated")}
            for line in text.splitlines()]


def test_export_is_byte_identical_whatever_order_the_rows_were_written_in(tmp_path):
    with _build(str(tmp_path / "a.db")) as a, _build(str(tmp_path / "b.db"), reverse=True) as b:
        export_jsonl(a, str(tmp_path / "a1.jsonl"))
        export_jsonl(a, str(tmp_path / "a2.jsonl"))
        export_jsonl(b, str(tmp_path / "b.jsonl"))
    text = (tmp_path / "a1.jsonl").read_text()
    assert (tmp_path / "a2.jsonl").read_text() == text
    # the timestamps differ between the two stores; all else is in the same order
    assert _untimed(text) == _untimed((tmp_path / "b.jsonl").read_text())
    for line in text.splitlines():
        assert line == json.dumps(json.loads(line), sort_keys=True)


def test_params_tips_keeps_what_each_ladder_continues_from(tmp_path):
    with _build(str(tmp_path / "a.db")) as st:
        for params in ("none", "tips", "all"):
            export_jsonl(st, str(tmp_path / f"{params}.jsonl"), params=params)
        export_jsonl(st, str(tmp_path / "grid.jsonl"), experiments=["grid:quick"], params="tips")
        export_jsonl(st, str(tmp_path / "cur.jsonl"), experiments=["cur:quick"], params="all")
        with pytest.raises(ValueError, match="no experiment 'nope'; stored: cur:quick, grid:quick"):
            export_jsonl(st, str(tmp_path / "x.jsonl"), experiments=["nope"])
    assert _state_ids(str(tmp_path / "none.jsonl")) == []
    # A ends failed (nothing to continue), B's last step runs from b0, C's next step starts from c0
    assert _state_ids(str(tmp_path / "tips.jsonl")) == ["b0", "c0"]
    assert _state_ids(str(tmp_path / "all.jsonl")) == ["a0", "a1", "a2", "b0", "c0", "g1"]
    assert _state_ids(str(tmp_path / "grid.jsonl")) == []
    cur = [o for _, o in read_jsonl(str(tmp_path / "cur.jsonl"))]
    assert {o["trial_id"] for o in cur if o["type"] == "trial"} == {"a0", "a1", "a2", "b0", "b1", "c0"}
    assert {o["name"] for o in cur if o["type"] == "experiment"} == {"cur:quick"}
    assert not os.path.exists(tmp_path / "x.jsonl")


def test_import_merges_complete_trials_win(tmp_path):
    with _build(str(tmp_path / "a.db")) as st:
        export_jsonl(st, str(tmp_path / "a.jsonl"), params="all")
    with Store(str(tmp_path / "b.db")) as st:
        # b has g2 (pending in the file) solved, and b1 (running in the file) solved; g1 pending
        st.register_trials("other", [("g2", _cfg(lr=0.2), {}, None), ("g1", _cfg(lr=0.1), {}, None)])
        st.write_result("g2", _result("solved", 0.9))
        got = import_jsonl(st, str(tmp_path / "a.jsonl"))
        assert got["trials"] == 7 and got["kept"] == 1
        assert st.trial("g2")["best_accuracy"] == 0.9 and st.final_state("g2") is None
        assert st.trial("g1")["status"] == "solved" and st.final_state("g1") is not None
        assert st.experiments() == ["cur:quick", "grid:quick"]  # "other" has no experiment row
        again = import_jsonl(st, str(tmp_path / "a.jsonl"))
        assert again["trials"] == 0 and again["kept"] == 8  # b1 stays running: the file's is not complete


def _lines_of(path):
    return open(path).read().splitlines()


@pytest.mark.parametrize("line, new, message", [
    (1, '{"type": "header", "format": "localrnn-store", "version": 99, "localrnn": "0"}', "version 99"),
    (1, '{"type": "trial"}', "the first line must be the header"),
    (3, "{not json", "not JSON"),
    (3, '{"type": "gadget"}', "unknown type 'gadget'"),
    (3, '{"type": "experiment", "name": "x"}', "experiment line without kind, spec, created, updated"),
    (-1, '{"type": "state", "trial_id": "g1", "data": "@@@"}', "state is not base64"),
    (-1, '{"type": "metrics", "trial_id": "zz", "iteration": [], "train_loss": [], "val_loss": [], '
         '"val_accuracy": [], "val_errors": []}', "metrics of trial 'zz' before"),
])
def test_a_malformed_line_is_named_and_nothing_is_written(tmp_path, line, new, message):
    with _build(str(tmp_path / "a.db")) as st:
        export_jsonl(st, str(tmp_path / "a.jsonl"))
    lines = _lines_of(tmp_path / "a.jsonl")
    n = line if line > 0 else len(lines)
    lines[n - 1] = new
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    with Store(str(tmp_path / "b.db")) as st:
        with pytest.raises(ValueError, match=f"^{bad}:{n}: .*{message}"):
            import_jsonl(st, str(bad))
        assert st.experiments() == [] and st.trials() == []


def test_a_failed_export_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    out = tmp_path / "a.jsonl"
    out.write_text("old\n")
    calls = []

    def failing(obj):
        calls.append(obj)
        if len(calls) == 5:
            raise OSError("disk full")
        return json.dumps(obj) + "\n"

    monkeypatch.setattr(ex, "_line", failing)
    with _build(str(tmp_path / "a.db")) as st, pytest.raises(OSError, match="disk full"):
        export_jsonl(st, str(out))
    assert out.read_text() == "old\n" and not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_open_store_reads_an_export_in_memory_or_an_existing_file(tmp_path):
    with _build(str(tmp_path / "a.db")) as st:
        export_jsonl(st, str(tmp_path / "a.jsonl"), params="none")
        want = _contents(st)
    with open_store(str(tmp_path / "a.jsonl")) as mem:
        got = _contents(mem)
        assert mem.path == ":memory:"
    assert {k: v for k, v in got.items() if k != "trials"} == {k: v for k, v in want.items() if k != "trials"}
    assert all(t["state"] is None for t in got["trials"].values())
    with open_store(str(tmp_path / "a.db")) as st:
        assert st.experiments() == ["cur:quick", "grid:quick"]
    with pytest.raises(FileNotFoundError):
        open_store(str(tmp_path / "missing.db"))
    assert not (tmp_path / "missing.db").exists()


# -- the commands ----------------------------------------------------------------------


def _cli(capsys, *argv):
    from localrnn.cli import main

    with pytest.raises(SystemExit) as e:
        main(list(argv))
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def test_export_and_import_commands(tmp_path, capsys):
    _build(str(tmp_path / "a.db")).close()
    code, out, err = _cli(capsys, "export", str(tmp_path / "a.jsonl"), "--store", str(tmp_path / "a.db"),
                          "--experiment", "cur:quick", "--params", "all")
    assert code == 0 and err == ""
    assert out == f"exported 1 experiment, 6 trial, 5 metrics, 6 ladder, 5 state lines to {tmp_path / 'a.jsonl'}\n"
    code, out, err = _cli(capsys, "import", str(tmp_path / "a.jsonl"), "--store", str(tmp_path / "b.db"))
    assert code == 0 and out.startswith(f"imported into {tmp_path / 'b.db'}: 1 experiments, 6 trials, 0 kept")
    with Store(str(tmp_path / "b.db")) as st:
        assert st.experiments() == ["cur:quick"] and len(st.trials()) == 6


def test_reading_commands_take_an_export_as_the_store(tmp_path, capsys):
    """`runs` reads a .jsonl export as it reads the SQLite store it came from (`report`:
    tests/test_frontier.py)."""
    _build(str(tmp_path / "a.db")).close()
    assert _cli(capsys, "export", str(tmp_path / "a.jsonl"), "--store", str(tmp_path / "a.db"))[0] == 0
    for argv in (["runs", "--json"], ["runs", "--experiment", "cur:quick"]):
        from_db = _cli(capsys, *argv, "--store", str(tmp_path / "a.db"))
        from_jsonl = _cli(capsys, *argv, "--store", str(tmp_path / "a.jsonl"))
        assert from_db[0] == from_jsonl[0] == 0 and from_db[1] == from_jsonl[1]
    (tmp_path / "bad.jsonl").write_text("{}\n")
    code, _, err = _cli(capsys, "runs", "--store", str(tmp_path / "bad.jsonl"))
    assert code == 2 and err.startswith(f"error: --store: {tmp_path / 'bad.jsonl'}:1:") and err.count("\n") == 1


@pytest.mark.parametrize("argv, expected", [
    (["export", "{t}/out.jsonl", "--store", "{t}/missing.db"], "error: --store: no results store at {t}/missing.db"),
    (["export", "{t}/out.jsonl", "--store", "{t}/a.db", "--experiment", "nope"],
     "error: --experiment: no experiment 'nope'; stored: cur:quick, grid:quick"),
    (["export", "{t}/no/out.jsonl", "--store", "{t}/a.db"], "error: OUT.jsonl: folder {t}/no does not exist"),
    (["export", "{t}/out.jsonl", "--store", "{t}/a.db", "--params", "some"], "error: --params: "),
    (["import", "{t}/missing.jsonl", "--store", "{t}/new.db"], "error: IN.jsonl: no file {t}/missing.jsonl"),
    (["import", "{t}/bad.jsonl", "--store", "{t}/new.db"], "error: {t}/bad.jsonl:2: not JSON"),
    (["import", "{t}/a.db", "--store", "{t}/new.db"], "error: {t}/a.db:1: "),
    (["import", "{t}/good.jsonl", "--store", "{t}/no/new.db"], "error: --store: folder {t}/no does not exist"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, argv, expected):
    _build(str(tmp_path / "a.db")).close()
    with Store(str(tmp_path / "a.db")) as st:
        export_jsonl(st, str(tmp_path / "good.jsonl"))
    (tmp_path / "bad.jsonl").write_text(_lines_of(tmp_path / "good.jsonl")[0] + "\n{oops\n")
    before = {p: os.path.getmtime(tmp_path / p) for p in os.listdir(tmp_path)}
    code, out, err = _cli(capsys, *[a.format(t=tmp_path) for a in argv])
    assert code == 2 and out == "" and err.startswith(expected.format(t=tmp_path)) and err.count("\n") == 1, err
    assert {p: os.path.getmtime(tmp_path / p) for p in os.listdir(tmp_path)} == before


# -- a curriculum continued from an import -----------------------------------------------


def _spec(max_length):
    from localrnn.experiments.spec import parse_spec

    return parse_spec({
        "name": "cur", "kind": "curriculum", "seeds": 1,
        "curriculum": {"start": 10, "step": 10, "max_length": max_length},
        "fixed": {"task": "temporal_order", "hidden": 8, "batch": 20, "val_size": 50, "val_every": 50},
        "arms": [{"name": "BPTT", "rule": "bptt", "fixed": {"lr": 0.1, "clip": 1.0}}],
        "budget": {"quick": {"max_iters": 1500, "patience": 10}}})


def _ladder(st):
    (steps,) = st.ladders("cur:quick").values()
    return [{k: s[k] for k in ("step", "length", "trial_id", "status", "best_accuracy", "iterations")}
            for s in steps]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The tiny curriculum run to T = 20 in one go."""
    from localrnn.experiments.curriculum import run_curriculum
    from localrnn.experiments.executors import LocalExecutor

    path = str(tmp_path_factory.mktemp("cur") / "a.db")
    with Store(path) as st:
        run_curriculum(st, _spec(20), "quick", LocalExecutor())
        steps = _ladder(st)
        assert [(s["length"], s["status"]) for s in steps] == [(10, "solved"), (20, "solved")], steps
    return path


def test_a_curriculum_continued_after_import_equals_one_run_uninterrupted(tmp_path, uninterrupted):
    from localrnn.experiments.curriculum import run_curriculum
    from localrnn.experiments.executors import LocalExecutor

    with Store(str(tmp_path / "b.db")) as st:  # stops at T = 10, exported with the tip state only
        run_curriculum(st, _spec(10), "quick", LocalExecutor())
        export_jsonl(st, str(tmp_path / "b.jsonl"))
    with Store(str(tmp_path / "c.db")) as st, Store(uninterrupted) as ref:
        assert _state_ids(str(tmp_path / "b.jsonl")) == [_ladder(ref)[0]["trial_id"]]
        import_jsonl(st, str(tmp_path / "b.jsonl"))
        s = run_curriculum(st, _spec(20), "quick", LocalExecutor())
        assert s.ran == 1
        assert _ladder(st) == _ladder(ref)
        last = _ladder(ref)[-1]["trial_id"]
        assert _plain(st.metrics(last)) == _plain(ref.metrics(last))


def test_a_two_step_ladder_continues_from_its_tip_alone(tmp_path, uninterrupted):
    from localrnn.experiments.curriculum import run_curriculum
    from localrnn.experiments.executors import LocalExecutor

    with Store(uninterrupted) as st:
        export_jsonl(st, str(tmp_path / "a.jsonl"))
    with Store(str(tmp_path / "c.db")) as st:
        import_jsonl(st, str(tmp_path / "a.jsonl"))
        s = run_curriculum(st, _spec(30), "quick", LocalExecutor())
        assert s.ran == 1 and [x["length"] for x in _ladder(st)] == [10, 20, 30]
