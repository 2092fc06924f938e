"""The command line: bad input is one line on stderr, exit code 2, and writes nothing."""

import json
import os
import subprocess
import sys

import pytest

from localrnn.cli import main

BAD = [
    (["--length", "0"], "--length"),
    (["--length", "10", "--task", "nope"], "--task"),
    (["--length", "10", "--lr", "-0.1"], "--lr"),
    (["--length", "10", "--lr", "nan"], "--lr"),
    (["--length", "10", "--frobnicate", "1"], "--frobnicate"),
    (["--length", "10", "--optimizer", "rmsprop"], "--optimizer"),
    (["--length", "10", "--rule", "nope"], "--rule"),
    (["--length", "10", "--rule", "readout", "--reg-lambda", "0.1"], "--reg-lambda"),
    (["--length", "10", "--hidden", "0"], "--hidden"),
    (["--length", "10", "--clip", "-1"], "--clip"),
    (["--length", "10", "--resume"], "--resume"),
]


@pytest.mark.parametrize("args,flag", BAD, ids=[a[1] + "-" + a[0][-1] for a in BAD])
def test_bad_input_one_line_exit_2_writes_nothing(args, flag, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ckpt = tmp_path / "run.ckpt"
    argv = ["train"] + ([] if "--task" in args else ["--task", "temporal-order"]) + args
    if "--resume" not in args:
        argv += ["--checkpoint", str(ckpt)]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {flag}"), err
    assert "allowed" in lines[0] or "must" in lines[0] or "no such option" in lines[0] \
        or "does not take" in lines[0] or "needs" in lines[0] or "greater" in lines[0] \
        or "not one of" in lines[0], lines[0]
    assert list(tmp_path.iterdir()) == []


def test_train_json_summary_and_checkpoint(tmp_path, capsys):
    ckpt = tmp_path / "run.ckpt"
    with pytest.raises(SystemExit) as exc:
        main(["train", "--task", "temporal-order", "--length", "10", "--rule", "bptt", "--lr", "0.01",
              "--seed", "0", "--hidden", "16", "--max-iters", "200", "--val-every", "100",
              "--checkpoint", str(ckpt), "--json"])
    assert exc.value.code == 0
    out = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(out[-1])
    assert set(summary) >= {"status", "best_accuracy", "iterations", "seconds", "config"}
    assert summary["config"]["hidden"] == 16 and summary["iterations"] <= 200
    assert ckpt.exists()


def test_tasks_lists_all_tasks(capsys):
    with pytest.raises(SystemExit):
        main(["tasks", "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["temporal-order", "temporal-order-3bit",
                                         "random-permutation", "adding"]
    assert rows[2]["inputs"] == 100 and rows[0]["outputs"] == 4


def test_console_script_help_everywhere():
    exe = os.path.join(os.path.dirname(sys.executable), "localrnn")
    for args in (["--help"], ["train", "--help"], ["tasks", "--help"], ["demo", "--help"]):
        p = subprocess.run([exe, *args], capture_output=True, text=True, timeout=120)
        assert p.returncode == 0 and "Usage" in p.stdout, (args, p.stderr)
