"""SQL over sessions: a DuckDB connection with the table views and ``exchanges``."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Union

from sessionkit.storage import _check_dataset, _table_files, table_glob
from sessionkit.tables import SCHEMAS, TABLE_NAMES, SessionTables

if TYPE_CHECKING:
    import duckdb

__all__ = ["EXCHANGES_SQL", "Data", "connect", "sql_string"]

#: What the helpers accept as data: tables in memory, a dataset folder, or a connection.
Data = Union[SessionTables, str, os.PathLike, "duckdb.DuckDBPyConnection"]

#: One row per exchange: the user message and the agent response at the same ``seq``.
EXCHANGES_SQL = """
CREATE OR REPLACE VIEW exchanges AS
SELECT
    m.session_id,
    m.seq,
    m.content AS user_content,
    m.timestamp AS user_timestamp,
    r.content AS response_content,
    r.timestamp AS response_timestamp,
    (epoch_ns(r.timestamp) - epoch_ns(m.timestamp)) / 1e9 AS latency_s,
    r.seed_id,
    r.phase_reached,
    r.evaluation_passed
FROM messages AS m
JOIN responses AS r ON r.session_id = m.session_id AND r.seq = m.seq
"""


def sql_string(text: str) -> str:
    """``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def connect(data: Data) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with views ``sessions``, ``messages``, ``responses``, ``metadata``, ``exchanges``.

    ``data`` is a ``SessionTables`` (registered as Arrow tables, no copy) or a dataset folder
    (read in place with ``read_parquet``). A connection passed in is returned as it is.

    Example:
        >>> import sessionkit as sk
        >>> con = sk.connect("build/sample-dataset")  # doctest: +SKIP
        >>> con.sql("SELECT count(*) FROM exchanges").fetchall()  # doctest: +SKIP
        [(1843,)]
    """
    import duckdb

    if isinstance(data, duckdb.DuckDBPyConnection):
        return data
    con = duckdb.connect()
    if isinstance(data, SessionTables):
        for name, table in data.items():
            con.register(f"_sessionkit_{name}", table)
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM _sessionkit_{name}")
    elif isinstance(data, (str, os.PathLike)):
        folder = _check_dataset(data)
        for name in TABLE_NAMES:
            if _table_files(folder, name):
                source = f"read_parquet({sql_string(table_glob(folder, name))}, union_by_name = true)"
                columns = ", ".join(field.name for field in SCHEMAS[name])
                con.execute(f"CREATE VIEW {name} AS SELECT {columns} FROM {source}")
            else:
                con.register(f"_sessionkit_{name}", SCHEMAS[name].empty_table())
                con.execute(f"CREATE VIEW {name} AS SELECT * FROM _sessionkit_{name}")
    else:
        msg = f"connect takes SessionTables, a dataset folder or a DuckDB connection, got {type(data).__name__}"
        raise TypeError(msg)
    con.execute(EXCHANGES_SQL)
    return con
