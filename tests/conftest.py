from localrnn.runtime import single_threaded_xla

single_threaded_xla()  # before any test builds an array (XLA reads the flags then); a user's XLA_FLAGS win

import localrnn  # noqa: E402,F401  (enables x64 before any test builds arrays)
