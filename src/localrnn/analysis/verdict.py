"""The verdict: why a rule fails at a length, read from the measures (docs/analysis.md).

Rules, each with its threshold stated in its sentence:

* vanishing credit: ``||dE/dh_t||`` at the first marker < VANISHING_RATIO (1e-6) times
  ``||dE/dh_{T-1}||`` (median over samples of the per-sample ratio), or the rule's per-lag
  cosine with BPTT there < VANISHING_COSINE (0.1);
* rough loss: the top Hessian eigenvalue exceeds 2/alpha at more than ROUGH_FRACTION (10 %)
  of the measurements (the recorded iterations of a series recorded along training, else the one
  update from the final parameters), or one update raised E by more than E;
* missing attractors: fewer stable fixed points than classes under every constant input tried
  (evidence, not proof: a finite delay can be bridged by slow transients); for a linear cell
  (diagonal) not counted: its one stable fixed point per input says nothing, the sentence gives the
  memory horizon 1/(1 - |lambda_j|) instead;
* undetermined: none of these holds.

A measure that was not computed leaves its rule "not checked", said in its sentence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Verdict", "verdict", "VANISHING_RATIO", "VANISHING_COSINE", "ROUGH_FRACTION"]

VANISHING_RATIO = 1e-6
VANISHING_COSINE = 0.1
ROUGH_FRACTION = 0.1


@dataclass(frozen=True)
class Verdict:
    """``names``: the verdicts that hold (or ``("undetermined",)``); ``reasons``: one sentence per rule."""

    names: tuple[str, ...]
    reasons: tuple[str, ...]

    def as_dict(self) -> dict:
        return {"names": list(self.names), "reasons": list(self.reasons)}

    @classmethod
    def from_dict(cls, d: dict) -> "Verdict":
        """The inverse of :meth:`as_dict` (a verdict read back from an analysis result or its JSON)."""
        return cls(tuple(d["names"]), tuple(d["reasons"]))

    def text(self) -> str:
        return f"verdict: {', '.join(self.names)}\n" + "\n".join(f"  - {r}" for r in self.reasons)


def _number(v) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def _vanishing(m: dict) -> tuple[bool | None, str]:
    ratio = _number((m.get("gradient_flow") or {}).get("marker_ratio_median"))
    cos = _number((m.get("credit") or {}).get("cosine_at_first_marker"))
    if ratio is None and cos is None:
        return None, "vanishing credit: not checked (neither ||dE/dh_t|| nor the rule's per-lag cosine was measured)."
    parts, hit = [], False
    if ratio is not None:
        low = ratio < VANISHING_RATIO
        hit |= low
        parts.append(f"||dE/dh_t|| at the first marker is {ratio:.3g} of ||dE/dh_(T-1)|| (median over samples; "
                     f"vanishing below {VANISHING_RATIO:g})")
    else:
        parts.append("||dE/dh_t|| was not measured")
    if cos is not None:
        hit |= cos < VANISHING_COSINE
        parts.append(f"the rule's per-lag cosine with BPTT there is {cos:.3g} (vanishing below {VANISHING_COSINE:g})")
    else:
        parts.append("the rule's per-lag cosine was not recorded for this run")
    return hit, ("vanishing credit: " if hit else "no vanishing credit: ") + "; ".join(parts) + "."


def _source(s: dict) -> str:
    its = s.get("recorded_iterations")
    if s.get("source") == "recorded" and its:
        return (f"source: the series recorded along training, {len(its)} recorded iteration(s) from {its[0]} "
                f"to {its[-1]}")
    return "source: one update from the final parameters (no series recorded for this run)"


def _rough(m: dict) -> tuple[bool | None, str]:
    s = m.get("smoothness")
    if not s:
        return None, ("rough loss: not checked (no Hessian measured and no series recorded; --hessian computes "
                      "it, a diagnostics spec's [smoothness] records it).")
    eig = [float(v) for v in s.get("top_eigenvalues") or [] if _number(v) is not None]
    pairs = [(float(j), float(e)) for j, e in zip(s.get("loss_jumps") or [], s.get("losses") or [])
             if _number(j) is not None and _number(e) is not None]
    limit = 2.0 / float(s["lr"])
    where = "recorded iteration(s)" if s.get("source") == "recorded" else "measurement(s)"
    parts, hit = [], False
    if eig:
        over = sum(v > limit for v in eig)
        hit |= over / len(eig) > ROUGH_FRACTION
        parts.append(f"the top Hessian eigenvalue exceeds 2/alpha = {limit:.3g} at {over} of {len(eig)} {where} "
                     f"({100 * over / len(eig):.0f} %; largest {max(eig, key=abs):.3g}; rough above "
                     f"{100 * ROUGH_FRACTION:.0f} %)")
    if pairs:
        jump, e = max(pairs, key=lambda p: p[0] - p[1])
        n_over = sum(j > e0 for j, e0 in pairs)
        hit |= n_over > 0
        parts.append(f"the largest loss jump is {jump:.3g} against E = {e:.3g} before the update; {n_over} of "
                     f"{len(pairs)} jump(s) exceed E (rough when a jump exceeds E)")
    if not parts:
        return None, f"rough loss: not checked (no finite eigenvalue or loss jump measured; {_source(s)})."
    return hit, ("rough loss: " if hit else "loss not rough: ") + "; ".join(parts) + f" ({_source(s)})."


def _attractors(m: dict) -> tuple[bool | None, str]:
    a = m.get("attractors")
    if not a or not a.get("inputs"):
        return None, "missing attractors: not checked (no fixed points sought)."
    if a.get("classes") is None:
        return None, "missing attractors: not checked (a regression target has no classes to hold)."
    if a.get("linear"):
        h = a.get("memory_horizon") or {}
        T = (m.get("config") or {}).get("length")
        return None, ("missing attractors: not counted (a linear cell has exactly one fixed point per constant "
                      "input, always stable; it reports its memory horizon 1/(1 - |lambda_j|) instead: median "
                      f"{h.get('median', float('nan')):.3g}, max {h.get('max', float('nan')):.3g} steps"
                      + (f", against T = {T}" if T is not None else "") + ").")
    k = int(a["classes"])
    best_name, best = max(((n, int(v["n_stable"])) for n, v in a["inputs"].items()), key=lambda t: t[1])
    hit = best < k
    where = f"{len(a['inputs'])} constant inputs tried; most under {best_name}"
    if hit:
        return True, (f"missing attractors: at most {best} stable fixed point(s) against {k} classes ({where}); "
                      "evidence, not proof: a finite delay can be bridged by slow transients.")
    return False, f"attractors suffice: {best} stable fixed point(s) against {k} classes ({where})."


def verdict(measures: dict) -> Verdict:
    """The verdict of the rules above on ``measures`` (the dict :func:`localrnn.analysis.analyze` returns,
    or any dict with the same keys)."""
    names, reasons = [], []
    for name, rule in (("vanishing credit", _vanishing), ("rough loss", _rough), ("missing attractors", _attractors)):
        hit, sentence = rule(measures)
        reasons.append(sentence)
        if hit:
            names.append(name)
    return Verdict(tuple(names) or ("undetermined",), tuple(reasons))
