"""Sweeps: expansion, skipping complete trials, SIGKILL + restart, executors, orphaned workers."""

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from localrnn.experiments.executors import LocalExecutor, ProcessExecutor
from localrnn.experiments.spec import parse_spec
from localrnn.experiments.store import Store
from localrnn.experiments.sweep import make_jobs, run_sweep

TINY = {"name": "tiny", "seeds": 2,
        "fixed": {"task": "temporal_order", "length": 10, "hidden": 8, "batch": 5, "val_size": 200,
                  "val_every": 20, "patience": 0},
        "arms": [{"name": "BPTT", "rule": "bptt", "grid": {"lr": [0.2, 0.1, 0.05, 0.01]}}],
        "budget": {"quick": {"max_iters": 400}}}


def _outcome(path, experiment="tiny:quick"):
    with Store(path) as st:
        return {t["trial_id"]: (t["status"], t["best_accuracy"], t["best_iteration"], t["iterations"],
                                tuple((m["iteration"], m["val_errors"], m["train_loss"]) for m in st.metrics(t["trial_id"])))
                for t in st.trials(experiment)}


def _reference_and_driver(tmp_path, spec, max_group, driver_text, *args):
    """The uninterrupted sweep's store (in-process) and a driver subprocess on a second store."""
    import json

    ref = str(tmp_path / "ref.db")
    with Store(ref) as st:
        run_sweep(st, parse_spec(spec), "quick", LocalExecutor(), max_group=max_group)
    path = str(tmp_path / "killed.db")
    driver = tmp_path / "driver.py"
    driver.write_text(driver_text)
    argv = [sys.executable, str(driver), path, json.dumps(spec)]
    return ref, path, argv, subprocess.Popen(argv + list(args))


def _complete_count(path):
    """Trials written complete so far (0 while the store is not readable yet)."""
    if not os.path.exists(path):
        return 0
    try:
        return sqlite3.connect(path).execute(
            "SELECT COUNT(*) FROM trials WHERE status IN ('solved','failed','diverged')").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def _completions(path):
    db = sqlite3.connect(path)
    return dict(db.execute("SELECT trial_id, completions FROM trials"))


def test_jobs_group_by_structure_and_split_for_workers():
    spec = parse_spec({**TINY, "arms": [{"name": "B", "rule": "bptt", "grid": {"lr": [0.1, 0.01], "length": [10, 12]}},
                                        {"name": "R", "rule": "readout", "grid": {"lr": [0.1]}}]})
    from localrnn.experiments.spec import plan

    trials = plan(spec, "quick")
    jobs = make_jobs(trials, workers=1)
    assert len(jobs) == 3  # bptt T=10, bptt T=12, readout T=10
    assert all(len({trials[i].config.structure_key() for i in j}) == 1 for j in jobs)
    assert sorted(i for j in jobs for i in j) == list(range(len(trials)))
    assert len(make_jobs(trials, workers=1, max_group=2)) == 5
    # two workers, one structure group: it is split so that both get work
    one = plan(parse_spec(TINY), "quick")
    assert len(make_jobs(one, workers=2)) == 2 and len(make_jobs(one, workers=1)) == 1


def test_sweep_skips_complete_trials(tmp_path):
    spec = parse_spec(TINY)
    path = str(tmp_path / "s.db")
    with Store(path) as st:
        s1 = run_sweep(st, spec, "quick", LocalExecutor())
        assert (s1.total, s1.ran, s1.skipped) == (8, 8, 0)
        assert sum(s1.statuses.values()) == 8 and "pending" not in s1.statuses
        first = _outcome(path)
        s2 = run_sweep(st, spec, "quick", LocalExecutor())
        assert (s2.ran, s2.skipped) == (0, 8)
    assert _outcome(path) == first
    assert set(_completions(path).values()) == {1}


_DRIVER = textwrap.dedent("""
    import sys, time, json
    import localrnn
    from localrnn.experiments.executors import LocalExecutor
    from localrnn.experiments.spec import parse_spec
    from localrnn.experiments.store import Store
    from localrnn.experiments.sweep import run_sweep
    spec = parse_spec(json.loads(sys.argv[2]))
    with Store(sys.argv[1]) as st:
        run_sweep(st, spec, "quick", LocalExecutor(), max_group=2,
                  progress=lambda message: time.sleep(float(sys.argv[3])))
""")


@pytest.mark.slow  # the default suite covers kill + resume with the process pool (test below)
def test_sigkill_then_restart_equals_uninterrupted_sweep(tmp_path):
    """A sweep killed with SIGKILL part-way and restarted ends with exactly the trials and
    results of an uninterrupted sweep; every trial is written complete exactly once."""
    ref, path, argv, proc = _reference_and_driver(tmp_path, TINY, 2, _DRIVER, "0.3")
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and _complete_count(path) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    before = _completions(path)
    assert 2 <= sum(before.values()) < 8, "the kill must land part-way through the sweep"

    subprocess.run(argv + ["0"], check=True)
    assert _outcome(path) == _outcome(ref)
    assert len(_outcome(path)) == 8
    assert set(_completions(path).values()) == {1}  # none lost, none run twice to completion
    assert not [f for f in os.listdir(tmp_path / "killed.db.ckpt")] if (tmp_path / "killed.db.ckpt").exists() else True


@pytest.mark.slow  # covered by the SIGKILL test below, whose process-pool sweep must equal an in-process one
def test_process_executor_equals_in_process(tmp_path):
    spec = parse_spec(TINY)
    a, b = str(tmp_path / "a.db"), str(tmp_path / "b.db")
    with Store(a) as st:
        run_sweep(st, spec, "quick", LocalExecutor())
    with Store(b) as st, ProcessExecutor(2) as ex:
        run_sweep(st, spec, "quick", ex)
    assert _outcome(a) == _outcome(b)


@pytest.mark.slow  # starting Ray takes most of a minute on 2 cores
def test_ray_executor_equals_in_process(tmp_path):
    pytest.importorskip("ray", reason="ray is not installed (optional extra localrnn[ray])")
    from localrnn.experiments.executors import RayExecutor

    spec = parse_spec(TINY)
    a, b = str(tmp_path / "a.db"), str(tmp_path / "b.db")
    with Store(a) as st:
        run_sweep(st, spec, "quick", LocalExecutor())
    with Store(b) as st, RayExecutor(num_cpus=2) as ex:
        run_sweep(st, spec, "quick", ex)
    assert _outcome(a) == _outcome(b)


_PROCESS_DRIVER = textwrap.dedent("""
    import sys, json
    import localrnn
    from localrnn.experiments.executors import ProcessExecutor
    from localrnn.experiments.spec import parse_spec
    from localrnn.experiments.store import Store
    from localrnn.experiments.sweep import run_sweep
    if __name__ == "__main__":  # spawned workers import this file too
        with Store(sys.argv[1]) as st, ProcessExecutor(2) as ex:
            run_sweep(st, parse_spec(json.loads(sys.argv[2])), "quick", ex, max_group=1)
""")


def _children(pid):
    """Pids whose parent is ``pid`` (from /proc)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(d))
    return out


def _alive(pid):
    """Running (a zombie waiting for a reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the workers through /proc")
def test_sigkilled_process_sweep_leaves_no_worker_and_resumes(tmp_path):
    """SIGKILL the driver of a process-pool sweep mid-way: its workers (and the multiprocessing
    resource tracker) exit on their own within seconds; a restarted sweep ends with the
    uninterrupted sweep's trials."""
    spec = {**TINY, "arms": [{"name": "BPTT", "rule": "bptt", "grid": {"lr": [0.01, 0.005]}}],
            "budget": {"quick": {"max_iters": 600}}}
    ref, path, argv, proc = _reference_and_driver(tmp_path, spec, 1, _PROCESS_DRIVER)
    deadline, done, workers = time.time() + 120, 0, []
    while time.time() < deadline and proc.poll() is None and done < 1:
        time.sleep(0.1)
        workers = _children(proc.pid) or workers
        done = _complete_count(path)
    workers = _children(proc.pid) or workers
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL and 1 <= done < 4, "the kill must land part-way"
    assert len(workers) >= 3  # two pool workers and the resource tracker
    t_kill = time.time()
    while time.time() < t_kill + 10 and any(_alive(p) for p in workers):
        time.sleep(0.2)
    assert not [p for p in workers if _alive(p)], "workers outlived their driver"

    subprocess.run(argv, check=True)
    assert _outcome(path) == _outcome(ref) and len(_outcome(path)) == 4
    assert set(_completions(path).values()) == {1}


def test_a_changed_spec_drops_the_trials_it_no_longer_asks_for(tmp_path):
    """The experiment is what its spec asks for now: trials a narrowed grid leaves out stop
    belonging to it (they stay in the store), and those it keeps are not rerun."""
    path = str(tmp_path / "s.db")
    narrowed = {**TINY, "arms": [{"name": "BPTT", "rule": "bptt", "grid": {"lr": [0.2, 0.1]}}]}
    with Store(path) as st:
        run_sweep(st, parse_spec(TINY), "quick", LocalExecutor())
        s = run_sweep(st, parse_spec(narrowed), "quick", LocalExecutor())
        assert s.ran == 0 and s.total == 4 and "4 stored trials are no longer in the spec" in s.notes[0]
        assert len(st.trials("tiny:quick")) == 4 and len(st.trials()) == 8


def test_next_job_takes_the_highest_priority_then_list_order():
    from localrnn.experiments.executors import Job, next_job

    jobs = [Job(configs=[], priority=p) for p in (0, 20, 10, 20)]
    assert next_job(jobs, set()) == 1
    assert next_job(jobs, {1}) == 3
    assert next_job(jobs, {1, 3}) == 2
    assert next_job(jobs, {0, 1, 2, 3}) is None
