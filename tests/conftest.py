import os

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import localrnn  # noqa: E402,F401  (enables x64 before any test builds arrays)
