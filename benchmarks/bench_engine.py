"""Engine speed: seconds per BPTT iteration, vmapped-config throughput, fraction of peak.

Run:  python benchmarks/bench_engine.py [--quick]

Times the training loop's own compiled chunk (batch generation, rule step,
clipping, optimizer, divergence guard), after compilation, median of repeats.
All ratios are against baselines measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import localrnn  # noqa: E402,F401
from _machine import measured_matmul_peak, median_time  # noqa: E402
from localrnn.config import TrainConfig  # noqa: E402
from localrnn.tasks import get_task  # noqa: E402
from localrnn.train import compile_program, stacked_hparams  # noqa: E402


def bptt_flops(length: int, batch: int, n_in: int, hidden: int, n_out: int) -> float:
    """FLOPs of one BPTT iteration: forward 2TB(nm + m^2) + 2Bmk, backward twice that
    (gradients w.r.t. activations and weights); elementwise work is ignored."""
    forward = 2 * length * batch * (n_in * hidden + hidden * hidden) + 2 * batch * hidden * n_out
    return 3 * forward


def chunk_seconds(cfg: TrainConfig, n_configs: int) -> float:
    """Median seconds of one compiled chunk of ``cfg.val_every`` iterations for n vmapped configs."""
    prog = compile_program(cfg)
    configs = [cfg.model_copy(update={"seed": s, "lr": cfg.lr * (1 + 0.01 * s)}) for s in range(n_configs)]
    hp = stacked_hparams(configs)
    state = prog.init(jnp.arange(n_configs))
    limit = jnp.full((n_configs,), 10**9)

    def run():
        out, _, _ = prog.chunk(state, hp, limit)
        jax.block_until_ready(out.params)

    return median_time(run, repeats=5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer lengths and configs (smoke test)")
    args = ap.parse_args()
    peak, peak_note = measured_matmul_peak()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}; peak: {peak_note}\n")

    print("BPTT, random permutation, batch 20, hidden 100, float32, SGD")
    print(f"{'T':>5} {'s/iter':>10} {'MFLOP/iter':>11} {'GFLOP/s':>9} {'% peak':>7}")
    task = get_task("random_permutation")
    base_s = None
    for length in ([10, 100] if args.quick else [10, 100, 300]):
        iters = 100 if length <= 100 else 20
        cfg = TrainConfig(task="random_permutation", length=length, rule="bptt", lr=0.01,
                          val_every=iters, max_iters=10**9)
        s = chunk_seconds(cfg, 1) / iters
        base_s = base_s or s
        flops = bptt_flops(length, 20, task.n_in, 100, task.n_out)
        print(f"{length:>5} {s:>10.5f} {flops / 1e6:>11.1f} {flops / s / 1e9:>9.2f} "
              f"{100 * flops / s / peak:>6.1f}%   ({s / base_s:.1f}x the T=10 time)")

    print("\nThroughput: C configs vmapped into one program vs the same configs one after another")
    print("(temporal order T=30, batch 20, hidden 100, float32, BPTT)")
    cfg = TrainConfig(task="temporal_order", length=30, rule="bptt", lr=0.01, val_every=20,
                      max_iters=10**9)
    flops = bptt_flops(30, 20, 6, 100, 4)
    single = chunk_seconds(cfg, 1)
    seq_rate = cfg.val_every / single
    print(f"{'C':>5} {'vmapped cfg-it/s':>17} {'sequential cfg-it/s':>20} {'speed-up':>9} {'% peak':>7}")
    for c in ([1, 8] if args.quick else [1, 8, 32, 128]):
        t = single if c == 1 else chunk_seconds(cfg, c)
        rate = c * cfg.val_every / t
        print(f"{c:>5} {rate:>17.0f} {seq_rate:>20.0f} {rate / seq_rate:>8.2f}x "
              f"{100 * rate * flops / peak:>6.1f}%")
    print(f"\nFLOPs per BPTT iteration at T=30: {flops / 1e6:.1f} M "
          "(3 x forward: 2TB(nm + m^2) + 2Bmk; elementwise work ignored)")


if __name__ == "__main__":
    main()
