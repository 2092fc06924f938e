"""Figures (PNG, matplotlib Agg) from the results store alone.

* :func:`gradient_flow_figure` (Figures 2-4): per layer t over iterations, the
  local loss, the target displacement norm, ||grad^t Whh||, ||grad^t Wxh||, and the
  global loss; one row of panels per recorded run.
* :func:`credit_figure` (docs/credit.md): per run, the cosine between the rule's recurrent
  update and BPTT's gradient against the lag T-1-t, early and late in training, and the norms of
  the rule's and BPTT's per-lag parts.
* :func:`sensitivity_figure` (Figure 5): best accuracy against a hyper-parameter
  (lambda), one line per task, mean and 95 % CI over seeds, beside the paper's quantity,
  the relative change (acc(lambda) - acc(0)) / acc(0).
"""

from __future__ import annotations

import numpy as np

from localrnn.experiments.report.tables import sensitivity_data

__all__ = ["gradient_flow_figure", "credit_figure", "sensitivity_figure"]

_PANELS = [("local_loss", "local loss $L_t$"), ("target_displacement_norm", r"$\|\Delta h_t\|$"),
           ("grad_Whh_norm", r"$\|\nabla^t W_{hh}\|$"), ("grad_Wxh_norm", r"$\|\nabla^t W_{xh}\|$"),
           ("global_loss", "global loss $E$")]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def gradient_flow_figure(runs: list[tuple[str, dict[str, tuple[np.ndarray, np.ndarray]]]], path: str,
                         title: str = "") -> str:
    """``runs``: ``(label, {name: (iterations, values)})`` as :meth:`Store.records` gives. Writes ``path``."""
    plt = _plt()
    n = max(1, len(runs))
    fig, axes = plt.subplots(n, len(_PANELS), figsize=(4 * len(_PANELS), 3.2 * n), squeeze=False)
    for i, (label, recs) in enumerate(runs):
        for j, (key, name) in enumerate(_PANELS):
            ax = axes[i, j]
            if key not in recs:
                ax.text(0.5, 0.5, f"{key}\nnot recorded by this rule", ha="center", va="center",
                        transform=ax.transAxes, fontsize=8)
                ax.set_xticks([])
                ax.set_yticks([])
            else:
                its, vals = recs[key]
                finite = vals[np.isfinite(vals)]
                log = finite.size > 0 and np.all(finite >= 0) and np.any(finite > 0)
                if log:  # per-layer norms span orders of magnitude; zeros (layers not updated) are left out
                    vals = np.where(vals > 0, vals, np.nan)
                if vals.ndim == 1:
                    ax.plot(its, vals, color="black", lw=1)
                else:
                    cmap = plt.get_cmap("viridis")
                    n_layers = vals.shape[1]
                    for t in range(n_layers):
                        ax.plot(its, vals[:, t], color=cmap(t / max(1, n_layers - 1)), lw=0.8,
                                label=f"t={t}" if n_layers <= 12 else None)
                    if n_layers <= 12 and j == 0:
                        ax.legend(fontsize=6, ncol=2)
                if log:
                    ax.set_yscale("log")
                ax.set_xlabel("iteration")
            if i == 0:
                ax.set_title(name)
            if j == 0:
                ax.set_ylabel(label, fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def credit_figure(runs: list[tuple[str, dict[str, tuple[np.ndarray, np.ndarray]]]], path: str,
                  title: str = "") -> str:
    """One column per run: top, ``credit_cosine`` against the lag T-1-t (mean over the first and over
    the last quarter of the records; the overall cosine in the legend); bottom, ``credit_norm`` and
    ``bptt_credit_norm`` against the lag (log scale, same two windows). Writes ``path``."""
    plt = _plt()
    n = max(1, len(runs))
    cols = min(n, 4)
    rows = -(-n // cols)
    fig, axes = plt.subplots(2 * rows, cols, figsize=(3.6 * cols, 5.2 * rows), squeeze=False)
    for k, (label, recs) in enumerate(runs):
        ax_cos, ax_norm = axes[2 * (k // cols), k % cols], axes[2 * (k // cols) + 1, k % cols]
        ax_cos.set_title(label, fontsize=8)
        if "credit_cosine" not in recs:
            ax_cos.text(0.5, 0.5, "no credit record", ha="center", va="center", transform=ax_cos.transAxes)
            continue
        its, cos = recs["credit_cosine"]
        overall = recs.get("credit_cosine_overall", (its, np.full(len(its), np.nan)))[1]
        lags = np.arange(cos.shape[1])[::-1]  # record index t -> lag T-1-t
        q = max(1, len(its) // 4)
        for window, style, name in ((slice(0, q), "--", "early"), (slice(-q, None), "-", "late")):
            span = f"it {its[window][0]}-{its[window][-1]}"
            ov = np.nanmean(overall[window])
            if np.all(np.isnan(cos[window])):
                ax_cos.axhline(ov, ls=style, color="C0", label=f"{name} ({span}): overall only, {ov:+.2f}")
            else:
                ax_cos.plot(lags, np.nanmean(cos[window], axis=0), style, color="C0", marker=".",
                            label=f"{name} ({span}), overall {ov:+.2f}")
            for key, color, who in (("credit_norm", "C0", "rule"), ("bptt_credit_norm", "k", "BPTT")):
                if key in recs and not np.all(np.isnan(recs[key][1][window])):
                    vals = np.nanmean(recs[key][1][window], axis=0)
                    ax_norm.plot(lags, np.where(vals > 0, vals, np.nan), style, color=color,
                                 label=f"{who}, {name}")
        ax_cos.axhline(0.0, color="grey", lw=0.5)
        ax_cos.set_ylim(-1.05, 1.05)
        ax_cos.set_xlabel("lag T-1-t (steps before the output)")
        ax_cos.set_ylabel("cosine with BPTT's part")
        ax_cos.legend(fontsize=6)
        if ax_norm.get_legend_handles_labels()[0]:
            ax_norm.set_yscale("log")
            ax_norm.legend(fontsize=6)
        ax_norm.set_xlabel("lag T-1-t (steps before the output)")
        ax_norm.set_ylabel("norm of the part at that lag")
    for k in range(n, rows * cols):
        axes[2 * (k // cols), k % cols].axis("off")
        axes[2 * (k // cols) + 1, k % cols].axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def sensitivity_figure(trials: list[dict], x: str, lines: list[str], path: str, title: str = "") -> tuple[str, list[dict]]:
    """Figure 5: best accuracy (max over the other axes, per seed; mean ± CI over seeds) against
    ``x`` beside the paper's relative change (acc(x) - acc(0)) / acc(0); see :func:`sensitivity_data`."""
    plt = _plt()
    data = sensitivity_data(trials, x, lines)
    fig, (ax_acc, ax_rel) = plt.subplots(1, 2, figsize=(11, 4))
    for line in sorted({tuple(d.get(k) for k in lines) for d in data}, key=str):
        pts = [d for d in data if tuple(d.get(k) for k in lines) == line]
        label = ", ".join(f"{v}".replace("_", " ") for v in line)
        xs = [d[x] for d in pts]
        ax_acc.errorbar(xs, [100 * d["accuracy_mean"] for d in pts], yerr=[100 * d["accuracy_ci95"] for d in pts],
                        marker="o", capsize=3, label=label)
        rel = [(d[x], 100 * d["relative_change"]) for d in pts if d["relative_change"] is not None and d[x] != 0]
        if rel:
            ax_rel.plot(*zip(*rel), marker="o", label=label)
    positive = [d[x] for d in data if d[x] > 0]
    for ax in (ax_acc, ax_rel):
        if positive and all(d[x] >= 0 for d in data):
            ax.set_xscale("symlog", linthresh=min(positive)) if any(d[x] == 0 for d in data) else ax.set_xscale("log")
        ax.set_xlabel(x.replace("reg_lambda", r"$\lambda$"))
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    ax_acc.set_ylabel("best validation accuracy (%)")
    ax_rel.set_ylabel("relative change vs 0: (acc - acc(0)) / acc(0) (%)")
    ax_rel.axhline(0.0, color="grey", lw=0.5)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path, data
