"""Machine facts for benchmark reports: the float32 peak we compare against, and timing."""

from __future__ import annotations

import os
import statistics
import time


def cpu_peak_flops() -> tuple[float, str]:
    """Theoretical float32 peak of this machine's CPU cores, and how it was derived.

    cores x clock x FLOPs/cycle, with FLOPs/cycle = 2 FMA units x lanes x 2
    (AVX-512: 16 float32 lanes, AVX2: 8). Zen 4 issues AVX-512 as two 256-bit
    halves, so on AMD we count AVX-512 as AVX2 throughput.
    """
    cores = os.cpu_count() or 1
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
    lanes = 16 if "avx512f" in flags and "AMD" not in model else 8 if "avx2" in flags else 4
    per_cycle = 2 * lanes * 2
    peak = cores * mhz * 1e6 * per_cycle
    return peak, (f"{cores} cores x {mhz / 1000:.2f} GHz x {per_cycle} float32 FLOP/cycle "
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
