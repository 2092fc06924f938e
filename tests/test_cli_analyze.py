"""``localrnn analyze``: on a checkpoint written by ``localrnn train`` and on the same run in a results
store; bad input is one line on stderr, exit code 2, nothing written."""

import json

import pytest

from localrnn.checkpoint import read_params
from localrnn.cli import main
from localrnn.config import TrainConfig

TRAIN = ["train", "--task", "temporal-order", "--length", "10", "--hidden", "4", "--max-iters", "10",
         "--val-every", "10", "--val-size", "50", "--batch", "5"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A checkpoint from a short ``localrnn train`` and a store holding its run as a trial with its
    final parameters (how a curriculum keeps them)."""
    from localrnn.experiments.store import Store

    folder = tmp_path_factory.mktemp("analyze")
    ckpt = folder / "run.ckpt"
    with pytest.raises(SystemExit) as exc:
        main(TRAIN + ["--checkpoint", str(ckpt)])
    assert exc.value.code == 0
    configs, run_ids, params = read_params(str(ckpt))
    cfg = TrainConfig(**configs[0])
    assert run_ids == [cfg.run_id()]
    db = folder / "s.db"
    with Store(str(db)) as st:
        st.register_trials("t", [(cfg.run_id(), cfg, {}, None), ("noparams", cfg, {}, None)])
        done = {"status": "failed", "best_accuracy": 0.3, "best_iteration": 10, "iterations": 10, "seconds": 1.0,
                "history": []}
        st.write_results([(cfg.run_id(), done, {"params": params[0], "rule_state": []}),
                          ("noparams", done, None)])
    return ckpt, db, cfg.run_id()


def _run(capsys, *argv):
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def test_analyze_a_checkpoint_writes_figures_and_json(trained, tmp_path, capsys):
    ckpt, _, _ = trained
    out = tmp_path / "figs"
    code, text, err = _run(capsys, "analyze", str(ckpt), "--samples", "5", "--out", str(out))
    assert code == 0, err
    assert "analyzing config 0" in text and "verdict: " in text and "vanishing below 1e-06" in text
    assert "rough loss: not checked" in text
    assert sorted(p.name for p in out.iterdir()) == ["analysis.json", "attractors.png", "gradient_flow.png",
                                                     "memory.png", "sensitivity.png"]
    result = json.loads((out / "analysis.json").read_text())
    assert result["samples"] == 5 and len(result["t"]) == 10
    assert result["attractors"]["classes"] == 4 and set(result["attractors"]["inputs"]) == {
        "zero", "symbol 2", "symbol 3", "symbol 4", "symbol 5", "mean"}


def test_analyze_a_stored_trial_as_json(trained, capsys):
    _, db, trial = trained
    code, text, err = _run(capsys, "analyze", trial, "--store", str(db), "--samples", "5", "--symbols", "2", "--json")
    assert code == 0, err
    result = json.loads(text)
    assert set(result["attractors"]["inputs"]) == {"zero", "symbol 2", "symbol 3", "mean"}
    assert result["attractors"]["symbols"] == "2 of 4 distractor symbols"
    assert result["source"].startswith(f"trial {trial}") and result["verdict"]["names"]
    assert result["sensitivity"]["method"] == "exact (forward mode)"


@pytest.mark.parametrize("args,start", [
    (["nope"], "RUN: no trial 'nope' in "),
    (["noparams"], "RUN: trial noparams has no stored parameters"),
    (["missing/run.ckpt"], "RUN: no checkpoint file missing/run.ckpt"),
    (["{notckpt}"], "RUN: {notckpt} is not a localrnn checkpoint"),
    (["{ckpt}", "--config", "1"], "--config: the checkpoint holds 1 config(s); allowed: 0 .. 0, got 1"),
    (["{ckpt}", "--samples", "0"], "--samples: must be an integer >= 1, got 0"),
    (["{ckpt}", "--symbols", "-1"], "--symbols: must be an integer >= 0 (0 = all), got -1"),
    (["{trial}", "--config", "2"], "--config: only for a checkpoint file"),
    (["{ckpt}", "--out", "{notckpt}/figs"], "--out: "),
])
def test_bad_input_is_one_line_exit_2_nothing_written(trained, tmp_path, capsys, monkeypatch, args, start):
    ckpt, db, trial = trained
    monkeypatch.chdir(tmp_path)
    (tmp_path / "not.ckpt").write_text("hello")
    subs = {"{ckpt}": str(ckpt), "{trial}": trial, "{notckpt}": str(tmp_path / "not.ckpt")}
    fill = lambda s: [s := s.replace(k, v) for k, v in subs.items()][-1]  # noqa: E731
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out, err = _run(capsys, "analyze", *[fill(a) for a in args], "--store", str(db), "--out",
                          str(tmp_path / "figs")) if "--out" not in args else \
        _run(capsys, "analyze", *[fill(a) for a in args], "--store", str(db))
    assert (code, out) == (2, "")
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {fill(start)}"), err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_analyze_reads_an_orthogonal_cell_checkpoint(tmp_path, capsys):
    """The checkpoint of an orthogonal-cell run holds W0 and A (six fields): read by the config's cell."""
    ckpt = tmp_path / "orth.ckpt"
    with pytest.raises(SystemExit) as exc:
        main(TRAIN + ["--cell", "orthogonal", "--checkpoint", str(ckpt)])
    assert exc.value.code == 0
    configs, _, params = read_params(str(ckpt))
    assert configs[0]["cell"] == "orthogonal" and set(params[0]) == {"Wxh", "W0", "bh", "Why", "by", "A"}
    code, text, err = _run(capsys, "analyze", str(ckpt), "--samples", "5", "--symbols", "1")
    assert code == 0, err
    assert "(orthogonal, m=4)" in text and "verdict: " in text


def test_analyze_reads_a_diagonal_cell_checkpoint(tmp_path, capsys):
    """A `--cell diagonal --rule bptt` run's checkpoint: analyzed in closed form (exit 0, a verdict whose
    attractor sentence gives the memory horizon instead of counting stable states)."""
    ckpt = tmp_path / "diag.ckpt"
    with pytest.raises(SystemExit) as exc:
        main(TRAIN + ["--cell", "diagonal", "--rule", "bptt", "--checkpoint", str(ckpt)])
    assert exc.value.code == 0
    code, text, err = _run(capsys, "analyze", str(ckpt), "--samples", "5", "--symbols", "1")
    assert code == 0, err
    assert "verdict: " in text and "rho(diag(lambda))" in text and "memory horizon 1/(1 - |lambda|)" in text
    assert "it reports its memory horizon" in text and "1 stable of 1" in text


def test_html_report_carries_the_analysis_of_a_stored_trial(trained, tmp_path, capsys):
    _, db, trial = trained
    page, figs = tmp_path / "page.html", tmp_path / "figs"
    code, text, err = _run(capsys, "report", "--html", str(page), "--store", str(db), "--analyze", trial,
                           "--out-dir", str(figs))
    assert code == 0, err
    assert "1 analyzed trial" in text
    html = page.read_text()
    assert f'id="analysis-{trial}"' in html and "verdict: " in html and "gradient flow: " in html
    assert html.count('src="data:image/png;base64,') == 4  # memory, gradient flow, sensitivity, attractors
    assert sorted(p.name for p in (figs / f"analysis-{trial}").iterdir()) == [
        "attractors.png", "gradient_flow.png", "memory.png", "sensitivity.png"]


@pytest.mark.parametrize("args,start", [
    (["--analyze", "nope"], "--analyze: no trial 'nope' in "),
    (["--analyze", "noparams"], "--analyze: trial noparams has no stored parameters"),
])
def test_html_report_refuses_a_trial_it_cannot_analyze(trained, tmp_path, capsys, args, start):
    _, db, _ = trained
    page = tmp_path / "page.html"
    code, _, err = _run(capsys, "report", "--html", str(page), "--store", str(db), *args)
    assert code == 2 and err.strip().splitlines()[-1].startswith("error: " + start), err
    assert not page.exists()


def test_analyze_option_needs_html(trained, capsys):
    _, db, trial = trained
    code, _, err = _run(capsys, "report", "table1", "--store", str(db), "--analyze", trial)
    assert code == 2 and "error: --analyze: only with --html" in err
