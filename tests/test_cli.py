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
    # ranges declared by the rules (Hparam low/high), enforced by TrainConfig
    (["--length", "10", "--rule", "lra", "--target-step", "-1"], "--target-step: must be in [0, inf], got -1.0"),
    (["--length", "10", "--rule", "lra", "--target-step", "nan"], "--target-step: must be finite"),
    (["--length", "10", "--rule", "lra", "--c0", "-0.5"], "--c0: must be in [0, inf]"),
    (["--length", "10", "--rule", "lra", "--c1", "inf"], "--c1: must be finite"),
    (["--length", "10", "--rule", "lra", "--reg-lambda", "-1"], "--reg-lambda: must be in [0, inf]"),
    (["--length", "10", "--reg-lambda", "nan"], "--reg-lambda: must be finite"),
    (["--length", "10", "--rule", "tptt", "--alpha-i", "-1"], "--alpha-i: must be in [0, inf]"),
    (["--length", "10", "--rule", "tptt", "--alpha-g", "-inf"], "--alpha-g: must be finite"),
    (["--length", "10", "--rule", "tptt", "--sigma", "-0.1"], "--sigma: must be in [0, inf]"),
    (["--length", "10", "--rule", "tptt", "--inverse-momentum", "1"], "--inverse-momentum: must be in [0, 0.999]"),
    (["--length", "10", "--rule", "lra", "--inner-steps", "0"], "--inner-steps: Input should be greater"),
    (["--length", "10", "--rule", "lra", "--local-loss", "l1"], "--local-loss: 'l1' is not allowed; allowed: mse"),
    (["--length", "10", "--rule", "tptt", "--target-step", "1"], "--target-step: rule 'tptt' does not take"),
]


@pytest.mark.parametrize("args,flag", BAD, ids=[a[1].split(":")[0] + "-" + a[0][-1] for a in BAD])
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


def _usage_error(argv, start, tmp_path, capsys):
    """``main(argv)`` exits 2 with one line starting ``error: {start}``, nothing on stdout."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    assert (exc.value.code, out) == (2, "")
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {start}"), err


def test_checkpoint_checked_before_training(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_text("")
    train = ["train", "--task", "temporal-order", "--length", "10", "--max-iters", "1"]
    cases = [
        (["--checkpoint", str(tmp_path / "none.ckpt"), "--resume"], f"--resume: no checkpoint at {tmp_path / 'none.ckpt'}"),
        (["--checkpoint", str(tmp_path / "nodir" / "x.ckpt")], f"--checkpoint: folder {tmp_path / 'nodir'} does not exist"),
        (["--checkpoint", str(tmp_path / "nodir" / "x.ckpt"), "--resume"], "--resume: no checkpoint at"),
        (["--checkpoint", str(tmp_path / "a_file" / "x.ckpt")], "--checkpoint: folder"),
        (["--checkpoint", str(tmp_path)], f"--checkpoint: {tmp_path} is a folder"),
    ]
    for args, start in cases:
        _usage_error(train + args, start, tmp_path, capsys)
    assert [p.name for p in tmp_path.iterdir()] == ["a_file"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_checkpoint_in_a_read_only_folder(tmp_path, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    _usage_error(["train", "--task", "temporal-order", "--length", "10", "--checkpoint", str(folder / "x.ckpt")],
                 "--checkpoint: ", tmp_path, capsys)
    folder.chmod(0o700)


def test_choices_take_dashes_or_underscores():
    from localrnn.cli.rule_flags import rule_parameters

    parse = {p.name: p.annotation.__metadata__[0] for p in rule_parameters()}["local_loss"].parser
    assert parse("log-penalty") == parse("log_penalty") == "log_penalty"


def test_rules_lists_every_setting_from_the_schema(capsys):
    from localrnn.rules import RULES

    with pytest.raises(SystemExit):
        main(["rules", "--json"])
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == set(RULES)
    for name, rdef in RULES.items():
        listed = {s["name"]: s for s in rows[name]["settings"]}
        assert set(listed) == set(rdef.hparams) | (set(rdef.options.model_fields) - rdef.internal_options)
        for k, h in rdef.hparams.items():
            assert (listed[k]["default"], listed[k]["allowed"], listed[k]["help"]) == (h.default, h.range_text(), h.help)
    assert "regularize" not in {s["name"] for s in rows["bptt"]["settings"]}  # switched on by reg_lambda
    assert rows["lra"]["settings"][0] == {"name": "target_step", "kind": "hparam", "type": "float", "default": 1.0,
                                          "allowed": "[0, inf]", "help": RULES["lra"].hparams["target_step"].help}
    with pytest.raises(SystemExit) as exc:
        main(["rules"])
    assert exc.value.code == 0 and "target_step" in capsys.readouterr().out


def test_train_help_lists_every_rule_setting_with_its_range(capsys, monkeypatch):
    from localrnn.rules import RULES

    monkeypatch.setenv("COLUMNS", "400")
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for rdef in RULES.values():
        for s in rdef.settings():
            flag = "--" + s.name.replace("_", "-")
            assert flag in text and s.help in text, flag
            if s.kind == "hparam":
                assert f"allowed {s.range}" in text
    assert "(rules: " in text or " || " in text  # reg_lambda is shared by bptt and lra
    for internal in ("--regularize", "--noise"):
        assert internal + " " not in text


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
