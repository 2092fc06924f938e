"""Seconds per TPTT iteration beside BPTT, in one run (issue 4).

    python benchmarks/bench_tptt.py [--lengths 10 100 300] [--dtype float32] [--repeats 21]
                                    [--peak-gflops G]

Random permutation task, batch 20, hidden 100 (n = k = 100). One iteration is
the jitted rule step plus the SGD apply ``p <- p - lr * grads``; ``INNER``
iterations run inside one compiled ``lax.scan`` (as the training loop does, so
Python dispatch is not counted) on a fixed batch (data generation excluded).
After a warm-up call, the median over ``--repeats`` timed calls is reported.
TPTT runs its defaults (Nesterov inverse, no noise).

FLOP estimate (matrix products only; U = 2 T B m^2 flops, the cost of one
T-batched m x m product; with n = m an input product costs the same):
  BPTT: forward recurrent + input (2U), backward dE/dz carry, dWhh, dWxh (3U)    = 5U
  TPTT: forward (2U), inverse G(x, f) and dVhh (2U), G(x_t, z_t) and the target
        scan G(x_t, zhat_t) (2U), dWhh, dWxh (2U)                                  = 8U
(+ the readout, 2-3 x 2 B m k, negligible). The spectral radii in ``record``
are not read here, so XLA drops them (as in the training loop).
Peak: a large matmul measured in the run (benchmarks/_machine.py), or ``--peak-gflops``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import jax
import jax.numpy as jnp

import sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _machine import measured_matmul_peak  # noqa: E402

import localrnn  # noqa: F401  (x64 on; explicit dtypes below)
from localrnn import get_task, init_params, make_rule

B, M, INNER = 20, 100, 10


def cpu_peak_gflops(dtype) -> tuple[float, str]:
    """This machine's matmul peak, measured in the run (benchmarks/_machine.py), in GFLOP/s."""
    peak, how = measured_matmul_peak(jnp.dtype(dtype).name)
    return peak / 1e9, how


def flops(rule: str, T: int, n: int, k: int) -> float:
    u_rec, u_in = 2 * T * B * M * M, 2 * T * B * n * M
    readout = 2 * B * M * k
    if rule == "bptt":  # fwd rec, bwd carry, dWhh | fwd in, dWxh | out, dz, dWhy
        return 3 * u_rec + 2 * u_in + 3 * readout
    # fwd rec, G(x, f), dVhh, G(x_t, z_t), target scan, dWhh | fwd in, dWxh | out, dz, dWhy
    return 6 * u_rec + 2 * u_in + 3 * readout


def iteration_fn(name: str, loss: str, hparams: dict, lr: float, dtype):
    rule = make_rule(name, loss=loss)
    hp = {k: jnp.asarray(v, dtype) for k, v in hparams.items()}

    @jax.jit
    def run(params, state, batch):
        def body(carry, _):
            p, s = carry
            g, s, rec = rule.step(p, s, batch, hp)
            p = jax.tree.map(lambda a, b: a - jnp.asarray(lr, dtype) * b, p, g)
            return (p, s), rec["loss"]
        return jax.lax.scan(body, (params, state), None, length=INNER)

    return rule, run


def prepare(name: str, T: int, dtype):
    """A compiled, warmed-up ``() -> result`` running INNER iterations of rule ``name``."""
    task = get_task("random_permutation")
    params = init_params(jax.random.PRNGKey(0), task.n_in, M, task.n_out, dtype)
    batch = task.sample(jax.random.PRNGKey(1), T, B, dtype)
    rule, run = iteration_fn(name, task.loss, localrnn.get_rule(name).defaults, 0.01, dtype)
    state = rule.init(jax.random.PRNGKey(2), params)
    call = lambda: jax.block_until_ready(run(params, state, batch))  # noqa: E731
    call()  # compile
    call()  # warm-up
    return call


def time_rules(names: list[str], T: int, dtype, repeats: int) -> dict[str, float]:
    """Median seconds per iteration; the rules' repeats are interleaved so that a change
    in machine load during the run hits both alike."""
    calls = {n: prepare(n, T, dtype) for n in names}
    times: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(repeats):
        for n, call in calls.items():
            t0 = time.perf_counter()
            call()
            times[n].append((time.perf_counter() - t0) / INNER)
    return {n: statistics.median(v) for n, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lengths", type=int, nargs="+", default=[10, 100, 300])
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--repeats", type=int, default=21)
    ap.add_argument("--peak-gflops", type=float, default=None)
    args = ap.parse_args()
    dtype = jnp.dtype(args.dtype)
    backend = jax.default_backend()
    if args.peak_gflops is not None:
        peak, how = args.peak_gflops, "given"
    elif backend == "cpu":
        peak, how = cpu_peak_gflops(dtype)
    else:
        peak, how = float("nan"), "pass --peak-gflops"
    print(f"backend {backend} ({jax.devices()[0].device_kind}), {args.dtype}, batch {B}, "
          f"hidden {M}, random permutation; peak {peak:.0f} GFLOP/s ({how})")
    print(f"{'T':>5} {'rule':>5} {'s/iter':>10} {'GFLOP/iter':>11} {'GFLOP/s':>8} {'%peak':>6} "
          f"{'vs BPTT':>8}")
    for T in args.lengths:
        secs = time_rules(["bptt", "tptt"], T, dtype, args.repeats)
        for name, sec in secs.items():
            gf = flops(name, T, 100, 100) / 1e9
            base = secs["bptt"]
            print(f"{T:>5} {name:>5} {sec:>10.3e} {gf:>11.4f} {gf / sec:>8.2f} "
                  f"{100 * gf / sec / peak:>6.2f} {sec / base:>7.2f}x", flush=True)


if __name__ == "__main__":
    main()
