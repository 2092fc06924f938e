"""Machine facts for benchmark reports: the float32 peak we compare against, and timing."""

from __future__ import annotations

import os
import statistics
import time


def cpu_peak_flops(dtype: str = "float32", cores: int | None = None) -> tuple[float, str]:
    """Theoretical peak FLOP/s of ``cores`` CPU cores (default: all) in ``dtype``, and its derivation.

    cores x clock x FLOPs/cycle, FLOPs/cycle = 2 FMA units x SIMD lanes x 2, lanes from the widest
    vector extension in /proc/cpuinfo (AVX-512: 16 float32 / 8 float64; AVX2: 8 / 4). On the
    development machine (AMD EPYC, 2.6 GHz, AVX-512) one core ran float64 LRA-diff matmuls at
    46 GFLOP/s, above what 256-bit units could give at that clock, so full-width AVX-512 is assumed.
    """
    cores = cores or os.cpu_count() or 1
    mhz, flags, model = 2000.0, set(), "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("cpu MHz"):
                    mhz = float(line.split(":")[1])
                elif line.startswith("flags"):
                    flags = set(line.split(":")[1].split())
                elif line.startswith("model name"):
                    model = line.split(":")[1].strip()
    except OSError:
        pass
    lanes = 16 if "avx512f" in flags else 8 if "avx2" in flags else 4
    if dtype == "float64":
        lanes //= 2
    per_cycle = 2 * lanes * 2
    peak = cores * mhz * 1e6 * per_cycle
    return peak, (f"{cores} core(s) x {mhz / 1000:.2f} GHz x {per_cycle} {dtype} FLOP/cycle "
                  f"({model}; 2 FMA units x {lanes} lanes) = {peak / 1e9:.0f} GFLOP/s")


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
