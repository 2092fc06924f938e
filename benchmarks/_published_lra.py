"""Time the published LRA code's own training loop (``SRNN.train`` in lra2_reg.py of the
repository nmanchev/lra-rnn) and print one JSON line. Run by bench_lra.py in a subprocess, with
an interpreter that has torch, so that localrnn's environment stays torch-free:

    PYTHON _published_lra.py DIR --length 30 --inner-steps 10 --reg-lambda 0.1 --iters 20

DIR is a checkout of the published repository; nothing of it is copied here: its module is
imported from DIR and called as its own ``run_experiment`` does (orthogonal init, plain SGD,
temporal order task, cross-entropy, MSE local loss). Seconds per iteration: one ``train`` call
of ``--iters`` iterations, minus the one validation (10,000 samples) it runs at its start, timed
separately; validation inside the loop is off (check interval > iterations).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import sys
import time
import types


def _import_published(directory: str):
    """lra2_reg from ``directory``; matplotlib (imported there for plots only) is stubbed."""
    sys.path.insert(0, directory)
    if "matplotlib" not in sys.modules:
        stub = types.ModuleType("matplotlib")
        stub.pyplot = types.ModuleType("matplotlib.pyplot")
        sys.modules.update({"matplotlib": stub, "matplotlib.pyplot": stub.pyplot})
    stdout = sys.stdout
    import lra2_reg  # noqa: PLC0415  (replaces sys.stdout with an unbuffered wrapper)
    import tempOrder  # noqa: PLC0415
    sys.stdout = stdout
    return lra2_reg, tempOrder


def _seconds_per_iteration(lra2_reg, temp_order, args) -> tuple[float, int]:
    """Seconds per iteration of one ``SRNN.train`` call of ``args.iters`` iterations, the one
    validation it runs at its start (timed separately, median of 3) subtracted; and the
    number of iterations it ran."""
    import numpy as np  # noqa: PLC0415
    import torch  # noqa: PLC0415

    torch.manual_seed(args.seed)
    task = temp_order.TempOrderTask(np.random.RandomState(args.seed), "float32")
    model = lra2_reg.SRNN(task, args.length, torch.nn.init.orthogonal_, args.hidden, args.batch,
                          task.classifType, args.target_step, args.inner_steps, args.reg_lambda,
                          args.c, args.local_loss)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.0, nesterov=False)
    validation = []
    for _ in range(3):
        t0 = time.perf_counter()
        model.validate()
        validation.append(time.perf_counter() - t0)
    with contextlib.redirect_stdout(io.StringIO()):
        t0 = time.perf_counter()
        out = model.train(opt, args.iters, args.iters + 1, calc_dWhh_norm=False)
        seconds = time.perf_counter() - t0
    ran = int(out[-1]) - 1
    return (seconds - statistics.median(validation)) / max(ran, 1), ran


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("directory")
    ap.add_argument("--length", type=int, default=30)
    ap.add_argument("--inner-steps", type=int, default=10)
    ap.add_argument("--reg-lambda", type=float, default=0.1)
    ap.add_argument("--target-step", type=float, default=1.0)
    ap.add_argument("--c", type=float, default=1.0)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--local-loss", default="MSE")
    ap.add_argument("--hidden", type=int, default=100)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()

    import torch  # noqa: PLC0415

    torch.set_num_threads(args.threads)
    lra2_reg, temp_order = _import_published(args.directory)
    seconds, ran = _seconds_per_iteration(lra2_reg, temp_order, args)
    if ran != args.iters:
        raise SystemExit(f"error: the published loop stopped after {ran} of {args.iters} iterations "
                         "(a NaN loss ends it): try another --target-step")
    print(json.dumps({"seconds_per_iteration": seconds, "iterations": ran,
                      "torch": torch.__version__, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
