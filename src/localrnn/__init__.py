"""localrnn: train recurrent networks with local learning rules beside BPTT.

The method (network, tasks, every rule's formulas, protocols) is written out in docs/index.md.

Importing localrnn enables JAX's 64-bit mode so that float32 and float64 runs
can live in one process; every array localrnn creates has an explicit dtype.
"""

import jax as _jax

_jax.config.update("jax_enable_x64", True)

from localrnn.losses import cross_entropy, log_penalty, mse  # noqa: E402
from localrnn.model import Params, final_state, forward, hidden_states, init_params  # noqa: E402
from localrnn.rules import RULES, Rule, RuleDef, get_rule, make_rule, register  # noqa: E402
from localrnn.tasks import TASKS, Task, get_task, validation_set  # noqa: E402
from localrnn.lra_api import lra_gradients  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Params", "init_params", "forward", "final_state", "hidden_states",
    "cross_entropy", "mse", "log_penalty",
    "Task", "TASKS", "get_task", "validation_set",
    "Rule", "RuleDef", "RULES", "get_rule", "make_rule", "register",
    "lra_gradients",
]
