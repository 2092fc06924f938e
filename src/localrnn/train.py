"""The compiled training loop (SPEC section 4).

Configs that share structure (see :meth:`TrainConfig.structure_key`) train as
one ``jax.vmap``-ed program: each has its own parameters, optimizer state, data
stream (its seed) and hyper-parameters. Iterations run in compiled chunks of
``val_every`` steps (``lax.scan``); after each chunk every config is validated
on the fixed 10,000-sample set and the host decides, per config, whether it
stops (solved, max iterations, patience, diverged). A stopped config is frozen
(its state no longer changes) while the others go on, so each config's result
is the one it would get trained alone.

One iteration:  batch <- task(key);  grads <- rule.step;  clip;  optimizer;
if the loss or the new parameters are not finite the config is *diverged*.
"""

from __future__ import annotations

import time
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from localrnn import checkpoint as ckpt
from localrnn.config import TrainConfig
from localrnn.losses import global_loss
from localrnn.model import Params, forward, init_params
from localrnn.results import RunResult
from localrnn.rules import Rule, get_rule
from localrnn.tasks import VALIDATION_CHUNK, Task, get_task, validation_batch

__all__ = ["TrainState", "RunResult", "train", "train_one", "make_optimizer", "evaluate_params"]

#: a run is solved when the validation error rate is below this (SPEC 4)
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
    """Rescale to ``threshold`` when the global norm exceeds it (Pascanu et al.); inf = off."""
    norm = optax.tree.norm(grads)
    scale = jnp.where(norm > threshold, threshold / jnp.where(norm > 0, norm, 1.0), 1.0)
    return jax.tree.map(lambda g: g * scale.astype(g.dtype), grads)


def _all_finite(tree) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(a)) for a in jax.tree.leaves(tree)]))


# -- programs --------------------------------------------------------------------
class _Program(NamedTuple):
    init: Callable  # (seed) -> TrainState
    chunk: Callable  # (states, hp, limit) -> (states, mean_losses)
    evaluate: Callable  # (params, rule_state) -> (errors, loss, metrics)
    rule: Rule


def _validation_h_init(params: Params, x: jax.Array, mode: str):
    """State fed before step 0 at validation: none (SPEC 1) or ``x_0 Wxh + bh`` (SPEC 7(f))."""
    return None if mode == "zero" else x[0] @ params.Wxh + params.bh


def evaluate_params(params: Params, task: Task, length: int, val_size: int, val_seed: int,
                    dtype, initial_state: str = "zero") -> tuple[jax.Array, jax.Array]:
    """Integer error count and mean global loss on the fixed validation set (traceable)."""
    loss_fn = global_loss(task.loss)
    n_chunks = -(-val_size // VALIDATION_CHUNK)

    def chunk(i):
        x, y = validation_batch(task, length, val_seed, i, dtype)
        out = forward(params, x, _validation_h_init(params, x, initial_state))
        valid = (i * VALIDATION_CHUNK + jnp.arange(VALIDATION_CHUNK)) < val_size
        wrong = jnp.sum(valid & ~task.correct(out, y))
        per_sample = jax.vmap(lambda o, t: loss_fn(o[None], t[None]))(out, y)
        return wrong, jnp.sum(jnp.where(valid, per_sample, 0.0))

    wrong, loss = jax.lax.map(chunk, jnp.arange(n_chunks))
    return jnp.sum(wrong), jnp.sum(loss) / val_size


_PROGRAMS: dict[str, _Program] = {}


def _program(cfg: TrainConfig) -> _Program:
    """Compiled programs are shared by every group of the same structure (compile once)."""
    key = cfg.structure_key()
    if key not in _PROGRAMS:
        _PROGRAMS[key] = _build_program(cfg)
    return _PROGRAMS[key]


def _build_program(cfg: TrainConfig) -> _Program:
    task = get_task(cfg.task)
    dtype = jnp.dtype(cfg.dtype)
    rule = get_rule(cfg.rule).build(cfg.resolved_options, task.loss, False)
    opt = make_optimizer(cfg.optimizer, cfg.momentum)

    def init(seed):
        k_init, k_data, k_rule = jax.random.split(jax.random.PRNGKey(seed), 3)
        params = init_params(k_init, task.n_in, cfg.hidden, task.n_out, dtype)
        return TrainState(params, opt.init(params), rule.init(k_rule, params), k_data,
                          jnp.zeros((), jnp.int64), jnp.zeros((), bool))

    def one_iteration(state: TrainState, hp: dict, limit):
        key, k_batch = jax.random.split(state.key)
        batch = task.sample(k_batch, cfg.length, cfg.batch, dtype)
        rule_hp = {k: v for k, v in hp.items() if k not in ("lr", "clip")}
        grads, rule_state, record = rule.step(state.params, state.rule_state, batch, rule_hp)
        grads = _clip_by_norm(grads, hp["clip"])
        direction, opt_state = opt.update(grads, state.opt_state, state.params)
        params = jax.tree.map(lambda p, d: p - hp["lr"] * d, state.params, direction)
        loss = record["loss"]
        ok = jnp.isfinite(loss) & _all_finite(params)
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
        return new, jnp.where(live, loss, jnp.nan)

    def chunk(state, hp, limit):
        state, losses = jax.lax.scan(lambda s, _: one_iteration(s, hp, limit), state, None,
                                     length=cfg.val_every)
        return state, jnp.nanmean(losses)

    def evaluate(params, rule_state):
        errors, loss = evaluate_params(params, task, cfg.length, cfg.val_size, cfg.val_seed, dtype,
                                       rule.validation_initial_state)
        metrics = rule.metrics(params, rule_state) if rule.metrics else {}
        return errors, loss, metrics

    return _Program(
        init=jax.jit(jax.vmap(init)),
        chunk=jax.jit(jax.vmap(chunk)),
        evaluate=jax.jit(jax.vmap(evaluate)),
        rule=rule,
    )


def _hparams_array(configs: Sequence[TrainConfig], dtype) -> dict[str, jax.Array]:
    """Per-config traced values, stacked along the config axis."""
    names = list(configs[0].resolved_hparams)
    hp = {n: [c.resolved_hparams[n] for c in configs] for n in names}
    hp["lr"] = [c.lr for c in configs]
    hp["clip"] = [np.inf if c.clip is None else c.clip for c in configs]
    return {k: jnp.asarray(v, dtype) for k, v in hp.items()}


# -- host loop --------------------------------------------------------------------
ProgressFn = Callable[[list[RunResult]], None]


def _train_group(configs: list[TrainConfig], checkpoint: str | None, resume: bool,
                 progress: ProgressFn | None, stop_after: int | None,
                 initial_params: list[Params] | None = None) -> list[RunResult]:
    cfg0 = configs[0]
    dtype = jnp.dtype(cfg0.dtype)
    prog = _program(cfg0)
    hp = _hparams_array(configs, dtype)
    results = [RunResult(c) for c in configs]
    state = prog.init(jnp.asarray([c.seed for c in configs]))
    if initial_params is not None:
        stacked = jax.tree.map(lambda *a: jnp.stack([jnp.asarray(x, dtype) for x in a]), *initial_params)
        shapes = [a.shape for a in jax.tree.leaves(state.params)]
        if [a.shape for a in jax.tree.leaves(stacked)] != shapes:
            raise ValueError("initial_params: shapes do not match the configs' network sizes")
        state = state._replace(params=stacked)
    elapsed = [0.0] * len(configs)
    if resume and checkpoint and ckpt.exists(checkpoint):
        state, results, elapsed = ckpt.load(checkpoint, state, configs)
        for r in results:
            if r.status == "interrupted":
                r.status = "running"
    t_start = time.perf_counter()

    def limits():
        """Per-config iteration limit of the next chunk: 0 freezes a stopped config."""
        return jnp.asarray([r.config.max_iters if r.status == "running" else 0 for r in results])

    def save():
        if checkpoint:
            now = time.perf_counter() - t_start
            ckpt.save(checkpoint, state, results, [e + now for e in elapsed])

    try:
        while any(r.status == "running" for r in results):
            new_state, mean_loss = prog.chunk(state, hp, limits())
            errors, val_loss, metrics = prog.evaluate(new_state.params, new_state.rule_state)
            errors, val_loss, mean_loss = (np.asarray(a) for a in (errors, val_loss, mean_loss))
            metrics = {k: np.asarray(v) for k, v in metrics.items()}
            iters, diverged = np.asarray(new_state.iteration), np.asarray(new_state.diverged)
            state = new_state
            now = time.perf_counter() - t_start
            for i, r in enumerate(results):
                if r.status != "running":
                    continue
                _update_result(r, int(iters[i]), bool(diverged[i]), int(errors[i]),
                               float(val_loss[i]), float(mean_loss[i]),
                               {k: float(v[i]) for k, v in metrics.items()}, prog.rule.metric_limits)
                r.seconds = elapsed[i] + now
            if stop_after is not None and int(iters.max()) >= stop_after:
                for r in results:
                    if r.status == "running":
                        r.status = "interrupted"
            save()
            if progress:
                progress(results)
    except KeyboardInterrupt:
        for r in results:
            if r.status == "running":
                r.status = "interrupted"
        save()
        raise
    params = jax.tree.map(np.asarray, state.params)
    for i, r in enumerate(results):
        r.params = jax.tree.map(lambda a: a[i], params)
    return results


def _update_result(r: RunResult, iteration: int, diverged: bool, errors: int,
                   val_loss: float, train_loss: float, metrics: dict[str, float],
                   limits: dict[str, float]) -> None:
    """Apply the stopping rules of SPEC 4 (and the rule's metric limits) after a validation."""
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


def train(configs: TrainConfig | Sequence[TrainConfig], *, checkpoint: str | None = None,
          resume: bool = False, progress: ProgressFn | None = None,
          stop_after: int | None = None,
          initial_params: Sequence[Params] | None = None) -> list[RunResult]:
    """Train configs, vmapping those that share structure; results in input order.

    ``initial_params``: one Params per config to start from instead of the seeded
    initialization (warm start, e.g. the curriculum); optimizer and rule state start fresh.
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
    out: list[RunResult | None] = [None] * len(configs)
    if initial_params is not None and len(initial_params) != len(configs):
        raise ValueError(f"initial_params: need one per config ({len(configs)}), got {len(initial_params)}")
    for idx in groups.values():
        init = None if initial_params is None else [initial_params[i] for i in idx]
        for i, r in zip(idx, _train_group([configs[i] for i in idx], checkpoint, resume,
                                          progress, stop_after, init)):
            out[i] = r
    return out  # type: ignore[return-value]


def train_one(config: TrainConfig, **kwargs) -> RunResult:
    """Train one config (see :func:`train`)."""
    return train([config], **kwargs)[0]
