"""Inspect one LRA-diff update in a notebook: :func:`lra_gradients`."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from localrnn.model import Params
from localrnn.rules.lra import HPARAMS, LRAOptions, lra_core

__all__ = ["lra_gradients"]


@functools.lru_cache(maxsize=64)
def _compiled(options: LRAOptions, loss: str):
    return jax.jit(lambda p, x, y, hp: lra_core(p, x, y, hp, options, loss))


def lra_gradients(params: Params, x: jax.Array, y: jax.Array, loss: str = "cross_entropy",
                  **options: Any) -> dict[str, jax.Array]:
    """One RNN-LRA-diff update (SPEC 3.2/3.3/7) on the batch ``(x, y)``, summed and per layer.

    ``options`` takes the rule's static options and its hyper-parameters by name, exactly as
    the CLI spells them with underscores: ``inner_steps`` (K, 10), ``target_step`` (gamma, 1.0),
    ``c0`` (1.0), ``c1`` (1.0), ``reg_lambda`` (lambda, 0.0; != 0 switches the regularizer
    on), ``force_normalize``, ``local_loss`` (``"mse"`` | ``"log_penalty"``), ``update_layer0``,
    ``variant`` (``"faithful"`` | ``"reference"``) and the SPEC-7 options ``local_grads``,
    ``inner_reference``, ``normalization``, ``layer_loss``, ``regularizer``. ``loss`` is the
    task's global loss (``"cross_entropy"`` or ``"mse"``).

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
    >>> ref = localrnn.lra_gradients(params, x, y, inner_steps=10, target_step=0.1, variant="reference")
    """
    hp = {k: options.pop(k, h.default) for k, h in HPARAMS.items()}
    opts = LRAOptions(**options)
    opts = opts.model_copy(update={"regularize": opts.regularize or hp["reg_lambda"] != 0})
    dt = params.Whh.dtype
    hp_arr = {k: jnp.asarray(v, dt) for k, v in hp.items()}
    return _compiled(opts, loss)(params, jnp.asarray(x, dt), jnp.asarray(y, dt), hp_arr)
