"""Experiment commands: a store or output folder that cannot be written is one line, exit 2,
before anything runs or is written."""

import pytest

from localrnn.cli import main


def _run(capsys, *argv):
    with pytest.raises(SystemExit) as e:
        main(list(argv))
    return e.value.code, capsys.readouterr().err


@pytest.mark.parametrize("command", [["sweep", "{spec}"], ["reproduce", "figure2"], ["curriculum", "{cur}"]])
def test_store_in_a_missing_folder_exits_2_before_anything(tmp_path, capsys, command):
    from localrnn.paper import spec_dir

    spec, cur = str(spec_dir() / "table1.toml"), str(spec_dir() / "table5.toml")
    argv = [a.format(spec=spec, cur=cur) for a in command]
    code, err = _run(capsys, *argv, "--store", str(tmp_path / "missing" / "s.db"))
    assert code == 2 and err.startswith("error: --store: folder ") and "does not exist" in err
    assert err.count("\n") == 1 and not (tmp_path / "missing").exists()


def test_store_that_is_a_folder_exits_2(tmp_path, capsys):
    code, err = _run(capsys, "reproduce", "figure2", "--store", str(tmp_path))
    assert code == 2 and err.startswith("error: --store: ") and "not a writable file" in err


@pytest.mark.parametrize("command", ["reproduce", "report"])
def test_out_dir_that_cannot_be_created_exits_2(tmp_path, capsys, command):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    store = tmp_path / "s.db"
    if command == "report":
        from localrnn.experiments.store import Store

        Store(str(store)).close()
    code, err = _run(capsys, command, "figure2", "--store", str(store), "--out-dir", str(blocker / "figs"))
    assert code == 2 and err.startswith("error: --out-dir: ") and "is not a folder" in err
    assert err.count("\n") == 1 and not (tmp_path / "a_file.ckpt").exists()
    if command == "reproduce":
        assert not store.exists()


def test_experiment_file_metavar(capsys):
    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    out = capsys.readouterr().out
    assert "EXPERIMENT.toml" in out and ".toml" not in out.replace("EXPERIMENT.toml", "")


@pytest.mark.parametrize("command", [["sweep", "{spec}"], ["curriculum", "{cur}"], ["frontier", "{front}"]])
def test_max_group_below_one_exits_2_before_anything(tmp_path, capsys, command):
    from localrnn.paper import spec_dir

    specs = {k: str(spec_dir() / f"{v}.toml") for k, v in
             (("spec", "table1"), ("cur", "table5"), ("front", "frontier"))}
    argv = [a.format(**specs) for a in command]
    code, err = _run(capsys, *argv, "--store", str(tmp_path / "s.db"), "--max-group", "0")
    assert code == 2 and err == "error: --max-group: must be >= 1, got 0\n"
    assert not list(tmp_path.iterdir())


@pytest.mark.slow  # grouping not changing results is covered by test_sweep's SIGKILL test (max_group 2 vs 64)
def test_max_group_changes_the_jobs_not_the_results(tmp_path, capsys):
    """A sweep in jobs of one config gives the same trials as one in a single vmapped job."""
    import json

    spec = tmp_path / "tiny.toml"
    spec.write_text('name = "tiny"\nseeds = 2\n[fixed]\ntask = "temporal_order"\nlength = 10\nhidden = 8\n'
                    'batch = 5\nval_size = 100\nval_every = 20\npatience = 0\n[[arms]]\nname = "BPTT"\n'
                    'rule = "bptt"\ngrid = { lr = [0.1, 0.05] }\n[budget.quick]\nmax_iters = 100\n')
    outs = []
    for group in ("1", "64"):
        with pytest.raises(SystemExit) as e:
            main(["sweep", str(spec), "--store", str(tmp_path / f"g{group}.db"), "--max-group", group, "--json"])
        assert e.value.code == 0
        rows = json.loads(capsys.readouterr().out)
        outs.append(sorted((r["trial_id"], r["status"], r["best_accuracy"], r["iterations"]) for r in rows))
    assert outs[0] == outs[1] and len(outs[0]) == 4
