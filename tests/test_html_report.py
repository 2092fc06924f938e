"""``localrnn report --html``: one self-contained page (tables, figures inline, captions, metadata),
its CLI checks, and a screenshot of it in a headless browser where one is installed."""

import base64
import html
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from localrnn.cli import main
from localrnn.experiments.report import make_report, render
from localrnn.experiments.report.html import caption_lines, html_report, order_sections
from localrnn.experiments.spec import load_spec, parse_spec, plan
from localrnn.experiments.store import Store
from localrnn.paper import spec_dir

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "screenshot_report.py"
SPECS = {"table1": "grid", "figure5": "grid", "figure2": "diagnostics"}


def _store(path: str) -> str:
    """The paper's table1, figure5 and figure2 specs (quick budget) with made-up results (no training):
    accuracy by rule and length, figure2's run with per-layer records."""
    with Store(path) as st:
        for name, kind in SPECS.items():
            spec = load_spec(str(spec_dir() / f"{name}.toml"))
            trials = plan(spec, "quick")
            exp = f"{name}:quick"
            st.add_experiment(exp, kind, {"spec": spec.model_dump(mode="json"), "budget": "quick"})
            st.register_trials(exp, [(t.trial_id, t.config, t.labels, None) for t in trials])
            acc = lambda lab: 0.5 + 0.4 * (lab.get("rule") == "bptt") + 0.05 * (lab.get("reg_lambda") or 0) \
                - 0.002 * lab.get("length", 10)  # noqa: E731
            st.write_results([(t.trial_id, {"status": "solved" if acc(t.labels) > 0.85 else "failed",
                                            "best_accuracy": acc(t.labels), "best_iteration": 10, "iterations": 20,
                                            "seconds": 1.0, "history": []}, None) for t in trials])
            if kind == "diagnostics":
                T = trials[0].config.length
                base = np.linspace(1.0, 2.0, T)
                st.write_records(trials[0].trial_id, [(it, {k: base * (i + 1) / it for i, k in enumerate(
                    ("local_loss", "target_displacement_norm", "grad_Whh_norm", "grad_Wxh_norm"))} | {
                    "global_loss": 1.0 / it}) for it in (20, 40, 60)])
        _frontier(st)
    return path


FRONTIER = {"name": "tinyfrontier", "kind": "frontier", "title": "tiny frontier", "seeds": 2,
            "curriculum": {"start": 10, "step": 2, "max_length": 14},
            "fixed": {"task": "temporal_order", "hidden": 8, "val_size": 50},
            "arms": [{"name": "BPTT", "rule": "bptt", "fixed": {"lr": 0.1}},
                     {"name": "readout", "rule": "readout", "fixed": {"lr": 0.1}}],
            "budget": {"quick": {"max_iters": 40, "note": "a tiny frontier"}}, "report": {"control": "readout"}}


def _frontier(st) -> None:
    """A frontier experiment's ladders, written directly: BPTT seed s climbs to T = 10 + 2 s, readout fails."""
    spec = parse_spec(FRONTIER)
    exp = "tinyfrontier:quick"
    st.add_experiment(exp, "frontier", {"spec": spec.model_dump(mode="json"), "budget": "quick"})
    for t in plan(spec, "quick"):
        solved = 1 + t.labels["seed"] if t.labels["arm"] == "BPTT" else 0
        for step in range(min(solved + 1, 3)):
            T = 10 + 2 * step
            tid = f"{t.trial_id}-{T}"
            st.register_trials(exp, [(tid, t.config.model_copy(update={"length": T}), t.labels, None)])
            st.write_results([(tid, {"status": "solved" if step < solved else "failed", "best_accuracy": 0.9,
                                     "best_iteration": 5, "iterations": 10, "seconds": 0.1, "history": []}, None)])
            st.write_ladder_step(exp, t.trial_id, step, T, tid, True, t.labels)


@pytest.fixture(scope="module")
def store_path(tmp_path_factory) -> str:
    return _store(str(tmp_path_factory.mktemp("html") / "s.db"))


@pytest.fixture(scope="module")
def page(store_path, tmp_path_factory) -> tuple[str, str]:
    """The page of every stored experiment (the order given is not the page's order)."""
    out = str(tmp_path_factory.mktemp("page") / "report.html")
    with Store(store_path) as st:
        html_report(st, ["figure2:quick", "figure5:quick", "table1:quick", "tinyfrontier:quick"], out,
                    command="localrnn report --html x")
    return out, Path(out).read_text(encoding="utf-8")


def _section(text: str, name: str) -> str:
    start = text.index(f'<section id="exp-{name.replace(":", "-")}">')
    return text[start:text.index("</section>", start)]


def test_page_is_self_contained_tables_figures_inline(page):
    _, text = page
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text)  # nothing fetched from outside
    assert "<script" not in text and "<link" not in text and "<style>" in text
    uris = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(uris) == 3  # the frontier's, figure2's and figure5's; table1 has no figure
    assert all(base64.b64decode(u)[:8] == b"\x89PNG\r\n\x1a\n" for u in uris)
    # frontier experiments first, then tables, then figures, each in the order given
    assert text.index('id="exp-tinyfrontier-quick"') < text.index('id="exp-table1-quick"') \
        < text.index('id="exp-figure2-quick"') < text.index('id="exp-figure5-quick"')


def test_frontier_section_table_figure_and_numbers(page, store_path, tmp_path):
    sec = _section(page[1], "tinyfrontier:quick")
    with Store(store_path) as st:
        rep = make_report(st, "tinyfrontier:quick", "markdown", str(tmp_path))
    assert _rows(sec) == rep.table.rows and "<h2>tiny frontier<" in sec
    assert sec.count('<img src="data:image/png;base64,') == 1 and "<b>Budget:</b> quick: a tiny frontier" in sec
    assert "<b>Curriculum:</b> T = 10, + 2 while solved, up to 14; warm start</p>" in sec
    assert "<b>Seeds:</b> 2 (seeds 0, 1)" in sec and f"the numbers behind it ({len(rep.data)} rows)" in sec


def test_a_report_without_a_table_object_shows_its_text_and_figure(store_path, tmp_path, monkeypatch):
    """Any report (text, optionally path, data, notes): its text as is, less the `wrote PATH` line."""
    import localrnn.experiments.report as report
    from localrnn.experiments.report import Report

    png = tmp_path / "x.png"
    import matplotlib.pyplot as plt

    plt.imsave(png, np.eye(8))
    fake = Report("table1:quick", "figure", f"a <text> line\nwrote {png}\n", path=str(png),
                  data=[{"a": 1.5, "b": list(range(100))}], notes=["a note"])
    monkeypatch.setattr(report, "make_report", lambda *a, **k: fake)
    with Store(store_path) as st:
        html_report(st, ["table1:quick"], str(tmp_path / "p.html"), command="c")
    sec = _section((tmp_path / "p.html").read_text(), "table1:quick")
    assert "<pre>a &lt;text&gt; line</pre>" in sec and "wrote" not in sec
    assert sec.count('<img src="data:image/png;base64,') == 1 and "<li>a note</li>" in sec
    assert "<td>1.5</td><td>[0, 1, 2," in sec and "…</td>" in sec  # a long value is cut


def _rows(section: str) -> list[list[str]]:
    body = section[section.index("<tbody>"):section.index("</tbody>")]
    return [[html.unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<td[^>]*>.*?</td>", tr)]
            for tr in re.findall(r"<tr>(.*?)</tr>", body)]


def test_page_tables_are_the_reports_numbers_paper_beside(page, store_path, tmp_path):
    _, text = page
    with Store(store_path) as st:
        table = make_report(st, "table1:quick", "markdown", str(tmp_path)).table
        sens = make_report(st, "figure5:quick", "markdown", str(tmp_path)).table
    sec = _section(text, "table1:quick")
    assert table is not None and len(table.rows) > 3 and _rows(sec) == table.rows  # the report's cells, as is
    assert _rows(_section(text, "figure5:quick")) == sens.rows
    assert re.search(r'<th class="[^"]*\bpaper">T=10 paper</th>', sec)  # the paper's column beside ours, shaded
    assert '<td class="num">' in sec  # numbers in monospace
    assert "<h2>Table I: best validation accuracy" in sec


def test_captions_name_budget_seeds_settings_and_notes(page):
    _, text = page
    sec = _section(text, "table1:quick")
    assert "<b>Budget:</b> quick: a smoke test on 2 CPU cores" in sec  # the note names the budget itself
    assert "<b>Seeds:</b> 1 (seed 0)" in sec
    assert "<b>Settings:</b> batch = 20; length ∈ {10, 20, 30}; task ∈ {temporal_order, temporal_order_3bit, " \
           "random_permutation}</p>" in sec
    assert "<b>Budget overrides:</b> max_iters = 2000; patience = 5; hidden = 32; val_size = 1000; " \
           "inner_steps ∈ {10}; lr ∈ {0.1, 0.01}; target_step ∈ {1, 0.1, 0.01}</p>" in sec
    assert "<br>BPTT: rule bptt; lr ∈ {0.1, 0.01, 0.001}<br>" in sec
    assert '<ul class="notes"><li>cells: best validation accuracy' in sec
    fig2 = _section(text, "figure2:quick")
    assert "<b>Budget overrides:</b> max_iters = 2000; record_every = 20; hidden = 32" in fig2
    assert "<b>Budget:</b> quick</p>" in fig2  # a budget without a note


def test_metadata_and_command_at_the_top(page, store_path):
    import localrnn

    _, text = page
    top = text[:text.index("<section")]
    assert f"<th>localrnn</th><td>{localrnn.__version__}</td>" in top
    assert f"<th>store</th><td>{os.path.abspath(store_path)}</td>" in top
    assert re.search(r"<th>git commit</th><td>([0-9a-f]{40}( \+ uncommitted changes)?|not available)</td>", top)
    assert re.search(r"<th>python</th><td>3\.\d+", top) and re.search(r"<th>jax</th><td>\d", top)
    with Store(store_path) as st:
        n = sum(len(st.trials(e)) for e in st.experiments())
    assert re.search(rf"<th>trials</th><td>{n} trials in 4 experiments \(\d+ failed, \d+ solved\)", top)
    assert '<pre class="command">localrnn report --html x</pre>' in top


def test_order_frontier_then_tables_then_figures():
    kinds = [("f5", "grid", "figure"), ("t1", "grid", "table"), ("fr", "frontier", "table"),
             ("t5", "curriculum", "table"), ("f2", "diagnostics", "figure")]
    assert order_sections(kinds) == ["fr", "t1", "t5", "f5", "f2"]


def test_seeds_caption_from_the_budget_over_the_spec():
    stored = {"spec": {"budget": "b", "spec": {"seeds": 3, "budget": {"b": {"seeds": [4, 7], "note": "n"}}}}}
    lines = dict(caption_lines(stored))
    assert lines["Budget"] == "b: n" and lines["Seeds"] == "2 (seeds 4, 7)"
    assert dict(caption_lines({"spec": {"budget": "b", "spec": {"seeds": 3}}}))["Seeds"] == "3 (seeds 0, 1, 2)"
    assert dict(caption_lines({"spec": {"budget": "b", "spec": {"seeds": 12}}}))["Seeds"] == "12 (seeds 0 to 11)"


def test_render_html_escapes_and_marks_columns():
    from localrnn.experiments.report import Table

    t = Table("a <b> & c", ["task", "T=10", "T=10 paper"], [["x<y", "55.50 ✓", "✓"], ["z", "", "99.84"]],
              notes=["n & m"])
    out = render(t, "html")
    assert "<caption>a &lt;b&gt; &amp; c</caption>" in out and "<td>x&lt;y</td>" in out
    assert '<th class="num">T=10</th>' in out and '<td class="num paper">99.84</td>' in out
    assert '<ul class="notes"><li>n &amp; m</li></ul>' in out
    with pytest.raises(ValueError, match="allowed: markdown, csv, latex, html"):
        render(t, "rst")


def test_a_report_that_fails_gets_an_error_box(store_path, tmp_path):
    seen = []
    with Store(store_path) as st:
        html_report(st, ["table1:quick", "nope"], str(tmp_path / "p.html"), command="c",
                    on_error=lambda n, e: seen.append(n))
    text = (tmp_path / "p.html").read_text()
    assert seen == ["nope"] and '<p class="error">could not build this report: no experiment' in text
    assert 'id="exp-table1-quick"' in text


def _cli(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def test_cli_html_every_stored_experiment_or_one(store_path, tmp_path, capsys):
    page = tmp_path / "all.html"
    code, out, _ = _cli(["report", "--store", store_path, "--html", str(page), "--out-dir", str(tmp_path / "f")],
                        capsys)
    assert code == 0 and out.strip() == f"wrote {page} (4 experiments)"
    text = page.read_text()
    assert all(f'id="exp-{n}-quick"' in text for n in [*SPECS, "tinyfrontier"])
    assert sorted(os.listdir(tmp_path / "f")) == ["figure2_quick.png", "figure5_quick.png",
                                                  "tinyfrontier_quick.png"]  # the figures kept there too
    assert (f'<pre class="command">localrnn report --store {store_path} --out-dir {tmp_path / "f"} '
            f'--html {page}</pre>') in text
    one = tmp_path / "one.html"
    code, out, _ = _cli(["report", "figure5", "--store", store_path, "--html", str(one), "--out-dir",
                         str(tmp_path / "f"), "--json"], capsys)
    assert code == 0 and '"experiments": ["figure5:quick"]' in out
    assert one.read_text().count("<section") == 1
    code, out, _ = _cli(["report", "table1", "--store", store_path, "--out-dir", str(tmp_path / "g")], capsys)
    assert code == 0 and out.startswith("### Table I") and not list(tmp_path.glob("g/*.html"))  # as before


@pytest.mark.parametrize("case", ["no name", "not .html", "no folder", "a folder", "budget"])
def test_cli_bad_input_one_line_exit_2_nothing_written(store_path, tmp_path, capsys, case):
    work = tmp_path / "w"
    work.mkdir()
    (work / "d.html").mkdir()
    argv, word = {"no name": ([], "NAME"), "not .html": (["--html", str(work / "r.htm")], "--html"),
                  "no folder": (["--html", str(work / "x" / "r.html")], "--html"),
                  "a folder": (["--html", str(work / "d.html")], "--html"),
                  "budget": (["--html", str(work / "r.html"), "--budget", "paper"], "--budget")}[case]
    before = sorted(os.listdir(work))
    code, out, err = _cli(["report", "--store", store_path, "--out-dir", str(work / "figs"), *argv], capsys)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert err.startswith(f"error: {word}: "), err  # the option named first
    assert "; allowed: " in err or "; stored: " in err
    assert sorted(os.listdir(work)) == before  # nothing written: no page, no figures folder


def _browser() -> str | None:
    """The browser the screenshot script would use (its own ``find_browser``)."""
    spec = importlib.util.spec_from_file_location("screenshot_report", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.find_browser()


def _pixels(png: str) -> np.ndarray:
    import matplotlib.image

    return np.asarray(matplotlib.image.imread(png))


@pytest.mark.parametrize("height", ["900", "auto"])
def test_screenshot_in_a_headless_browser(page, tmp_path, height):
    if _browser() is None:
        pytest.skip("no headless browser: chromium (Debian package `chromium`) is not installed")
    png = str(tmp_path / "shot.png")
    r = subprocess.run([sys.executable, str(SCRIPT), page[0], png, "--height", height], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    px = _pixels(png)
    if height == "auto":  # the whole page: taller than a screen, cut below the last line
        assert px.shape[1] == 1280 and 2000 < px.shape[0] < 16000, px.shape
        assert float(px[-40:].var()) == 0.0  # a plain margin at the bottom ...
        assert float(px[-400:].var()) > 0.0  # ... just under the content
    else:
        assert px.shape[:2] == (900, 1280)
    assert float(px.var()) > 0.0 and float(px[:, :, :3].mean()) > 0.5  # not blank; a light page


def test_cli_page_shows_the_command_as_typed(store_path, tmp_path):
    """Run as the ``localrnn`` program: the page shows its arguments in the order typed."""
    exe = Path(sys.executable).with_name("localrnn")
    if not exe.exists():
        pytest.skip(f"no localrnn program beside {sys.executable}")
    argv = ["report", "table1", "--html", "p.html", "--store", store_path, "--out-dir", "figs dir"]
    r = subprocess.run([str(exe), *argv], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    typed = f"localrnn report table1 --html p.html --store {store_path} --out-dir &#x27;figs dir&#x27;"
    assert f'<pre class="command">{typed}</pre>' in (tmp_path / "p.html").read_text()
