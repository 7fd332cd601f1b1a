"""Helpers that answer the usual questions about sessions in one call each.

Each takes ``data``: ``SessionTables``, a dataset folder, or a connection from
``sessionkit.connect``; computes in DuckDB (so a dataset larger than memory works); and
returns a ``polars.DataFrame`` with documented columns in a deterministic order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sessionkit.query import Data, connect

if TYPE_CHECKING:
    import polars as pl

__all__ = ["exchange_counts", "persona_usage", "seed_usage", "stats"]


def _frame(data: Data, sql: str) -> pl.DataFrame:
    import duckdb

    con = connect(data)
    try:
        return con.sql(sql).pl()
    finally:
        if not isinstance(data, duckdb.DuckDBPyConnection):
            con.close()


def exchange_counts(data: Data) -> pl.DataFrame:
    """One row per session: ``session_id``, ``user_id``, ``exchange_count``; by ``session_id``.

    Example:
        >>> import sessionkit as sk
        >>> sk.exchange_counts("build/sample-dataset").head(1)  # doctest: +SKIP
    """
    return _frame(
        data,
        "SELECT session_id, user_id, exchange_count FROM sessions ORDER BY session_id",
    )


def seed_usage(data: Data) -> pl.DataFrame:
    """Use of each seed: ``seed_id`` (null: no seed), ``sessions``, ``responses``, ``users``.

    ``sessions`` counts sessions whose ``active_seed_id`` is the seed, ``responses`` the
    responses whose ``seed_id`` is it, and ``users`` the distinct users of those sessions.
    Sorted by sessions, then responses (both descending), then seed id, the null row last
    among equals.

    Example:
        >>> import sessionkit as sk
        >>> sk.seed_usage("build/sample-dataset").head(3)  # doctest: +SKIP
    """
    return _frame(
        data,
        """
        WITH s AS (
            SELECT active_seed_id AS seed_id, count(*) AS sessions, count(DISTINCT user_id) AS users
            FROM sessions GROUP BY ALL
        ), r AS (
            SELECT seed_id, count(*) AS responses FROM responses GROUP BY ALL
        )
        SELECT
            coalesce(s.seed_id, r.seed_id) AS seed_id,
            coalesce(s.sessions, 0)::BIGINT AS sessions,
            coalesce(r.responses, 0)::BIGINT AS responses,
            coalesce(s.users, 0)::BIGINT AS users
        FROM s FULL OUTER JOIN r ON s.seed_id IS NOT DISTINCT FROM r.seed_id
        ORDER BY sessions DESC, responses DESC, seed_id ASC NULLS LAST
        """,
    )


def persona_usage(data: Data) -> pl.DataFrame:
    """Use of each persona: ``persona_id`` (null: none), ``sessions``, ``users``, ``exchanges``.

    ``exchanges`` sums the exchange counts of the persona's sessions. Sorted by sessions
    (descending), then persona id, the null row last among equals.

    Example:
        >>> import sessionkit as sk
        >>> sk.persona_usage("build/sample-dataset")  # doctest: +SKIP
    """
    return _frame(
        data,
        """
        SELECT
            active_persona_id AS persona_id,
            count(*)::BIGINT AS sessions,
            count(DISTINCT user_id)::BIGINT AS users,
            coalesce(sum(exchange_count), 0)::BIGINT AS exchanges
        FROM sessions
        GROUP BY ALL
        ORDER BY sessions DESC, persona_id ASC NULLS LAST
        """,
    )


def stats(data: Data) -> pl.DataFrame:
    """One row of totals: sessions, users, messages, responses, exchanges, first and last activity.

    Example:
        >>> import sessionkit as sk
        >>> sk.stats("build/sample-dataset")  # doctest: +SKIP
    """
    return _frame(
        data,
        """
        SELECT
            (SELECT count(*) FROM sessions)::BIGINT AS sessions,
            (SELECT count(DISTINCT user_id) FROM sessions)::BIGINT AS users,
            (SELECT count(*) FROM messages)::BIGINT AS messages,
            (SELECT count(*) FROM responses)::BIGINT AS responses,
            (SELECT coalesce(sum(exchange_count), 0) FROM sessions)::BIGINT AS exchanges,
            (SELECT count(*) FROM metadata)::BIGINT AS metadata_entries,
            (SELECT min(created_at) FROM sessions) AS first_created,
            (SELECT max(updated_at) FROM sessions) AS last_updated
        """,
    )
