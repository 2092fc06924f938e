"""Options, presets and hyper-parameters of the ``lra`` rule (docs/lra.md#hyper-parameters-and-options).

Static options (:class:`LRAOptions`) choose the program; traced hyper-parameters (:data:`HPARAMS`)
are inputs of it. ``variant`` names the reading of Algorithm 1 (docs/lra.md#three-readings-of-algorithm-1):
``fixed_target`` (default), ``printed`` and ``reference``; the last two are presets that set the
published-code options (docs/lra.md#published-code-options) unless an option is given explicitly.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_serializer, model_validator

from localrnn.rules._base import Hparam

__all__ = ["LRAOptions", "REFERENCE_SETTINGS", "PRINTED_SETTINGS", "HPARAMS", "VARIANTS"]

#: the three readings of Algorithm 1
VARIANTS = ("fixed_target", "printed", "reference")

#: the published code's value of every published-code option (the ``reference`` preset)
REFERENCE_SETTINGS: dict[str, str] = {
    "local_grads": "unrolled",
    "inner_reference": "forward",
    "normalization": "reference",
    "layer_loss": "shifted",
    "regularizer": "reference",
    "validation_initial_state": "reference",
}

#: the options the ``printed`` preset sets: lines 24-25 of Algorithm 1 overwrite zhat_t with the
#: prediction from the candidate, so inner steps k >= 2 pull toward the forward activity (the same
#: search as option (b)); its one-step top loop (lines 9-13) comes with the variant itself
PRINTED_SETTINGS: dict[str, str] = {"inner_reference": "forward"}

_PRESETS = {"fixed_target": {}, "printed": PRINTED_SETTINGS, "reference": REFERENCE_SETTINGS}

#: traced hyper-parameters and their defaults
HPARAMS: dict[str, Hparam] = {
    "target_step": Hparam(1.0, "gamma: step of each target update (eq. 4)"),
    "c0": Hparam(1.0, "normalization constant of the weight updates (0 = no normalization)"),
    "c1": Hparam(1.0, "normalization constant of the target displacements (0 = none)"),
    "reg_lambda": Hparam(0.0, "lambda of Algorithm 2's regularizer (0 = Algorithm 1)",
                         switches="regularize"),
}


class LRAOptions(BaseModel):
    """Static (structural) options of the ``lra`` rule; dashes in values are read as underscores."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    inner_steps: int = Field(10, ge=1, description="K: steps of each target search")
    force_normalize: bool = Field(False, description="Normalize always rescales to c (when c > 0)")
    local_loss: Literal["mse", "log_penalty"] = Field("mse", description="local loss L")
    regularize: bool = Field(False, description="Algorithm 2's regularizer (on when reg_lambda != 0)")
    update_layer0: bool = Field(False, description="also apply layer 0's local loss to Wxh, bh")
    variant: Literal["fixed_target", "printed", "reference"] = Field(
        "fixed_target", description="reading of Algorithm 1: fixed_target (eq. 4's intent), printed "
        "(line by line) or reference (the published code); see docs/lra.md")
    local_grads: Literal["one_step", "unrolled"] = Field(
        "one_step", description="published-code option (a): local gradients through one step or "
        "the whole unrolled graph")
    inner_reference: Literal["target", "forward"] = Field(
        "target", description="published-code option (b): inner steps k >= 2 pull toward the target "
        "or the forward activity")
    normalization: Literal["algorithm1", "reference"] = Field(
        "algorithm1", description="published-code option (c): which updates Normalize rescales")
    layer_loss: Literal["own", "shifted"] = Field(
        "own", description="published-code option (d): layer t learns from its own loss or the "
        "last loss of layer t+1's search")
    regularizer: Literal["algorithm2", "reference"] = Field(
        "algorithm2", description="published-code option (e): Algorithm 2's Omega or the code's")
    validation_initial_state: Literal["zero", "reference"] = Field(
        "zero", description="published-code option (f): state fed before step 0 at validation")
    local_space: Literal["activity", "state"] = Field(
        "activity", description="where targets and local losses live: activity (tanh(h), every cell) or "
        "state (h itself; the diagonal cells only, and their default)")

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any, info: ValidationInfo) -> Any:
        """The reading's preset under the given options; resolved for a diagonal cell (validation
        context ``{"cell": Cell}``), ``local_space`` defaults to ``state``."""
        if not isinstance(data, dict):
            return data
        data = {k: v.replace("-", "_") if isinstance(v, str) else v for k, v in data.items()}
        if data.get("variant") == "faithful":
            raise ValueError("variant 'faithful' was renamed to 'fixed_target'; allowed: "
                             + ", ".join(VARIANTS))
        cell = (info.context or {}).get("cell")
        own_space = {"local_space": "state"} if cell is not None and cell.diagonal else {}
        return {**own_space, **_PRESETS.get(data.get("variant", "fixed_target"), {}), **data}

    @model_serializer(mode="wrap")
    def _dump(self, handler) -> dict:
        """``local_space`` appears only when it is ``state``: the runs stored before it existed (all
        in the activity space) keep their ids."""
        out = handler(self)
        if out.get("local_space") == "activity":
            del out["local_space"]
        return out

    @property
    def top_steps(self) -> int:
        """Steps of the top target (lines 9-13): K, or one in the printed reading (hbar is never
        updated and yhat is recomputed from z, so every step repeats the first)."""
        return 1 if self.variant == "printed" else self.inner_steps
