import os
import tempfile

import pytest

from localrnn.runtime import single_threaded_xla

single_threaded_xla()  # before any test builds an array (XLA reads the flags then); a user's XLA_FLAGS win

# Many tests compile the same XLA programs (the battery's checks, the oracle grids, subprocess
# sweeps): JAX's persistent compilation cache turns each repeat into a load. Keyed by the program,
# the JAX version and the flags, so it never changes a result; a user's own setting wins.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(tempfile.gettempdir(), "localrnn-test-jax-cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")

import localrnn  # noqa: E402,F401  (enables x64 before any test builds arrays)


# Loading an executable from that cache can segfault now and then (jaxlib 0.10.2, CPU: seen in
# jax's compilation_cache.get_executable_and_time, twice so far, once in CI and once here, each time
# in a different test). A test whose xdist worker died runs once more on a fresh worker and the summary
# names it; a second crash fails it, so a test that really crashes still fails.
_CRASHED: set[str] = set()


@pytest.hookimpl(optionalhook=True)
def pytest_handlecrashitem(crashitem, report, sched):
    if crashitem not in _CRASHED:
        _CRASHED.add(crashitem)
        sched.mark_test_pending(crashitem)
        report.outcome = "rerun"


def pytest_terminal_summary(terminalreporter):
    for item in sorted(_CRASHED):
        terminalreporter.write_line(f"worker crashed, test run again on a fresh worker: {item}", yellow=True)
