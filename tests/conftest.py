import os
import tempfile

from localrnn.runtime import single_threaded_xla

single_threaded_xla()  # before any test builds an array (XLA reads the flags then); a user's XLA_FLAGS win

# Many tests compile the same XLA programs (the battery's checks, the oracle grids, subprocess
# sweeps): JAX's persistent compilation cache turns each repeat into a load. Keyed by the program,
# the JAX version and the flags, so it never changes a result; a user's own setting wins.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(tempfile.gettempdir(), "localrnn-test-jax-cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")

import localrnn  # noqa: E402,F401  (enables x64 before any test builds arrays)
