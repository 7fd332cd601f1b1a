"""Periods of time that the data covers only in part, for the helpers, the charts and the report."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl

NS_PER_DAY = 86_400_000_000_000

#: SQL: the first and the last instant of the data, in nanoseconds: sessions created and updated,
#: messages and responses sent. What the data covers; periods it covers only in part are partial.
SPAN_SQL = """
SELECT min(first_ns)::BIGINT AS first_ns, max(last_ns)::BIGINT AS last_ns FROM (
    SELECT min(epoch_ns(created_at)) AS first_ns,
           max(greatest(epoch_ns(created_at), epoch_ns(updated_at))) AS last_ns FROM sessions
    UNION ALL SELECT min(epoch_ns(timestamp)), max(epoch_ns(timestamp)) FROM messages
    UNION ALL SELECT min(epoch_ns(timestamp)), max(epoch_ns(timestamp)) FROM responses
)
"""


def partial_periods(periods: pl.Series, unit: str, first_ns: int | None, last_ns: int | None) -> pl.Series:
    """Which periods (DATE starts of ``unit``: day, week, month) the span ``[first_ns, last_ns]`` covers only in part."""
    import polars as pl

    starts = periods.cast(pl.Int64) * NS_PER_DAY
    step = {"day": "1d", "week": "1w", "month": "1mo"}[unit]
    ends = periods.dt.offset_by(step).cast(pl.Int64) * NS_PER_DAY
    if first_ns is None or last_ns is None:
        return pl.Series("partial", [False] * len(periods), dtype=pl.Boolean)
    return ((starts < first_ns) | (ends - 1 > last_ns)).alias("partial")
