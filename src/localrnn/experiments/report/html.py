"""One self-contained HTML page of stored experiments (``localrnn report --html PAGE``).

The page reuses :func:`make_report` (no number is recomputed here): per experiment a heading,
its table (ours with the paper's beside it where the report has it), its figure inline as a base64
PNG, a caption naming the budget and its note, the seeds and the settings (the spec's fixed
settings, grid and arms, and the budget's overrides), and the report's notes. At the top: the run
metadata (localrnn version, git commit, Python/JAX versions, platform, date, store, trial counts)
and the command that made the page. No external resource: inline CSS, no script, images as data URIs.
"""

from __future__ import annotations

import base64
import html
import os
import platform
import re
import subprocess
import tempfile
from collections import Counter
from datetime import datetime, timezone
from importlib import metadata
from typing import Any, Callable, Sequence

from localrnn.experiments.report.tables import html_table

__all__ = ["html_report", "run_metadata", "order_sections"]

_CSS = """
:root { --border: #c9d1d9; --muted: #57606a; --paper: #fff5d6; --head: #eef2f6; }
* { box-sizing: border-box; }
body { margin: 0; background: #ffffff; color: #1f2328;
       font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 28px 36px 72px; }
h1 { font-size: 1.75em; margin: 0 0 .3em; }
h2 { font-size: 1.3em; margin: 2.4em 0 .5em; padding-bottom: .25em; border-bottom: 2px solid var(--border); }
h2 .name { font: 13px ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; color: var(--muted);
           font-weight: normal; margin-left: .6em; }
code, pre, .num { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; }
pre { font-size: 13px; background: #f6f8fa; border: 1px solid var(--border); border-radius: 6px;
      padding: 10px 14px; overflow-x: auto; }
pre.command { background: #0d1117; color: #e6edf3; border-color: #0d1117; white-space: pre-wrap;
              word-break: break-all; }
.wrap { overflow-x: auto; }
table { border-collapse: collapse; margin: .6em 0 1em; font-size: 14px; }
caption { caption-side: top; text-align: left; font-weight: 600; padding: 0 0 .4em; }
th, td { border: 1px solid var(--border); padding: 4px 10px; text-align: left; vertical-align: top; }
thead th { background: var(--head); font-weight: 600; }
tbody tr:nth-child(even) td { background: #fafbfc; }
td.num { text-align: right; white-space: nowrap; font-size: 13.5px; }
th.num { text-align: right; font-family: inherit; }
td.paper, th.paper, tbody tr:nth-child(even) td.paper { background: var(--paper); }
table.meta th { background: var(--head); width: 11em; }
table.meta td { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 13px; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--border); border-radius: 4px; }
.caption { font-size: 13.5px; color: #32383f; background: #f6f8fa; border-left: 4px solid #8c959f;
           padding: 8px 14px; margin: .8em 0; }
.caption p { margin: .2em 0; }
ul.notes { font-size: 13px; color: var(--muted); padding-left: 1.3em; }
details { margin: .6em 0; font-size: 13px; }
details summary { cursor: pointer; color: var(--muted); }
.error { border: 1px solid #cf222e; background: #ffebe9; border-radius: 6px; padding: 8px 14px; }
.legend { font-size: 13px; color: var(--muted); }
.legend span.paper { background: var(--paper); border: 1px solid var(--border); padding: 0 6px; }
"""

_DATA_ROWS = 500  # rows of a report's data shown at most (under "numbers behind it")
_CELL_CHARS = 160  # characters of one value shown at most there (a frontier's per-length list is long)


def _git_commit(folder: str) -> str | None:
    """The commit of the git working tree that holds ``folder``'s ``__init__.py`` as a tracked file
    (``+ uncommitted changes`` when the tree differs), or None (not a checkout, no git)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", folder, *args], capture_output=True, text=True, timeout=20,
                              check=True).stdout.strip()
    try:
        git("ls-files", "--error-unmatch", "__init__.py")  # a wheel inside a checkout's venv is not it
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + (" + uncommitted changes" if dirty else "") if commit else None


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def run_metadata(store, experiments: list[str], store_path: str | None = None) -> dict[str, str]:
    """What made the page: versions, commit, platform, date, store (``store_path``, default the
    store's own path) and trial counts."""
    import localrnn

    status = Counter(t["status"] for e in experiments for t in store.trials(e))
    in_page = sum(status.values())
    counts = f"{in_page} trials in {len(experiments)} experiments" + (
        " (" + ", ".join(f"{n} {s}" for s, n in sorted(status.items())) + ")" if status else "")
    return {
        "localrnn": getattr(localrnn, "__version__", _version("localrnn")),
        "git commit": _git_commit(os.path.dirname(os.path.abspath(localrnn.__file__))) or "not available",
        "python": platform.python_version(),
        "jax": f"{_version('jax')} (jaxlib {_version('jaxlib')})",
        "platform": platform.platform(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "store": store_path or (store.path if store.path == ":memory:" else os.path.abspath(store.path)),
        "trials": counts + f"; {len(store.trials())} trials in the store",
    }


def _fmt(v: Any) -> str:
    if isinstance(v, list):
        return "{" + ", ".join(_fmt(x) for x in v) + "}"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, dict):
        return ", ".join(f"{k} = {_fmt(x)}" for k, x in v.items())
    return str(v)


def _settings(fixed: dict, grid: dict) -> str:
    return "; ".join([f"{k} = {_fmt(v)}" for k, v in fixed.items()] + [f"{k} ∈ {_fmt(v)}" for k, v in grid.items()])


def _seeds(seeds: Any) -> str:
    listed = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    which = ", ".join(map(str, listed)) if len(listed) <= 10 or not isinstance(seeds, int) else f"0 to {seeds - 1}"
    return f"{len(listed)} (seed{'s' if len(listed) != 1 else ''} {which})"


def caption_lines(stored: dict) -> list[tuple[str, str]]:
    """``(label, text)`` lines of an experiment's caption from its stored spec: the budget and its note,
    the seeds, the spec's settings and arms (and curriculum), the budget's overrides and the run's own
    options (e.g. a curriculum's warm start)."""
    spec = stored["spec"]["spec"]
    budget_name = stored["spec"].get("budget", "")
    budget = (spec.get("budget") or {}).get(budget_name) or {}
    note = budget.get("note") or ""
    out = [("Budget", note if note.startswith(f"{budget_name}:") else budget_name + (f": {note}" if note else ""))]
    out.append(("Seeds", _seeds(budget["seeds"] if budget.get("seeds") is not None else spec.get("seeds", 1))))
    out.append(("Settings", _settings(spec.get("fixed") or {}, spec.get("grid") or {}) or "none beyond the arms'"))
    arms = []
    for a in spec.get("arms", []):
        name = a.get("label") or a.get("name")
        inner = _settings(a.get("fixed") or {}, a.get("grid") or {})
        arms.append(f"{name}: rule {a.get('rule')}" + (f"; {inner}" if inner else ""))
    if arms:
        out.append(("Arms", "\n".join(arms)))
    cur = spec.get("curriculum") or {}
    if stored.get("kind") in ("curriculum", "frontier") and cur:
        out.append(("Curriculum", f"T = {cur.get('start')}, + {cur.get('step')} while solved, up to "
                    f"{cur.get('max_length')}; {'warm' if cur.get('warm_start', True) else 'cold'} start"))
    over = {k: budget[k] for k in ("max_iters", "patience", "max_length", "record_every") if budget.get(k) is not None}
    overrides = _settings({**over, **(budget.get("fixed") or {})}, budget.get("grid") or {})
    out.append(("Budget overrides", overrides or "none"))
    run = {k: v for k, v in stored["spec"].items() if k not in ("spec", "budget")}
    if run:
        out.append(("Run options", _settings(run, {})))
    return out


def order_sections(kinds: list[tuple[str, str, str]]) -> list[str]:
    """``(experiment, stored kind, report kind)`` in page order: frontier experiments, then tables,
    then figures, each group in the order given."""
    rank = lambda k: 0 if k[1] == "frontier" else 1 if k[2] == "table" else 2  # noqa: E731
    return [k[0] for k in sorted(kinds, key=rank)]


def _anchor(name: str, prefix: str = "exp-") -> str:
    return prefix + re.sub(r"[^A-Za-z0-9_-]", "-", name)


def _png_data_uri(path: str) -> str:
    with open(path, "rb") as f:
        return "data:image/png;base64," + base64.b64encode(f.read()).decode("ascii")


def _data_table(rows: list[dict]) -> str:
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]

    def cell(v: Any) -> str:
        text = "" if v is None else f"{v:.6g}" if isinstance(v, float) else str(v)
        return text if len(text) <= _CELL_CHARS else text[:_CELL_CHARS - 1] + "…"
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell(r.get(c)))}</td>" for c in cols) + "</tr>"
                   for r in rows[:_DATA_ROWS])
    more = f"<p>({len(rows) - _DATA_ROWS} more rows not shown)</p>" if len(rows) > _DATA_ROWS else ""
    n = f"{len(rows)} row{'s' if len(rows) != 1 else ''}"
    return (f"<details><summary>the numbers behind it ({n})</summary><div class=\"wrap\">"
            f"<table class=\"data\"><thead><tr>{''.join(f'<th>{html.escape(c)}</th>' for c in cols)}</tr></thead>"
            f"<tbody>{body}</tbody></table></div>{more}</details>")


def _section(name: str, stored: dict | None, rep, error: Exception | None) -> str:
    spec = (stored or {}).get("spec", {}).get("spec", {})
    title = spec.get("title") or spec.get("name") or name
    out = [f'<section id="{_anchor(name)}">',
           f'<h2>{html.escape(title)}<span class="name">{html.escape(name)}</span></h2>']
    if error is not None:
        out.append(f'<p class="error">could not build this report: {html.escape(str(error))}</p></section>')
        return "\n".join(out)
    if rep.table is not None:
        out.append(f'<div class="wrap">{html_table(rep.table, caption=False)}</div>')
    else:  # a report without a Table object (its text is what it shows)
        text = "\n".join(l for l in rep.text.splitlines() if not (rep.path and l.strip() == f"wrote {rep.path}"))
        if text.strip():
            out.append(f"<pre>{html.escape(text.strip())}</pre>")
    if rep.path and rep.path.lower().endswith(".png") and os.path.isfile(rep.path):
        out.append(f'<figure><img src="{_png_data_uri(rep.path)}" alt="{html.escape(title)}"></figure>')
    elif rep.path:
        out.append(f"<p>figure: <code>{html.escape(rep.path)}</code> (not embedded)</p>")
    budget_note = (spec.get("budget", {}).get((stored or {}).get("spec", {}).get("budget", "")) or {}).get("note")
    out.append('<div class="caption">' + "".join(
        f"<p><b>{html.escape(k)}:</b> {html.escape(v).replace(chr(10), '<br>')}</p>"
        for k, v in caption_lines(stored)) + "</div>")
    notes = [n for n in rep.notes if n != f"budget: {budget_note}"]  # the caption names the budget
    if notes:
        out.append('<ul class="notes">' + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>")
    if rep.data:
        out.append(_data_table(rep.data))
    out.append("</section>")
    return "\n".join(out)


def _analysis_section(a: dict) -> str:
    """One analyzed trial (``localrnn.cli.analyze.page_sections``): figures, key numbers, verdict."""
    figures = "".join(f'<figure><img src="{_png_data_uri(p)}" alt="{html.escape(os.path.basename(p))}"></figure>'
                      for p in a["figures"] if os.path.isfile(p))
    return "\n".join([
        f'<section id="{_anchor(a["trial"], "analysis-")}">',
        f'<h2>{html.escape(a["title"])}<span class="name">{html.escape(a["trial"])}</span></h2>',
        f'<p>{html.escape(a["note"])}; measured on {a["samples"]} validation samples (docs/analysis.md).</p>',
        f'<pre>{html.escape(a["summary"])}</pre>', f'<pre class="verdict">{html.escape(a["verdict"])}</pre>',
        figures, "</section>"])


def html_report(store, experiments: list[str], out_path: str, *, command: str, fig_dir: str | None = None,
                on_error: Callable[[str, Exception], None] | None = None, store_path: str | None = None,
                analyses: Sequence[dict] = ()) -> str:
    """Write one self-contained HTML page of ``experiments`` (stored names) to ``out_path``; returns it.

    Figures are written to ``fig_dir`` (a temporary folder, removed, when None) and embedded. An
    experiment whose report cannot be built gets an error box (and ``on_error(name, exc)``).
    ``store_path``: the store named in the metadata (default the store's path; e.g. the file an
    in-memory store was read from). ``analyses``: analyzed trials, each a section after the
    experiments (``localrnn.cli.analyze.page_sections``). The page is written in one step (a
    temporary file renamed), so a failure leaves no partial page.
    """
    from localrnn.experiments.report import make_report

    with tempfile.TemporaryDirectory(prefix="localrnn-report-") as tmp:
        built: dict[str, tuple[dict | None, Any, Exception | None]] = {}
        kinds = []
        for name in experiments:
            stored = store.experiment(name)
            try:
                rep = make_report(store, name, "markdown", fig_dir or tmp)
                built[name] = (stored, rep, None)
                kinds.append((name, (stored or {}).get("kind", ""), rep.kind))
            except Exception as e:  # noqa: BLE001 -- one bad experiment does not lose the page
                if on_error is not None:
                    on_error(name, e)
                built[name] = (stored, None, e)
                kinds.append((name, (stored or {}).get("kind", ""), "error"))
        order = order_sections(kinds)
        sections = [_section(n, *built[n]) for n in order] + [_analysis_section(a) for a in analyses]
    meta = run_metadata(store, experiments, store_path)
    toc = "".join(
        f'<tr><td><a href="#{_anchor(n)}">{html.escape(n)}</a></td><td>{html.escape(k)}</td>'
        f"<td>{html.escape(((built[n][0] or {}).get('spec', {}).get('spec', {})).get('title', ''))}</td></tr>"
        for n, k in ((n, (built[n][0] or {}).get("kind", "")) for n in order)) + "".join(
        f'<tr><td><a href="#{_anchor(a["trial"], "analysis-")}">{html.escape(a["trial"])}</a></td><td>analysis</td>'
        f'<td>{html.escape(a["title"])}</td></tr>' for a in analyses)
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="localrnn {html.escape(meta['localrnn'])}">
<title>localrnn report: {html.escape(', '.join(order + [a['trial'] for a in analyses]) or 'no experiment')}</title>
<style>{_CSS}</style>
</head>
<body>
<main>
<h1>localrnn report</h1>
<p>Made from the results store alone: the numbers are those of <code>localrnn report</code>.</p>
<table class="meta">
{''.join(f'<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>' for k, v in meta.items())}
</table>
<p>The command that made this page:</p>
<pre class="command">{html.escape(command)}</pre>
<table class="toc"><thead><tr><th>experiment</th><th>kind</th><th>title</th></tr></thead>
<tbody>{toc}</tbody></table>
<p class="legend">✓ = solved (in every seed); † = the best came from a run that later diverged;
<span class="paper">shaded</span> columns are the paper's numbers.</p>
{''.join(sections)}
</main>
</body>
</html>
"""
    folder = os.path.dirname(os.path.abspath(out_path))
    fd, tmp_path = tempfile.mkstemp(prefix=".report-", suffix=".html", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(page)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)  # as a plain open() would have made it
        os.replace(tmp_path, out_path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.unlink(tmp_path)
        raise
    return out_path

