"""Who uses what, and how much: exchanges, seeds, personas, activity over time, users, totals."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sessionkit._options import check_option
from sessionkit._periods import partial_periods
from sessionkit.analytics._common import Source, bucket, frame

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "activity",
    "exchange_counts",
    "exchange_histogram",
    "persona_usage",
    "seed_usage",
    "stats",
    "user_summary",
]

_TIME_UNITS = ("day", "week", "month")
#: The column a ``by=`` option adds, named for what it holds.
_BY_COLUMN = {
    "day": "day",
    "week": "week",
    "month": "month",
    "user": "user_id",
    "persona": "persona_id",
    "seed": "seed_id",
}


def exchange_counts(data: Source) -> pl.DataFrame:
    """One row per session: ``session_id``, ``user_id``, ``exchange_count``; by ``session_id``.

    Example:
        >>> import sessionkit as sk
        >>> sk.exchange_counts("build/sample-dataset").head(1)  # doctest: +SKIP
    """
    return frame(
        data,
        "SELECT session_id, user_id, exchange_count FROM sessions ORDER BY session_id",
    )


def exchange_histogram(data: Source) -> pl.DataFrame:
    """How long conversations are: ``exchange_count`` → ``sessions`` with it, and their ``share``.

    One row per exchange count that occurs (0 for sessions without a full exchange), sorted by
    ``exchange_count``; ``share`` is the fraction of all sessions.

    Example:
        >>> import sessionkit as sk
        >>> sk.exchange_histogram("build/sample-dataset").head(3)  # doctest: +SKIP
    """
    return frame(
        data,
        """
        SELECT
            exchange_count::BIGINT AS exchange_count,
            count(*)::BIGINT AS sessions,
            count(*) / sum(count(*)) OVER () AS share
        FROM sessions
        GROUP BY ALL
        ORDER BY exchange_count
        """,
    )


def _split_usage(
    data: Source,
    *,
    by: str,
    subject: str,
    session_subject: str,
    events: str,
    event_subject: str,
    event_time: str,
    event_column: str,
    event_dims: dict[str, str],
    columns: tuple[str, ...],
    event_count: str = "count(*)",
) -> pl.DataFrame:
    """Usage of a subject (seed or persona) split by a time bucket or another dimension.

    Sessions are counted by the session's own dimension value (``created_at`` for time);
    events (responses or exchanges) by theirs (their timestamp for time).
    """
    column = _BY_COLUMN[by]
    if by in _TIME_UNITS:
        s_dim, e_dim = bucket("s.created_at", by), bucket(event_time, by)
    else:
        s_dim = {"user": "s.user_id", "persona": "s.active_persona_id", "seed": "s.active_seed_id"}[by]
        e_dim = event_dims[by]
    result = frame(
        data,
        f"""
        WITH s AS (
            SELECT {s_dim} AS dim, {session_subject} AS subject,
                   count(*) AS sessions, count(DISTINCT s.user_id) AS users
            FROM sessions AS s GROUP BY ALL
        ), e AS (
            SELECT {e_dim} AS dim, {event_subject} AS subject, {event_count} AS n
            FROM {events} GROUP BY ALL
        )
        SELECT
            coalesce(s.dim, e.dim) AS "{column}",
            coalesce(s.subject, e.subject) AS "{subject}",
            coalesce(s.sessions, 0)::BIGINT AS sessions,
            coalesce(e.n, 0)::BIGINT AS "{event_column}",
            coalesce(s.users, 0)::BIGINT AS users
        FROM s FULL OUTER JOIN e
            ON s.dim IS NOT DISTINCT FROM e.dim AND s.subject IS NOT DISTINCT FROM e.subject
        ORDER BY 1 ASC NULLS LAST, sessions DESC, 4 DESC, 2 ASC NULLS LAST
        """,
    )
    return result.select(column, subject, *columns)


def seed_usage(data: Source, *, by: str | None = None) -> pl.DataFrame:
    """Use of each seed: ``seed_id`` (null: no seed), ``sessions``, ``responses``, ``users``.

    ``sessions`` counts sessions whose ``active_seed_id`` is the seed, ``responses`` the
    responses whose ``seed_id`` is it, and ``users`` the distinct users of those sessions (of
    the sessions, not of the responses: a seed that responses ran under but no session has as
    its active seed shows responses with 0 sessions and 0 users).
    Sorted by sessions, then responses (both descending), then seed id, the null row last
    among equals.

    ``by`` splits the table, adding a first column and sorting by it first:

    - ``"day"``, ``"week"``, ``"month"``: a ``day`` / ``week`` / ``month`` DATE column (UTC;
      weeks start on Monday); sessions fall in the bucket of their ``created_at``,
      responses in that of their own ``timestamp``.
    - ``"user"``: ``user_id`` of the session (for responses: of the session holding them).
    - ``"persona"``: ``persona_id``, the session's ``active_persona_id``.

    Rows with nulls are kept, so every split adds up to the totals of ``by=None``.

    Example:
        >>> import sessionkit as sk
        >>> sk.seed_usage("build/sample-dataset").head(3)  # doctest: +SKIP
        >>> sk.seed_usage("build/sample-dataset", by="month")  # doctest: +SKIP
    """
    check_option("seed_usage", "by", by, (None, "day", "week", "month", "user", "persona"))
    if by is not None:
        return _split_usage(
            data,
            by=by,
            subject="seed_id",
            session_subject="s.active_seed_id",
            # by time, only the response's own timestamp is read: no join (DuckDB keeps an unused one)
            events="responses AS r"
            if by in _TIME_UNITS
            else "responses AS r LEFT JOIN sessions AS s ON s.session_id = r.session_id",
            event_subject="r.seed_id",
            event_time="r.timestamp",
            event_column="responses",
            event_dims={"user": "s.user_id", "persona": "s.active_persona_id"},
            columns=("sessions", "responses", "users"),
        )
    return frame(
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


def persona_usage(data: Source, *, by: str | None = None) -> pl.DataFrame:
    """Use of each persona: ``persona_id`` (null: none), ``sessions``, ``users``, ``exchanges``.

    ``exchanges`` sums the exchange counts of the persona's sessions. Sorted by sessions
    (descending), then persona id, the null row last among equals.

    ``by`` splits the table, adding a first column and sorting by it first (then by
    sessions and exchanges, descending, then persona id):

    - ``"day"``, ``"week"``, ``"month"``: a ``day`` / ``week`` / ``month`` DATE column (UTC;
      weeks start on Monday); sessions fall in the bucket of their ``created_at``,
      exchanges in that of their response's ``timestamp``.
    - ``"user"``: ``user_id`` of the session.
    - ``"seed"``: ``seed_id``; sessions by their ``active_seed_id``, exchanges by the
      ``seed_id`` of their response (as ``seed_usage`` counts responses).

    Rows with nulls are kept, so every split adds up to the totals of ``by=None``.

    Example:
        >>> import sessionkit as sk
        >>> sk.persona_usage("build/sample-dataset")  # doctest: +SKIP
        >>> sk.persona_usage("build/sample-dataset", by="seed")  # doctest: +SKIP
    """
    check_option("persona_usage", "by", by, (None, "day", "week", "month", "user", "seed"))
    if by is not None:
        # a session's exchanges all share its user and persona: by user, sum its exchange_count
        # instead of joining the exchanges themselves
        per_session = by == "user"
        return _split_usage(
            data,
            by=by,
            subject="persona_id",
            session_subject="s.active_persona_id",
            events="sessions AS s"
            if per_session
            else "exchanges AS x LEFT JOIN sessions AS s ON s.session_id = x.session_id",
            event_subject="s.active_persona_id",
            event_time="x.response_timestamp",
            event_column="exchanges",
            event_dims={"user": "s.user_id", "seed": "x.seed_id"},
            columns=("sessions", "users", "exchanges"),
            event_count="coalesce(sum(s.exchange_count), 0)" if per_session else "count(*)",
        )
    return frame(
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


_EVERY = {"1d": "day", "1w": "week", "1mo": "month"}


def activity(data: Source, *, every: str = "1d") -> pl.DataFrame:
    """Activity per period: ``period``, ``sessions``, ``active_users``, ``messages``, ``responses``, ``partial``.

    ``every`` is ``"1d"``, ``"1w"`` (weeks start on Monday) or ``"1mo"``; ``period`` is the
    period's first day (a DATE, UTC). ``sessions`` counts sessions created in the period,
    ``messages`` and ``responses`` those sent in it (by their own timestamps), and
    ``active_users`` the distinct users who created a session or sent a message in it.
    ``partial`` is true for a period the data covers only in part: the data's first instant
    (a session created, a message or response sent) is after the period's start, or its last
    (those, or a session updated) before the period's end; its counts are not those of a
    whole period. Only periods with some activity have a row; sorted by ``period``.

    Example:
        >>> import sessionkit as sk
        >>> sk.activity("build/sample-dataset", every="1w")  # doctest: +SKIP
    """
    check_option("activity", "every", every, tuple(_EVERY))
    unit = _EVERY[every]
    created, sent, answered = (
        bucket("s.created_at", unit),
        bucket("m.timestamp", unit),
        bucket("r.timestamp", unit),
    )
    # The span of the data (as ``span`` gives it) comes with the counts: one query, one connection.
    counts = frame(
        data,
        f"""
        WITH s AS (
            SELECT {created} AS period, count(*) AS n, min(epoch_ns(s.created_at)) AS first_ns,
                   max(greatest(epoch_ns(s.created_at), epoch_ns(s.updated_at))) AS last_ns
            FROM sessions AS s GROUP BY ALL
        ), m AS (
            SELECT {sent} AS period, count(*) AS n,
                   min(epoch_ns(m.timestamp)) AS first_ns, max(epoch_ns(m.timestamp)) AS last_ns
            FROM messages AS m GROUP BY ALL
        ), r AS (
            SELECT {answered} AS period, count(*) AS n,
                   min(epoch_ns(r.timestamp)) AS first_ns, max(epoch_ns(r.timestamp)) AS last_ns
            FROM responses AS r GROUP BY ALL
        ), u AS (
            SELECT period, count(DISTINCT user_id) AS n FROM (
                SELECT {created} AS period, s.user_id FROM sessions AS s
                UNION ALL
                SELECT {sent} AS period, s.user_id
                FROM messages AS m JOIN sessions AS s ON s.session_id = m.session_id
            ) GROUP BY ALL
        ), p AS (
            SELECT period FROM s UNION SELECT period FROM m UNION SELECT period FROM r
        ), whole AS (
            SELECT min(first_ns)::BIGINT AS first_ns, max(last_ns)::BIGINT AS last_ns FROM (
                SELECT first_ns, last_ns FROM s
                UNION ALL SELECT first_ns, last_ns FROM m
                UNION ALL SELECT first_ns, last_ns FROM r
            )
        )
        SELECT
            p.period,
            coalesce(s.n, 0)::BIGINT AS sessions,
            coalesce(u.n, 0)::BIGINT AS active_users,
            coalesce(m.n, 0)::BIGINT AS messages,
            coalesce(r.n, 0)::BIGINT AS responses,
            whole.first_ns,
            whole.last_ns
        FROM p
        CROSS JOIN whole
        LEFT JOIN s ON s.period = p.period
        LEFT JOIN u ON u.period = p.period
        LEFT JOIN m ON m.period = p.period
        LEFT JOIN r ON r.period = p.period
        ORDER BY p.period
        """,
    )
    first, last = (counts["first_ns"][0], counts["last_ns"][0]) if counts.height else (None, None)
    counts = counts.drop("first_ns", "last_ns")
    return counts.with_columns(partial_periods(counts["period"], unit, first, last))


def user_summary(data: Source) -> pl.DataFrame:
    """One row per user: what they use and how much.

    Columns: ``user_id``, ``sessions``, ``exchanges`` (summed exchange counts), ``messages``,
    ``first_seen`` (earliest ``created_at``), ``last_seen`` (latest ``updated_at``),
    ``seeds`` and ``personas`` (distinct active ids of their sessions), ``favourite_seed``
    and ``favourite_persona`` (the active id of most of their sessions, ties to the smallest
    id; null when none of their sessions has one). Sorted by sessions (descending), then
    ``user_id``.

    Example:
        >>> import sessionkit as sk
        >>> sk.user_summary("build/sample-dataset").head()  # doctest: +SKIP
    """
    return frame(
        data,
        """
        WITH u AS (
            SELECT
                user_id,
                count(*)::BIGINT AS sessions,
                coalesce(sum(exchange_count), 0)::BIGINT AS exchanges,
                coalesce(sum(n_user_messages), 0)::BIGINT AS messages,
                min(created_at) AS first_seen,
                max(updated_at) AS last_seen,
                count(DISTINCT active_seed_id)::BIGINT AS seeds,
                count(DISTINCT active_persona_id)::BIGINT AS personas
            FROM sessions GROUP BY ALL
        ), fs AS (
            SELECT user_id, active_seed_id AS seed_id,
                   row_number() OVER (PARTITION BY user_id ORDER BY count(*) DESC, active_seed_id) AS rank
            FROM sessions WHERE active_seed_id IS NOT NULL GROUP BY user_id, active_seed_id
        ), fp AS (
            SELECT user_id, active_persona_id AS persona_id,
                   row_number() OVER (PARTITION BY user_id ORDER BY count(*) DESC, active_persona_id) AS rank
            FROM sessions WHERE active_persona_id IS NOT NULL GROUP BY user_id, active_persona_id
        )
        SELECT u.*, fs.seed_id AS favourite_seed, fp.persona_id AS favourite_persona
        FROM u
        LEFT JOIN fs ON fs.user_id = u.user_id AND fs.rank = 1
        LEFT JOIN fp ON fp.user_id = u.user_id AND fp.rank = 1
        ORDER BY u.sessions DESC, u.user_id
        """,
    )


def stats(data: Source) -> pl.DataFrame:
    """One row of totals: sessions, users, messages, responses, exchanges, metadata entries, first
    and last activity; from today's oxios (0 for older data), tool calls, tool errors (flagged
    ``is_error``), projects and sessions that continue another (``parent_session_id``); and the
    agent runs: how many, how many are linked to the exchange they served, unlinked, and of those
    ambiguous (several exchanges matched; see ``sessionkit.tables._link``).

    Example:
        >>> import sessionkit as sk
        >>> sk.stats("build/sample-dataset")  # doctest: +SKIP
    """
    return frame(
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
            (SELECT max(updated_at) FROM sessions) AS last_updated,
            (SELECT count(*) FROM tool_calls)::BIGINT AS tool_calls,
            (SELECT count(*) FILTER (WHERE is_error) FROM tool_calls)::BIGINT AS tool_errors,
            (SELECT count(DISTINCT project_id) FROM sessions)::BIGINT AS projects,
            (SELECT count(parent_session_id) FROM sessions)::BIGINT AS sessions_with_parent,
            (SELECT count(*) FROM agents)::BIGINT AS agent_runs,
            (SELECT count(*) FROM agents WHERE linked_session_id IS NOT NULL)::BIGINT AS runs_linked,
            (SELECT count(*) FROM agents WHERE linked_session_id IS NULL)::BIGINT AS runs_unlinked,
            (SELECT count(*) FROM agents WHERE linked_session_id IS NULL AND link_candidates > 1)::BIGINT
                AS runs_ambiguous
        """,
    )
