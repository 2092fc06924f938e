"""Where LRA-diff's targets and local losses live (docs/lra.md#the-diagonal-cells).

A local loss compares ``sigma(a_t)`` with ``sigma(hhat_t)`` for layer t's pre-activation ``a_t`` and
its target ``hhat_t``: in the activity space ``sigma = tanh`` (Algorithm 1 as printed, every cell);
in the state space ``sigma`` is the identity, ``L(a_t, hhat_t)`` (the diagonal cells' own reading:
their state is linear, and the tanh sits only in front of the readout). ``slope`` is ``sigma'``
written in ``sigma``'s output (``1 - z^2``; 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import jax.numpy as jnp

__all__ = ["Space", "ACTIVITY", "STATE", "SPACES"]


@dataclass(frozen=True)
class Space:
    """``of``: pre-activation -> what the local losses compare; ``slope``: its derivative at the
    point whose image is ``z``."""

    name: str
    of: Callable
    slope: Callable


ACTIVITY = Space("activity", jnp.tanh, lambda z: 1.0 - z * z)
STATE = Space("state", lambda a: a, jnp.ones_like)
SPACES = {s.name: s for s in (ACTIVITY, STATE)}
