"""Speed of the ``lra`` rule, and of the published LRA code beside it when given.

    python benchmarks/bench_lra.py [--quick]
    python benchmarks/bench_lra.py --published-code DIR [--published-python PY] [--iters N]

Without ``--published-code`` it prints localrnn's own figures only: seconds per iteration of the
rule step + SGD apply (jitted, fixed batch, temporal order, B=20, m=100), its FLOP rate and the
fraction of this machine's matmul peak measured in the same run (benchmarks/_machine.py), beside
the literal oracle (tests/oracles/lra_literal.py, eager; not with --quick); then config-iterations
per second with 1, 8 and 32 configurations vmapped into one program.

With ``--published-code DIR`` (DIR: a checkout of the published repository nmanchev/lra-rnn) it
then times, in the same run and at the same settings (temporal order, T=30, K=10, lambda=0.1,
gamma=1, c0=c1=1, MSE local loss, B=20, m=100, SGD lr 0.1, float32), the published ``SRNN.train``
loop (torch, ``--published-threads`` threads, run by ``--published-python``, default this
interpreter: localrnn itself does not need torch) and localrnn's compiled training chunk (batch
generation, rule step, SGD; validation excluded on both sides), and prints both seconds per
iteration and their ratio. No figure measured
elsewhere is printed.

XLA runs single-threaded (the CPU executor runs one single-threaded process per core); set
XLA_FLAGS yourself to override. FLOPs counted (dense matmuls only; the O(T K m^2) term of the
paper's section III-B plus the forward pass and the per-layer weight updates):
    4 B m^2 K (T-1)   inner target search (one forward, one backward product per step)
  + 2 B m^2 T         forward pass
  + 4 B m^2 T         per-layer delta -> weight outer products (Whh; Wxh is n x m, n = 6, ignored)
"""

from __future__ import annotations

import os

from localrnn.runtime import single_threaded_xla

single_threaded_xla()  # before the first computation; a user's XLA_FLAGS wins

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import localrnn  # noqa: E402
from localrnn.config import TrainConfig  # noqa: E402
from localrnn.model import Params  # noqa: E402
from localrnn.rules import make_rule  # noqa: E402
from localrnn.train import compile_program, stacked_hparams  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from oracles.lra_literal import lra_literal  # noqa: E402

sys.path.insert(0, str(HERE))
from _machine import measured_matmul_peak, median_time  # noqa: E402

B, M, LR = 20, 100, 0.1
#: the six published-code options of the ``reference`` preset, spelled out for the literal oracle
REFERENCE_OPTIONS = dict(local_grads="unrolled", inner_reference="forward", normalization="reference",
                         layer_loss="shifted", regularizer="reference")
#: the side-by-side case: the published code's settings at T=30, K=10, lambda=0.1
SIDE_BY_SIDE = dict(length=30, inner_steps=10, reg_lambda=0.1, target_step=1.0, c=1.0, lr=0.1)


def flops(T: int, K: int) -> float:
    """Dense-matmul FLOPs of one LRA-diff iteration (module docstring)."""
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


def _time(fn, args, inner, repeats) -> float:
    """Seconds per call of ``fn(*args)``: median over repeats of ``inner`` back-to-back calls."""
    def run():
        for _ in range(inner):
            out = fn(*args)
        jax.block_until_ready(out)
    return median_time(run, repeats=repeats) / inner


def _oracle_seconds(params, x, y, K, lam, variant):
    """Seconds of one eager iteration of the literal oracle (float64)."""
    t0 = time.perf_counter()
    opts = REFERENCE_OPTIONS if variant == "reference" else {}
    g = lra_literal(params, x, y, inner_steps=K, reg_lambda=lam, **opts)
    jax.tree.map(lambda p, d: p - LR * d, params,
                 Params(*(g[f"grad_{k}"] for k in ("Wxh", "Whh", "bh", "Why", "by"))))
    return time.perf_counter() - t0


def per_iteration(quick: bool, peak: dict[str, float]):
    print("seconds per iteration (median of repeats), rule step + SGD apply on a fixed batch, "
          "temporal order, B=20, m=100, gamma=1, c0=c1=1")
    print(f"{'T':>3} {'K':>3} {'lambda':>6} {'variant':>12} {'dtype':>8} {'compile s':>9} "
          f"{'s/iter':>10} {'GFLOP/s':>8} {'% peak':>7} {'oracle s/iter':>13} "
          f"{'speed-up':>9}")
    grid = [(T, K, lam) for T in (10, 30) for K in (1, 10) for lam in (0.0, 0.1)]
    for T, K, lam in grid:
        for variant in ("fixed_target", "reference"):
            if variant == "reference" and not (T == 30 and K == 10):
                continue
            for dtype in (jnp.float32, jnp.float64):
                params, x, y = _setup(T, dtype)
                rule = make_rule("lra", hparams={"reg_lambda": lam}, inner_steps=K, variant=variant)
                fn = jax.jit(_train_step(rule))
                hp = _hp(lam, dtype)
                t0 = time.perf_counter()
                jax.block_until_ready(fn(params, x, y, hp))
                compile_s = time.perf_counter() - t0
                med = _time(fn, (params, x, y, hp), inner=5 if quick else 20,
                                repeats=3 if quick else 7)
                name = jnp.dtype(dtype).name
                gf = flops(T, K) / med / 1e9
                orc, spd = f"{'-':>13}", f"{'-':>9}"
                if name == "float64" and not quick:
                    oracle_s = _oracle_seconds(params, x, y, K, lam, variant)
                    orc, spd = f"{oracle_s:13.3f}", f"{oracle_s / med:8.0f}x"
                print(f"{T:3d} {K:3d} {lam:6.1f} {variant:>12} {name:>8} {compile_s:9.2f} "
                      f"{med:10.5f} {gf:8.1f} {100 * gf / peak[name]:6.1f}% {orc} {spd}")
    print("float64 is the setting to read for oracle comparisons; float32 is the training default.")


def vmapped(quick: bool, peak: dict[str, float], T=30, K=10, lam=0.1, dtype=jnp.float64):
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
        med = _time(fn, (params, x, y, hp), inner=3 if quick else 10, repeats=3 if quick else 5)
        gf = n * flops(T, K) / med / 1e9
        print(f"  N={n:3d}: {n / med:8.1f} config-it/s  ({med * 1e3:8.2f} ms per vmapped step, "
              f"{gf:5.1f} GFLOP/s, {100 * gf / peak[jnp.dtype(dtype).name]:4.1f}% of peak)")


def published_seconds(directory: str, python: str, iters: int, threads: int) -> dict:
    """Seconds per iteration of the published ``SRNN.train`` loop, timed in a subprocess."""
    s = SIDE_BY_SIDE
    cmd = [python, str(HERE / "_published_lra.py"), directory, "--length", str(s["length"]),
           "--inner-steps", str(s["inner_steps"]), "--reg-lambda", str(s["reg_lambda"]),
           "--target-step", str(s["target_step"]), "--c", str(s["c"]), "--lr", str(s["lr"]),
           "--local-loss", "MSE", "--hidden", str(M), "--batch", str(B),
           "--threads", str(threads), "--iters", str(iters)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise SystemExit(f"error: --published-code: the published loop failed: {tail}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def localrnn_seconds(variant: str, iters: int) -> float:
    """Seconds per iteration of localrnn's compiled training chunk (batch generation, rule step,
    SGD apply; what ``train`` runs between validations) at the side-by-side settings: median
    over repeats of one ``iters``-iteration chunk, after compilation, divided by ``iters``."""
    s = SIDE_BY_SIDE
    cfg = TrainConfig(task="temporal_order", length=s["length"], rule="lra", lr=s["lr"],
                      rule_options={"inner_steps": s["inner_steps"], "variant": variant,
                                    "local_loss": "mse"},
                      hparams={"reg_lambda": s["reg_lambda"], "target_step": s["target_step"],
                               "c0": s["c"], "c1": s["c"]},
                      hidden=M, batch=B, val_every=iters, dtype="float32")
    prog = compile_program(cfg)
    hp, state = stacked_hparams([cfg]), prog.init(jnp.asarray([cfg.seed]))
    limit = jnp.asarray([10**9])

    def chunk():
        out, _, _ = prog.chunk(state, hp, limit)
        if bool(out.diverged[0]):
            raise SystemExit(f"error: localrnn's {variant} run diverged; try another target step")
        jax.block_until_ready(out.params)

    return median_time(chunk, repeats=5) / iters


def side_by_side(directory: str, python: str, iters: int, threads: int):
    s = SIDE_BY_SIDE
    print(f"\nside by side, one run: temporal order T={s['length']}, K={s['inner_steps']}, "
          f"lambda={s['reg_lambda']}, gamma={s['target_step']}, c0=c1={s['c']}, MSE local loss, "
          f"B={B}, m={M}, SGD lr {s['lr']}, float32")
    pub = published_seconds(directory, python, iters, threads)
    print(f"  published SRNN.train (torch {pub['torch']}, {pub['threads']} threads, "
          f"{pub['iterations']} iterations): {pub['seconds_per_iteration']:.4f} s/iter")
    for variant in ("reference", "fixed_target"):
        own = localrnn_seconds(variant, iters)
        same = "the published computation" if variant == "reference" else "Algorithm 1, fixed target"
        print(f"  localrnn training chunk, variant {variant} ({same}; XLA_FLAGS as above): "
              f"{own:.4f} s/iter, {pub['seconds_per_iteration'] / own:.1f}x the published loop's speed")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats, no oracle")
    ap.add_argument("--published-code", metavar="DIR",
                    help="checkout of nmanchev/lra-rnn: time its SRNN.train beside localrnn")
    ap.add_argument("--published-python", metavar="PY", default=sys.executable,
                    help="interpreter with torch that runs the published code (default: this one)")
    ap.add_argument("--published-threads", type=int, default=2, help="torch threads (default 2)")
    ap.add_argument("--iters", type=int, default=100,
                    help="timed training iterations per side in the side-by-side run (default 100)")
    args = ap.parse_args()
    if args.published_code and not (Path(args.published_code) / "lra2_reg.py").is_file():
        raise SystemExit(f"error: --published-code: no lra2_reg.py in {args.published_code}")
    if args.iters < 1:
        raise SystemExit(f"error: --iters: must be >= 1, got {args.iters}")
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, XLA_FLAGS={os.environ.get('XLA_FLAGS')}")
    peak = {}
    for dtype in ("float32", "float64"):
        peak[dtype], note = measured_matmul_peak(dtype)
        peak[dtype] /= 1e9
        print(f"peak {dtype}: {note}")
    per_iteration(args.quick, peak)
    vmapped(args.quick, peak)
    if args.published_code:
        side_by_side(args.published_code, args.published_python, args.iters, args.published_threads)


if __name__ == "__main__":
    main()
