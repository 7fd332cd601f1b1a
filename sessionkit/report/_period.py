"""The period a report covers, the one before it, and the data restricted to either.

A period is a half-open span of UTC instants, ``[since, until)``, in integer nanoseconds. A
session belongs to the period its ``created_at`` falls in; its messages, responses, metadata
and every other row that carries its ``session_id`` go with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sessionkit._periods import NS_PER_DAY
from sessionkit._timestamp import Timestamp, time_text

if TYPE_CHECKING:
    import duckdb
    import polars as pl

__all__ = ["DEFAULT_SINCE", "Period", "PeriodSource", "choose_period", "fmt_ns", "parse_since", "parse_until"]

NS_PER_S = 1_000_000_000
_UNITS = {"h": 3_600 * NS_PER_S, "d": NS_PER_DAY, "w": 7 * NS_PER_DAY}
_RELATIVE = re.compile(r"^(\d{1,5})([hdw])$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_NAIVE = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?$")

#: What a report covers unless told: the last 28 days of the data.
DEFAULT_SINCE = "28d"

#: What --since and --until take, for messages.
BOUNDS_HELP = (
    "a date (2026-10-01, midnight UTC), a date-time (2026-10-01T12:00:00Z; without an offset, UTC), "
    "for --since also a length back from --until (12h, 28d, 4w) or 'all'"
)

Since = str | datetime | date | timedelta | None
Until = str | datetime | date | None


@dataclass(frozen=True)
class Period:
    """``[since, until)`` in integer nanoseconds since 1970-01-01 UTC."""

    since: int
    until: int

    @property
    def length(self) -> int:
        """The period's length in nanoseconds."""
        return self.until - self.since

    def previous(self) -> Period:
        """The period of the same length that ends where this one starts."""
        return Period(self.since - self.length, self.since)

    def describe(self) -> str:
        """``2026-09-30 10:47:43Z to 2026-10-28 10:47:43Z (28 days)``."""
        return f"{fmt_ns(self.since)} to {fmt_ns(self.until)} ({length_text(self.length)})"


def fmt_ns(ns: int) -> str:
    """An instant to the second (truncated), as ``2026-10-28 10:47:42Z``; the nanoseconds are in the data."""
    return time_text(ns, fraction="none", sep=" ")


def datetime_ns(value: datetime) -> int:
    """The instant of a ``datetime`` in nanoseconds; one without a zone is UTC."""
    return Timestamp.from_datetime(value if value.tzinfo is not None else value.replace(tzinfo=UTC)).ns


def length_text(ns: int) -> str:
    """A length as people say it: ``28 days``, ``1 day 6 h``, ``5 h 30 min``."""
    days, rest = divmod(ns, NS_PER_DAY)
    hours, rest = divmod(rest, 3_600 * NS_PER_S)
    minutes = rest // (60 * NS_PER_S)
    parts = []
    if days:
        parts.append(f"{days:,} day{'s' if days != 1 else ''}")
    if hours:
        parts.append(f"{hours} h")
    if minutes and not days:
        parts.append(f"{minutes} min")
    return " ".join(parts) or "under a minute"


def _instant(value: str | datetime | date, option: str) -> int:
    """An absolute bound in nanoseconds; dates are their midnight (UTC), naive times are UTC."""
    if isinstance(value, datetime):
        return datetime_ns(value)
    if isinstance(value, date):
        return (value - date(1970, 1, 1)).days * NS_PER_DAY
    text = value.strip()
    try:
        if _DATE.match(text):
            return _instant(date.fromisoformat(text), option)
        if _NAIVE.match(text):
            text += ":00Z" if text.count(":") == 1 else "Z"
        return Timestamp.parse(text).ns
    except ValueError as err:
        msg = f"{option}: {value!r} is not a bound the report takes. Hint: give {BOUNDS_HELP}"
        raise ValueError(msg) from err


def parse_until(value: Until, last_ns: int | None) -> int | None:
    """The exclusive end: as given, or the second after the data's last activity (None: no data)."""
    if value is not None:
        return _instant(value, "until")
    if last_ns is None:
        return None
    return (last_ns // NS_PER_S + 1) * NS_PER_S


def parse_since(value: Since, until: int, first_ns: int | None) -> int:
    """The inclusive start: as given, a length back from ``until``, or ``"all"``: the data's first second."""
    if value is None:
        value = DEFAULT_SINCE
    if isinstance(value, timedelta):
        return until - (value // timedelta(microseconds=1)) * 1_000
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "all":
            return until if first_ns is None else min(until, first_ns - first_ns % NS_PER_S)
        relative = _RELATIVE.match(text)
        if relative:
            return until - int(relative.group(1)) * _UNITS[relative.group(2)]
    return _instant(value, "since")


def choose_period(con: duckdb.DuckDBPyConnection, since: Since, until: Until) -> Period | None:
    """The period of a report over ``con``'s sessions; None when there are no sessions and no bounds."""
    first, last = con.sql(
        "SELECT min(epoch_ns(created_at)), max(greatest(epoch_ns(created_at), epoch_ns(updated_at))) FROM sessions"
    ).fetchall()[0]
    end = parse_until(until, last)
    if end is None:
        return None
    start = parse_since(since, end, first)
    if start > end:
        msg = (
            f"the report's period starts ({fmt_ns(start)}) after it ends ({fmt_ns(end)}). "
            "Hint: --since must be before --until (or the data's last activity)"
        )
        raise ValueError(msg)
    return Period(start, end)


class PeriodSource:
    """The views of a connection restricted to the sessions created in a period (an ``SqlSource``).

    Each helper query runs with the views shadowed by common table expressions of the same
    name: ``sessions`` keeps the sessions created in ``[since, until)``; every view with a
    ``session_id`` keeps the rows of those sessions; a view with ``created_at`` but no
    ``session_id`` (and ``agents``, the runs) keeps the rows created in the period. So every
    helper answers for the period unchanged.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, period: Period) -> None:
        self.con = con
        self.period = period
        views = con.sql(
            "SELECT v.view_name, list(c.column_name) FROM duckdb_views() AS v "
            "JOIN duckdb_columns() AS c ON c.table_name = v.view_name AND c.schema_name = v.schema_name "
            "AND c.database_name = v.database_name "
            "WHERE NOT v.internal AND NOT v.temporary AND v.schema_name = 'main' "
            "AND v.database_name = current_database() AND NOT starts_with(v.view_name, '_') GROUP BY ALL"
        ).fetchall()
        #: The connection's views and their columns: what the data can hold.
        self.columns: dict[str, list[str]] = {name: list(cols) for name, cols in views}
        within = f"epoch_ns(created_at) >= {period.since} AND epoch_ns(created_at) < {period.until}"
        ctes = [f"sessions AS (SELECT * FROM main.sessions WHERE {within})"]
        for name, columns in sorted(views):
            if name == "sessions":
                continue
            if name == "agents":  # runs go by their creation: their session_id is oxios' own (never set)
                ctes.append(f'"{name}" AS (SELECT * FROM main."{name}" WHERE {within})')
            elif "session_id" in columns:
                ctes.append(
                    f'"{name}" AS (SELECT * FROM main."{name}" WHERE session_id IN (SELECT session_id FROM sessions))'
                )
            elif "created_at" in columns:
                ctes.append(f'"{name}" AS (SELECT * FROM main."{name}" WHERE {within})')
        self._ctes = ", ".join(ctes)

    def wrap(self, sql: str) -> str:
        """``sql`` with the period's common table expressions in front of its own."""
        body = sql.strip()
        if re.match(r"(?is)^with\s+recursive\b", body):
            return f"WITH {self._ctes} SELECT * FROM ({body})"
        if re.match(r"(?is)^with\b", body):
            return f"WITH {self._ctes}, {body[4:].lstrip()}"
        return f"WITH {self._ctes} {body}"

    def sql_frame(self, sql: str) -> pl.DataFrame:
        """The result of one helper query over the period, as DuckDB gives it (timestamps in UTC)."""
        from sessionkit.analytics import run_sql

        return run_sql(self.con, self.wrap(sql))

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """The rows of a query over the period."""
        return self.con.sql(self.wrap(sql)).fetchall()
