"""Machine facts for benchmark reports, measured in the run: the matmul peak that FLOP rates are
compared against, and timing. No figure is assumed or carried over from another machine."""

from __future__ import annotations

import statistics
import time


def measured_matmul_peak(dtype: str = "float32", size: int = 1024) -> tuple[float, str]:
    """FLOP/s of one large ``size x size`` matmul in ``dtype`` under this process's XLA settings
    (threads included), best of repeats for 1.5 s, and a line saying how it was measured.

    A large square matmul is the fastest dense work XLA does on this machine, so "fraction of
    peak" reads as "fraction of what this machine's matmul reaches with the same threads".
    2 size^3 FLOPs per product.
    """
    import jax  # noqa: PLC0415  (imported late: callers set XLA_FLAGS first)
    import jax.numpy as jnp  # noqa: PLC0415

    a = jax.random.normal(jax.random.PRNGKey(0), (size, size), dtype=dtype)
    matmul = jax.jit(lambda x: x @ x)
    jax.block_until_ready(matmul(a))
    seconds = []
    t_end = time.perf_counter() + 1.5
    while len(seconds) < 5 or time.perf_counter() < t_end:
        t0 = time.perf_counter()
        jax.block_until_ready(matmul(a))
        seconds.append(time.perf_counter() - t0)
        if len(seconds) >= 40:
            break
    peak = 2 * size**3 / min(seconds)
    return peak, (f"{peak / 1e9:.1f} GFLOP/s measured: best of {len(seconds)} {size}x{size} "
                  f"{jnp.dtype(dtype).name} matmuls, this process's XLA threads")


def median_time(fn, repeats: int = 5, min_seconds: float = 0.2) -> float:
    """Median wall time of ``fn()`` (which must block until done) over repeats."""
    fn()  # warm-up (compile)
    times = []
    t_end = time.perf_counter() + min_seconds
    while len(times) < repeats or time.perf_counter() < t_end:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= 50:
            break
    return statistics.median(times)
