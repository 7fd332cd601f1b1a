"""What today's oxios records: tool calls, projects, threads, and which generation of the shape."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sessionkit._options import check_option
from sessionkit.analytics._common import Source, bucket, frame, percentile_sql, wilson_sql
from sessionkit.tables import thread_roots

if TYPE_CHECKING:
    import polars as pl

__all__ = ["generations", "project_usage", "threads", "tool_sequences", "tool_usage"]

#: The percentiles of tool durations, in hundredths: p50, p90, p99.
_PERCENTS = (50, 90, 99)

_TOOL_GROUPS = {
    None: ("1", None),
    "persona": ("s.active_persona_id", "persona_id"),
    "project": ("s.project_id", "project_id"),
    "day": (bucket("t.timestamp", "day"), "day"),
    "week": (bucket("t.timestamp", "week"), "week"),
}


#: The session files' tool calls whose error flag an agent-run record gives (``checked``: ``session_id``,
#: ``step``, the record's ``is_error``): the calls of a turn linked to exactly one run whose calls
#: are the turn's, one for one (as many, the same tools in the same order).
_CHECKED_SQL = """
runs AS (
    SELECT linked_session_id AS session_id, linked_seq AS seq, min(agent_id) AS agent_id
    FROM agents
    WHERE linked_seq IS NOT NULL
    GROUP BY linked_session_id, linked_seq
    HAVING count(*) = 1
), turn AS (
    SELECT
        t.session_id, t.response_seq AS seq, t.step, t.tool_name, u.agent_id,
        row_number() OVER (PARTITION BY t.session_id, t.response_seq ORDER BY t.step) - 1 AS ord,
        count(*) OVER (PARTITION BY t.session_id, t.response_seq) AS n
    FROM tool_calls AS t
    JOIN runs AS u ON u.session_id = t.session_id AND u.seq = t.response_seq
), pair AS (
    SELECT turn.session_id, turn.seq, turn.step, turn.n, a.is_error
    FROM turn
    JOIN agent_tool_calls AS a ON a.agent_id = turn.agent_id AND a.ord = turn.ord AND a.tool = turn.tool_name
), ran AS (
    SELECT agent_id, count(*) AS n FROM agent_tool_calls GROUP BY agent_id
), whole AS (
    SELECT pair.session_id, pair.seq
    FROM pair
    JOIN runs AS u ON u.session_id = pair.session_id AND u.seq = pair.seq
    JOIN ran ON ran.agent_id = u.agent_id
    GROUP BY pair.session_id, pair.seq, pair.n, ran.n
    HAVING count(*) = pair.n AND pair.n = ran.n
), checked AS (
    SELECT pair.session_id, pair.step, pair.is_error
    FROM pair
    JOIN whole ON whole.session_id = pair.session_id AND whole.seq = pair.seq
)"""


def tool_usage(data: Source, *, by: str | None = None) -> pl.DataFrame:
    """Which tools the agent calls, how often they fail, and how long they take.

    One row per tool (``tool_name``), from the ``tool_calls`` table: ``calls``; ``sessions`` and
    ``responses`` that made them (a response: the one whose ``trajectory_range`` holds the call);
    ``errors``: calls that failed, by the agent-run record's ``is_error`` for the calls of a turn
    linked to one (oxios' chat route saves ``false`` in the session file for every call), else by
    the session file's flag; ``errors_flagged``: calls the session files flag; ``errors_source``:
    where ``errors`` came from, ``"agents"`` (every call checked against its run's record),
    ``"sessions"`` (none) or ``"both"``; ``agent_calls``: the calls checked against a record.
    A turn's calls are checked when exactly one run is linked to it and the run's calls are the
    turn's, one for one: as many, the same tools in the same order (``ord`` = position by
    ``step``). ``error_rate`` = errors / calls with a flag, and its
    95% Wilson interval ``error_rate_low`` .. ``error_rate_high`` (wide for rarely used tools);
    ``zero_duration``: calls with ``duration_ms`` 0, which oxios writes when it did not measure,
    left out of ``duration_p50_ms``, ``duration_p90_ms``, ``duration_p99_ms`` (exact, linear
    interpolation between ranks) and counted apart; ``duration_max_ms``.

    ``by`` adds a first column: ``persona_id`` or ``project_id`` of the session, or the ``day``
    / ``week`` (a DATE, UTC, weeks from Monday) of the call. Sorted by it (nulls last), then by
    calls, most first, then by name. Data without tool calls gives no rows.

    Example:
        >>> import sessionkit as sk
        >>> sk.tool_usage("build/modern-dataset")  # doctest: +SKIP
    """
    check_option("tool_usage", "by", by, tuple(_TOOL_GROUPS))
    group, column = _TOOL_GROUPS[by]
    source = "tool_calls AS t"
    if by in ("persona", "project"):
        source += " LEFT JOIN sessions AS s ON s.session_id = t.session_id"
    picks, percentiles = percentile_sql(_PERCENTS, value="v", count="c.timed", divisor="1.0", name="duration_p{p}_ms")
    same = "{a}.g IS NOT DISTINCT FROM c.g AND {a}.tool IS NOT DISTINCT FROM c.tool"
    result = frame(
        data,
        f"""
        WITH {_CHECKED_SQL}, x AS (
            SELECT
                {group} AS g, t.tool_name AS tool, t.session_id, t.response_seq,
                CASE WHEN k.is_error IS NOT NULL THEN k.is_error ELSE t.is_error END AS is_error,
                t.is_error AS flag, k.is_error IS NOT NULL AS checked, t.duration_ms AS v
            FROM {source}
            LEFT JOIN checked AS k ON k.session_id = t.session_id AND k.step = t.step
        ), c AS (
            SELECT
                g, tool,
                count(*)::BIGINT AS calls,
                count(DISTINCT session_id)::BIGINT AS sessions,
                count(*) FILTER (WHERE is_error)::BIGINT AS errors,
                count(*) FILTER (WHERE flag)::BIGINT AS errors_flagged,
                count(*) FILTER (WHERE checked)::BIGINT AS agent_calls,
                count(is_error)::BIGINT AS flagged,
                count(*) FILTER (WHERE v = 0)::BIGINT AS zero_duration,
                count(*) FILTER (WHERE v > 0)::BIGINT AS timed,
                max(v) AS duration_max_ms
            FROM x
            GROUP BY g, tool
        ), r AS (
            SELECT g, tool, count(*)::BIGINT AS responses
            FROM (SELECT DISTINCT g, tool, session_id, response_seq FROM x WHERE response_seq IS NOT NULL) AS d
            GROUP BY g, tool
        ), ranked AS (
            SELECT
                g, tool, v,
                row_number() OVER (PARTITION BY g, tool ORDER BY v) - 1 AS i,
                count(*) OVER (PARTITION BY g, tool) - 1 AS last
            FROM x
            WHERE v > 0
        ), o AS (
            SELECT g, tool, {picks}
            FROM ranked
            GROUP BY g, tool
        )
        SELECT
            c.g, c.tool AS tool_name, c.calls, c.sessions, coalesce(r.responses, 0)::BIGINT AS responses,
            c.errors,
            c.errors_flagged,
            CASE WHEN c.agent_calls = c.calls THEN 'agents' WHEN c.agent_calls = 0 THEN 'sessions' ELSE 'both' END
                AS errors_source,
            c.agent_calls,
            c.errors::DOUBLE / nullif(c.flagged, 0)::DOUBLE AS error_rate,
            {wilson_sql("c.errors", "(c.flagged - c.errors)", "low")} AS error_rate_low,
            {wilson_sql("c.errors", "(c.flagged - c.errors)", "high")} AS error_rate_high,
            c.zero_duration,
            {percentiles},
            c.duration_max_ms
        FROM c
        LEFT JOIN r ON {same.format(a="r")}
        LEFT JOIN o ON {same.format(a="o")}
        ORDER BY c.g ASC NULLS LAST, c.calls DESC, c.tool ASC NULLS LAST
        """,
    )
    return result.drop("g") if column is None else result.rename({"g": column})


#: How many consecutive tools ``tool_sequences`` looks at.
_SEQUENCE_LENGTHS = (2, 3, 4)


def tool_sequences(data: Source, *, n: int = 2, top: int = 20) -> pl.DataFrame:
    """The most frequent runs of ``n`` consecutive tool calls within one turn.

    A turn's calls are those of one response (``response_seq``), in ``step`` order; calls no
    response claims are left out. Columns: ``sequence`` (the tool names joined by `` → ``),
    ``count`` (runs, overlapping ones each counted: a → b → a → b holds a → b twice),
    ``sessions``, ``responses``. The ``top`` most frequent, ties by sequence.

    Example:
        >>> import sessionkit as sk
        >>> sk.tool_sequences("build/modern-dataset", n=3, top=5)  # doctest: +SKIP
    """
    check_option("tool_sequences", "n", n, _SEQUENCE_LENGTHS)
    if type(top) is not int or top < 1:
        msg = f"tool_sequences: top must be a whole number of 1 or more, not {top!r}"
        raise ValueError(msg)
    names = ", ".join(f"lead(tool_name, {k}) OVER w AS t{k}" for k in range(1, n))
    steps = ", ".join(f"lead(step, {k}) OVER w AS s{k}" for k in range(1, n))
    whole = " AND ".join(f"s{k} = step + {k}" for k in range(1, n))
    joined = " || ' → ' || ".join(
        ["coalesce(tool_name, '(no name)')"] + [f"coalesce(t{k}, '(no name)')" for k in range(1, n)]
    )
    return frame(
        data,
        f"""
        WITH x AS (
            SELECT session_id, response_seq, step, tool_name, {names}, {steps}
            FROM tool_calls
            WHERE response_seq IS NOT NULL
            WINDOW w AS (PARTITION BY session_id, response_seq ORDER BY step)
        )
        SELECT
            {joined} AS sequence,
            count(*)::BIGINT AS count,
            count(DISTINCT session_id)::BIGINT AS sessions,
            count(DISTINCT session_id || '/' || CAST(response_seq AS VARCHAR))::BIGINT AS responses
        FROM x
        WHERE {whole}
        GROUP BY 1
        ORDER BY count DESC, sequence
        LIMIT {top}
        """,
    )


_PROJECT_GROUPS = {
    None: ("1", None),
    "day": (bucket("s.created_at", "day"), "day"),
    "week": (bucket("s.created_at", "week"), "week"),
    "month": (bucket("s.created_at", "month"), "month"),
    "user": ("s.user_id", "user_id"),
    "persona": ("s.active_persona_id", "persona_id"),
}


def project_usage(data: Source, *, by: str | None = None) -> pl.DataFrame:
    """How busy each oxios project is.

    One row per ``project_id`` (null: sessions of no project): ``sessions``, ``users``,
    ``exchanges``, ``tool_calls`` and ``tool_errors`` (calls flagged ``is_error``) of its
    sessions. ``by`` adds a first column: the ``day`` / ``week`` / ``month`` (a DATE, UTC) the
    session was created, its ``user_id`` or ``persona_id``. Sorted by it (nulls last), then by
    sessions, most first, then by project (no project last).

    Example:
        >>> import sessionkit as sk
        >>> sk.project_usage("build/modern-dataset", by="month")  # doctest: +SKIP
    """
    check_option("project_usage", "by", by, tuple(_PROJECT_GROUPS))
    group, column = _PROJECT_GROUPS[by]
    result = frame(
        data,
        f"""
        WITH t AS (
            SELECT session_id, count(*) AS calls, count(*) FILTER (WHERE is_error) AS errors
            FROM tool_calls
            GROUP BY session_id
        )
        SELECT
            {group} AS g,
            s.project_id,
            count(*)::BIGINT AS sessions,
            count(DISTINCT s.user_id)::BIGINT AS users,
            coalesce(sum(s.exchange_count), 0)::BIGINT AS exchanges,
            coalesce(sum(t.calls), 0)::BIGINT AS tool_calls,
            coalesce(sum(t.errors), 0)::BIGINT AS tool_errors
        FROM sessions AS s
        LEFT JOIN t ON t.session_id = s.session_id
        GROUP BY 1, 2
        ORDER BY 1 ASC NULLS LAST, sessions DESC, s.project_id ASC NULLS LAST
        """,
    )
    return result.drop("g") if column is None else result.rename({"g": column})


def threads(data: Source) -> pl.DataFrame:
    """Conversations continued across sessions: one row per thread.

    A thread is a root and every session that continues it through ``parent_session_id``,
    directly or through others; sessions nobody continues and that continue nothing are not
    threads. Columns: ``root_session_id``; ``root_pruned`` (the root is not in the data: oxios
    pruned it, so the thread starts at its children); ``sessions`` (in the data); ``depth``
    (the longest chain of continuations in the data: 1 for a root and its children; a pruned
    root's children count as level 0); ``exchanges``; ``first_created`` and
    ``last_updated`` of its sessions. Sorted by sessions, most first, then by root. A chain of
    parents that loops (not something oxios writes) is cut where it meets itself.

    Example:
        >>> import sessionkit as sk
        >>> sk.threads("build/modern-dataset")  # doctest: +SKIP
    """
    import polars as pl

    rows = frame(
        data,
        "SELECT session_id, parent_session_id, exchange_count, created_at, updated_at FROM sessions ORDER BY session_id",
    )
    found = thread_roots(rows["session_id"].to_list(), rows["parent_session_id"].to_list())
    known = set(rows["session_id"].to_list())
    roots, depths = [root for root, _ in found], [depth for _, depth in found]
    tagged = rows.with_columns(
        pl.Series("root_session_id", roots, dtype=pl.String), pl.Series("depth", depths, dtype=pl.Int64)
    )
    result = (
        tagged.group_by("root_session_id")
        .agg(
            pl.len().cast(pl.Int64).alias("sessions"),
            pl.col("depth").max().alias("depth"),
            pl.col("exchange_count").sum().cast(pl.Int64).alias("exchanges"),
            pl.col("created_at").min().alias("first_created"),
            pl.col("updated_at").max().alias("last_updated"),
        )
        .with_columns((~pl.col("root_session_id").is_in(list(known))).alias("root_pruned"))
    )
    result = result.filter(pl.col("root_pruned") | (pl.col("sessions") > 1))
    return result.select(
        "root_session_id", "root_pruned", "sessions", "depth", "exchanges", "first_created", "last_updated"
    ).sort(["sessions", "root_session_id"], descending=[True, False])


def generations(data: Source) -> pl.DataFrame:
    """Which generation of the oxios session shape a fleet writes, month by month: the drift report.

    One row per month (a DATE, UTC, of the session's creation): ``sessions``, and how many of them
    carry each later part of the shape: ``with_seed_ids`` (an active seed or a response's seed:
    before oxios 1.9), ``with_trajectories`` (tool calls), ``with_projects``,
    ``with_reasoning``, ``with_threads`` (a parent session) and ``with_reasoning_segments``.

    Example:
        >>> import sessionkit as sk
        >>> sk.generations("build/modern-dataset")  # doctest: +SKIP
    """
    return frame(
        data,
        f"""
        WITH seeds AS (SELECT DISTINCT session_id FROM responses WHERE seed_id IS NOT NULL),
        calls AS (SELECT DISTINCT session_id FROM tool_calls),
        thoughts AS (SELECT DISTINCT session_id FROM reasoning),
        segmented AS (SELECT DISTINCT session_id FROM reasoning WHERE segments IS NOT NULL)
        SELECT
            {bucket("s.created_at", "month")} AS month,
            count(*)::BIGINT AS sessions,
            count(*) FILTER (WHERE s.active_seed_id IS NOT NULL OR seeds.session_id IS NOT NULL)::BIGINT AS with_seed_ids,
            count(calls.session_id)::BIGINT AS with_trajectories,
            count(s.project_id)::BIGINT AS with_projects,
            count(thoughts.session_id)::BIGINT AS with_reasoning,
            count(s.parent_session_id)::BIGINT AS with_threads,
            count(segmented.session_id)::BIGINT AS with_reasoning_segments
        FROM sessions AS s
        LEFT JOIN seeds ON seeds.session_id = s.session_id
        LEFT JOIN calls ON calls.session_id = s.session_id
        LEFT JOIN thoughts ON thoughts.session_id = s.session_id
        LEFT JOIN segmented ON segmented.session_id = s.session_id
        GROUP BY 1
        ORDER BY 1
        """,
    )
