"""Checkpoints of a training group: the whole :class:`TrainState` pytree of every
config (parameters, optimizer state, rule state, PRNG key, iteration) plus the
host-side record (status, best score, history, time). Written atomically
(temporary file + rename), so a crash leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from localrnn.results import RunResult

__all__ = ["save", "load", "load_live", "exists", "read_params"]

_FORMAT = 1
_RESULT_FIELDS = ("status", "best_accuracy", "best_iteration", "iterations", "stale", "stop_reason",
                  "history")


def exists(path: str) -> bool:
    return os.path.isfile(path)


def save(path: str, state: Any, results: Sequence[Any], elapsed: Sequence[float],
         live: Sequence[int] | None = None) -> None:
    """Write ``state`` (a pytree of arrays) and ``results`` (RunResult) to ``path``; ``live``: the
    configs the program was still training (compaction), so that a resume trains the same batch."""
    leaves = jax.tree.leaves(state)
    meta = {
        "format": _FORMAT,
        "run_ids": [r.config.run_id() for r in results],
        "configs": [r.config.model_dump(mode="json") for r in results],
        "results": [{f: getattr(r, f) for f in _RESULT_FIELDS} for r in results],
        "elapsed": list(elapsed),
    }
    if live is not None:
        meta["live"] = [int(i) for i in live]
    arrays = {f"leaf_{i:04d}": np.asarray(a) for i, a in enumerate(leaves)}
    arrays["meta"] = np.asarray(json.dumps(meta))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load(path: str, template: Any, configs: Sequence[Any]):
    """Restore ``(state, results, elapsed)`` written by :func:`save` for the same ``configs``.

    ``template`` is a freshly initialized state of the same structure; shapes
    and dtypes must match it.
    """
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        if meta.get("format") != _FORMAT:
            raise ValueError(f"checkpoint {path}: unsupported format {meta.get('format')!r}")
        ids = [c.run_id() for c in configs]
        if meta["run_ids"] != ids:
            raise ValueError(f"checkpoint {path} was written for other configs "
                             f"(run ids {meta['run_ids']}, expected {ids})")
        t_leaves, treedef = jax.tree.flatten(template)
        leaves = [data[f"leaf_{i:04d}"] for i in range(len(t_leaves))]
    for i, (a, t) in enumerate(zip(leaves, t_leaves)):
        if a.shape != t.shape or a.dtype != t.dtype:
            raise ValueError(f"checkpoint {path}: leaf {i} is {a.dtype}{a.shape}, expected {t.dtype}{t.shape}")
    state = jax.tree.unflatten(treedef, [jnp.asarray(a) for a in leaves])
    results = []
    for cfg, rec in zip(configs, meta["results"]):
        r = RunResult(cfg)
        for f in _RESULT_FIELDS:
            setattr(r, f, rec[f])
        results.append(r)
    return state, results, meta["elapsed"]


def load_live(path: str) -> list[int] | None:
    """The configs a checkpoint's program was still training (None: all of them)."""
    with np.load(path, allow_pickle=False) as data:
        return json.loads(str(data["meta"])).get("live")


def read_params(path: str) -> tuple[list[dict] | None, list[str], list[dict[str, np.ndarray]]]:
    """``(configs, run_ids, params)`` of every config in a checkpoint, without a template: the
    configs as dicts (None for a checkpoint written before they were kept) and each config's
    parameters ``{field: array}`` (the state's first leaves are its Params, in field order).
    ValueError when ``path`` is not a checkpoint this module wrote."""
    from localrnn.cells import make_cell
    from localrnn.model import params_fields

    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if meta.get("format") != _FORMAT:
                raise ValueError(f"unsupported format {meta.get('format')!r}")
            first = (meta.get("configs") or [{}])[0]  # one group: one cell
            fields = params_fields(make_cell(first.get("cell", "srnn"), first.get("tau", 1.0)))
            leaves = [data[f"leaf_{i:04d}"] for i in range(len(fields))]
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError) as e:
        raise ValueError(f"{path} is not a localrnn checkpoint ({e})") from None
    n = len(meta["run_ids"])
    params = [{f: a[i] for f, a in zip(fields, leaves)} for i in range(n)]
    return meta.get("configs"), meta["run_ids"], params
