"""The compiled training loop (docs/protocols.md).

Configs that share structure (see :meth:`TrainConfig.structure_key`) train as
one ``jax.vmap``-ed program: each has its own parameters, optimizer state, data
stream (its seed) and hyper-parameters. Iterations run in compiled chunks of
``val_every`` steps (``lax.scan``); after each chunk every config is validated
on the fixed validation set and the host decides, per config, whether it
stops (solved, max iterations, patience, diverged). A stopped config is frozen
(its state no longer changes) while the others go on, so each config's result
is the one it would get trained alone; once at most half of the program's configs
still run, it goes on with those only (compaction, down to two configs), so a group
costs about the sum of its members' iterations.

One iteration (:func:`_iteration`, the only place it is written)::

    batch <- task(key);  grads <- rule.step;  clip;  optimizer;  p <- p - lr * direction

and if the loss or the new parameters are not finite the config is *diverged* (frozen at
its last finite state). With ``record_every`` the chunk also keeps the rule's per-layer
record (rule built with ``record=True``) every ``record_every`` iterations: the gradient-flow
diagnostics of docs/protocols.md are a mode of this loop, not a second one. With ``smoothness``
(:class:`~localrnn.analysis.smoothness.SmoothnessRecording`, opt-in) that record also holds E on a
fixed set before and after the recorded update and, optionally, the top Hessian eigenvalue there
(docs/analysis.md); without it the programs are exactly those without the option.
"""

from __future__ import annotations

import functools
import time
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from localrnn import checkpoint as ckpt
from localrnn.analysis.smoothness import SmoothnessRecording, smoothness_record
from localrnn.cells import SRNN, Cell
from localrnn.config import TrainConfig
from localrnn.losses import global_loss
from localrnn.model import Params, forward, init_params
from localrnn.results import RunResult
from localrnn.rules import Rule, get_rule
from localrnn.tasks import VALIDATION_CHUNK, Task, get_task, validation_batch, validation_set

__all__ = ["TrainState", "RunResult", "Program", "train", "train_one", "make_optimizer", "evaluate_params",
           "initial_params", "compile_program", "stacked_hparams", "SOLVED_ERROR_RATE"]

#: a run is solved when the validation error rate is below this (zero errors out of 10,000)
SOLVED_ERROR_RATE = 1e-4


class TrainState(NamedTuple):
    """Everything one config carries between iterations (a pytree)."""

    params: Params
    opt_state: Any
    rule_state: Any
    key: jax.Array
    iteration: jax.Array  # int: iterations done
    diverged: jax.Array  # bool


# -- optimizer -----------------------------------------------------------------
def make_optimizer(name: str, momentum: float = 0.9) -> optax.GradientTransformation:
    """The direction part of an optax optimizer; the loop scales by ``-lr`` itself so that
    the learning rate is a traced per-config value of the right dtype.

    sgd: ``-lr g``;  nesterov: optax.sgd(nesterov=True);  adam: optax.adam.
    """
    if name == "sgd":
        return optax.identity()
    if name == "nesterov":
        return optax.trace(decay=momentum, nesterov=True)
    if name == "adam":
        return optax.scale_by_adam()
    raise ValueError(f"optimizer: unknown {name!r}; allowed: sgd, nesterov, adam")


def _clip_by_norm(grads: Params, threshold: jax.Array) -> Params:
    """Rescale to ``threshold`` when the global norm exceeds it (Pascanu, Mikolov & Bengio 2013);
    inf = off."""
    norm = optax.tree.norm(grads)
    scale = jnp.where(norm > threshold, threshold / jnp.where(norm > 0, norm, 1.0), 1.0)
    return jax.tree.map(lambda g: g * scale.astype(g.dtype), grads)


def _all_finite(tree) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(a)) for a in jax.tree.leaves(tree)]))


# -- initialization --------------------------------------------------------------
def _seeded_keys(seed) -> jax.Array:
    """``(k_init, k_data, k_rule)`` of a config's seed: parameters, data stream, rule state."""
    return jax.random.split(jax.random.PRNGKey(seed), 3)


def _seeded_params(k_init: jax.Array, task: Task, cfg: TrainConfig) -> Params:
    return init_params(k_init, task.n_in, cfg.hidden, task.n_out, jnp.dtype(cfg.dtype), cfg.model_cell)


def initial_params(config: TrainConfig) -> Params:
    """The seeded initialization of ``config``'s network: what :func:`train` starts from
    (orthogonal weights, zero biases; docs/network.md), as its cell's parameters."""
    return _seeded_params(_seeded_keys(config.seed)[0], get_task(config.task), config)


# -- validation -------------------------------------------------------------------
def _validation_h_init(params: Params, x: jax.Array, mode: str):
    """State fed before step 0 at validation: none (``"zero"``, docs/network.md) or, as the
    published LRA code does (``"reference"``, docs/lra.md), the raw pre-activation
    ``z_{-1} = x_0 Wxh + bh`` (no tanh), so that ``h_0 = (x_0 Wxh + bh) Whh + x_0 Wxh + bh``."""
    return None if mode == "zero" else x[0] @ params.Wxh + params.bh


def evaluate_params(params: Params, task: Task, length: int, val_size: int, val_seed: int,
                    dtype, initial_state: str = "zero", cell: Cell = SRNN,
                    draw: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """Integer error count and mean global loss on the fixed validation set, or on fresh draw
    ``draw`` of it (traceable)."""
    loss_fn = global_loss(task.loss)
    n_chunks = -(-val_size // VALIDATION_CHUNK)

    def chunk(i):
        x, y = validation_batch(task, length, val_seed, i, dtype, draw)
        out = forward(params, x, _validation_h_init(params, x, initial_state), cell)
        valid = (i * VALIDATION_CHUNK + jnp.arange(VALIDATION_CHUNK)) < val_size
        wrong = jnp.sum(valid & ~task.correct(out, y))
        per_sample = jax.vmap(lambda o, t: loss_fn(o[None], t[None]))(out, y)
        return wrong, jnp.sum(jnp.where(valid, per_sample, 0.0))

    wrong, loss = jax.lax.map(chunk, jnp.arange(n_chunks))
    return jnp.sum(wrong), jnp.sum(loss) / val_size


# -- programs --------------------------------------------------------------------
class Program(NamedTuple):
    """A compiled, vmapped training program for configs of one structure (leading axis: config).

    ``init(seeds) -> TrainState``; ``chunk(states, hp, limits) -> (states, mean_losses, records)``
    runs ``val_every`` iterations (``records`` is ``{}`` unless ``record_every``); ``evaluate(params,
    rule_state, iteration) -> (errors, val_loss, metrics)`` (``iteration`` keys a fresh validation
    set); ``hp`` from :func:`stacked_hparams`; ``limits``:
    per-config iteration limit (0 freezes a config).
    """

    init: Callable
    chunk: Callable
    evaluate: Callable
    rule: Rule
    record_every: int | None = None


_PROGRAMS: dict[tuple, Program] = {}


def compile_program(config: TrainConfig, record_every: int | None = None, rule: Rule | None = None,
                    smoothness: SmoothnessRecording | None = None) -> Program:
    """The program of ``config``'s structure, built once and shared by every config of that
    structure (compiled on first call); ``record_every``: keep per-layer records (see :func:`train`);
    ``smoothness``: add the smoothness measures to them. ``rule``: a built rule to use instead of the
    registered one (tests); such a program is not cached.
    """
    if rule is not None:
        return _build_program(config, record_every, rule, smoothness)
    key = (config.structure_key(), record_every) + ((smoothness,) if smoothness else ())
    if key not in _PROGRAMS:
        _PROGRAMS[key] = _build_program(config, record_every, smoothness=smoothness)
    return _PROGRAMS[key]


def _smoothness_measure(task: Task, cfg: TrainConfig, opts: SmoothnessRecording) -> Callable:
    """``(before, after) -> record``: :func:`smoothness_record` with E the global loss, in float64,
    on the first ``opts.samples`` samples of the config's validation set, no state before step 0."""
    loss, cell = global_loss(task.loss), cfg.model_cell

    def measure(before, after):
        x, y = validation_set(task, cfg.length, opts.samples, cfg.val_seed, jnp.float64)
        return smoothness_record(lambda q: loss(forward(q, x, cell=cell), y), before, after, opts)

    return measure


def _iteration(task: Task, rule: Rule, opt: optax.GradientTransformation, cfg: TrainConfig,
               with_record: bool, measure: Callable | None = None) -> Callable:
    """One training iteration ``(state, hp, limit) -> (state, loss[, record])`` for one config.

    A config is live while ``iteration < limit`` and not diverged; a non-finite loss or
    parameter marks it diverged and keeps its last finite state; a frozen config's loss is NaN.
    ``measure(before, after)``: more record entries from the parameters before and after this
    iteration's update (the update as taken, before the divergence guard).
    """
    dtype = jnp.dtype(cfg.dtype)

    def one_iteration(state: TrainState, hp: Mapping[str, jax.Array], limit):
        key, k_batch = jax.random.split(state.key)
        batch = task.sample(k_batch, cfg.length, cfg.batch, dtype)
        rule_hp = {k: v for k, v in hp.items() if k not in ("lr", "clip")}
        grads, rule_state, record = rule.step(state.params, state.rule_state, batch, rule_hp)
        grads = _clip_by_norm(grads, hp["clip"])
        direction, opt_state = opt.update(grads, state.opt_state, state.params)
        params = jax.tree.map(lambda p, d: p - hp["lr"] * d, state.params, direction)
        ok = jnp.isfinite(record["loss"]) & _all_finite(params)
        live = (state.iteration < limit) & ~state.diverged
        commit = live & ok
        keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(commit, a, b), new, old)  # noqa: E731
        new = TrainState(
            params=keep(params, state.params),
            opt_state=keep(opt_state, state.opt_state),
            rule_state=keep(rule_state, state.rule_state),
            key=jnp.where(live, key, state.key),
            iteration=state.iteration + live.astype(state.iteration.dtype),
            diverged=state.diverged | (live & ~ok),
        )
        loss = jnp.where(live, record["loss"], jnp.nan)
        if not with_record:
            return new, loss
        extra = measure(state.params, params) if measure else {}
        return new, (loss, {**{k: v for k, v in record.items() if k != "loss"}, **extra})

    return one_iteration


def _build_program(cfg: TrainConfig, record_every: int | None, rule: Rule | None = None,
                   smoothness: SmoothnessRecording | None = None) -> Program:
    task = get_task(cfg.task)
    recording = record_every is not None
    rule = rule or get_rule(cfg.rule).make(cfg.resolved_options, task.loss, recording, cfg.model_cell)
    opt = make_optimizer(cfg.optimizer, cfg.momentum)
    one = _iteration(task, rule, opt, cfg, False)
    measure = _smoothness_measure(task, cfg, smoothness) if smoothness else None
    one_recorded = _iteration(task, rule, opt, cfg, True, measure) if recording else None

    def init(seed):
        k_init, k_data, k_rule = _seeded_keys(seed)
        params = _seeded_params(k_init, task, cfg)
        return TrainState(params, opt.init(params), rule.init(k_rule, params), k_data,
                          jnp.zeros((), jnp.int64), jnp.zeros((), bool))

    def iterate(state, hp, limit, n):
        return jax.lax.scan(lambda s, _: one(s, hp, limit), state, None, length=n)

    def recorded_block(state, hp, limit):
        """``record_every`` iterations; the rule's record of the last one (only that one computes
        it), the block's mean global loss, the iteration count after it and whether the config was
        live at its start."""
        live = (state.iteration < limit) & ~state.diverged
        state, losses = iterate(state, hp, limit, record_every - 1)
        state, (last, rec) = one_recorded(state, hp, limit)
        losses = jnp.concatenate([losses, last[None]])
        record = {**rec, "global_loss": jnp.mean(losses)}
        return state, (losses, {"record": record, "iteration": state.iteration, "live": live})

    def chunk(state, hp, limit):
        if not recording:
            state, losses = iterate(state, hp, limit, cfg.val_every)
            return state, jnp.nanmean(losses), {}
        state, (losses, records) = jax.lax.scan(lambda s, _: recorded_block(s, hp, limit), state, None,
                                                length=cfg.val_every // record_every)
        return state, jnp.nanmean(losses), records

    validate = _validation_program(cfg.task, cfg.length, cfg.val_size, cfg.val_seed, cfg.dtype,
                                   rule.validation_initial_state, cfg.model_cell, cfg.validation == "fresh")
    metrics = jax.jit(jax.vmap(rule.metrics)) if rule.metrics else None

    def evaluate(params, rule_state, iteration):
        errors, loss = validate(params, iteration)
        return errors, loss, (metrics(params, rule_state) if metrics else {})

    return Program(init=jax.jit(jax.vmap(init)), chunk=jax.jit(jax.vmap(chunk)),
                   evaluate=evaluate, rule=rule, record_every=record_every)


@functools.lru_cache(maxsize=None)
def _validation_program(task: str, length: int, val_size: int, val_seed: int, dtype: str,
                        initial_state: str, cell: Cell = SRNN, fresh: bool = False) -> Callable:
    """``(params, iteration) (vmapped) -> (errors, loss)``: on the fixed set, or (``fresh``) on a
    set drawn anew for each validation, keyed by the iteration it follows. Validation reads none
    of the rule's or the optimizer's settings, so every structure that validates alike shares one
    compiled program."""
    t = get_task(task)

    def one(p, iteration):
        return evaluate_params(p, t, length, val_size, val_seed, jnp.dtype(dtype), initial_state, cell,
                               iteration if fresh else None)
    return jax.jit(jax.vmap(one))


def stacked_hparams(configs: Sequence[TrainConfig]) -> dict[str, jax.Array]:
    """Per-config traced values (the rule's hyper-parameters, ``lr``, ``clip``; inf = no
    clipping), stacked along the config axis, in the configs' dtype."""
    dtype = jnp.dtype(configs[0].dtype)
    names = list(configs[0].resolved_hparams)
    hp = {n: [c.resolved_hparams[n] for c in configs] for n in names}
    hp["lr"] = [c.lr for c in configs]
    hp["clip"] = [np.inf if c.clip is None else c.clip for c in configs]
    return {k: jnp.asarray(v, dtype) for k, v in hp.items()}


def _replace_rows(stacked: Any, rows: Sequence[Any | None], what: str) -> Any:
    """``stacked`` (a pytree with a leading config axis) with row ``i`` replaced by ``rows[i]``
    (a pytree of the same structure, a mapping of its NamedTuple's fields, or its leaves in order)
    where it is not None."""
    leaves, treedef = jax.tree.flatten(stacked)
    for i, row in enumerate(rows):
        if row is None:
            continue
        given = jax.tree.leaves(type(stacked)(**row) if isinstance(row, Mapping) else row)
        if len(given) != len(leaves) or any(np.shape(g) != a.shape[1:] for g, a in zip(given, leaves)):
            raise ValueError(f"{what}: shapes {[np.shape(g) for g in given]} do not match the config's "
                             f"{[a.shape[1:] for a in leaves]}")
        leaves = [a.at[i].set(jnp.asarray(g, a.dtype)) for a, g in zip(leaves, given)]
    return jax.tree.unflatten(treedef, leaves)


def _start_state(prog: Program, configs: list[TrainConfig], params: Sequence[Any] | None,
                 rule_state: Sequence[Any] | None) -> TrainState:
    """The seeded initial state, with given parameters / rule states (warm start) put in."""
    state = prog.init(jnp.asarray([c.seed for c in configs]))
    if params is not None:
        state = state._replace(params=_replace_rows(state.params, params, "initial_params"))
    if rule_state is not None:
        state = state._replace(rule_state=_replace_rows(state.rule_state, rule_state, "initial_rule_state"))
    return state


# -- host loop --------------------------------------------------------------------
ProgressFn = Callable[[list[RunResult]], None]


def _keep_records(results: list[RunResult], records: dict) -> None:
    """Append each config's records of a chunk (blocks where it was live at the block's start)."""
    rec = {k: np.asarray(v) for k, v in records["record"].items()}
    iters, live = np.asarray(records["iteration"]), np.asarray(records["live"])
    for i, r in enumerate(results):
        for b in np.flatnonzero(live[i]):
            r.records.append((int(iters[i, b]), {k: v[i, b] for k, v in rec.items()}))


def _validate_chunk(prog: Program, state: TrainState, mean_loss, results: list[RunResult],
                    elapsed: list[float], seconds: float) -> None:
    """Validate every config after a chunk and apply the stopping rules to the running ones."""
    errors, val_loss, metrics = prog.evaluate(state.params, state.rule_state, state.iteration)
    errors, val_loss, mean_loss = (np.asarray(a) for a in (errors, val_loss, mean_loss))
    metrics = {k: np.asarray(v) for k, v in metrics.items()}
    iters, diverged = np.asarray(state.iteration), np.asarray(state.diverged)
    for i, r in enumerate(results):
        if r.status != "running":
            continue
        _update_result(r, int(iters[i]), bool(diverged[i]), int(errors[i]), float(val_loss[i]),
                       float(mean_loss[i]), {k: float(v[i]) for k, v in metrics.items()},
                       prog.rule.metric_limits)
        r.seconds = elapsed[i] + seconds


def _mark_running(results: list[RunResult], status: str) -> None:
    for r in results:
        if r.status == "running":
            r.status = status


def _rows(tree: Any, idx: np.ndarray) -> Any:
    """The rows ``idx`` of every leaf of a pytree with a leading config axis."""
    return jax.tree.map(lambda a: a[idx], tree)


def _put_rows(full: Any, idx: np.ndarray, part: Any) -> Any:
    """``full`` (host arrays) with rows ``idx`` replaced by ``part``'s rows."""
    def put(f, p):
        f = np.array(f)
        f[idx] = np.asarray(p)
        return f
    return jax.tree.map(put, full, part)


#: a compacted program keeps at least this many configs (a stopped one rides along, frozen), so
#: its batch never collapses to a single config, which XLA may compile to other kernels
MIN_BATCH = 2


def _compact(run: list[RunResult], live: np.ndarray, state: TrainState, full: Any, whole: Callable):
    """``(live, state, full)``, with the program cut down to its running configs (and stopped
    ones up to :data:`MIN_BATCH`) once at most half of it is running; unchanged otherwise."""
    running = [k for k, r in enumerate(run) if r.status == "running"]
    if not running or len(running) > len(live) // 2 or len(live) <= MIN_BATCH:
        return live, state, full
    stopped = [k for k in range(len(run)) if k not in running]
    keep = np.asarray(sorted(running + stopped[:max(0, MIN_BATCH - len(running))]))
    full = jax.tree.map(np.asarray, whole())
    live = live[keep]
    return live, _rows(full, live), full


def _train_group(configs: list[TrainConfig], checkpoint: str | None, resume: bool,
                 progress: ProgressFn | None, stop_after: int | None, record_every: int | None,
                 params0: Sequence[Any] | None, rule_state0: Sequence[Any] | None,
                 rule: Rule | None, smoothness: SmoothnessRecording | None = None) -> list[RunResult]:
    """Train ``configs`` as one vmapped program until every one has stopped.

    Compaction: once at most half of the configs still in the program are running, the program
    goes on with the running ones only (a smaller batch; the stopped ones' final states are kept
    aside), so a group costs about the sum of its members' iterations rather than its slowest
    member's times its size. Each config's computation does not depend on the others', so its
    result is the same either way (``tests/test_train.py``).
    """
    prog = compile_program(configs[0], record_every, rule, smoothness)
    hp = stacked_hparams(configs)
    results = [RunResult(c) for c in configs]
    state = _start_state(prog, configs, params0, rule_state0)
    elapsed = [0.0] * len(configs)
    if resume and checkpoint and ckpt.exists(checkpoint):
        state, results, elapsed = ckpt.load(checkpoint, state, configs)
        for r in results:
            if r.status == "interrupted":
                r.status = "running"
    t_start = time.perf_counter()
    live = np.arange(len(configs))  # the configs (indices) still in the program, in order
    full = None  # every config's state on the host, once the program holds only some of them
    if resume and checkpoint and ckpt.exists(checkpoint) and ckpt.load_live(checkpoint) is not None:
        full = jax.tree.map(np.asarray, state)
        live = np.asarray(ckpt.load_live(checkpoint))
        state = _rows(full, live)

    def whole() -> TrainState:
        return state if full is None else _put_rows(full, live, state)

    def save():
        if checkpoint:
            now = time.perf_counter() - t_start
            ckpt.save(checkpoint, whole(), results, [e + now for e in elapsed],
                      None if full is None else live)

    try:
        while any(r.status == "running" for r in results):
            run = [results[i] for i in live]
            limits = jnp.asarray([r.config.max_iters if r.status == "running" else 0 for r in run])
            state, mean_loss, records = prog.chunk(state, _rows(hp, live), limits)
            if records:
                _keep_records(run, records)
            _validate_chunk(prog, state, mean_loss, run, [elapsed[i] for i in live],
                            time.perf_counter() - t_start)
            if stop_after is not None and int(np.max(np.asarray(state.iteration))) >= stop_after:
                _mark_running(results, "interrupted")
            save()
            if progress:
                progress(results)
            live, state, full = _compact(run, live, state, full, whole)
    except KeyboardInterrupt:
        _mark_running(results, "interrupted")
        save()
        raise
    params, rule_state = (jax.tree.map(np.asarray, t) for t in (whole().params, whole().rule_state))
    for i, r in enumerate(results):
        r.params = jax.tree.map(lambda a: a[i], params)
        r.rule_state = jax.tree.map(lambda a: a[i], rule_state)
    return results


def _update_result(r: RunResult, iteration: int, diverged: bool, errors: int,
                   val_loss: float, train_loss: float, metrics: dict[str, float],
                   limits: Mapping[str, float]) -> None:
    """Apply the stopping rules (docs/protocols.md) and the rule's metric limits after a validation.

    A validation that finds the config diverged (non-finite loss or parameters, or a metric over
    its limit) ends it as ``diverged`` without counting toward its best: ``best_accuracy`` and
    ``best_iteration`` stay those it reached before diverging (as the published code reports them).
    """
    cfg = r.config
    accuracy = 1.0 - errors / cfg.val_size
    r.iterations = iteration
    r.history.append({"iteration": iteration, "train_loss": train_loss, "val_loss": val_loss,
                      "val_accuracy": accuracy, "val_errors": errors, **metrics})
    over = [f"{k} {metrics[k]:.3g} > {v:g}" for k, v in limits.items() if metrics.get(k, 0) > v]
    if diverged or over:
        r.status = "diverged"
        r.stop_reason = "non-finite loss or parameters" if diverged else "; ".join(over)
        return
    if accuracy > r.best_accuracy:
        r.best_accuracy, r.best_iteration, r.stale = accuracy, iteration, 0
    else:
        r.stale += 1
    if errors < SOLVED_ERROR_RATE * cfg.val_size:  # zero errors out of 10,000 (integers)
        r.status, r.stop_reason = "solved", "zero validation errors"
    elif iteration >= cfg.max_iters:
        r.status, r.stop_reason = "failed", "max_iters reached"
    elif cfg.patience and r.stale >= cfg.patience:
        r.status, r.stop_reason = "failed", f"no new best in {cfg.patience} validations"


def _per_config(values: Sequence[Any] | None, n: int, what: str) -> None:
    if values is not None and len(values) != n:
        raise ValueError(f"{what}: need one per config ({n}), got {len(values)}")


def _check_smoothness(opts: SmoothnessRecording, record_every: int | None, configs: list[TrainConfig]) -> None:
    """A smoothness recording needs the recording mode and a fixed set inside every validation set."""
    if record_every is None:
        raise ValueError("smoothness: is recorded in recording mode only; give record_every too")
    small = [c.val_size for c in configs if c.val_size < opts.samples]
    if small:
        raise ValueError(f"smoothness.samples: the first {opts.samples} validation samples are measured, but a "
                         f"config's val_size is {small[0]}; allowed: 1 .. {min(small)}")


def train(configs: TrainConfig | Sequence[TrainConfig], *, checkpoint: str | None = None,
          resume: bool = False, progress: ProgressFn | None = None,
          stop_after: int | None = None, record_every: int | None = None,
          initial_params: Sequence[Params | Mapping | None] | None = None,
          initial_rule_state: Sequence[Any | None] | None = None,
          rule: Rule | None = None, smoothness: SmoothnessRecording | None = None) -> list[RunResult]:
    """Train configs, vmapping those that share structure; results in input order.

    ``initial_params`` / ``initial_rule_state``: per config, the parameters (``Params`` or a
    mapping of its fields) and the rule's own state (the pytree ``rule.init`` makes, e.g. TPTT's
    inverse and its optimizer state, or its leaves in order) to start from instead of the
    seeded ones (warm start, e.g. the curriculum); None entries start seeded. The training
    loop's optimizer state always starts fresh. Each result carries its final ``params`` and
    ``rule_state``.
    ``record_every``: keep, every ``record_every`` iterations, the rule's per-layer record of the
    last iteration and the mean global loss since the previous record, as ``(iteration, {name:
    array})`` in ``RunResult.records`` (``val_every`` must be a multiple of it; no checkpoint).
    ``smoothness``: with ``record_every``, each record also holds the smoothness measures of its
    update (:class:`~localrnn.analysis.smoothness.SmoothnessRecording`; ``samples`` at most each
    config's ``val_size``).
    ``rule``: a built rule to train with instead of the configs' registered one (tests).
    ``checkpoint``: a file written after every validation (atomically) holding the
    whole state; with ``resume=True`` training continues from it and ends exactly
    as an uninterrupted run would. ``stop_after``: stop (status ``interrupted``)
    once this many iterations are done, as if killed there; resume later.
    A checkpoint holds one structure group, so it needs configs of one structure.
    """
    configs = [configs] if isinstance(configs, TrainConfig) else list(configs)
    if not configs:
        return []
    groups: dict[str, list[int]] = {}
    for i, c in enumerate(configs):
        groups.setdefault(c.structure_key(), []).append(i)
    if checkpoint and len(groups) > 1:
        raise ValueError("checkpoint: one checkpoint file holds configs of one structure; "
                         f"got {len(groups)} structure groups")
    if record_every is not None:
        if checkpoint:
            raise ValueError("record_every: records are not checkpointed; train without a checkpoint")
        bad = [c.val_every for c in configs if record_every < 1 or c.val_every % record_every]
        if bad:
            raise ValueError(f"record_every: must divide val_every ({bad[0]}), got {record_every}")
    if smoothness is not None:
        _check_smoothness(smoothness, record_every, configs)
    _per_config(initial_params, len(configs), "initial_params")
    _per_config(initial_rule_state, len(configs), "initial_rule_state")
    pick = lambda values, idx: None if values is None else [values[i] for i in idx]  # noqa: E731
    out: list[RunResult | None] = [None] * len(configs)
    for idx in groups.values():
        results = _train_group([configs[i] for i in idx], checkpoint, resume, progress, stop_after,
                               record_every, pick(initial_params, idx), pick(initial_rule_state, idx), rule,
                               smoothness)
        for i, r in zip(idx, results):
            out[i] = r
    return out  # type: ignore[return-value]


def train_one(config: TrainConfig, **kwargs) -> RunResult:
    """Train one config (see :func:`train`)."""
    return train([config], **kwargs)[0]
