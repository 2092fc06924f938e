"""Measures on a trained (or training) network and the verdict they support (docs/analysis.md):
memory and gradient flow, sensitivity to the recurrent parameters, attractors, smoothness."""

from localrnn.analysis.analyze import analyze
from localrnn.analysis.attractors import fixed_points
from localrnn.analysis.gradient_flow import hidden_grad_norms, marker_ratio
from localrnn.analysis.memory import recurrence_spectra, spectral_radius, state_jacobian_norms, top_singular_value
from localrnn.analysis.recurrence import recurrent_matrix
from localrnn.analysis.sensitivity import influence_norms, influence_norms_estimate
from localrnn.analysis.smoothness import hvp, loss_jump, top_hessian_eigenvalue
from localrnn.analysis.verdict import Verdict, verdict

__all__ = ["analyze", "fixed_points", "hidden_grad_norms", "marker_ratio", "recurrence_spectra", "spectral_radius",
           "state_jacobian_norms", "top_singular_value", "recurrent_matrix", "influence_norms",
           "influence_norms_estimate", "hvp", "loss_jump", "top_hessian_eigenvalue", "Verdict", "verdict"]
