"""Time and memory per iteration of every rule at the standard size, beside BPTT, in one run.

Run:  python benchmarks/bench_rules.py [--quick] [--lengths 30 100] [--hidden 100]

Per rule (its default options; LRA-diff at K = 1 and K = 10) on temporal order, batch 20, float32,
SGD: the median seconds of one training iteration (the training loop's own compiled chunk: batch
generation, rule step, clipping, optimizer, divergence guard; after compilation), its ratio to
BPTT's time measured in the same run, and the memory XLA allocates for one rule step (arguments,
outputs and temporaries of the compiled step, one configuration). FLOP rates and the fraction of
this machine's measured matmul peak are printed where the FLOP count is known in closed form
(BPTT, RTRL); for the other rules XLA's own count does not multiply loop bodies by their trip
counts, so none is printed rather than a wrong one.

RTRL keeps the influence dh/dtheta, B m |theta| entries (85.6 MB at B = 20, m = 100 in float32)
and costs O(T B m^2 |theta|) per iteration; its ``max_influence_mb`` option refuses sizes over the
limit before any training. It runs here at the standard size with few repeats.
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
from bench_engine import bptt_flops  # noqa: E402
from localrnn.config import TrainConfig  # noqa: E402
from localrnn.model import init_params  # noqa: E402
from localrnn.rules import get_rule  # noqa: E402
from localrnn.tasks import get_task  # noqa: E402
from localrnn.train import compile_program, stacked_hparams  # noqa: E402

#: (label, rule, rule options, extra config fields)
ARMS = [
    ("bptt", "bptt", {}, {}),
    ("readout", "readout", {}, {}),
    ("rtrl", "rtrl", {}, {}),
    ("snap1", "snap1", {}, {}),
    ("uoro", "uoro", {}, {}),
    ("eprop", "eprop", {}, {}),
    ("rflo (leaky tau 4)", "rflo", {}, {"cell": "leaky", "tau": 4.0}),
    ("fa", "fa", {}, {}),
    ("lra-fdbk", "lra_fdbk", {}, {}),
    ("tptt", "tptt", {}, {}),
    ("lra fixed-target K=1", "lra", {"variant": "fixed_target", "inner_steps": 1}, {}),
    ("lra fixed-target K=10", "lra", {"variant": "fixed_target", "inner_steps": 10}, {}),
    ("lra reference K=10", "lra", {"variant": "reference", "inner_steps": 10}, {}),
]


def rtrl_flops(length: int, batch: int, n_in: int, hidden: int) -> float:
    """FLOPs of RTRL's influence recursion: per step and sample, D^T P is m x m times m x |theta|."""
    n_theta = hidden * hidden + n_in * hidden + hidden
    return 2.0 * length * batch * hidden * hidden * n_theta


def config(rule: str, options: dict, extra: dict, length: int, hidden: int, iters: int) -> TrainConfig:
    return TrainConfig(task="temporal_order", length=length, rule=rule, rule_options=options, lr=0.01,
                       hidden=hidden, val_every=iters, max_iters=10**9, **extra)


def seconds_per_iteration(cfg: TrainConfig) -> float:
    prog = compile_program(cfg)
    hp = stacked_hparams([cfg])
    state = prog.init(jnp.arange(1))
    limit = jnp.full((1,), 10**9)

    def run():
        out, _, _ = prog.chunk(state, hp, limit)
        jax.block_until_ready(out.params)

    return median_time(run, repeats=3, min_seconds=0.5) / cfg.val_every


def step_memory_mb(cfg: TrainConfig) -> float:
    """Arguments + outputs + temporaries of the compiled rule step for one configuration (MB)."""
    task = get_task(cfg.task)
    rdef = get_rule(cfg.rule)
    rule = rdef.make(cfg.resolved_options, task.loss, False, cfg.model_cell)
    params = init_params(jax.random.PRNGKey(0), task.n_in, cfg.hidden, task.n_out)
    state = rule.init(jax.random.PRNGKey(1), params)
    batch = task.sample(jax.random.PRNGKey(2), cfg.length, cfg.batch)
    hp = {k: jnp.float32(v) for k, v in cfg.resolved_hparams.items()}
    m = jax.jit(rule.step).lower(params, state, batch, hp).compile().memory_analysis()
    return (m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes) / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="T = 30 only, hidden 32 (a smoke test, not the table)")
    ap.add_argument("--lengths", type=int, nargs="+", default=[30, 100])
    ap.add_argument("--hidden", type=int, default=100)
    args = ap.parse_args()
    lengths, hidden = ([30], 32) if args.quick else (args.lengths, args.hidden)
    peak, peak_note = measured_matmul_peak()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}; {os.cpu_count()} cores; peak: {peak_note}")
    print(f"temporal order, batch 20, hidden {hidden}, float32, SGD; one configuration; median of repeats\n")
    task = get_task("temporal_order")
    for length in lengths:
        print(f"T = {length}")
        print(f"{'rule':<24} {'s/iter':>10} {'x BPTT':>8} {'step MB':>9} {'GFLOP/s':>9} {'% peak':>7}")
        base = None
        for label, rule, options, extra in ARMS:
            iters = 2 if rule == "rtrl" else 20
            cfg = config(rule, options, extra, length, hidden, iters)
            s = seconds_per_iteration(cfg)
            base = base or s
            mem = step_memory_mb(cfg)
            flops = {"bptt": bptt_flops(length, 20, task.n_in, hidden, task.n_out),
                     "rtrl": rtrl_flops(length, 20, task.n_in, hidden)}.get(rule)
            rate = f"{flops / s / 1e9:>9.2f} {100 * flops / s / peak:>6.1f}%" if flops else f"{'-':>9} {'-':>7}"
            print(f"{label:<24} {s:>10.5f} {s / base:>8.1f} {mem:>9.1f} {rate}", flush=True)
        print()


if __name__ == "__main__":
    main()
