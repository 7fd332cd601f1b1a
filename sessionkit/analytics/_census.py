"""The open-ended parts: the metadata census, and single sessions pulled out of a dataset."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sessionkit.analytics._common import Source, SqlSource, frame
from sessionkit.query import connection, sql_string
from sessionkit.tables import SCHEMAS, TABLE_NAMES, SessionTables

if TYPE_CHECKING:
    import polars as pl

    from sessionkit.model import Session

__all__ = ["JSON_TYPES", "get_session", "metadata_keys"]

#: The JSON types ``metadata_keys`` counts, in the order of its columns.
JSON_TYPES = ("string", "number", "boolean", "null", "object", "array")

# The type of a compact JSON text, from its first character.
_JSON_TYPE = """CASE left(value, 1)
    WHEN '"' THEN 'string' WHEN '{' THEN 'object' WHEN '[' THEN 'array'
    WHEN 't' THEN 'boolean' WHEN 'f' THEN 'boolean' WHEN 'n' THEN 'null'
    ELSE 'number' END"""


def metadata_keys(data: Source) -> pl.DataFrame:
    """A census of metadata keys: the drift report for an open-ended field.

    One row per key: ``key``, ``sessions`` carrying it, their ``share`` of all sessions,
    ``types`` (the JSON types seen for it, sorted), the count of values of each JSON type
    (``string``, ``number``, ``boolean``, ``null``, ``object``, ``array``), and the
    ``first_created`` / ``last_created`` of the sessions carrying it. Sorted by sessions
    (descending), then key.

    Example:
        >>> import sessionkit as sk
        >>> sk.metadata_keys("build/sample-dataset")  # doctest: +SKIP
    """
    counts = ",\n".join(f"count(*) FILTER (jtype = '{t}')::BIGINT AS \"{t}\"" for t in JSON_TYPES)
    return frame(
        data,
        f"""
        WITH m AS (
            SELECT m.session_id, m.key, {_JSON_TYPE} AS jtype, s.created_at
            FROM metadata AS m LEFT JOIN sessions AS s ON s.session_id = m.session_id
        )
        SELECT
            key,
            count(*)::BIGINT AS sessions,  -- a session holds a key once (a JSON object's keys)
            count(*) / (SELECT nullif(count(*), 0) FROM sessions) AS share,
            list_sort(list(DISTINCT jtype)) AS types,
            {counts},
            min(created_at) AS first_created,
            max(created_at) AS last_created
        FROM m
        GROUP BY ALL
        ORDER BY sessions DESC, key
        """,
    )


def get_session(data: Source, session_id: str) -> Session:
    """One session of a dataset as a ``Session``, e.g. to read its transcript in a notebook.

    Only that session's rows are read, so it is quick on a large dataset folder.

    Raises:
        KeyError: no session has this id.

    Example:
        >>> import sessionkit as sk
        >>> sk.get_session("build/sample-dataset", "00c96c80-7968-4f04-be43-e8c49628b9fe")  # doctest: +SKIP
    """
    if isinstance(data, SessionTables):
        return data.session(session_id)
    order = {
        "sessions": "",
        "messages": " ORDER BY seq",
        "responses": " ORDER BY seq",
        "metadata": " ORDER BY ord",
        "tool_calls": " ORDER BY step",
        "reasoning": " ORDER BY ord",
    }
    queries = {}
    for name in TABLE_NAMES:
        columns = ", ".join(f'"{field.name}"' for field in SCHEMAS[name])
        queries[name] = f"SELECT {columns} FROM {name} WHERE session_id = {sql_string(session_id)}{order[name]}"
    if isinstance(data, SqlSource):
        tables = {name: data.sql_frame(sql).to_arrow().cast(SCHEMAS[name]) for name, sql in queries.items()}
    else:
        with connection(data, read_only=False) as con:
            tables = {name: con.sql(sql).to_arrow_table().cast(SCHEMAS[name]) for name, sql in queries.items()}
    found = SessionTables(**tables).to_sessions()
    if not found:
        msg = f"no session with id {session_id!r} in this dataset. Hint: list the ids with sk.exchange_counts(data)"
        raise KeyError(msg)
    return found[0]
