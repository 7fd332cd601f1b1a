"""sessionkit: oxios agent sessions as analytics-ready tables.

Read oxios session files losslessly, turn them into four Arrow/Parquet tables, query them
with DuckDB, and answer the usual questions (seeds, personas, exchanges) in one call.

Example:
    >>> import sessionkit as sk
    >>> sessions = sk.read_sessions("data/oxios-sample")  # doctest: +SKIP
    >>> tables = sk.to_tables(sessions)  # doctest: +SKIP
    >>> sk.seed_usage(tables).head()  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sessionkit import _lazy
from sessionkit._version import __version__

if TYPE_CHECKING:
    from sessionkit._timestamp import Timestamp
    from sessionkit.analytics import (
        activity,
        evaluation_rates,
        exchange_counts,
        exchange_histogram,
        generations,
        get_session,
        metadata_keys,
        persona_usage,
        phase_funnel,
        project_usage,
        run_sql,
        seed_usage,
        stats,
        threads,
        tool_sequences,
        tool_usage,
        turn_latency,
        user_summary,
    )
    from sessionkit.archive import CompactSummary, ExportSummary, compact, export, restore
    from sessionkit.exceptions import (
        DatasetError,
        DatasetExistsError,
        DatasetLockedError,
        ExportError,
        MissingDependencyError,
        PrivacyError,
        SessionFormatError,
        SessionkitError,
        SessionkitWarning,
        SourceNotFoundError,
        SparkResultError,
        TargetExistsError,
    )
    from sessionkit.magic import load_ipython_extension
    from sessionkit.model import AgentResponse, Session, UserMessage
    from sessionkit.oxios import list_session_files, read_session, read_sessions, write_sessions
    from sessionkit.plot import (
        plot_activity,
        plot_cost,
        plot_evaluation_rates,
        plot_exchange_histogram,
        plot_latency_percentiles,
        plot_model_usage,
        plot_persona_usage,
        plot_phase_funnel,
        plot_project_usage,
        plot_seed_usage,
        plot_tool_durations,
        plot_tool_usage,
        plot_turn_latency,
    )
    from sessionkit.privacy import Privacy
    from sessionkit.query import connect, scan_parquet
    from sessionkit.report import write_report
    from sessionkit.storage import read_parquet, write_parquet
    from sessionkit.tables import (
        MESSAGES_SCHEMA,
        METADATA_SCHEMA,
        REASONING_SCHEMA,
        RESPONSES_SCHEMA,
        SESSIONS_SCHEMA,
        TOOL_CALLS_SCHEMA,
        SessionTables,
        to_tables,
    )

#: Where each public name lives: imported on first use, so that ``import sessionkit`` (and the
#: command line, which needs little of it) starts fast.
_LAZY = {
    "Timestamp": "sessionkit._timestamp",
    "activity": "sessionkit.analytics",
    "cost": "sessionkit.analytics",
    "evaluation_rates": "sessionkit.analytics",
    "exchange_counts": "sessionkit.analytics",
    "exchange_histogram": "sessionkit.analytics",
    "get_session": "sessionkit.analytics",
    "metadata_keys": "sessionkit.analytics",
    "model_usage": "sessionkit.analytics",
    "persona_usage": "sessionkit.analytics",
    "phase_funnel": "sessionkit.analytics",
    "generations": "sessionkit.analytics",
    "project_usage": "sessionkit.analytics",
    "run_sql": "sessionkit.analytics",
    "threads": "sessionkit.analytics",
    "tool_sequences": "sessionkit.analytics",
    "tool_usage": "sessionkit.analytics",
    "seed_usage": "sessionkit.analytics",
    "stats": "sessionkit.analytics",
    "turn_latency": "sessionkit.analytics",
    "user_summary": "sessionkit.analytics",
    "CompactSummary": "sessionkit.archive",
    "ExportSummary": "sessionkit.archive",
    "compact": "sessionkit.archive",
    "export": "sessionkit.archive",
    "restore": "sessionkit.archive",
    "restore_agents": "sessionkit.archive",
    "DatasetError": "sessionkit.exceptions",
    "DatasetExistsError": "sessionkit.exceptions",
    "DatasetLockedError": "sessionkit.exceptions",
    "ExportError": "sessionkit.exceptions",
    "MissingDependencyError": "sessionkit.exceptions",
    "PrivacyError": "sessionkit.exceptions",
    "SessionFormatError": "sessionkit.exceptions",
    "SessionkitError": "sessionkit.exceptions",
    "SessionkitWarning": "sessionkit.exceptions",
    "SourceNotFoundError": "sessionkit.exceptions",
    "SparkResultError": "sessionkit.exceptions",
    "TargetExistsError": "sessionkit.exceptions",
    "load_ipython_extension": "sessionkit.magic",
    "AgentResponse": "sessionkit.model",
    "Session": "sessionkit.model",
    "UserMessage": "sessionkit.model",
    "list_session_files": "sessionkit.oxios",
    "read_session": "sessionkit.oxios",
    "read_sessions": "sessionkit.oxios",
    "write_sessions": "sessionkit.oxios",
    "plot_activity": "sessionkit.plot",
    "plot_cost": "sessionkit.plot",
    "plot_evaluation_rates": "sessionkit.plot",
    "plot_exchange_histogram": "sessionkit.plot",
    "plot_latency_percentiles": "sessionkit.plot",
    "plot_model_usage": "sessionkit.plot",
    "plot_persona_usage": "sessionkit.plot",
    "plot_phase_funnel": "sessionkit.plot",
    "plot_seed_usage": "sessionkit.plot",
    "plot_project_usage": "sessionkit.plot",
    "plot_tool_durations": "sessionkit.plot",
    "plot_tool_usage": "sessionkit.plot",
    "plot_turn_latency": "sessionkit.plot",
    "Privacy": "sessionkit.privacy",
    "connect": "sessionkit.query",
    "write_report": "sessionkit.report",
    "read_parquet": "sessionkit.storage",
    "scan_parquet": "sessionkit.query",
    "write_parquet": "sessionkit.storage",
    "MESSAGES_SCHEMA": "sessionkit.tables",
    "METADATA_SCHEMA": "sessionkit.tables",
    "RESPONSES_SCHEMA": "sessionkit.tables",
    "SESSIONS_SCHEMA": "sessionkit.tables",
    "TOOL_CALLS_SCHEMA": "sessionkit.tables",
    "REASONING_SCHEMA": "sessionkit.tables",
    "SessionTables": "sessionkit.tables",
    "to_tables": "sessionkit.tables",
}


def __getattr__(name: str) -> Any:
    return _lazy.attribute(globals(), _LAZY, name)


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "MESSAGES_SCHEMA",
    "METADATA_SCHEMA",
    "REASONING_SCHEMA",
    "RESPONSES_SCHEMA",
    "SESSIONS_SCHEMA",
    "TOOL_CALLS_SCHEMA",
    "AgentResponse",
    "CompactSummary",
    "DatasetError",
    "DatasetExistsError",
    "DatasetLockedError",
    "ExportError",
    "ExportSummary",
    "MissingDependencyError",
    "Privacy",
    "PrivacyError",
    "Session",
    "SessionFormatError",
    "SessionTables",
    "SessionkitError",
    "SessionkitWarning",
    "SourceNotFoundError",
    "SparkResultError",
    "TargetExistsError",
    "Timestamp",
    "UserMessage",
    "__version__",
    "activity",
    "compact",
    "connect",
    "evaluation_rates",
    "exchange_counts",
    "exchange_histogram",
    "export",
    "generations",
    "get_session",
    "list_session_files",
    "load_ipython_extension",
    "metadata_keys",
    "persona_usage",
    "phase_funnel",
    "plot_activity",
    "plot_cost",
    "plot_evaluation_rates",
    "plot_exchange_histogram",
    "plot_latency_percentiles",
    "plot_model_usage",
    "plot_persona_usage",
    "plot_phase_funnel",
    "plot_project_usage",
    "plot_seed_usage",
    "plot_tool_durations",
    "plot_tool_usage",
    "plot_turn_latency",
    "project_usage",
    "read_parquet",
    "read_session",
    "read_sessions",
    "restore",
    "run_sql",
    "scan_parquet",
    "seed_usage",
    "stats",
    "threads",
    "to_tables",
    "tool_sequences",
    "tool_usage",
    "turn_latency",
    "user_summary",
    "write_parquet",
    "write_report",
    "write_sessions",
]
