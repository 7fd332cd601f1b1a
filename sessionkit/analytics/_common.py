"""What the helpers share: how they run SQL, time buckets, phase order, percentiles."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from sessionkit._periods import NS_PER_DAY
from sessionkit.model import PHASES
from sessionkit.query import Data, connection, sql_string

if TYPE_CHECKING:
    import polars as pl

#: z of a two-sided 95% interval, for the Wilson score interval of a pass rate.
Z_95 = 1.959963984540054


@runtime_checkable
class SqlSource(Protocol):
    """Data on an engine other than DuckDB, which the helpers take like a dataset folder.

    ``sql_frame`` runs one query of a helper, written in DuckDB's dialect over the views
    ``sessions``, ``messages``, ``responses``, ``metadata`` and ``exchanges``, and returns its
    result as DuckDB would: the same rows in the same order, the same column names and dtypes.
    ``sessionkit.spark.register`` returns one; the helpers never import the engine.
    """

    def sql_frame(self, sql: str) -> pl.DataFrame:
        """The result of ``sql`` (DuckDB's dialect), fully read into a polars frame."""
        ...


#: What the helpers accept as data: what ``connect`` takes, or another engine's ``SqlSource``.
Source = Data | SqlSource


def run_sql(data: Source, sql: str, *, read_only: bool | None = None) -> pl.DataFrame:
    """Run one query over ``data`` as the helpers run theirs: a polars frame, fully read.

    ``data`` is what the helpers take: ``SessionTables``, a dataset folder, an ``sk.connect``
    connection (left open), or another engine's source (``sessionkit.spark.register``). The SQL
    is DuckDB's, over the views ``sk.connect`` makes (``sessions``, ``responses``, ``exchanges``,
    ...); the frame has its timestamps in UTC and its sums of integers as integers (DuckDB's own
    ``.pl()`` gives them as 128-bit decimals), as the helpers' frames do. A statement that is
    not a query (``CREATE``, ``SET``) gives what DuckDB reports for it, or an empty frame.

    ``read_only`` is ``sk.connect``'s: a dataset folder is locked down unless it is False, which
    is for SQL you trust (it then reads the folder with DuckDB's own Parquet reader: faster).

    Example:
        >>> import sessionkit as sk
        >>> sk.run_sql("build/sample-dataset", "SELECT count(*) AS n FROM exchanges")  # doctest: +SKIP
    """
    import polars as pl

    if isinstance(data, SqlSource):
        return data.sql_frame(sql)
    with connection(data, read_only=read_only) as con:
        result = con.sql(sql)
        return pl.DataFrame() if result is None else tidy(result.pl())


def frame(data: Source, sql: str) -> pl.DataFrame:
    """The result of one of the helpers' own queries over ``data``, fully read into a polars frame."""
    return run_sql(data, sql, read_only=False)


def tidy(result: pl.DataFrame) -> pl.DataFrame:
    """A DuckDB result as sessionkit hands it over: timestamps in UTC, integer sums as integers."""
    return whole_numbers(in_utc(result))


def whole_numbers(result: pl.DataFrame) -> pl.DataFrame:
    """Decimals of scale 0 as integers: DuckDB sums integers into HUGEINT, which reaches polars as
    ``decimal(38, 0)``; a sum is Int64 when every value fits, else Int128."""
    import polars as pl

    casts = []
    for name, kind in result.schema.items():
        if isinstance(kind, pl.Decimal) and kind.scale == 0:
            column = result[name]
            fits = column.null_count() == column.len() or (
                column.min() >= -(2**63) and column.max() < 2**63  # type: ignore[operator]
            )
            casts.append(pl.col(name).cast(pl.Int64 if fits else pl.Int128))
    return result.with_columns(casts) if casts else result


def in_utc(result: pl.DataFrame) -> pl.DataFrame:
    """Timestamps in UTC: DuckDB hands them over in the connection's time zone; sessionkit's are UTC."""
    import polars as pl

    stamps = [name for name, kind in result.schema.items() if isinstance(kind, pl.Datetime) and kind.time_zone]
    if stamps:
        result = result.with_columns(pl.col(stamps).dt.convert_time_zone("UTC"))
    return result


def day_number(ts: str) -> str:
    """SQL: whole UTC days since 1970-01-01 of a timestamp, exact to the nanosecond (floor, not truncation)."""
    ns = f"epoch_ns({ts})"
    return f"({ns} // {NS_PER_DAY} - CASE WHEN {ns} % {NS_PER_DAY} < 0 THEN 1 ELSE 0 END)"


def bucket(ts: str, unit: str) -> str:
    """SQL: the UTC day, ISO week (its Monday) or month (its first day) of a timestamp, as a DATE.

    Computed from the integer nanoseconds, so it does not depend on the connection's time zone.
    """
    day = f"(DATE '1970-01-01' + {day_number(ts)}::INTEGER)"
    if unit == "day":
        return day
    if unit == "week":  # 1970-01-01 was a Thursday: days since a Monday, modulo 7
        return f"(DATE '1969-12-29' + ((({day_number(ts)} + 3) // 7 - CASE WHEN ({day_number(ts)} + 3) % 7 < 0 THEN 1 ELSE 0 END) * 7)::INTEGER)"
    if unit == "month":
        return f"date_trunc('month', {day})::DATE"
    msg = f"no time bucket {unit!r}"
    raise ValueError(msg)


def _is_phase(phase: str, name: str) -> str:
    """SQL: ``phase`` is oxios' ``name`` in any case of its ASCII letters.

    ``lower`` alone folds more than ASCII on some engines (the Kelvin sign to ``k``), so the
    upper case must match too: no character outside ASCII has both an ASCII lower and an ASCII
    upper case, so every engine gives the same answer for any text. (``translate`` over A-Z
    did the same, at about 15 times the cost on DuckDB.)
    """
    return f"(lower({phase}) = {sql_string(name)} AND upper({phase}) = {sql_string(name.upper())})"


def phase_rank(phase: str) -> str:
    """SQL: 0..4 for the oxios phases in order (any case), 5 for any other value, 6 for null."""
    whens = " ".join(f"WHEN {_is_phase(phase, name)} THEN {i}" for i, name in enumerate(PHASES))
    return f"(CASE WHEN {phase} IS NULL THEN {len(PHASES) + 1} {whens} ELSE {len(PHASES)} END)"


def phase_of_rank(rank: str) -> str:
    """SQL: the oxios phase (as oxios writes it) of a rank 0..4; null for any other rank."""
    whens = " ".join(f"WHEN {i} THEN {sql_string(name)}" for i, name in enumerate(PHASES))
    return f"(CASE {rank} {whens} END)"


def phase_name(phase: str) -> str:
    """SQL: an oxios phase as oxios writes it (lowercase) whatever its case; other values as they are.

    Only ASCII letters are folded, so every engine gives the same answer for any text.
    """
    return f"coalesce({phase_of_rank(phase_rank(phase))}, {phase})"


def known_phases_sql() -> str:
    """SQL: a VALUES list of (phase, rank) for the oxios phases."""
    return "VALUES " + ", ".join(f"({sql_string(name)}, {i})" for i, name in enumerate(PHASES))


def percentile_sql(percents: Sequence[int], *, value: str, count: str, divisor: str, name: str) -> tuple[str, str]:
    """SQL pieces of exact percentiles: linear interpolation between ranks, as numpy's default.

    Over rows ranked ``i`` (0-based, by ``value``) among ``last + 1`` per group, the first piece
    aggregates, for each percentile p, the values around its rank (``lo{p}``, ``hi{p}``), in
    integers; the second turns them, read from ``o``, into ``name.format(p=p)`` columns, divided
    by ``divisor``, with ``count`` the number of values. Integer rank arithmetic keeps the result
    the same bits on every engine and run.
    """
    picks, columns = [], []
    for p in percents:
        at = f"(last * {p})"
        picks.append(
            f"max({value}) FILTER (WHERE i = {at} // 100) AS lo{p}, "
            f"max({value}) FILTER (WHERE i = {at} // 100 + CASE WHEN {at} % 100 > 0 THEN 1 ELSE 0 END) AS hi{p}"
        )
        fraction = f"(({count} - 1) * {p} % 100)::DOUBLE / 100.0"
        columns.append(
            f"(o.lo{p}::DOUBLE + (o.hi{p} - o.lo{p})::DOUBLE * {fraction}) / {divisor} AS {name.format(p=p)}"
        )
    return ", ".join(picks), ", ".join(columns)


def wilson_sql(passed: str, failed: str, bound: str) -> str:
    """SQL: the low or high end of the 95% Wilson score interval of passed / (passed + failed)."""
    n = f"({passed} + {failed})::DOUBLE"
    p = f"({passed}::DOUBLE / nullif({n}, 0))"
    z2 = f"{Z_95 * Z_95!r}"
    center = f"(({p} + {z2} / (2 * {n})) / (1 + {z2} / {n}))"
    half = f"({Z_95!r} * sqrt({p} * (1 - {p}) / {n} + {z2} / (4 * {n} * {n})) / (1 + {z2} / {n}))"
    if bound == "low":  # exactly 0 when nothing passed, 1 when nothing failed: no rounding dust
        return f"CASE WHEN {n} = 0 THEN NULL WHEN {passed} = 0 THEN 0.0 ELSE greatest(0.0, {center} - {half}) END"
    return f"CASE WHEN {n} = 0 THEN NULL WHEN {failed} = 0 THEN 1.0 ELSE least(1.0, {center} + {half}) END"
