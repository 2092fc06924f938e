"""Curriculum (docs/protocols.md): grow T while solved, warm start, stop at the first failure, resume."""

import numpy as np

from localrnn.experiments.curriculum import highest_solved, run_curriculum
from localrnn.experiments.executors import LocalExecutor
from localrnn.experiments.spec import parse_spec
from localrnn.experiments.store import Store


def _spec(lr=0.1, max_length=20, **curriculum):
    return parse_spec({
        "name": "cur", "kind": "curriculum", "seeds": 1,
        "curriculum": {"start": 10, "step": 10, "max_length": max_length, **curriculum},
        "fixed": {"task": "temporal_order", "hidden": 16, "batch": 20, "val_size": 200, "val_every": 50},
        "arms": [{"name": "BPTT", "rule": "bptt", "fixed": {"lr": lr, "clip": 1.0}}],
        "budget": {"quick": {"max_iters": 1500, "patience": 10}}})


def test_bptt_climbs_to_max_length_warm_started_then_resume_runs_nothing(tmp_path):
    path = str(tmp_path / "s.db")
    with Store(path) as st:
        lines = []
        s = run_curriculum(st, _spec(), "quick", LocalExecutor(), progress=lines.append)
        assert s.warm_start and len(s.ladders) == 1
        # one line per ladder step as its job finishes
        assert lines == ["BPTT temporal_order seed 0 T=10: solved", "BPTT temporal_order seed 0 T=20: solved"], lines
        steps = next(iter(s.ladders.values()))
        assert [x["length"] for x in steps] == [10, 20]  # stops at max_length
        assert all(x["status"] == "solved" for x in steps), [(x["length"], x["status"], x["best_accuracy"], x["iterations"]) for x in steps]
        assert highest_solved(steps) == 20
        assert all(x["warm_start"] for x in steps)
        # each step after the first started from the previous step's solved weights
        t20 = st.trial(steps[1]["trial_id"])
        assert t20["init"]["from"] == steps[0]["trial_id"] and t20["init"]["warm_start"] is True
        assert st.params(steps[0]["trial_id"]) is not None
        again = run_curriculum(st, _spec(), "quick", LocalExecutor())
        assert again.ran == 0 and again.ladders == s.ladders


def test_stops_at_first_failure_and_cold_start_is_recorded(tmp_path):
    with Store(str(tmp_path / "s.db")) as st:
        s = run_curriculum(st, _spec(lr=1e-6, warm_start=False), "quick", LocalExecutor())
        steps = next(iter(s.ladders.values()))
        assert [(x["length"], x["status"]) for x in steps] == [(10, "failed")]
        assert highest_solved(steps) == 0 and not steps[0]["warm_start"]
        assert s.experiment.endswith(":cold")


def test_highest_solved_stops_at_first_gap():
    steps = [{"step": 0, "length": 10, "status": "solved"}, {"step": 1, "length": 20, "status": "failed"},
             {"step": 2, "length": 30, "status": "solved"}]
    assert highest_solved(steps) == 10
    assert highest_solved([]) == 0


class _RecordingExecutor(LocalExecutor):
    """The in-process executor, keeping the jobs it was handed."""

    def __init__(self):
        self.jobs = []
        self.after = []  # per finished job: (rule, length) of every job in the list once it was handled

    def run(self, jobs):
        self.jobs = jobs  # the caller's list: it grows as ladders go on
        self.order = []
        self.starts = []  # each job's warm starts as it ran (the curriculum lets them go once it is done)
        for i, results in super().run(jobs):
            self.order.append((jobs[i].configs[0]["rule"], jobs[i].configs[0]["length"]))
            self.starts.append(jobs[i].warm_starts)
            yield i, results
            self.after.append([(j.configs[0]["rule"], j.configs[0]["length"]) for j in jobs])


def _two_arms(max_length=20):
    return parse_spec({
        "name": "cur", "kind": "curriculum", "seeds": 1,
        "curriculum": {"start": 10, "step": 10, "max_length": max_length},
        "fixed": {"task": "temporal_order", "hidden": 16, "batch": 20, "val_size": 200, "val_every": 50},
        "arms": [{"name": "BPTT", "rule": "bptt", "fixed": {"lr": 0.1, "clip": 1.0}},
                 {"name": "readout", "rule": "readout", "fixed": {"lr": 1e-6}}],
        "budget": {"quick": {"max_iters": 1500, "patience": 10}}})


def test_a_ladder_goes_on_without_waiting_for_the_other_ladders_at_its_length(tmp_path):
    """BPTT's T = 20 step is queued as soon as its T = 10 job is done, before the readout's T = 10
    job has run (with a barrier per length it could only be queued after it), and being longer it
    starts first."""
    ex = _RecordingExecutor()
    with Store(str(tmp_path / "s.db")) as st:
        s = run_curriculum(st, _two_arms(), "quick", ex)
    assert ex.after[0] == [("bptt", 10), ("readout", 10), ("bptt", 20)], ex.after
    assert ex.order == [("bptt", 10), ("bptt", 20), ("readout", 10)]
    lengths = {steps[0]["labels"]["arm"]: [x["length"] for x in steps] for steps in s.ladders.values()}
    assert lengths == {"BPTT": [10, 20], "readout": [10]}


def test_process_pool_curriculum_equals_in_process(tmp_path):
    """The pool is handed the ladders' next steps while it runs (jobs appended to its list)."""
    from localrnn.experiments.executors import ProcessExecutor

    def outcome(path):
        with Store(path) as st:
            return sorted((x["labels"]["arm"], x["length"], x["status"], x["best_accuracy"], x["iterations"])
                          for steps in st.ladders("cur:quick").values() for x in steps)

    a, b = str(tmp_path / "a.db"), str(tmp_path / "b.db")
    with Store(a) as st:
        run_curriculum(st, _two_arms(30), "quick", LocalExecutor())
    with Store(b) as st, ProcessExecutor(2) as ex:
        run_curriculum(st, _two_arms(30), "quick", ex)
    assert outcome(a) == outcome(b)
    assert [x[:2] for x in outcome(a)] == [("BPTT", 10), ("BPTT", 20), ("BPTT", 30), ("readout", 10)]


def test_tptt_warm_start_carries_the_inverse_and_its_optimizer_state(tmp_path):
    """Step 2 of a TPTT ladder starts from the parameters *and* the rule state (inverse Vhh, ch,
    their Nesterov velocities, noise key) where step 1 ended; replaying step 2 from that state
    gives the stored result exactly, and a fresh inverse would not."""
    from localrnn.config import TrainConfig
    from localrnn.train import train_one

    spec = parse_spec({
        "name": "cur", "kind": "curriculum", "seeds": [1],
        "curriculum": {"start": 10, "step": 10, "max_length": 20},
        "fixed": {"task": "temporal_order", "hidden": 16, "batch": 20, "val_size": 100, "val_every": 50,
                  "patience": 0},
        "arms": [{"name": "TPTT", "rule": "tptt", "fixed": {"lr": 0.3, "optimizer": "nesterov"}}],
        "budget": {"quick": {"max_iters": 1000}}})
    ex = _RecordingExecutor()
    with Store(str(tmp_path / "s.db")) as st:
        s = run_curriculum(st, spec, "quick", ex)
        steps = next(iter(s.ladders.values()))
        assert [(x["length"], x["status"]) for x in steps][0] == (10, "solved") and len(steps) == 2
        end1 = st.final_state(steps[0]["trial_id"])
        end2 = st.final_state(steps[1]["trial_id"])
        cfg2 = TrainConfig(**st.trial(steps[1]["trial_id"])["config"])
    assert len(end1["rule_state"]) == 5  # Vhh, ch, (v_Vhh, v_ch), key
    assert ex.starts[0] is None
    start2 = ex.starts[1][0]
    for a, b in zip(start2["rule_state"], end1["rule_state"]):
        np.testing.assert_array_equal(a, b)
    for k, v in end1["params"].items():
        np.testing.assert_array_equal(start2["params"][k], v)
    replay = train_one(cfg2, initial_params=[end1["params"]], initial_rule_state=[end1["rule_state"]])
    for k, v in end2["params"].items():
        np.testing.assert_array_equal(np.asarray(getattr(replay.params, k)), v)
    fresh_inverse = train_one(cfg2, initial_params=[end1["params"]])
    assert not np.array_equal(np.asarray(fresh_inverse.params.Whh), end2["params"]["Whh"])
