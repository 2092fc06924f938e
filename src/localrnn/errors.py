"""One translator of pydantic validation errors into ``where: what is wrong`` (core layer).

The CLI turns ``where`` into a flag (``hparams.target_step`` -> ``--target-step``), spec
validation into the spec's own path (``arms[0].grid.target_step``).
"""

from __future__ import annotations

from pydantic import ValidationError

__all__ = ["first_error"]


def _path(loc: tuple) -> str:
    """``("arms", 0, "grid")`` -> ``arms[0].grid``; pydantic's validator tags are dropped."""
    out = ""
    for p in loc:
        if isinstance(p, int):
            out += f"[{p}]"
        elif not str(p).startswith("function-"):
            out += ("." if out else "") + str(p)
    return out


def first_error(err: ValidationError) -> tuple[str, str]:
    """The first error of ``err`` as ``(where, message)``.

    ``where`` is the dotted path of the field (``""`` for the whole model). Validators that
    check several fields at once start their message with the field they blame
    (``"hparams.c0: must be in [0, inf], got -1"``); that name is moved into ``where``.
    The offending input is appended to pydantic's own messages (``..., got 'foo'``).
    """
    e = err.errors()[0]
    where = _path(e["loc"])
    msg = e["msg"].removeprefix("Value error, ")
    if e["type"] == "value_error":
        head, sep, rest = msg.partition(": ")
        if sep and head and " " not in head:
            where, msg = (f"{where}.{head}" if where else head), rest
    if e["type"] == "extra_forbidden":
        msg = "unknown field"
    elif "input" in e and e["type"] not in ("missing", "value_error") and "got" not in msg:
        msg = f"{msg}, got {e['input']!r}"
    return where, msg
