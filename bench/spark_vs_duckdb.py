"""The helpers on DuckDB and on a local Spark (local[2]), timed on the same dataset.

Both engines are warm: each call runs once, then ``runs`` more times, and the median counts.
DuckDB runs on one connection from ``sessionkit.connect`` (all cores), Spark on one
``SparkSource`` from ``sessionkit.spark.register``; opening them is timed apart. Spark runs
with its defaults but for no UI, ``spark.driver.memory`` (local mode: the driver is the
executor) and 4 shuffle partitions per core (the default, 200, is meant for clusters).
Every Spark result is checked against DuckDB's on the way: the same rows, every value exact.

usage: python bench/spark_vs_duckdb.py DATASET [--runs 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: What is timed: every helper with its default options, and the splits users reach for most.
CALLS: list[tuple[str, dict[str, Any]]] = [
    ("exchange_counts", {}),
    ("exchange_histogram", {}),
    ("stats", {}),
    ("user_summary", {}),
    ("metadata_keys", {}),
    ("seed_usage", {}),
    ("seed_usage", {"by": "day"}),
    ("persona_usage", {}),
    ("persona_usage", {"by": "user"}),
    ("activity", {}),
    ("activity", {"every": "1w"}),
    ("phase_funnel", {}),
    ("phase_funnel", {"by": "seed"}),
    ("evaluation_rates", {}),
    ("evaluation_rates", {"by": "day"}),
    ("turn_latency", {}),
    ("turn_latency", {"by": "persona"}),
]


def _median_seconds(call: Callable[[], object], runs: int) -> tuple[float, object]:
    result = call()  # warm-up
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        result = call()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), result


def local_spark(*, cores: int = 2, driver_memory: str = "6g") -> Any:
    """A local SparkSession as the benchmark uses it: ``local[cores]``, no UI, quiet."""
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master(f"local[{cores}]")
        .appName("sessionkit-bench")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.memory", driver_memory)
        .config("spark.sql.shuffle.partitions", str(4 * cores))  # the default 200 is for clusters
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def compare(dataset: str | Path, *, runs: int = 3, spark: Any = None) -> list[dict[str, Any]]:
    """Time every call of ``CALLS`` on DuckDB and on Spark: rows {helper, duckdb_s, spark_s, ratio}.

    ``ratio`` is Spark's time over DuckDB's. The first two rows time opening the dataset:
    ``connect`` for DuckDB, ``register`` for Spark. A Spark session is started (local[2]) and
    stopped unless one is given.

    Example:
        >>> rows = compare("bench/data/synth20000")  # doctest: +SKIP
    """
    import warnings

    from polars.testing import assert_frame_equal

    import sessionkit as sk
    from sessionkit.spark import register

    warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas", FutureWarning)
    own = spark is None
    spark = spark or local_spark()
    try:
        con_s, con = _median_seconds(lambda: sk.connect(dataset), runs)
        reg_s, source = _median_seconds(lambda: register(spark, dataset), runs)
        rows = [_row("open: sk.connect / spark.register", con_s, reg_s)]
        for name, options in CALLS:
            helper = getattr(sk, name)
            duck_s, want = _median_seconds(lambda h=helper, o=options: h(con, **o), runs)
            spark_s, got = _median_seconds(lambda h=helper, o=options: h(source, **o), runs)
            assert_frame_equal(got, want, check_exact=True)
            label = name + "".join(f" {key}={value}" for key, value in options.items())
            rows.append(_row(label, duck_s, spark_s))
            print(f"  {label:<32} DuckDB {duck_s:8.3f} s  Spark {spark_s:8.3f} s", file=sys.stderr, flush=True)
        return rows
    finally:
        if own:
            spark.stop()


def _row(helper: str, duckdb_s: float, spark_s: float) -> dict[str, Any]:
    return {
        "helper": helper,
        "duckdb_s": round(duckdb_s, 4),
        "spark_s": round(spark_s, 4),
        "ratio": round(spark_s / duckdb_s, 1) if duckdb_s else None,
    }


def markdown(rows: list[dict[str, Any]], sessions: int | None = None) -> str:
    """The rows as a markdown table, with a heading."""
    size = f" on {sessions:,} sessions" if sessions else ""
    lines = [
        f"## Helpers on DuckDB and on Spark local[2]{size}",
        "",
        "Warm, median of the runs, in one process each; every Spark result equal to DuckDB's, exactly.",
        "",
        "| helper | DuckDB s | Spark s | Spark / DuckDB |",
        "| --- | ---: | ---: | ---: |",
    ]
    lines += [f"| {r['helper']} | {r['duckdb_s']:.3f} | {r['spark_s']:.3f} | {r['ratio']}x |" for r in rows]
    return "\n".join([*lines, ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the rows as one line of JSON")
    args = parser.parse_args()
    rows = compare(args.dataset, runs=args.runs)
    print(json.dumps(rows) if args.json else markdown(rows))


if __name__ == "__main__":
    main()
