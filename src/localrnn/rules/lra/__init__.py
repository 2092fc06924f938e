"""RNN-LRA-diff (Algorithm 1 of Manchev & Garcia-Peraza-Herrera, "Can Local Representation Alignment
RNNs Solve Temporal Tasks?"), its regularized form (Algorithm 2) and the published code's departures
from it, as a package of the algorithm's phases (docs/lra.md, docs/lra-readings.md):

* ``options.py``: :class:`LRAOptions` (the reading ``variant`` = fixed_target | printed | reference
  and the published-code options), the presets, :data:`HPARAMS` (gamma, c0, c1, lambda);
* ``top.py``: the output layer and the top target (lines 7-13);
* ``search.py``: the target search, the target update of Algorithm 1 (lines 19-26, eq. 4);
* ``updates.py``: the layer losses and weight updates, one-step and unrolled (lines 16-18);
* ``regularizers.py``: Algorithm 2's Omega and the published code's; ``_math.py``: Normalize;
* ``rule.py``: :func:`build_phases` picks every phase once from the options; :func:`lra_core`
  runs them; :data:`RULE` registers the rule.
"""

from localrnn.rules.lra.options import HPARAMS, PRINTED_SETTINGS, REFERENCE_SETTINGS, VARIANTS, LRAOptions
from localrnn.rules.lra.rule import RULE, build_phases, lra_core

__all__ = ["LRAOptions", "REFERENCE_SETTINGS", "PRINTED_SETTINGS", "VARIANTS", "HPARAMS", "lra_core",
           "build_phases", "RULE"]
