"""The results store as JSON lines (docs/protocols.md): export, import, and reading an export.

One JSON object per line, keys sorted, each with a ``type``; in this order:

* ``header``: ``format`` ``"localrnn-store"``, ``version`` (1), ``localrnn`` (the package version);
* ``experiment``: name, kind, spec, created, updated (by name);
* ``membership``: experiment, trial_id, labels (by experiment, trial);
* ``ladder``: experiment, ladder, step, length, trial_id, warm_start, labels (by experiment, ladder, step);
* per trial, by ``trial_id``: ``trial`` (every column of the trials table; config and init as
  JSON), then ``metrics`` (column arrays ``iteration``, ``train_loss``, ``val_loss``,
  ``val_accuracy``, ``val_errors`` by iteration), ``records`` (``{name: {iterations, values}}``)
  and ``state`` (the stored npz bytes, base64), each where the trial has them.

Non-finite numbers are ``null``. The order depends on the stored rows alone, so exporting again
after a study went on changes only the lines of what changed: the file can live in git.
"""

from __future__ import annotations

import base64
import json
import math
import os
import sqlite3
import tempfile
from typing import Any, Iterator, Sequence

from localrnn.experiments.store import COMPLETE, MEMORY, STATUSES, Store, _state_from_bytes

__all__ = ["FORMAT", "VERSION", "PARAMS", "export_jsonl", "import_jsonl", "read_jsonl", "import_lines", "open_store"]

FORMAT = "localrnn-store"
VERSION = 1
#: which trial states an export keeps: none, those a study needs to continue (tips), all
PARAMS = ("none", "tips", "all")

_METRICS = ("iteration", "train_loss", "val_loss", "val_accuracy", "val_errors")
_TRIAL_COLUMNS = ("trial_id", "run_id", "status", "task", "rule", "length", "seed", "best_accuracy",
                  "best_iteration", "iterations", "seconds", "config", "init", "structure_key", "completions",
                  "created", "updated")
#: the keys each line type must have (besides ``type``)
_KEYS = {
    "header": ("format", "version", "localrnn"),
    "experiment": ("name", "kind", "spec", "created", "updated"),
    "membership": ("experiment", "trial_id", "labels"),
    "ladder": ("experiment", "ladder", "step", "length", "trial_id", "warm_start", "labels"),
    "trial": _TRIAL_COLUMNS,
    "metrics": ("trial_id",) + _METRICS,
    "records": ("trial_id", "records"),
    "state": ("trial_id", "data"),
}


#: keys whose value is a JSON object (``init`` may also be null)
_OBJECTS = ("spec", "labels", "config", "init", "records")


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, (str, int, float, bool))


def _finite(v: Any) -> Any:
    """``v`` with every non-finite float (at any depth of lists) as None."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, list):
        return [_finite(x) for x in v]
    return v


def _line(obj: dict) -> str:
    return json.dumps(obj, sort_keys=True, allow_nan=False) + "\n"


def _lines(store: Store, experiments: Sequence[str] | None, params: str) -> Iterator[dict]:
    """The export's objects, in file order (read inside one transaction: one snapshot)."""
    import localrnn

    db = store._db
    names = store.experiments() if experiments is None else sorted(set(experiments))
    yield {"type": "header", "format": FORMAT, "version": VERSION, "localrnn": localrnn.__version__}
    for n in names:
        yield {"type": "experiment", **store.experiment(n)}
    marks = ",".join("?" * len(names))
    members = db.execute(f"SELECT * FROM experiment_trials WHERE experiment IN ({marks}) "
                         "ORDER BY experiment, trial_id", names).fetchall()
    for r in members:
        yield {"type": "membership", "experiment": r["experiment"], "trial_id": r["trial_id"],
               "labels": json.loads(r["labels_json"])}
    ladders = db.execute(f"SELECT * FROM ladders WHERE experiment IN ({marks}) ORDER BY experiment, ladder, step",
                         names).fetchall()
    for r in ladders:
        yield {"type": "ladder", **{k: r[k] for k in ("experiment", "ladder", "step", "length", "trial_id")},
               "warm_start": bool(r["warm_start"]), "labels": json.loads(r["labels_json"])}
    if experiments is None:
        ids = [r[0] for r in db.execute("SELECT trial_id FROM trials ORDER BY trial_id")]
    else:
        ids = sorted({r["trial_id"] for r in members} | {r["trial_id"] for r in ladders})
    keep = _kept_states(store, ladders, ids, params)
    for tid in ids:
        row = db.execute("SELECT * FROM trials WHERE trial_id=?", (tid,)).fetchone()
        if row is None:
            continue
        t = {k: row[k] for k in row.keys()}
        t["config"] = json.loads(t.pop("config_json"))
        init = t.pop("init_json")
        t["init"] = None if init is None else json.loads(init)
        yield {"type": "trial", **{k: _finite(v) for k, v in t.items()}}
        m = store.metrics(tid)
        if m:
            yield {"type": "metrics", "trial_id": tid, **{k: [_finite(h[k]) for h in m] for k in _METRICS}}
        rec: dict[str, dict] = {}
        for r in db.execute("SELECT iteration, name, values_json FROM records WHERE trial_id=? "
                            "ORDER BY name, iteration", (tid,)):
            d = rec.setdefault(r["name"], {"iterations": [], "values": []})
            d["iterations"].append(r["iteration"])
            d["values"].append(_finite(json.loads(r["values_json"])))
        if rec:
            yield {"type": "records", "trial_id": tid, "records": rec}
        if tid in keep:
            data = db.execute("SELECT data FROM params WHERE trial_id=?", (tid,)).fetchone()
            if data is not None:
                yield {"type": "state", "trial_id": tid, "data": base64.b64encode(data[0]).decode("ascii")}


def _kept_states(store: Store, ladders: list, ids: list[str], params: str) -> set[str]:
    """The trials whose state the export keeps. ``tips``: per ladder, the state its next step
    starts from: the last step's if it is solved, its parent's (``init.from``) if it is not complete."""
    if params == "all":
        return set(ids)
    if params == "none":
        return set()
    last: dict[tuple[str, str], str] = {}
    for r in ladders:  # in step order: the last row of a ladder wins
        last[(r["experiment"], r["ladder"])] = r["trial_id"]
    keep = set()
    for tid in last.values():
        t = store.trial(tid)
        if t is None:
            continue
        if t["status"] == "solved":
            keep.add(tid)
        elif t["status"] not in COMPLETE and (t["init"] or {}).get("from"):
            keep.add(t["init"]["from"])
    return keep


def _write_atomic(path: str, lines: Iterator[dict]) -> dict[str, int]:
    """Write the lines to a temporary file beside ``path``, then rename it over ``path``."""
    counts: dict[str, int] = {}
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            for obj in lines:
                f.write(_line(obj))
                counts[obj["type"]] = counts.get(obj["type"], 0) + 1
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return counts


def export_jsonl(store: Store, path: str, experiments: Sequence[str] | None = None,
                 params: str = "tips") -> dict[str, int]:
    """Write ``store`` (or only ``experiments`` and the trials they use) to ``path`` as JSON lines.

    ``params``: which trial states to keep: ``"none"``; ``"tips"``, per curriculum ladder the state
    its next step starts from; ``"all"``. Written atomically (a temporary file renamed over
    ``path``). Returns the number of lines per type. Raises ValueError for an unknown experiment.
    """
    if params not in PARAMS:
        raise ValueError(f"params: unknown {params!r}; allowed: {', '.join(PARAMS)}")
    stored = store.experiments()
    for n in experiments or ():
        if n not in stored:
            raise ValueError(f"no experiment {n!r}; stored: {', '.join(stored) or 'none'}")
    db = store._db
    db.execute("BEGIN")  # one read snapshot, while a study may be writing the store
    try:
        return _write_atomic(path, _lines(store, experiments, params))
    finally:
        db.execute("COMMIT")


def _check(obj: Any, path: str, lineno: int, seen: set[str]) -> None:
    def bad(what: str) -> ValueError:
        return ValueError(f"{path}:{lineno}: {what}")

    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        raise bad("not an object with a type")
    kind = obj["type"]
    if lineno == 1 and kind != "header":
        raise bad(f"the first line must be the header (type \"header\"), got type {kind!r}")
    if kind not in _KEYS:
        raise bad(f"unknown type {kind!r}; allowed: {', '.join(_KEYS)}")
    missing = [k for k in _KEYS[kind] if k not in obj]
    if missing:
        raise bad(f"{kind} line without {', '.join(missing)}")
    for k in _KEYS[kind]:
        v = obj[k]
        if kind == "metrics" and k in _METRICS:
            ok = isinstance(v, list) and all(_scalar(x) for x in v)
        else:
            ok = isinstance(v, dict) or (k == "init" and v is None) if k in _OBJECTS else _scalar(v)
        if not ok:
            raise bad(f"{kind} {k}: {type(v).__name__} where {'an object' if k in _OBJECTS else 'a value'} belongs")
    if kind == "header":
        if lineno != 1:
            raise bad("a second header")
        if obj["format"] != FORMAT or obj["version"] != VERSION:
            raise bad(f"format {obj['format']!r} version {obj['version']!r}; allowed: {FORMAT!r} version {VERSION}")
    elif kind == "trial":
        if obj["status"] not in STATUSES:
            raise bad(f"status {obj['status']!r}; allowed: {', '.join(STATUSES)}")
        seen.add(obj["trial_id"])
    elif kind in ("metrics", "records", "state"):
        if obj["trial_id"] not in seen:
            raise bad(f"{kind} of trial {obj['trial_id']!r} before (or without) its trial line")
        if kind == "metrics" and len({len(obj[k]) for k in _METRICS}) != 1:
            raise bad("metrics columns of different lengths")
        if kind == "records" and any(len(d["iterations"]) != len(d["values"]) for d in obj["records"].values()):
            raise bad("records with unequal numbers of iterations and values")
        if kind == "state":
            try:
                obj["data"] = base64.b64decode(obj["data"], validate=True)
                _state_from_bytes(obj["data"])
            except Exception as e:
                raise bad(f"state is not base64 of an npz ({type(e).__name__}: {e})") from None


def read_jsonl(path: str) -> list[tuple[int, dict]]:
    """The lines of an export as ``(line number, object)``, checked (states decoded to bytes).

    Raises OSError if the file cannot be read and ValueError ``"PATH:LINE: what"`` for a malformed line.
    """
    out: list[tuple[int, dict]] = []
    seen: set[str] = set()
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                obj = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                raise ValueError(f"{path}:{lineno}: not UTF-8 text") from None
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{lineno}: not JSON ({e.msg} at column {e.colno})") from None
            try:
                _check(obj, path, lineno, seen)
            except (TypeError, AttributeError, KeyError) as e:
                raise ValueError(f"{path}:{lineno}: malformed {obj.get('type')} line ({e})") from None
            out.append((lineno, obj))
    if not out:
        raise ValueError(f"{path}:1: empty file; a header line was expected")
    for lineno, obj in out:
        if obj["type"] in ("membership", "ladder") and obj["trial_id"] not in seen:
            raise ValueError(f"{path}:{lineno}: {obj['type']} of trial {obj['trial_id']!r} that has no trial line")
    return out


def _dumps(v: Any) -> str | None:
    return None if v is None else json.dumps(v, sort_keys=True)


def _write_trial(db, t: dict) -> None:
    cols = [c for c in _TRIAL_COLUMNS if c not in ("config", "init")] + ["config_json", "init_json"]
    vals = [t[c] for c in _TRIAL_COLUMNS if c not in ("config", "init")] + [_dumps(t["config"]), _dumps(t["init"])]
    db.execute(f"INSERT OR REPLACE INTO trials({', '.join(cols)}) VALUES ({','.join('?' * len(cols))})", vals)
    for table in ("metrics", "records", "params"):
        db.execute(f"DELETE FROM {table} WHERE trial_id=?", (t["trial_id"],))


def import_jsonl(store: Store, path: str) -> dict[str, int]:
    """Read an export into ``store``, merging, in one transaction (a bad file writes nothing).

    A trial is written when the store lacks it or has it not complete while the file has it
    complete; otherwise the store's trial, metrics and records stay as they are (a state the
    store lacks is added). Experiments: the later ``updated`` wins; memberships and ladder steps
    the store lacks are added. Returns counts: experiments, trials (written), kept (trials left
    as they were), memberships, ladders, states (written).
    """
    return import_lines(store, read_jsonl(path), path)


def import_lines(store: Store, lines: list[tuple[int, dict]], path: str) -> dict[str, int]:
    """:func:`import_jsonl` of lines already read by :func:`read_jsonl` (from ``path``)."""
    counts = dict.fromkeys(("experiments", "trials", "kept", "memberships", "ladders", "states"), 0)
    written: set[str] = set()
    with store._tx() as db:
        for lineno, o in lines:
            try:
                _import_line(db, o, counts, written)
            except sqlite3.Error as e:
                raise ValueError(f"{path}:{lineno}: cannot be stored ({e})") from None
    return counts


def _import_line(db: sqlite3.Connection, o: dict, counts: dict[str, int], written: set[str]) -> None:
    kind = o["type"]
    if kind == "experiment":
        cur = db.execute(
            "INSERT INTO experiments(name, kind, spec_json, created, updated) VALUES (?,?,?,?,?) "
            "ON CONFLICT(name) DO UPDATE SET kind=excluded.kind, spec_json=excluded.spec_json, "
            "created=min(created, excluded.created), updated=excluded.updated "
            "WHERE excluded.updated > experiments.updated",
            (o["name"], o["kind"], _dumps(o["spec"]), o["created"], o["updated"]))
        counts["experiments"] += cur.rowcount
    elif kind == "membership":
        counts["memberships"] += db.execute(
            "INSERT OR IGNORE INTO experiment_trials(experiment, trial_id, labels_json) VALUES (?,?,?)",
            (o["experiment"], o["trial_id"], _dumps(o["labels"]))).rowcount
    elif kind == "ladder":
        counts["ladders"] += db.execute(
            "INSERT OR IGNORE INTO ladders(experiment, ladder, step, length, trial_id, warm_start, "
            "labels_json) VALUES (?,?,?,?,?,?,?)",
            (o["experiment"], o["ladder"], o["step"], o["length"], o["trial_id"], int(o["warm_start"]),
             _dumps(o["labels"]))).rowcount
    elif kind == "trial":
        row = db.execute("SELECT status FROM trials WHERE trial_id=?", (o["trial_id"],)).fetchone()
        if row is None or (row[0] not in COMPLETE and o["status"] in COMPLETE):
            _write_trial(db, o)
            written.add(o["trial_id"])
            counts["trials"] += 1
        else:
            counts["kept"] += 1
    elif kind == "state":
        sql = "INSERT OR REPLACE" if o["trial_id"] in written else "INSERT OR IGNORE"
        counts["states"] += db.execute(f"{sql} INTO params(trial_id, data) VALUES (?,?)",
                                       (o["trial_id"], o["data"])).rowcount
    elif kind in ("metrics", "records") and o["trial_id"] in written:
        _write_rows(db, o)


def _write_rows(db, o: dict) -> None:
    tid = o["trial_id"]
    if o["type"] == "metrics":
        db.executemany("INSERT INTO metrics(trial_id, iteration, train_loss, val_loss, val_accuracy, val_errors) "
                       "VALUES (?,?,?,?,?,?)", [(tid, *row) for row in zip(*(o[k] for k in _METRICS))])
        return
    nan = float("nan")

    def restore(v):  # null back to NaN, as the store writes records
        return [restore(x) for x in v] if isinstance(v, list) else (nan if v is None else v)

    db.executemany("INSERT INTO records(trial_id, iteration, name, values_json) VALUES (?,?,?,?)",
                   [(tid, it, name, json.dumps(restore(v)))
                    for name, d in o["records"].items() for it, v in zip(d["iterations"], d["values"])])


def open_store(path: str) -> Store:
    """A store to read: a ``.jsonl`` export read into a store in memory, any other path the
    SQLite file (which must exist: FileNotFoundError)."""
    if path.endswith(".jsonl"):
        lines = read_jsonl(path)
        store = Store(MEMORY)
        try:
            import_lines(store, lines, path)
        except BaseException:
            store.close()
            raise
        return store
    return Store(path, create=False)
