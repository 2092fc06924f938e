"""Is float32 enough for regularized LRA-diff (Algorithm 2; docs/lra.md)?

The Algorithm-2 term divides by ||delta_t||, which is tiny in low layers, so float32
gradients differ from float64 ones. That matters only if the rounding error is
comparable to what SGD sees anyway: the difference between two batches' updates.
At T=30, K=10, lambda=0.1 (the benchmark's headline case) it is far below it.
"""

import jax
import jax.numpy as jnp
import numpy as np

from localrnn import lra_gradients
from localrnn.model import init_params
from localrnn.tasks import get_task

HP = dict(inner_steps=10, target_step=1.0, c0=1.0, c1=1.0, reg_lambda=0.1)
KEYS = ("grad_Wxh", "grad_Whh", "grad_bh", "grad_Why", "grad_by")


def _flat(g, keys=KEYS):
    return np.concatenate([np.asarray(g[k], np.float64).ravel() for k in keys])


def test_float32_rounding_is_far_below_batch_to_batch_variation():
    task = get_task("temporal_order")
    params = init_params(jax.random.PRNGKey(0), task.n_in, 100, task.n_out, jnp.float64)
    p32 = jax.tree.map(lambda a: a.astype(jnp.float32), params)
    for keys in (KEYS, ("grad_Whh",), ("grad_Wxh",), ("grad_bh",)):
        rounding, sampling = [], []
        for seed in range(3):
            xa, ya = task.sample(jax.random.PRNGKey(10 + seed), 30, 20, jnp.float64)
            xb, yb = task.sample(jax.random.PRNGKey(20 + seed), 30, 20, jnp.float64)
            g64 = _flat(lra_gradients(params, xa, ya, **HP), keys)
            g32 = _flat(lra_gradients(p32, xa.astype(jnp.float32), ya.astype(jnp.float32), **HP), keys)
            other = _flat(lra_gradients(params, xb, yb, **HP), keys)
            rounding.append(np.linalg.norm(g32 - g64) / np.linalg.norm(g64))
            sampling.append(np.linalg.norm(other - g64) / np.linalg.norm(g64))
        print(f"{'+'.join(keys)}: float32 rounding {max(rounding):.2e} vs batch-to-batch "
              f"{min(sampling):.2e} (relative)")
        assert max(rounding) < 1e-2 * min(sampling)
