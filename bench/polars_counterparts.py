"""The polars-lazy counterparts of five helpers: the same question, answered with polars alone.

Issue 11 asks that no helper be more than 2x slower on DuckDB than its polars-lazy counterpart.
A counterpart only counts if it computes the same frame, so each one here returns exactly the
helper's columns, rows and order, and ``check`` compares the two before anything is timed
(floats to 1e-9 relative: polars interpolates percentiles in floating point, the helper in
integers).

usage: python bench/polars_counterparts.py DATASET   (checks all five, prints OK or the difference)
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import polars as pl

Z_95 = 1.959963984540054  # sessionkit.analytics._common.Z_95


def _day(column: str) -> pl.Expr:
    return pl.col(column).dt.date()


def exchange_counts(lf: dict[str, pl.LazyFrame]) -> pl.DataFrame:
    """sk.exchange_counts()"""
    return lf["sessions"].select("session_id", "user_id", "exchange_count").sort("session_id").collect()


def seed_usage_by_day(lf: dict[str, pl.LazyFrame]) -> pl.DataFrame:
    """sk.seed_usage(by="day")"""
    sessions = (
        lf["sessions"]
        .group_by(_day("created_at").alias("day"), pl.col("active_seed_id").alias("seed_id"))
        .agg(pl.len().alias("sessions"), pl.col("user_id").n_unique().alias("users"))
    )
    responses = lf["responses"].group_by(_day("timestamp").alias("day"), "seed_id").agg(pl.len().alias("responses"))
    return (
        sessions.join(responses, on=["day", "seed_id"], how="full", coalesce=True, nulls_equal=True)
        .select(
            "day",
            "seed_id",
            pl.col("sessions").fill_null(0).cast(pl.Int64),
            pl.col("responses").fill_null(0).cast(pl.Int64),
            pl.col("users").fill_null(0).cast(pl.Int64),
        )
        .sort(["day", "sessions", "responses", "seed_id"], descending=[False, True, True, False], nulls_last=True)
        .collect()
    )


def persona_usage_by_user(lf: dict[str, pl.LazyFrame]) -> pl.DataFrame:
    """sk.persona_usage(by="user")"""
    return (
        lf["sessions"]
        .group_by("user_id", pl.col("active_persona_id").alias("persona_id"))
        .agg(
            pl.len().cast(pl.Int64).alias("sessions"),
            pl.col("user_id").n_unique().cast(pl.Int64).alias("users"),
            pl.col("exchange_count").cast(pl.Int64).sum().alias("exchanges"),
        )
        .sort(
            ["user_id", "sessions", "exchanges", "persona_id"], descending=[False, True, True, False], nulls_last=True
        )
        .collect()
    )


def _wilson(passed: pl.Expr, failed: pl.Expr, bound: str) -> pl.Expr:
    n = (passed + failed).cast(pl.Float64)
    p = passed.cast(pl.Float64) / n
    z2 = Z_95 * Z_95
    center = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z_95 * (p * (1 - p) / n + z2 / (4 * n * n)).sqrt() / (1 + z2 / n)
    if bound == "low":
        edge, value = passed == 0, pl.max_horizontal(pl.lit(0.0), center - half)
        return pl.when(n == 0).then(None).when(edge).then(0.0).otherwise(value)
    edge, value = failed == 0, pl.min_horizontal(pl.lit(1.0), center + half)
    return pl.when(n == 0).then(None).when(edge).then(1.0).otherwise(value)


def evaluation_rates_by_seed(lf: dict[str, pl.LazyFrame]) -> pl.DataFrame:
    """sk.evaluation_rates() (by seed)"""
    passed, failed = pl.col("passed"), pl.col("failed")
    return (
        lf["responses"]
        .group_by("seed_id")
        .agg(
            pl.len().cast(pl.Int64).alias("responses"),
            (pl.col("evaluation_passed") == True).sum().cast(pl.Int64).alias("passed"),  # noqa: E712
            (pl.col("evaluation_passed") == False).sum().cast(pl.Int64).alias("failed"),  # noqa: E712
            pl.col("evaluation_passed").null_count().cast(pl.Int64).alias("unknown"),
        )
        .with_columns(
            (passed.cast(pl.Float64) / pl.when(passed + failed > 0).then(passed + failed)).alias("pass_rate"),
            _wilson(passed, failed, "low").alias("pass_rate_low"),
            _wilson(passed, failed, "high").alias("pass_rate_high"),
        )
        .sort("seed_id", nulls_last=True)
        .collect()
    )


def turn_latency(lf: dict[str, pl.LazyFrame]) -> pl.DataFrame:
    """sk.turn_latency()"""
    messages = lf["messages"].select("session_id", "seq", pl.col("timestamp").alias("sent"))
    responses = lf["responses"].select("session_id", "seq", pl.col("timestamp").alias("answered"))
    ns = messages.join(responses, on=["session_id", "seq"], how="full", coalesce=True).select(
        (pl.col("answered").dt.epoch("ns") - pl.col("sent").dt.epoch("ns")).alias("ns")
    )
    ok = pl.col("ns").filter(pl.col("ns") >= 0)
    return ns.select(
        pl.col("ns").count().cast(pl.Int64).alias("exchanges"),
        (pl.col("ns") >= 0).sum().cast(pl.Int64).alias("count"),
        (pl.col("ns") < 0).sum().cast(pl.Int64).alias("negative"),
        pl.col("ns").null_count().cast(pl.Int64).alias("missing"),
        (ok.cast(pl.Float64).sum() / ok.count() / 1e9).alias("mean_s"),
        *[(ok.quantile(p / 100, "linear") / 1e9).alias(f"p{p}_s") for p in (50, 90, 99)],
        (ok.max().cast(pl.Float64) / 1e9).alias("max_s"),
    ).collect()


#: label in the results -> (the counterpart, the DuckDB helper call it answers as, its options)
COUNTERPARTS: dict[str, tuple[Callable[[dict[str, pl.LazyFrame]], pl.DataFrame], str, dict]] = {
    "exchange_counts": (exchange_counts, "exchange_counts", {}),
    "seed_usage by day": (seed_usage_by_day, "seed_usage", {"by": "day"}),
    "persona_usage by user": (persona_usage_by_user, "persona_usage", {"by": "user"}),
    "evaluation_rates by seed": (evaluation_rates_by_seed, "evaluation_rates", {}),
    "turn_latency": (turn_latency, "turn_latency", {}),
}


def check(dataset: str) -> list[str]:
    """Compare every counterpart with its helper on ``dataset``: the differences found (empty: all equal)."""
    from polars.testing import assert_frame_equal

    import sessionkit as sk

    lf = sk.scan_parquet(dataset)
    problems = []
    for label, (counterpart, helper, options) in COUNTERPARTS.items():
        try:
            assert_frame_equal(
                counterpart(lf), getattr(sk, helper)(dataset, **options), check_exact=False, rel_tol=1e-9
            )
        except AssertionError as error:
            problems.append(f"{label}: {error}")
    return problems


if __name__ == "__main__":
    found = check(sys.argv[1])
    print("\n".join(found) or "OK: every counterpart gives its helper's frame")
    sys.exit(1 if found else 0)
