"""How far turns get and how well and fast they go: phases, evaluations, latency."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sessionkit._options import check_option
from sessionkit.analytics._common import (
    Source,
    bucket,
    frame,
    known_phases_sql,
    percentile_sql,
    phase_name,
    phase_of_rank,
    phase_rank,
    wilson_sql,
)
from sessionkit.model import PHASES

if TYPE_CHECKING:
    import polars as pl

__all__ = ["evaluation_rates", "phase_funnel", "turn_latency"]

_UNKNOWN = len(PHASES)  # the rank of a phase sessionkit does not know; null is one more


def phase_funnel(data: Source, *, by: str | None = None) -> pl.DataFrame:
    """How far turns and sessions get through the oxios phases.

    One row per phase: the five oxios phases in lifecycle order, named as oxios writes them
    (``interview``, ``seed``, ``execute``, ``evaluate``, ``evolve``; always present, possibly
    with zeros, and matched whatever their case: ``Execute`` counts as ``execute``), then any
    other value seen (by name), then null (no phase recorded). Columns:

    - ``phase``
    - ``responses``: responses whose ``phase_reached`` is this phase, and ``response_share``
      of all responses;
    - ``responses_reached``: responses that got at least this far (for the oxios phases:
      this one or a later one; for other values: the same as ``responses``);
    - ``sessions``: sessions whose furthest phase is this one, and ``session_share`` of all
      sessions with a response. The furthest phase is the latest oxios phase among the
      session's responses; failing that, the first other value by name; failing that, null.
      Sessions without responses are not in the funnel.
    - ``sessions_reached``: sessions whose furthest phase is this one or a later one.

    ``by="seed"`` adds a first column ``seed_id``: the responses of each seed (their own
    ``seed_id``), and per seed the sessions by the furthest phase of their responses with
    that seed. ``by="persona"`` adds ``persona_id``, the session's active persona. Sorted by
    that column (nulls last), then phase order. Shares are within the group.

    Example:
        >>> import sessionkit as sk
        >>> sk.phase_funnel("build/sample-dataset")  # doctest: +SKIP
    """
    check_option("phase_funnel", "by", by, (None, "seed", "persona"))
    group, source, column = {
        None: ("1", "responses AS r", None),
        "seed": ("r.seed_id", "responses AS r", "seed_id"),
        "persona": (
            "s.active_persona_id",
            "responses AS r LEFT JOIN sessions AS s ON s.session_id = r.session_id",
            "persona_id",
        ),
    }[by]
    groups = "SELECT 1 AS g" if by is None else "SELECT DISTINCT g FROM r"
    result = frame(
        data,
        f"""
        WITH r AS (
            SELECT
                {group} AS g, r.session_id,
                {phase_name("r.phase_reached")} AS phase, {phase_rank("r.phase_reached")} AS rank
            FROM {source}
        ), known AS (
            SELECT * FROM ({known_phases_sql()}) AS k(phase, rank)
        ), rows AS (
            SELECT groups.g, known.phase, known.rank FROM ({groups}) AS groups CROSS JOIN known
            UNION
            SELECT DISTINCT g, phase, rank FROM r WHERE rank >= {_UNKNOWN}
        ), resp AS (
            SELECT g, phase, count(*) AS n FROM r GROUP BY ALL
        ), furthest AS (
            -- the latest oxios phase, failing that the first other value by name: one
            -- aggregation, no sort
            SELECT g, session_id, coalesce(
                {phase_of_rank(f"max(rank) FILTER (WHERE rank < {_UNKNOWN})")},
                min(phase) FILTER (WHERE rank = {_UNKNOWN})
            ) AS phase
            FROM r
            GROUP BY g, session_id
        ), sess AS (
            SELECT g, phase, count(*) AS n FROM furthest GROUP BY ALL
        ), totals AS (
            SELECT g, sum(n)::BIGINT AS responses, sum(sessions)::BIGINT AS sessions FROM (
                SELECT g, n, 0 AS sessions FROM resp
                UNION ALL
                SELECT g, 0 AS n, n AS sessions FROM sess
            ) GROUP BY ALL
        ), counted AS (
            SELECT
                rows.g, rows.phase, rows.rank,
                coalesce(resp.n, 0)::BIGINT AS responses,
                coalesce(sess.n, 0)::BIGINT AS sessions,
                totals.responses AS all_responses,
                totals.sessions AS all_sessions
            FROM rows
            LEFT JOIN resp ON resp.g IS NOT DISTINCT FROM rows.g AND resp.phase IS NOT DISTINCT FROM rows.phase
            LEFT JOIN sess ON sess.g IS NOT DISTINCT FROM rows.g AND sess.phase IS NOT DISTINCT FROM rows.phase
            LEFT JOIN totals ON totals.g IS NOT DISTINCT FROM rows.g
        )
        SELECT
            g,
            phase,
            responses,
            responses / nullif(all_responses, 0) AS response_share,
            CASE WHEN rank < {_UNKNOWN} THEN sum(CASE WHEN rank < {_UNKNOWN} THEN responses ELSE 0 END)
                OVER (PARTITION BY g ORDER BY rank DESC, phase ROWS UNBOUNDED PRECEDING)
                ELSE responses END::BIGINT AS responses_reached,
            sessions,
            sessions / nullif(all_sessions, 0) AS session_share,
            CASE WHEN rank < {_UNKNOWN} THEN sum(CASE WHEN rank < {_UNKNOWN} THEN sessions ELSE 0 END)
                OVER (PARTITION BY g ORDER BY rank DESC, phase ROWS UNBOUNDED PRECEDING)
                ELSE sessions END::BIGINT AS sessions_reached
        FROM counted
        ORDER BY g ASC NULLS LAST, rank, phase
        """,
    )
    return result.drop("g") if column is None else result.rename({"g": column})


_RATE_GROUPS = {
    "seed": ("r.seed_id", "seed_id"),
    "persona": ("s.active_persona_id", "persona_id"),
    "phase": (phase_name("r.phase_reached"), "phase"),
    "day": (bucket("r.timestamp", "day"), "day"),
    "week": (bucket("r.timestamp", "week"), "week"),
}


def evaluation_rates(data: Source, *, by: str = "seed") -> pl.DataFrame:
    """How often responses pass evaluation, per seed, persona, phase, day or week.

    Columns: the group (``seed_id``, ``persona_id`` of the session, ``phase``, or a ``day`` /
    ``week`` DATE of the response's timestamp, UTC, weeks from Monday), ``responses``,
    ``passed``, ``failed``, ``unknown`` (``evaluation_passed`` is null), ``pass_rate`` =
    passed / (passed + failed) (null when both are 0), and the 95% Wilson score interval
    ``pass_rate_low`` .. ``pass_rate_high``, wide for small groups so they are not
    over-read. Sorted by the group (phases as in ``phase_funnel``: oxios' five in lifecycle
    order, lowercase whatever their case in the files, then others by name), nulls last.

    Example:
        >>> import sessionkit as sk
        >>> sk.evaluation_rates("build/sample-dataset", by="phase")  # doctest: +SKIP
    """
    check_option("evaluation_rates", "by", by, tuple(_RATE_GROUPS))
    group, column = _RATE_GROUPS[by]
    source = "responses AS r"
    if by == "persona":
        source += " LEFT JOIN sessions AS s ON s.session_id = r.session_id"
    order = f"{phase_rank('g')}, g" if by == "phase" else "g ASC NULLS LAST"
    result = frame(
        data,
        f"""
        WITH c AS (
            SELECT
                {group} AS g,
                count(*)::BIGINT AS responses,
                count(*) FILTER (r.evaluation_passed)::BIGINT AS passed,
                count(*) FILTER (NOT r.evaluation_passed)::BIGINT AS failed,
                count(*) FILTER (r.evaluation_passed IS NULL)::BIGINT AS unknown
            FROM {source}
            GROUP BY ALL
        )
        SELECT
            g, responses, passed, failed, unknown,
            passed / nullif(passed + failed, 0) AS pass_rate,
            {wilson_sql("passed", "failed", "low")} AS pass_rate_low,
            {wilson_sql("passed", "failed", "high")} AS pass_rate_high
        FROM c
        ORDER BY {order}
        """,
    )
    return result.rename({"g": column})


_LATENCY_GROUPS = {
    None: ("1", None),
    "seed": ("r.seed_id", "seed_id"),
    "persona": ("s.active_persona_id", "persona_id"),
    "phase": (phase_name("r.phase_reached"), "phase"),
    "day": (bucket("coalesce(m.timestamp, r.timestamp)", "day"), "day"),
}


#: The percentiles turn_latency reports, in hundredths: p50, p90, p99.
_PERCENTS = (50, 90, 99)


def turn_latency(data: Source, *, by: str | None = None) -> pl.DataFrame:
    """How long the agent takes to answer: response timestamp minus user-message timestamp.

    Every user message is paired with the response at its position. Columns:

    - ``exchanges``: pairs with both a message and a response;
    - ``count``: those with a latency of zero or more, which the statistics describe:
      ``mean_s``, ``p50_s``, ``p90_s``, ``p99_s`` (linear interpolation between ranks, as
      numpy's default) and ``max_s``, in seconds (null when ``count`` is 0);
    - ``negative``: pairs whose response is stamped before the message (clock trouble);
    - ``missing``: messages without a response at their position, and responses without a
      message: no latency can be had.

    The statistics are computed from the exact integer nanoseconds and turned into seconds
    last, so they do not depend on the order rows are read in: the same data gives the same
    bits on every run, with any number of threads, on DuckDB and on Spark.

    ``by`` adds a first column: ``seed_id`` or ``phase`` of the response, ``persona_id`` of
    the session, or ``day`` (a DATE, UTC) of the message. Sorted by it (phases as in
    ``phase_funnel``), nulls last; with ``by=None`` one row.

    Example:
        >>> import sessionkit as sk
        >>> sk.turn_latency("build/sample-dataset", by="phase")  # doctest: +SKIP
    """
    check_option("turn_latency", "by", by, tuple(_LATENCY_GROUPS))
    group, column = _LATENCY_GROUPS[by]
    source = "messages AS m FULL OUTER JOIN responses AS r ON r.session_id = m.session_id AND r.seq = m.seq"
    if by == "persona":
        source += " LEFT JOIN sessions AS s ON s.session_id = coalesce(m.session_id, r.session_id)"
    order = f"{phase_rank('c.g')}, c.g" if by == "phase" else "c.g ASC NULLS LAST"
    # The p-th percentile of n sorted values sits at rank (n - 1) * p / 100, between the
    # values of ranks lo (its floor) and hi (its ceiling); rank arithmetic in integers.
    picks, percentiles = percentile_sql(_PERCENTS, value="ns", count="count", divisor="1e9", name="p{p}_s")
    result = frame(
        data,
        f"""
        WITH x AS (
            SELECT {group} AS g, epoch_ns(r.timestamp) - epoch_ns(m.timestamp) AS ns
            FROM {source}
        ), c AS (
            SELECT
                g,
                count(ns)::BIGINT AS exchanges,
                count(*) FILTER (ns >= 0)::BIGINT AS count,
                count(*) FILTER (ns < 0)::BIGINT AS negative,
                count(*) FILTER (ns IS NULL)::BIGINT AS missing,
                sum(ns::DECIMAL(38, 0)) FILTER (ns >= 0) AS total_ns,
                max(ns) FILTER (ns >= 0) AS max_ns
            FROM x
            GROUP BY ALL
        ), ranked AS (
            SELECT
                g, ns,
                row_number() OVER (PARTITION BY g ORDER BY ns) - 1 AS i,
                count(*) OVER (PARTITION BY g) - 1 AS last
            FROM x
            WHERE ns >= 0
        ), o AS (
            SELECT g, {picks}
            FROM ranked
            GROUP BY ALL
        )
        SELECT
            c.g, exchanges, count, negative, missing,
            total_ns::DOUBLE / count::DOUBLE / 1e9 AS mean_s,
            {percentiles},
            max_ns::DOUBLE / 1e9 AS max_s
        FROM c LEFT JOIN o ON o.g IS NOT DISTINCT FROM c.g
        ORDER BY {order}
        """,
    )
    if column is None:
        import polars as pl

        result = result.drop("g")
        if result.height == 0:  # no rows at all: one row of zeros, as for any empty group
            result = pl.DataFrame(
                [[0], [0], [0], [0], [None], [None], [None], [None], [None]],
                schema=result.schema,
                orient="col",
            )
        return result
    return result.rename({"g": column})
