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
