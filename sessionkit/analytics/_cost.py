"""Helpers over the agent-run records: what runs cost (``cost``) and how each model does (``model_usage``).

The engine selects one row per run; the sums, rates and percentiles are taken here, from
integers and with ``math.fsum`` for the dollars, so the result does not depend on the order
rows come in: the same bits on DuckDB and Spark, with any number of threads. (A SQL ``sum`` of
doubles rounds differently in another order.) Agent records are few (oxios keeps 30 days or
10,000 runs), so one row per run is small.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from sessionkit._options import check_option
from sessionkit.analytics._common import Z_95, Source, bucket, frame

if TYPE_CHECKING:
    import polars as pl

#: ``by`` of ``cost``: (SQL of the group over ``agents AS a`` and its linked ``sessions AS s``, column name).
_COST_GROUPS: dict[str, tuple[str, str]] = {
    "model": ("a.model_id", "model_id"),
    "project": ("a.project_id", "project_id"),
    "user": ("s.user_id", "user_id"),
    "persona": ("s.active_persona_id", "persona_id"),
    "day": (bucket("a.created_at", "day"), "day"),
    "week": (bucket("a.created_at", "week"), "week"),
    "month": (bucket("a.created_at", "month"), "month"),
}
_TIMES = ("day", "week", "month")

#: One row per run: its group, status, tokens, cost, exchange and run time (ns, null when not both stamps).
_RUNS_SQL = """
SELECT
    {group} AS g,
    {second} AS g2,
    a.status = 'Failed' AS failed,
    a.tokens_input,
    a.tokens_output,
    a.cost_usd,
    a.linked_session_id,
    a.linked_seq,
    epoch_ns(a.completed_at) - epoch_ns(a.started_at) AS run_ns
FROM agents AS a
LEFT JOIN sessions AS s ON s.session_id = a.linked_session_id
"""


def _runs(data: Source, group: str, second: str = "NULL") -> pl.DataFrame:
    return frame(data, _RUNS_SQL.format(group=group, second=second))


def _groups(runs: pl.DataFrame, keys: Iterable[str]) -> dict[tuple, list[dict[str, Any]]]:
    out: dict[tuple, list[dict[str, Any]]] = {}
    for row in runs.iter_rows(named=True):
        out.setdefault(tuple(row[k] for k in keys), []).append(row)
    return out


def _ratio(top: float | None, bottom: float) -> float | None:
    return None if top is None or not bottom else top / bottom


def _totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What ``cost`` reports of a group's runs."""
    tokens_in = sum(r["tokens_input"] for r in rows)
    tokens_out = sum(r["tokens_output"] for r in rows)
    dollars = math.fsum(r["cost_usd"] for r in rows)  # correctly rounded: any order, the same bits
    exchanges = len({(r["linked_session_id"], r["linked_seq"]) for r in rows if r["linked_seq"] is not None})
    return {
        "runs": len(rows),
        "failed_runs": sum(1 for r in rows if r["failed"]),
        "tokens_input": tokens_in,
        "tokens_output": tokens_out,
        "cost_usd": dollars,
        "exchanges": exchanges,
        "cost_per_exchange": _ratio(dollars, exchanges),
        "cost_per_1k_tokens": _ratio(dollars * 1000.0, tokens_in + tokens_out),
    }


def _sorted_keys(keys: Iterable[tuple], cost: Callable[[tuple], float], *, by_time: bool) -> list[tuple]:
    """Periods in order; other groups by cost (descending), then key; null keys last."""
    if by_time:
        return sorted(keys, key=lambda k: tuple((v is None, v) for v in k))
    return sorted(keys, key=lambda k: (-cost(k), tuple((v is None, "" if v is None else v) for v in k)))


def cost(data: Source, *, by: str = "model", every: str | None = None) -> pl.DataFrame:
    """What the agent runs cost, per model, project, user, persona, or period.

    One row per group, from the ``agents`` table (oxios' ``AgentInfo`` records): ``runs``,
    ``failed_runs`` (status ``Failed``), ``tokens_input``, ``tokens_output``, ``cost_usd``
    (oxios' estimate), ``exchanges`` (the distinct exchanges the runs are linked to; see
    ``docs/archive.md``), ``cost_per_exchange`` (``cost_usd / exchanges``, null when none) and
    ``cost_per_1k_tokens`` (null when no tokens).

    ``by``: ``"model"`` (``model_id``), ``"project"`` (``project_id`` of the run), ``"user"`` or
    ``"persona"`` (``user_id`` / ``persona_id`` of the session the run is linked to: null for
    unlinked runs), or ``"day"``, ``"week"``, ``"month"`` of the run's ``created_at`` (UTC,
    DATE). Periods are sorted in order; other groups by cost, most first, then by key; nulls last.

    ``every`` (``"day"``, ``"week"``, ``"month"``) splits the groups over time: a first column
    of that name, then the group, one row per period and group that had runs; periods in order,
    within one the groups as above. The cost over time per model is
    ``cost(data, by="model", every="week")`` (``plot_cost`` draws it stacked).

    Example:
        >>> import sessionkit as sk
        >>> sk.cost("build/modern-dataset", by="model")  # doctest: +SKIP
        >>> sk.cost("build/modern-dataset", by="project", every="day")  # doctest: +SKIP
    """
    import polars as pl

    check_option("cost", "by", by, tuple(_COST_GROUPS))
    check_option("cost", "every", every, (None, *_TIMES))
    group, column = _COST_GROUPS[by]
    period = _COST_GROUPS[every][0] if every is not None else "NULL"
    groups = _groups(_runs(data, group, period), ["g2", "g"])
    totals = {key: _totals(rows) for key, rows in groups.items()}
    overall: dict[tuple, list[float]] = {}  # each group's cost over all periods, to order the groups
    for key, t in totals.items():
        overall.setdefault(key[1:], []).append(t["cost_usd"])
    ordered = _sorted_keys(overall, lambda k: math.fsum(overall[k]), by_time=by in _TIMES)
    rank = {k: i for i, k in enumerate(ordered)}
    if every is None:
        keys = sorted(totals, key=lambda k: rank[k[1:]])
    else:
        keys = sorted(
            totals,
            key=lambda k: (k[0] is None, k[0], 0.0 if by in _TIMES else -totals[k]["cost_usd"], rank[k[1:]]),
        )
    schema: dict[str, Any] = {every: pl.Date} if every is not None else {}
    schema.update(
        {
            column: pl.Date if by in _TIMES else pl.String,
            "runs": pl.Int64,
            "failed_runs": pl.Int64,
            "tokens_input": pl.Int64,
            "tokens_output": pl.Int64,
            "cost_usd": pl.Float64,
            "exchanges": pl.Int64,
            "cost_per_exchange": pl.Float64,
            "cost_per_1k_tokens": pl.Float64,
        }
    )
    lead = (lambda key: {every: key[0]}) if every is not None else (lambda key: {})
    rows = [{**lead(key), column: key[1], **totals[key]} for key in keys]
    return pl.DataFrame(rows, schema=schema, orient="row")


#: ``by`` of ``model_usage``: (SQL of the second group, column name); None: per model only.
_MODEL_GROUPS: dict[str | None, tuple[str, str] | None] = {
    None: None,
    "day": (bucket("a.created_at", "day"), "day"),
    "week": (bucket("a.created_at", "week"), "week"),
    "project": ("a.project_id", "project_id"),
}
#: The run-time percentiles model_usage reports, in hundredths.
_PERCENTS = (50, 90)


def _percentile(ordered: list[int], p: int) -> float | None:
    """The p-th percentile of sorted integers, interpolated linearly between ranks (numpy's default)."""
    if not ordered:
        return None
    last = len(ordered) - 1
    lo, rest = divmod(last * p, 100)
    hi = lo + (1 if rest else 0)
    return (ordered[lo] + (ordered[hi] - ordered[lo]) * (rest / 100.0)) / 1e9


def wilson(failed: int, runs: int) -> tuple[float | None, float | None]:
    """The 95% Wilson score interval of ``failed / runs`` (None, None when there are no runs)."""
    if not runs:
        return None, None
    n, p, z2 = float(runs), failed / runs, Z_95 * Z_95
    center = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z_95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    low = 0.0 if failed == 0 else max(0.0, center - half)
    high = 1.0 if failed == runs else min(1.0, center + half)
    return low, high


def model_usage(data: Source, *, by: str | None = None) -> pl.DataFrame:
    """How each model does: runs, failures, tokens, cost and run time.

    One row per ``model_id`` (null: runs oxios recorded no model for), from the ``agents``
    table: ``runs``, ``failed_runs`` (status ``Failed``), ``failure_rate`` with its 95% Wilson
    interval ``failure_low`` / ``failure_high``, ``tokens_input``, ``tokens_output``,
    ``cost_usd``, ``timed_runs`` (runs with both ``started_at`` and ``completed_at``) and the
    run time ``completed_at - started_at`` of those, ``duration_p50_s`` and ``duration_p90_s``
    (seconds; linear interpolation between ranks, from the exact nanoseconds).

    ``by`` adds a second column: ``day`` or ``week`` (UTC DATE of ``created_at``), or
    ``project_id``. Sorted by model (nulls last), then by it.

    Example:
        >>> import sessionkit as sk
        >>> sk.model_usage("build/modern-dataset")  # doctest: +SKIP
    """
    import polars as pl

    check_option("model_usage", "by", by, tuple(_MODEL_GROUPS))
    second = _MODEL_GROUPS[by]
    runs = _runs(data, "a.model_id", second[0] if second else "NULL")
    groups = _groups(runs, ["g", "g2"])
    rows = []
    for key in sorted(groups, key=lambda k: tuple((v is None, "" if v is None else v) for v in k)):
        members = groups[key]
        failed = sum(1 for r in members if r["failed"])
        low, high = wilson(failed, len(members))
        times = sorted(r["run_ns"] for r in members if r["run_ns"] is not None)
        row = {"model_id": key[0]}
        if second is not None:
            row[second[1]] = key[1]
        row.update(
            {
                "runs": len(members),
                "failed_runs": failed,
                "failure_rate": failed / len(members),
                "failure_low": low,
                "failure_high": high,
                "tokens_input": sum(r["tokens_input"] for r in members),
                "tokens_output": sum(r["tokens_output"] for r in members),
                "cost_usd": math.fsum(r["cost_usd"] for r in members),
                "timed_runs": len(times),
                **{f"duration_p{p}_s": _percentile(times, p) for p in _PERCENTS},
            }
        )
        rows.append(row)
    schema: dict[str, Any] = {"model_id": pl.String}
    if second is not None:
        schema[second[1]] = pl.String if by == "project" else pl.Date
    schema.update(
        {
            "runs": pl.Int64,
            "failed_runs": pl.Int64,
            "failure_rate": pl.Float64,
            "failure_low": pl.Float64,
            "failure_high": pl.Float64,
            "tokens_input": pl.Int64,
            "tokens_output": pl.Int64,
            "cost_usd": pl.Float64,
            "timed_runs": pl.Int64,
            "duration_p50_s": pl.Float64,
            "duration_p90_s": pl.Float64,
        }
    )
    return pl.DataFrame(rows, schema=schema, orient="row")
