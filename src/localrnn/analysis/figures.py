"""One figure per measure (PNG, matplotlib Agg) from the dict :func:`localrnn.analysis.analyze`
returns; each carries a caption saying what is drawn and over what."""

from __future__ import annotations

import os

import numpy as np

__all__ = ["write_figures"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _arr(v) -> np.ndarray:
    return np.asarray([np.nan if x is None else x for x in v], float)


def _positive(v) -> np.ndarray:
    a = _arr(v)
    return np.where(a > 0, a, np.nan)


def _save(fig, path: str, title: str, caption: str) -> str:
    fig.suptitle(title, fontsize=10)
    fig.text(0.01, 0.01, caption, fontsize=7, wrap=True, va="bottom")
    fig.tight_layout(rect=(0, 0.1, 1, 0.95))
    fig.savefig(path, dpi=100)
    fig.clf()
    return path


def _label(ax, xlabel: str, ylabel: str) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7)


def _median_max(ax, x, d: dict, color: str, label: str) -> None:
    ax.plot(x, _positive(d["median"]), "-", color=color, marker=".", label=f"{label}, median")
    ax.plot(x, _positive(d["max"]), "--", color=color, label=f"{label}, max")


def _memory(r: dict, plt, path: str, title: str) -> str:
    m, t = r["memory"], r["t"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    _median_max(a, t, m["state_jacobian_norm"], "C0", r"$\|\partial h_{T-1}/\partial h_t\|_2$")
    a.set_yscale("log")
    _label(a, "step t", "spectral norm (dimensionless)")
    _median_max(b, m["D_t"], m["D_radius"], "C1", r"$\rho(D_t)$")
    _median_max(b, m["D_t"], m["D_sigma_max"], "C2", r"$\sigma_{max}(D_t)$")
    b.axhline(m["W_radius"], color="C1", lw=0.8, ls=":", label=rf"$\rho(W_{{hh}})$ = {m['W_radius']:.3g}")
    b.axhline(m["W_sigma_max"], color="C2", lw=0.8, ls=":", label=rf"$\sigma_{{max}}(W_{{hh}})$ = {m['W_sigma_max']:.3g}")
    b.axhline(1.0, color="grey", lw=0.5)
    _label(b, "step t", "spectral radius / largest singular value")
    return _save(fig, path, title, f"Memory: left, how much of a change of h_t reaches h_(T-1) (median and max over "
                 f"{r['samples']} validation samples); right, the spectrum of the per-step Jacobian D_t along the "
                 "same trajectories, with the recurrent matrix's as dotted lines.")


def _gradient_flow(r: dict, plt, path: str, title: str) -> str:
    g, T = r["gradient_flow"], len(r["t"])
    lags = T - 1 - np.asarray(r["t"])
    credit = r.get("credit")
    fig, axes = plt.subplots(1, 2 if credit else 1, figsize=(10 if credit else 5.5, 4), squeeze=False)
    a = axes[0, 0]
    _median_max(a, lags, g["hidden_grad_norm"], "C0", r"$\|\partial E_b/\partial h_t\|$")
    a.axvline(T - 1 - g["first_marker_median"], color="grey", ls=":",
              label=f"first marker (median), ratio {g['marker_ratio_median']:.2g}")
    a.set_yscale("log")
    _label(a, "lag T-1-t (steps before the output)", "gradient norm (loss per unit of h)")
    if credit:
        b = axes[0, 1]
        b.plot(lags, _arr(credit["cosine_by_t"]), marker=".", color="C3",
               label=f"iteration {credit['iteration']}")
        b.axhline(0.1, color="grey", ls=":", label="vanishing threshold 0.1")
        b.set_ylim(-1.05, 1.05)
        _label(b, "lag T-1-t (steps before the output)", "cosine of the rule's part with BPTT's")
    return _save(fig, path, title, "Gradient flow: the per-sample loss gradient reaching each step (median and max "
                 f"over {r['samples']} samples); the dotted line marks the first input that carries information"
                 + ("; right, the rule's per-lag cosine with BPTT from the run's last record." if credit else "."))


def _sensitivity(r: dict, plt, path: str, title: str) -> str:
    s = r["sensitivity"]
    fig, a = plt.subplots(figsize=(5.5, 4))
    a.plot(r["t"], _positive(s["influence_norm_mean"]), marker=".", label="mean over samples")
    a.plot(r["t"], _positive(s["influence_norm_max"]), "--", label="max over samples")
    a.set_yscale("log")
    _label(a, "step t", r"$\|\partial h_t/\partial\theta_{rec}\|_F$ (state per unit of parameter)")
    return _save(fig, path, title, f"Sensitivity: Frobenius norm of the influence of theta_rec = "
                 f"({', '.join(s['theta'])}), {s['n_theta']} parameters, on h_t; {s['method']}; "
                 f"{r['samples']} samples.")


def _attractors(r: dict, plt, path: str, title: str) -> str:
    at = r["attractors"]
    names = list(at["inputs"])
    stable = [at["inputs"][n]["n_stable"] for n in names]
    unstable = [at["inputs"][n]["n_fixed"] - s for n, s in zip(names, stable)]
    fig, a = plt.subplots(figsize=(max(5.5, 0.6 * len(names)), 4))
    x = np.arange(len(names))
    a.bar(x, stable, color="C2", label="stable (spectral radius < 1)")
    a.bar(x, unstable, bottom=stable, color="C7", label="unstable")
    if at["classes"] is not None:
        a.axhline(at["classes"], color="C3", ls="--", label=f"classes: {at['classes']}")
    a.set_xticks(x, names, rotation=45, ha="right", fontsize=7)
    _label(a, "constant input", "fixed points (count)")
    if at.get("linear"):
        h = at["memory_horizon"]
        return _save(fig, path, title, "Attractors: a linear (diagonal) cell has exactly one fixed point per constant "
                     "input, h* = gamma (u B) / (1 - lambda), stable since |lambda| < 1 (closed form); its memory "
                     f"horizon 1/(1 - |lambda_j|) is median {h['median']:.3g}, max {h['max']:.3g} steps.")
    return _save(fig, path, title, f"Attractors: fixed points of the cell's map under each constant input, from "
                 f"{at['starts']} starts on validation trajectories (||F(h) - h|| < {at['tol']:g}, merged within "
                 f"{at['merge']:g}). Fewer stable points than classes is evidence, not proof, of missing memory.")


def _smoothness(r: dict, plt, path: str, title: str) -> str:
    s = r["smoothness"]
    if s.get("source") == "recorded":
        return _smoothness_series(s, plt, path, title)
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 4))
    eig = np.asarray(s["top_eigenvalues"], float)
    a.bar(np.arange(len(eig)), eig, color="C0", label="top Hessian eigenvalue (signed)")
    a.axhline(2.0 / s["lr"], color="C3", ls="--", label=f"2/alpha = {2.0 / s['lr']:.3g}")
    _label(a, "measurement", "eigenvalue (loss per unit parameter^2)")
    x = np.arange(len(s["loss_jumps"]))
    b.bar(x - 0.2, s["losses"], 0.4, color="C7", label="E before the update")
    b.bar(x + 0.2, s["loss_jumps"], 0.4, color="C1", label="E after - E before")
    _label(b, "update", "loss (nats or squared error)")
    return _save(fig, path, title, f"Smoothness: largest-magnitude Hessian eigenvalue of E on {s['samples']} "
                 f"validation samples ({s['iterations']} power iterations), and the loss jump of one update.")


def _smoothness_series(s: dict, plt, path: str, title: str) -> str:
    """The series recorded along training against the iteration, with 2/alpha drawn."""
    its, limit = np.asarray(s["recorded_iterations"]), 2.0 / s["lr"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    if s["top_eigenvalues"]:
        a.plot(its, _arr(s["top_eigenvalues"]), ".-", color="C0", label="top Hessian eigenvalue (signed)")
    else:
        a.text(0.5, 0.5, "eigenvalue not recorded\n([smoothness] hessian = true records it)", ha="center",
               va="center", transform=a.transAxes, fontsize=8)
    a.axhline(limit, color="C3", ls="--", label=f"2/alpha = {limit:.3g}")
    _label(a, "iteration", "eigenvalue (loss per unit parameter^2)")
    b.plot(its, _arr(s["losses"]), ".-", color="C7", label="E before the update")
    b.plot(its, _arr(s["loss_jumps"]), ".-", color="C1", label="E after - E before")
    b.axhline(0.0, color="k", lw=0.5)
    _label(b, "iteration", "loss (nats or squared error)")
    return _save(fig, path, title, "Smoothness along training: at each recorded iteration, on a fixed set of "
                 "validation samples, the largest-magnitude Hessian eigenvalue of E before the update (30 power "
                 "iterations) and E before and the jump E after - E before of that update. Rough where the "
                 "eigenvalue exceeds 2/alpha at more than 10 % of the iterations, or a jump exceeds E.")


def write_figures(result: dict, out_dir: str) -> list[str]:
    """Write ``memory.png``, ``gradient_flow.png``, ``sensitivity.png``, ``attractors.png`` and, when
    measured, ``smoothness.png`` into ``out_dir``; returns their paths."""
    plt = _plt()
    c = result["config"]
    title = f"{c['rule']} on {c['task']} T={c['length']} ({c.get('cell', 'srnn')}, m={c['hidden']})"
    parts = [("memory", _memory), ("gradient_flow", _gradient_flow), ("sensitivity", _sensitivity),
             ("attractors", _attractors)] + ([("smoothness", _smoothness)] if result.get("smoothness") else [])
    paths = [draw(result, plt, os.path.join(out_dir, f"{name}.png"), title) for name, draw in parts]
    plt.close("all")
    return paths
