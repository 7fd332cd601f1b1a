"""Helpers that answer the usual questions about sessions in one call each.

Each takes ``data``: ``SessionTables``, a dataset folder, or a connection from
``sessionkit.connect`` (left open); computes in DuckDB, so a dataset larger than memory
works; and returns a ``polars.DataFrame`` with documented columns in a deterministic order.
``data`` may also be a source on another engine (an ``SqlSource``, such as the
``sessionkit.spark.register`` of a dataset), which runs the same SQL and returns the same frame.
Options are keyword-only; a bad option value raises ``ValueError`` naming the choices.

Example:
    >>> import sessionkit as sk
    >>> sk.seed_usage("build/sample-dataset", by="month")  # doctest: +SKIP
"""

from sessionkit.analytics._census import get_session, metadata_keys
from sessionkit.analytics._common import run_sql
from sessionkit.analytics._cost import cost, model_usage
from sessionkit.analytics._quality import evaluation_rates, phase_funnel, turn_latency
from sessionkit.analytics._tools import generations, project_usage, threads, tool_sequences, tool_usage
from sessionkit.analytics._usage import (
    activity,
    exchange_counts,
    exchange_histogram,
    persona_usage,
    seed_usage,
    stats,
    user_summary,
)

__all__ = [
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
    "run_sql",
    "seed_usage",
    "stats",
    "threads",
    "tool_sequences",
    "tool_usage",
    "turn_latency",
    "user_summary",
]
