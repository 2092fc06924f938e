"""Inspect one LRA-diff update in a notebook: :func:`lra_gradients`."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from localrnn.model import Params
from localrnn.rules.lra import HPARAMS, RULE, LRAOptions, lra_core

__all__ = ["lra_gradients"]


@functools.lru_cache(maxsize=64)
def _compiled(options: LRAOptions, loss: str):
    return jax.jit(lambda p, x, y, hp: lra_core(p, x, y, hp, options, loss))


def _option_lines() -> str:
    hp = [f"    ``{k}`` ({h.default:g}): {h.help}" for k, h in HPARAMS.items()]
    opts = [f"    ``{k}`` ({f.default!r}): {f.description}" for k, f in LRAOptions.model_fields.items()
            if k != "regularize"]
    return "\n".join(hp + opts)


def lra_gradients(params: Params, x: jax.Array, y: jax.Array, loss: str = "cross_entropy",
                  **options: Any) -> dict[str, jax.Array]:
    """One RNN-LRA-diff update (docs/lra.md) on the batch ``(x, y)``, summed and per layer.

    ``options`` takes the rule's hyper-parameters and static options by name, as the CLI spells
    them with underscores (a non-zero ``reg_lambda`` switches the regularizer on); ``loss`` is the
    task's global loss (``"cross_entropy"`` or ``"mse"``). ``variant`` picks the reading of
    Algorithm 1: ``"fixed_target"`` (default), ``"printed"`` or ``"reference"``
    (docs/lra-readings.md). The names, defaults and meanings (from the rule's schema):

{options}

    Returns a dict of arrays: ``grad_Wxh``, ``grad_Whh``, ``grad_bh``, ``grad_Why``,
    ``grad_by`` (the updates as the optimizer applies them, summed over layers);
    ``grad_Wxh_per_layer`` (T, n, m), ``grad_Whh_per_layer`` (T, m, m), ``grad_bh_per_layer``
    (T, m) (index t = the update of layer t, 0 for layers that get none); ``local_loss`` (T,),
    ``target_displacement_norm`` (T,) and ``loss`` (the global loss E). Compiled once per
    set of static options; use float64 parameters for exact comparisons.

    >>> import jax, jax.numpy as jnp, localrnn
    >>> task = localrnn.get_task("temporal_order")
    >>> params = localrnn.init_params(jax.random.PRNGKey(0), task.n_in, 100, task.n_out, jnp.float64)
    >>> x, y = task.sample(jax.random.PRNGKey(1), 20, 20, jnp.float64)
    >>> g = localrnn.lra_gradients(params, x, y, inner_steps=10, target_step=0.1, reg_lambda=0.1)
    >>> g["grad_Whh"].shape, g["grad_Whh_per_layer"].shape
    ((100, 100), (20, 100, 100))
    >>> printed = localrnn.lra_gradients(params, x, y, inner_steps=10, variant="printed")
    """
    hp = {k: options.pop(k, h.default) for k, h in HPARAMS.items()}
    opts = RULE.derive_options(LRAOptions(**options), hp)
    dt = params.Whh.dtype
    hp_arr = {k: jnp.asarray(v, dt) for k, v in hp.items()}
    return _compiled(opts, loss)(params, jnp.asarray(x, dt), jnp.asarray(y, dt), hp_arr)


lra_gradients.__doc__ = lra_gradients.__doc__.replace("{options}", _option_lines())
