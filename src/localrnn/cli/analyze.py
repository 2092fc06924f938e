"""``localrnn analyze RUN``: the measures of docs/analysis.md on a stored run or a checkpoint file,
the verdict in words, and (``--out``) one figure per measure plus ``analysis.json``.

Bad input (an unknown trial, a missing or unreadable file, a bad option value) is one line on
stderr, exit code 2, before anything is computed or written.
"""

from __future__ import annotations

import json
import os
from typing import Annotated, Optional

import typer

from localrnn.cli.app import UsageError, app
from localrnn.cli.stores import StoreOpt, read_store, store_path


def _check_out(out: str) -> None:
    """``--out``: a writable folder, or a new one inside a writable folder (checked, not created)."""
    path = os.path.abspath(out)
    probe = path
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe) or not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"--out: {out} cannot be written or created ({probe} is not a writable folder); "
                         "allowed: a writable folder, or a new folder inside one")


def _from_checkpoint(path: str, index: int, store: str | None):
    """``(params, config, note)`` of config ``index`` of the checkpoint at ``path``."""
    from localrnn.checkpoint import read_params
    from localrnn.config import TrainConfig

    try:
        configs, run_ids, params = read_params(path)
    except ValueError as e:
        raise UsageError(f"RUN: {e}") from None
    n = len(run_ids)
    if not 0 <= index < n:
        raise UsageError(f"--config: the checkpoint holds {n} config(s); allowed: 0 .. {n - 1}, got {index}")
    if configs is not None:
        config = TrainConfig(**configs[index])
    else:  # written before checkpoints kept their configs: the store may know the run
        found = []
        if store is not None or os.path.exists(store_path(None)):
            with read_store(store_path(store)) as st:
                found = st.trials(run_id=run_ids[index])
        if not found:
            raise UsageError(f"RUN: checkpoint {path} does not record its configs and no trial with run id "
                             f"{run_ids[index]} is in the store; allowed: a checkpoint written by this version, or "
                             "--store with that trial")
        config = TrainConfig(**found[0]["config"])
    note = (f"checkpoint {path}: {n} config(s); analyzing config {index}"
            + (" (the first; --config picks another)" if index == 0 and n > 1 else ""))
    return params[index], config, note, None, None


def _from_store(run: str, store: str | None):
    """``(params, config, note, records, rule_state)`` of the stored trial ``run``."""
    from localrnn.config import TrainConfig

    path = store_path(store)
    with read_store(path) as st:
        trial = st.trial(run)
        if trial is None:
            raise UsageError(f"RUN: no trial {run!r} in {path} and no file of that name; allowed: a trial id "
                             "(`localrnn runs` lists them) or a checkpoint file")
        state = st.final_state(run)
        if state is None:
            raise UsageError(f"RUN: trial {run} has no stored parameters in {path} (only runs kept as warm "
                             "starts keep them); allowed: a trial with stored parameters, or a checkpoint file")
        records = st.records(run)
    note = f"trial {run} from {path}: {trial['status']}, best accuracy {100 * (trial['best_accuracy'] or 0):.2f}%"
    return state["params"], TrainConfig(**trial["config"]), note, records, state["rule_state"]


def _attractor_counts(inputs: dict) -> str:
    """``input: stable of fixed`` per constant input; more than four symbols as one range."""
    symbols = {n: v for n, v in inputs.items() if n.startswith("symbol ")}
    parts = [f"{n}: {v['n_stable']} stable of {v['n_fixed']}" for n, v in inputs.items()
             if n not in symbols or len(symbols) <= 4]
    if len(symbols) > 4:
        stable = [v["n_stable"] for v in symbols.values()]
        parts.insert(1, f"each of {len(symbols)} symbols: {min(stable)}-{max(stable)} stable")
    return "; ".join(parts)


def _summary(r: dict) -> str:
    """The key numbers of each measure, one line each."""
    m, g, s, a = r["memory"], r["gradient_flow"], r["sensitivity"], r["attractors"]
    T = len(r["t"])
    W = "diag(lambda)" if a.get("linear") else "Whh"
    lines = [
        f"memory: rho({W}) {m['W_radius']:.3g}, sigma_max({W}) {m['W_sigma_max']:.3g}; "
        f"||dh_(T-1)/dh_0|| median {m['state_jacobian_norm']['median'][0]:.3g}, max "
        f"{m['state_jacobian_norm']['max'][0]:.3g}; rho(D_t) median over t and samples "
        f"{_nanmedian(m['D_radius']['median']):.3g}",
        f"gradient flow: ||dE/dh_t|| median {g['hidden_grad_norm']['median'][-1]:.3g} at lag 0, "
        f"{g['hidden_grad_norm']['median'][0]:.3g} at lag {T - 1}; at the first marker (median t "
        f"{g['first_marker_median']:.0f}) {g['marker_ratio_median']:.3g} of lag 0's (median over samples)",
        f"sensitivity: ||dh_t/dtheta_rec||_F mean {s['influence_norm_mean'][0]:.3g} at t=0, "
        f"{s['influence_norm_mean'][-1]:.3g} at t={T - 1} ({s['method']})",
        "attractors: " + _attractor_counts(a["inputs"])
        + (f" (classes: {a['classes']}; {a['symbols']})" if a["classes"] is not None else " (regression: no classes)")
        + (f"; linear cell: memory horizon 1/(1 - |lambda|) median {a['memory_horizon']['median']:.3g}, max "
           f"{a['memory_horizon']['max']:.3g} steps" if a.get("linear") else ""),
    ]
    if r.get("credit"):
        lines.append(f"credit: the rule's per-lag cosine with BPTT at the first marker "
                     f"{r['credit']['cosine_at_first_marker']:.3g} (iteration {r['credit']['iteration']})")
    sm = r.get("smoothness")
    if sm and sm.get("source") == "recorded":
        eig = [v for v in sm["top_eigenvalues"] if v is not None]
        jumps = [v for v in sm["loss_jumps"] if v is not None]
        lines.append(f"smoothness (recorded at {len(sm['recorded_iterations'])} iterations): top Hessian eigenvalue "
                     + (f"{min(eig):.4g} .. {max(eig):.4g}" if eig else "not recorded")
                     + f" (2/alpha = {2 / sm['lr']:.4g}); largest loss jump "
                     + (f"{max(jumps):+.3g}" if jumps else "none finite"))
    elif sm:
        lines.append(f"smoothness: top Hessian eigenvalue {sm['top_eigenvalues'][0]:.4g} (2/alpha = "
                     f"{2 / sm['lr']:.4g}); one update changed E by {sm['loss_jumps'][0]:+.3g} from "
                     f"{sm['losses'][0]:.3g}")
    return "\n".join(lines)


def _nanmedian(v) -> float:
    import numpy as np

    a = np.asarray([np.nan if x is None else x for x in v], float)
    return float(np.nanmedian(a)) if np.any(np.isfinite(a)) else float("nan")


def page_sections(runs: list[str], store: str | None, fig_dir: str, *, samples: int = 100,
                  symbols: int = 16) -> list[dict]:
    """The HTML report's analysis sections (``localrnn report --html --analyze TRIAL``): for each
    stored trial, its figures (written under ``fig_dir``), the key numbers and the verdict. Every
    trial is looked up before any is analyzed, so a bad one fails before any work."""
    from localrnn.analysis import analyze as measure
    from localrnn.analysis.figures import write_figures
    from localrnn.analysis.verdict import Verdict

    try:
        loaded = [(run, _from_store(run, store)) for run in runs]
    except UsageError as e:  # the report's option, not analyze's argument
        raise UsageError("--analyze:" + str(e).removeprefix("RUN:")) from None
    sections = []
    for run, (params, cfg, note, records, rule_state) in loaded:
        result = measure(params, cfg, samples=samples, records=records, rule_state=rule_state,
                         max_symbols=symbols or None)
        folder = os.path.join(fig_dir, f"analysis-{run}")
        os.makedirs(folder, exist_ok=True)
        sections.append({
            "trial": run, "title": f"Analysis: {cfg.rule} on {cfg.task} T={cfg.length} ({cfg.cell}, m={cfg.hidden})",
            "note": note, "samples": samples, "summary": _summary(result),
            "verdict": Verdict.from_dict(result["verdict"]).text(),
            "figures": write_figures(result, folder)})
    return sections


@app.command()
def analyze(
    run: Annotated[str, typer.Argument(metavar="RUN", help="a trial id in the store (`localrnn runs`), or a "
                                       "checkpoint file (`localrnn train --checkpoint`)")],
    store: StoreOpt = None,
    config: Annotated[int, typer.Option("--config", help="a checkpoint's config to analyze, 0-based "
                                        "(default 0, the first)")] = 0,
    out: Annotated[Optional[str], typer.Option("--out", metavar="DIR", help="write one figure per measure and "
                                               "analysis.json here")] = None,
    samples: Annotated[int, typer.Option("--samples", help="validation samples for the per-sample "
                                         "measures")] = 100,
    hessian: Annotated[bool, typer.Option("--hessian", help="also the top Hessian eigenvalue on 1,000 samples and "
                                          "the loss jump of one update (costly)")] = False,
    symbols: Annotated[int, typer.Option("--symbols", help="distractor symbols whose fixed points are sought, at "
                                         "most (0 = all; random permutation has 98)")] = 16,
    as_json: Annotated[bool, typer.Option("--json", help="print the measures as JSON")] = False,
) -> None:
    """Why a rule fails at a length: memory, gradient flow, sensitivity, attractors (and, with --hessian,
    smoothness) of a trained network, and the verdict (docs/analysis.md)."""
    if samples < 1:
        raise UsageError(f"--samples: must be an integer >= 1, got {samples}")
    if symbols < 0:
        raise UsageError(f"--symbols: must be an integer >= 0 (0 = all), got {symbols}")
    if out is not None:
        _check_out(out)
    if os.path.isfile(run):
        params, cfg, note, records, rule_state = _from_checkpoint(run, config, store)
    elif os.sep in run or run.endswith((".npz", ".ckpt")):
        raise UsageError(f"RUN: no checkpoint file {run}; allowed: an existing checkpoint file or a trial id")
    else:
        if config != 0:
            raise UsageError("--config: only for a checkpoint file; a trial is one config")
        params, cfg, note, records, rule_state = _from_store(run, store)
    try:
        from localrnn.analysis import analyze as measure

        result = measure(params, cfg, samples=samples, hessian=hessian, records=records, rule_state=rule_state,
                         max_symbols=symbols or None)
    except ValueError as e:
        raise UsageError(str(e)) from None
    result["source"] = note
    if out is not None:
        from localrnn.analysis.figures import write_figures

        os.makedirs(out, exist_ok=True)
        result["figures"] = [os.path.basename(p) for p in write_figures(result, out)]
        with open(os.path.join(out, "analysis.json"), "w") as f:
            json.dump(result, f, indent=1)
    if as_json:
        print(json.dumps(result))
        return
    from localrnn.analysis.verdict import Verdict

    print(note)
    print(f"{cfg.rule} on {cfg.task} T={cfg.length} ({cfg.cell}, m={cfg.hidden}), {samples} validation samples")
    print(_summary(result))
    print(Verdict.from_dict(result["verdict"]).text())
    if out is not None:
        print(f"wrote {', '.join(result['figures'])} and analysis.json to {out}")
