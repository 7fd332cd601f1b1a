"""The helpers on Apache Spark: the same tables and answers as DuckDB, past one machine.

``register(spark, dataset)`` creates the temp views ``sessions``, ``messages``, ``responses``,
``metadata`` and ``exchanges`` on a ``SparkSession`` and returns a ``SparkSource``, which every
helper takes in place of a dataset folder. Each helper's SQL is written once, for DuckDB;
on Spark it is transpiled with SQLGlot and the result comes back as a polars frame equal to
DuckDB's: the same rows in the same order, the same column names and dtypes (timestamps exact
to the nanosecond), every value equal to the bit. Where floats are computed, the helpers
do it with the same operations in the same order on both engines (``turn_latency`` sums and
ranks integer nanoseconds and divides last), so no engine's summation order or
interpolation formula shows. Your own SQL through ``SparkSource.sql_frame`` gets no such care:
``avg`` of floats, or ``quantile_cont`` (run as Spark's ``percentile``, which interpolates
as ``(hi - pos) * a + (pos - lo) * b`` where DuckDB does ``a + (b - a) * (pos - lo)``), can
differ from DuckDB in the last bits.

Each helper is also here as a function of ``(spark, dataset, ...)``, e.g.
``sessionkit.spark.seed_usage(spark, dataset, by="month")``, which registers the dataset
first. Needs ``pip install 'sessionkit[spark]'`` (pyspark 4 or newer, sqlglot) and Java 17 or
newer; importing this module loads neither, registering does.

Example:
    >>> from pyspark.sql import SparkSession
    >>> import sessionkit as sk
    >>> import sessionkit.spark
    >>> spark = SparkSession.builder.master("local[2]").getOrCreate()  # doctest: +SKIP
    >>> source = sessionkit.spark.register(spark, "build/sample-dataset")  # doctest: +SKIP
    >>> sk.seed_usage(source, by="month")  # doctest: +SKIP
    >>> spark.sql("SELECT seed_id, avg(latency_s) FROM exchanges GROUP BY ALL").show()  # doctest: +SKIP
    >>> sessionkit.spark.turn_latency(spark, "build/sample-dataset", by="day")  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from sessionkit import analytics
from sessionkit.spark._source import SparkSource, register

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = [
    "SparkSource",
    "activity",
    "cost",
    "evaluation_rates",
    "exchange_counts",
    "exchange_histogram",
    "generations",
    "get_session",
    "metadata_keys",
    "model_usage",
    "persona_usage",
    "phase_funnel",
    "project_usage",
    "register",
    "seed_usage",
    "stats",
    "threads",
    "tool_sequences",
    "tool_usage",
    "turn_latency",
    "user_summary",
]

T = TypeVar("T")


def _on_spark(helper: Callable[..., T]) -> Callable[..., T]:
    """``helper`` as a function of ``(spark, dataset, ...)``: register, then call it on the source."""
    name = helper.__name__

    @functools.wraps(helper)
    def on_spark(spark: SparkSession, dataset: str | os.PathLike[str], /, *args: object, **options: object) -> T:
        return helper(register(spark, dataset), *args, **options)

    parameters = list(inspect.signature(helper).parameters.values())[1:]
    first = [
        inspect.Parameter("spark", inspect.Parameter.POSITIONAL_ONLY, annotation="SparkSession"),
        inspect.Parameter("dataset", inspect.Parameter.POSITIONAL_ONLY, annotation="str | os.PathLike[str]"),
    ]
    on_spark.__signature__ = inspect.signature(helper).replace(parameters=[*first, *parameters])  # type: ignore[attr-defined]
    on_spark.__module__ = __name__
    on_spark.__qualname__ = name
    on_spark.__doc__ = (
        f"``sessionkit.{name}`` on Spark: ``sessionkit.{name}(register(spark, dataset), ...)``.\n\n"
        f"Registers the dataset's views on ``spark`` first (replacing temp views of the same names),\n"
        f"then returns what DuckDB would. The helper's own documentation follows.\n\n"
        f"{inspect.cleandoc(helper.__doc__ or '')}"
    )
    del on_spark.__wrapped__  # the signature is the one above, not the helper's
    return on_spark


activity = _on_spark(analytics.activity)
cost = _on_spark(analytics.cost)
evaluation_rates = _on_spark(analytics.evaluation_rates)
exchange_counts = _on_spark(analytics.exchange_counts)
exchange_histogram = _on_spark(analytics.exchange_histogram)
get_session = _on_spark(analytics.get_session)
metadata_keys = _on_spark(analytics.metadata_keys)
model_usage = _on_spark(analytics.model_usage)
persona_usage = _on_spark(analytics.persona_usage)
phase_funnel = _on_spark(analytics.phase_funnel)
seed_usage = _on_spark(analytics.seed_usage)
stats = _on_spark(analytics.stats)
turn_latency = _on_spark(analytics.turn_latency)
user_summary = _on_spark(analytics.user_summary)
tool_usage = _on_spark(analytics.tool_usage)
tool_sequences = _on_spark(analytics.tool_sequences)
project_usage = _on_spark(analytics.project_usage)
threads = _on_spark(analytics.threads)
generations = _on_spark(analytics.generations)
