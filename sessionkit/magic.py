"""The IPython extension: ``%load_ext sessionkit`` and the ``%%sessionkit_sql`` magic.

After ``%load_ext sessionkit``, a cell that starts with ``%%sessionkit_sql DATA`` runs its
SQL over the views ``sessions``, ``messages``, ``responses``, ``metadata`` and ``exchanges``
of DATA and shows the result as a polars DataFrame. DATA is a dataset folder, or the name
of a variable holding ``SessionTables``, a dataset path or a ``sk.connect`` connection.
``--out NAME`` (``-o``) also stores the frame in the variable NAME. The line form
``%sessionkit_sql DATA SELECT ...`` runs one line of SQL.

Example (in a notebook):
    %load_ext sessionkit

    %%sessionkit_sql build/sample-dataset --out seeds
    SELECT seed_id, count(*) AS responses FROM responses GROUP BY ALL ORDER BY responses DESC
"""

from __future__ import annotations

import io
import os
import shlex
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

__all__ = ["MAGIC_NAME", "load_ipython_extension", "unload_ipython_extension"]

MAGIC_NAME = "sessionkit_sql"
_USAGE = (
    "usage: %%sessionkit_sql DATA [--out NAME] with SQL in the cell, or %sessionkit_sql DATA [--out NAME] SELECT ...; "
    "DATA is a dataset folder or a variable holding SessionTables, a path or a sk.connect connection"
)


def _parse(line: str) -> tuple[str, str | None, str]:
    """``DATA [--out NAME] [SQL...]`` → (data, out, the SQL of the line exactly as typed)."""
    stream = io.StringIO(line)  # what shlex makes of a str; read here for where each word starts
    lexer = shlex.shlex(stream, posix=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    data, out, sql = None, None, ""
    try:
        while True:
            start = stream.tell()
            word = lexer.get_token()
            if word is None:
                break
            if word in ("--out", "-o"):
                out = lexer.get_token()
                if out is None:
                    msg = f"{word} needs a variable name. {_USAGE}"
                    raise ValueError(msg)
            elif data is None:
                data = word
            else:
                sql = line[start:].strip()
                break
    except ValueError as err:
        if "needs a variable name" in str(err):
            raise
        msg = f"cannot read the magic's line ({err}). {_USAGE}"
        raise ValueError(msg) from None
    if data is None:
        raise ValueError(_USAGE)
    if out is not None and not out.isidentifier():
        msg = f"--out takes a Python variable name, not {out!r}"
        raise ValueError(msg)
    return data, out, sql


def _resolve(name: str, namespace: dict[str, Any]) -> Any:
    if name.isidentifier() and name in namespace:
        return namespace[name]
    path = os.path.expanduser(name)
    if not os.path.exists(path):
        msg = f"{name!r} is neither a variable nor a dataset folder. {_USAGE}"
        raise ValueError(msg)
    return path


def _magic(shell: Any, line: str, cell: str | None) -> pl.DataFrame | None:
    try:
        name, out, sql = _parse(line)
        if cell is not None:
            sql = f"{sql}\n{cell}".strip()
        if not sql.strip():
            raise ValueError(f"no SQL to run. {_USAGE}")
        from sessionkit.analytics import run_sql

        result = run_sql(_resolve(name, shell.user_ns), sql)
    except ValueError as err:
        from IPython.core.error import UsageError

        raise UsageError(str(err)) from None
    if out is not None:
        shell.user_ns[out] = result
    return result


def load_ipython_extension(ipython: Any) -> None:
    """Register the ``%%sessionkit_sql`` magic; IPython calls this on ``%load_ext sessionkit``.

    Example (in a notebook):
        %load_ext sessionkit
    """

    def sessionkit_sql(line: str, cell: str | None = None) -> pl.DataFrame | None:
        return _magic(ipython, line, cell)

    sessionkit_sql.__doc__ = __doc__
    ipython.register_magic_function(sessionkit_sql, magic_kind="line_cell", magic_name=MAGIC_NAME)


def unload_ipython_extension(ipython: Any) -> None:
    """Nothing to undo: the magic stays registered until the kernel restarts (as IPython's own do)."""
