"""SQLite results store (docs/protocols.md).

One file, WAL mode, one writer (the driver process; executors' workers only
return results). Tables:

* ``experiments``: a named experiment (``table1:quick``) with its spec as JSON.
* ``trials``: one training run, keyed by ``trial_id`` (the config's ``run_id()``, i.e.
  the hash of the resolved config and seed; a warm-started run gets a hash that
  also covers its starting point). Status pending | running | solved | failed |
  diverged | interrupted, best accuracy, iterations, wall time, resolved config
  as JSON, and ``completions``: how many times a finished result was written (1).
* ``experiment_trials``: which trials an experiment uses, with their labels
  (arm, grid values), so the same run serves every experiment that needs it.
* ``metrics``: one row per validation of a trial.
* ``records``: per-layer diagnostics (JSON arrays) at chosen iterations.
* ``params``: final state of a trial (npz bytes: the parameters and the rule's own
  state, e.g. TPTT's inverse and its optimizer state), kept where asked for
  (curriculum warm starts).
* ``ladders``: curriculum steps (experiment, ladder, step, length, trial).

A finished trial, its metrics and its parameters are written in one
transaction: a crash leaves either all of it or none.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import time
from contextlib import contextmanager
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

__all__ = ["Store", "COMPLETE", "STATUSES", "MEMORY", "default_store_path"]

STATUSES = ("pending", "running", "solved", "failed", "diverged", "interrupted")
#: a trial with one of these statuses is not run again
COMPLETE = ("solved", "failed", "diverged")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS experiments (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    spec_json TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS trials (
    trial_id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    status TEXT NOT NULL,
    task TEXT NOT NULL,
    rule TEXT NOT NULL,
    length INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    best_accuracy REAL,
    best_iteration INTEGER,
    iterations INTEGER,
    seconds REAL,
    config_json TEXT NOT NULL,
    init_json TEXT,
    structure_key TEXT NOT NULL,
    completions INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS trials_status ON trials(status);
CREATE TABLE IF NOT EXISTS experiment_trials (
    experiment TEXT NOT NULL,
    trial_id TEXT NOT NULL,
    labels_json TEXT NOT NULL,
    PRIMARY KEY (experiment, trial_id)
);
CREATE TABLE IF NOT EXISTS metrics (
    trial_id TEXT NOT NULL,
    iteration INTEGER NOT NULL,
    train_loss REAL, val_loss REAL, val_accuracy REAL, val_errors INTEGER,
    PRIMARY KEY (trial_id, iteration)
);
CREATE TABLE IF NOT EXISTS records (
    trial_id TEXT NOT NULL,
    iteration INTEGER NOT NULL,
    name TEXT NOT NULL,
    values_json TEXT NOT NULL,
    PRIMARY KEY (trial_id, iteration, name)
);
CREATE TABLE IF NOT EXISTS params (
    trial_id TEXT PRIMARY KEY,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS ladders (
    experiment TEXT NOT NULL,
    ladder TEXT NOT NULL,
    step INTEGER NOT NULL,
    length INTEGER NOT NULL,
    trial_id TEXT NOT NULL,
    warm_start INTEGER NOT NULL,
    labels_json TEXT NOT NULL,
    PRIMARY KEY (experiment, ladder, step)
);
"""

#: the path of a store kept in memory
MEMORY = ":memory:"

_RULE_STATE = "rule_state_"


def default_store_path() -> str:
    """``$LOCALRNN_STORE`` or ``localrnn.db`` in the working directory."""
    return os.environ.get("LOCALRNN_STORE") or "localrnn.db"


def _nan_to_none(v: Any) -> Any:
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v


class Store:
    """The results store at ``path`` (created on first write; read-only use creates nothing).

    ``path`` ``":memory:"`` is a store in memory, gone when closed (``export.open_store``
    reads a JSON-lines export into one).
    """

    def __init__(self, path: str, *, create: bool = True) -> None:
        self.path = path
        if path != MEMORY:
            if not create and not os.path.exists(path):
                raise FileNotFoundError(f"no results store at {path}")
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._db = sqlite3.connect(path, timeout=60.0, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- experiments ---------------------------------------------------------------
    def add_experiment(self, name: str, kind: str, spec: dict) -> None:
        now = time.time()
        with self._tx() as db:
            db.execute("INSERT INTO experiments(name, kind, spec_json, created, updated) VALUES (?,?,?,?,?) "
                       "ON CONFLICT(name) DO UPDATE SET spec_json=excluded.spec_json, kind=excluded.kind, "
                       "updated=excluded.updated", (name, kind, json.dumps(spec, sort_keys=True), now, now))

    def experiment(self, name: str) -> dict | None:
        row = self._db.execute("SELECT * FROM experiments WHERE name=?", (name,)).fetchone()
        if row is None:
            return None
        return {"name": row["name"], "kind": row["kind"], "spec": json.loads(row["spec_json"]),
                "created": row["created"], "updated": row["updated"]}

    def experiments(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT name FROM experiments ORDER BY name")]

    # -- trials ---------------------------------------------------------------------
    def register_trials(self, experiment: str, trials: Iterable[tuple[str, Any, dict, dict | None]]) -> None:
        """Add ``(trial_id, TrainConfig, labels, init)`` as pending (existing trials keep their state)."""
        now = time.time()
        with self._tx() as db:
            for trial_id, cfg, labels, init in trials:
                db.execute(
                    "INSERT OR IGNORE INTO trials(trial_id, run_id, status, task, rule, length, seed, "
                    "config_json, init_json, structure_key, created, updated) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (trial_id, cfg.run_id(), "pending", cfg.task, cfg.rule, cfg.length, cfg.seed,
                     json.dumps(cfg.model_dump(mode="json"), sort_keys=True),
                     None if init is None else json.dumps(init, sort_keys=True),
                     cfg.structure_key(), now, now))
                db.execute("INSERT INTO experiment_trials(experiment, trial_id, labels_json) VALUES (?,?,?) "
                           "ON CONFLICT DO UPDATE SET labels_json=excluded.labels_json",
                           (experiment, trial_id, json.dumps(labels, sort_keys=True)))

    def prune_experiment(self, experiment: str, keep: Iterable[str]) -> int:
        """Drop ``experiment``'s memberships of trials not in ``keep`` (its spec changed); the trials
        themselves stay, for other experiments and for a spec that asks for them again. Returns
        how many memberships were dropped."""
        keep = set(keep)
        have = [r[0] for r in self._db.execute("SELECT trial_id FROM experiment_trials WHERE experiment=?",
                                               (experiment,))]
        drop = [t for t in have if t not in keep]
        with self._tx() as db:
            db.executemany("DELETE FROM experiment_trials WHERE experiment=? AND trial_id=?",
                           [(experiment, t) for t in drop])
        return len(drop)

    def set_status(self, trial_ids: Sequence[str], status: str) -> None:
        """Mark not-yet-complete trials (e.g. ``running`` when handed to an executor)."""
        assert status in STATUSES
        now = time.time()
        with self._tx() as db:
            db.executemany(f"UPDATE trials SET status=?, updated=? WHERE trial_id=? "
                           f"AND status NOT IN ({','.join('?' * len(COMPLETE))})",
                           [(status, now, t, *COMPLETE) for t in trial_ids])

    def write_result(self, trial_id: str, result: dict, state: dict | None = None) -> None:
        """Write one trial's outcome (``RunResult.to_dict()``) with its metrics, atomically."""
        self.write_results([(trial_id, result, state)])

    def write_results(self, items: Sequence[tuple[str, dict, dict | None]]) -> None:
        """Write several outcomes in one transaction (a group that finished together).

        Each item is ``(trial_id, result, state)``; ``state`` (or None) is the final
        ``{"params": {field: array}, "rule_state": [leaves]}`` or a bare params mapping.
        A diverged result's ``best_accuracy`` / ``best_iteration`` are stored as they come:
        the best the trial reached before diverging.
        """
        now = time.time()
        with self._tx() as db:
            for trial_id, r, state in items:
                done = r["status"] in COMPLETE
                db.execute(
                    "UPDATE trials SET status=?, best_accuracy=?, best_iteration=?, iterations=?, seconds=?, "
                    "completions=completions+?, updated=? WHERE trial_id=?",
                    (r["status"], r["best_accuracy"], r["best_iteration"], r["iterations"], r["seconds"],
                     int(done), now, trial_id))
                db.execute("DELETE FROM metrics WHERE trial_id=?", (trial_id,))
                db.executemany(
                    "INSERT INTO metrics(trial_id, iteration, train_loss, val_loss, val_accuracy, val_errors) "
                    "VALUES (?,?,?,?,?,?)",
                    [(trial_id, h["iteration"], _nan_to_none(h["train_loss"]), _nan_to_none(h["val_loss"]),
                      h["val_accuracy"], h["val_errors"]) for h in r.get("history", [])])
                if state is not None:
                    db.execute("INSERT OR REPLACE INTO params(trial_id, data) VALUES (?,?)",
                               (trial_id, _state_to_bytes(state)))

    def write_records(self, trial_id: str, records: Sequence[tuple[int, dict[str, Any]]]) -> None:
        """Per-layer diagnostics: ``(iteration, {name: array or scalar})`` rows."""
        with self._tx() as db:
            db.execute("DELETE FROM records WHERE trial_id=?", (trial_id,))
            db.executemany("INSERT INTO records(trial_id, iteration, name, values_json) VALUES (?,?,?,?)",
                           [(trial_id, int(it), name, json.dumps(np.asarray(v, float).tolist()))
                            for it, rec in records for name, v in rec.items()])

    def trial(self, trial_id: str) -> dict | None:
        row = self._db.execute("SELECT * FROM trials WHERE trial_id=?", (trial_id,)).fetchone()
        return None if row is None else _trial_dict(row)

    def trials(self, experiment: str | None = None, **filters: Any) -> list[dict]:
        """Trials (of ``experiment``), filtered by column equality (status, rule, task, length, seed)."""
        where, args = [], []
        if experiment is not None:
            sql = ("SELECT t.*, e.labels_json, e.experiment FROM trials t JOIN experiment_trials e "
                   "ON t.trial_id = e.trial_id")
            where.append("e.experiment = ?")
            args.append(experiment)
        else:
            sql = "SELECT t.* FROM trials t"
        for k, v in filters.items():
            if v is None:
                continue
            if k not in ("status", "rule", "task", "length", "seed", "run_id"):
                raise ValueError(f"unknown filter {k!r}")
            where.append(f"t.{k} = ?")
            args.append(v)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY t.created, t.trial_id"
        return [_trial_dict(r) for r in self._db.execute(sql, args)]

    def complete_ids(self, trial_ids: Iterable[str]) -> set[str]:
        ids = list(trial_ids)
        out: set[str] = set()
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            q = (f"SELECT trial_id FROM trials WHERE trial_id IN ({','.join('?' * len(chunk))}) "
                 f"AND status IN ({','.join('?' * len(COMPLETE))})")
            out.update(r[0] for r in self._db.execute(q, (*chunk, *COMPLETE)))
        return out

    def metrics(self, trial_id: str) -> list[dict]:
        return [dict(r) for r in self._db.execute(
            "SELECT iteration, train_loss, val_loss, val_accuracy, val_errors FROM metrics "
            "WHERE trial_id=? ORDER BY iteration", (trial_id,))]

    def records(self, trial_id: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """``{name: (iterations (N,), values (N, ...))}``."""
        rows = self._db.execute("SELECT iteration, name, values_json FROM records WHERE trial_id=? "
                                "ORDER BY name, iteration", (trial_id,)).fetchall()
        acc: dict[str, tuple[list, list]] = {}
        for r in rows:
            its, vals = acc.setdefault(r["name"], ([], []))
            its.append(r["iteration"])
            vals.append(json.loads(r["values_json"]))
        return {k: (np.asarray(i), np.asarray(v, float)) for k, (i, v) in acc.items()}

    def params(self, trial_id: str) -> dict[str, np.ndarray] | None:
        """A trial's stored final parameters ``{field: array}`` (None if not kept)."""
        state = self.final_state(trial_id)
        return None if state is None else state["params"]

    def final_state(self, trial_id: str) -> dict | None:
        """A trial's stored final ``{"params": {field: array}, "rule_state": [leaves]}`` (None if
        not kept; ``rule_state`` is ``[]`` for a rule without state or a store written before rule
        states were kept)."""
        row = self._db.execute("SELECT data FROM params WHERE trial_id=?", (trial_id,)).fetchone()
        return None if row is None else _state_from_bytes(row[0])

    # -- curriculum -----------------------------------------------------------------
    def write_ladder_step(self, experiment: str, ladder: str, step: int, length: int, trial_id: str,
                          warm_start: bool, labels: dict) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO ladders(experiment, ladder, step, length, trial_id, warm_start, "
                       "labels_json) VALUES (?,?,?,?,?,?,?)",
                       (experiment, ladder, step, length, trial_id, int(warm_start),
                        json.dumps(labels, sort_keys=True)))

    def ladders(self, experiment: str) -> dict[str, list[dict]]:
        """``{ladder: [step dicts with the trial's status and accuracy]}`` in step order."""
        rows = self._db.execute(
            "SELECT l.*, t.status, t.best_accuracy, t.iterations, t.seconds FROM ladders l "
            "JOIN trials t ON l.trial_id = t.trial_id WHERE l.experiment=? ORDER BY l.ladder, l.step",
            (experiment,)).fetchall()
        out: dict[str, list[dict]] = {}
        for r in rows:
            d = dict(r)
            d["labels"] = json.loads(d.pop("labels_json"))
            d["warm_start"] = bool(d["warm_start"])
            out.setdefault(r["ladder"], []).append(d)
        return out


def _trial_dict(row: sqlite3.Row) -> dict:
    d = dict(row)
    d["config"] = json.loads(d.pop("config_json"))
    init = d.pop("init_json", None)
    d["init"] = None if init is None else json.loads(init)
    if "labels_json" in d:
        d["labels"] = json.loads(d.pop("labels_json"))
    d.pop("structure_key", None)
    return d


def _state_to_bytes(state: Any) -> bytes:
    """npz of the parameters (by field name: the cell's own, e.g. the orthogonal cell's ``W0`` and
    ``A``) and the rule state's leaves (``rule_state_0000`` ...)."""
    if isinstance(state, dict) and "params" in state:
        params, leaves = state["params"], state.get("rule_state") or []
    else:
        params, leaves = state, []
    if not isinstance(params, dict):
        params = params._asdict()
    arrays = {k: np.asarray(v) for k, v in params.items()}
    arrays.update({f"{_RULE_STATE}{i:04d}": np.asarray(a) for i, a in enumerate(leaves)})
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _state_from_bytes(data: bytes) -> dict:
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    leaves = sorted(k for k in arrays if k.startswith(_RULE_STATE))
    return {"params": {k: v for k, v in arrays.items() if not k.startswith(_RULE_STATE)},
            "rule_state": [arrays[k] for k in leaves]}
