"""Speed of the ``lra`` rule: seconds per training iteration (LRA update + SGD apply, jitted,
after warm-up, median of repeats) on temporal order, batch 20, hidden 100, beside the literal
oracle (tests/oracles/lra_literal.py, eager; one iteration timed), plus config-iterations per
second with 1, 8 and 32 configurations vmapped into one program.

    python benchmarks/bench_lra.py [--quick]

XLA runs single-threaded (one process per core is the CPU executor's plan, DESIGN.md); set
XLA_FLAGS yourself to override. FLOPs counted (dense matmuls only, the O(T K m^2) term of
paper III-B plus the forward pass and the per-layer weight updates):
    4 B m^2 K (T-1)   inner target search (one forward, one backward product per step)
  + 2 B m^2 T         forward pass
  + 4 B m^2 T         per-layer delta -> weight outer products (Whh; Wxh is n x m, n = 6, ignored)
and fraction of peak against the nominal single-core peak of the machine (see PEAK_GFLOPS).
"""

from __future__ import annotations

import os

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import localrnn  # noqa: E402
from localrnn.model import Params  # noqa: E402
from localrnn.rules import make_rule  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from oracles.lra_literal import lra_literal  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import cpu_peak_flops  # noqa: E402

#: nominal single-core peak, GFLOP/s (this benchmark runs XLA single-threaded)
PEAK_GFLOPS = {d: cpu_peak_flops(d, cores=1)[0] / 1e9 for d in ("float32", "float64")}
B, M, LR = 20, 100, 0.1


def flops(T: int, K: int) -> float:
    return 4 * B * M * M * K * (T - 1) + 2 * B * M * M * T + 4 * B * M * M * T


def _setup(T, dtype, seed=0):
    task = localrnn.get_task("temporal_order")
    params = localrnn.init_params(jax.random.PRNGKey(seed), task.n_in, M, task.n_out, dtype)
    x, y = task.sample(jax.random.PRNGKey(seed + 1), T, B, dtype)
    return params, x, y


def _hp(lam, dtype):
    return {"target_step": jnp.asarray(1.0, dtype), "c0": jnp.asarray(1.0, dtype),
            "c1": jnp.asarray(1.0, dtype), "reg_lambda": jnp.asarray(lam, dtype)}


def _train_step(rule):
    def step(params, x, y, hp):
        grads, _, rec = rule.step(params, (), (x, y), hp)
        return jax.tree.map(lambda p, g: p - LR * g, params, grads), rec["loss"]
    return step


def _time(fn, args, inner, repeats):
    jax.block_until_ready(fn(*args))
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            out = fn(*args)
        jax.block_until_ready(out)
        ts.append((time.perf_counter() - t0) / inner)
    return float(np.median(ts)), float(np.min(ts))


def per_iteration(quick: bool):
    print("seconds per iteration (median [min] of repeats), temporal order, B=20, m=100, "
          "gamma=1, c0=c1=1")
    print(f"{'T':>3} {'K':>3} {'lambda':>6} {'variant':>9} {'dtype':>8} {'compile s':>9} "
          f"{'s/iter':>10} {'[min]':>10} {'GFLOP/s':>8} {'% peak':>7} {'oracle s/iter':>13} "
          f"{'speed-up':>9}")
    grid = [(T, K, lam) for T in (10, 30) for K in (1, 10) for lam in (0.0, 0.1)]
    for T, K, lam in grid:
        for variant in ("faithful", "reference"):
            if variant == "reference" and not (T == 30 and K == 10):
                continue
            oracle_s = None
            for dtype in (jnp.float32, jnp.float64):
                params, x, y = _setup(T, dtype)
                rule = make_rule("lra", hparams={"reg_lambda": lam}, inner_steps=K, variant=variant)
                fn = jax.jit(_train_step(rule))
                hp = _hp(lam, dtype)
                t0 = time.perf_counter()
                jax.block_until_ready(fn(params, x, y, hp))
                compile_s = time.perf_counter() - t0
                med, mn = _time(fn, (params, x, y, hp), inner=5 if quick else 20,
                                repeats=3 if quick else 7)
                if dtype == jnp.float64 and not quick:
                    opts = {} if variant == "faithful" else dict(
                        local_grads="unrolled", inner_reference="forward",
                        normalization="reference", layer_loss="shifted", regularizer="reference")
                    t0 = time.perf_counter()
                    g = lra_literal(params, x, y, inner_steps=K, reg_lambda=lam, **opts)
                    jax.tree.map(lambda p, d: p - LR * d, params,
                                 Params(*(g[f"grad_{k}"] for k in ("Wxh", "Whh", "bh", "Why", "by"))))
                    oracle_s = time.perf_counter() - t0
                name = jnp.dtype(dtype).name
                gf = flops(T, K) / med / 1e9
                orc = f"{oracle_s:13.3f}" if (oracle_s and dtype == jnp.float64) else f"{'-':>13}"
                spd = f"{oracle_s / med:8.0f}x" if (oracle_s and dtype == jnp.float64) else f"{'-':>9}"
                print(f"{T:3d} {K:3d} {lam:6.1f} {variant:>9} {name:>8} {compile_s:9.2f} "
                      f"{med:10.5f} {mn:10.5f} {gf:8.1f} {100 * gf / PEAK_GFLOPS[name]:6.1f}% "
                      f"{orc} {spd}")
    print("target: < 0.0066 s/iter at T=30, K=10, lambda=0.1 (50x faster than the published "
          "code's 0.33 s on a 2-core machine); float64 is the setting to read when lambda > 0.")


def vmapped(quick: bool, T=30, K=10, lam=0.1, dtype=jnp.float64):
    print(f"\nconfig-iterations per second, N configs vmapped (T={T}, K={K}, lambda={lam}, "
          f"{jnp.dtype(dtype).name}; each config its own weights, batch and gamma/c0/c1/lambda)")
    rule = make_rule("lra", hparams={"reg_lambda": lam}, inner_steps=K)
    step = _train_step(rule)
    for n in (1, 8, 32):
        ps, xs, ys = zip(*(_setup(T, dtype, seed=s) for s in range(n)))
        params = jax.tree.map(lambda *a: jnp.stack(a), *ps)
        x, y = jnp.stack(xs), jnp.stack(ys)
        hp = {"target_step": jnp.geomspace(0.01, 10.0, n).astype(dtype),
              "c0": jnp.ones((n,), dtype), "c1": jnp.linspace(0.1, 1.0, n).astype(dtype),
              "reg_lambda": jnp.full((n,), lam, dtype)}
        fn = jax.jit(jax.vmap(step))
        med, mn = _time(fn, (params, x, y, hp), inner=3 if quick else 10, repeats=3 if quick else 5)
        gf = n * flops(T, K) / med / 1e9
        print(f"  N={n:3d}: {n / med:8.1f} config-it/s  ({med * 1e3:8.2f} ms per vmapped step, "
              f"{gf:5.1f} GFLOP/s, {100 * gf / PEAK_GFLOPS[jnp.dtype(dtype).name]:4.1f}% of peak)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats, no oracle")
    args = ap.parse_args()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, XLA_FLAGS={os.environ.get('XLA_FLAGS')}")
    per_iteration(args.quick)
    vmapped(args.quick)


if __name__ == "__main__":
    main()
