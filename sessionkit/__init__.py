"""sessionkit: oxios agent sessions as analytics-ready tables.

Read oxios session files losslessly, turn them into four Arrow/Parquet tables, query them
with DuckDB, and answer the usual questions (seeds, personas, exchanges) in one call.

Example:
    >>> import sessionkit as sk
    >>> sessions = sk.read_sessions("data/oxios-sample")  # doctest: +SKIP
    >>> tables = sk.to_tables(sessions)  # doctest: +SKIP
    >>> sk.seed_usage(tables).head()  # doctest: +SKIP
"""

from sessionkit._timestamp import Timestamp
from sessionkit.analytics import (
    activity,
    evaluation_rates,
    exchange_counts,
    exchange_histogram,
    get_session,
    metadata_keys,
    persona_usage,
    phase_funnel,
    seed_usage,
    stats,
    turn_latency,
    user_summary,
)
from sessionkit.archive import ExportError, ExportSummary, export, restore
from sessionkit.exceptions import (
    DatasetError,
    DatasetExistsError,
    DatasetLockedError,
    PrivacyError,
    SessionFormatError,
    SessionkitError,
    SessionkitWarning,
    SourceNotFoundError,
)
from sessionkit.magic import load_ipython_extension
from sessionkit.model import AgentResponse, Session, UserMessage
from sessionkit.oxios import list_session_files, read_session, read_sessions, write_sessions
from sessionkit.plot import (
    plot_activity,
    plot_evaluation_rates,
    plot_exchange_histogram,
    plot_persona_usage,
    plot_phase_funnel,
    plot_seed_usage,
    plot_turn_latency,
)
from sessionkit.privacy import Privacy
from sessionkit.query import connect
from sessionkit.report import write_report
from sessionkit.storage import read_parquet, scan_parquet, write_parquet
from sessionkit.tables import (
    MESSAGES_SCHEMA,
    METADATA_SCHEMA,
    RESPONSES_SCHEMA,
    SESSIONS_SCHEMA,
    SessionTables,
    to_tables,
)

__version__ = "0.1.0"

__all__ = [
    "MESSAGES_SCHEMA",
    "METADATA_SCHEMA",
    "RESPONSES_SCHEMA",
    "SESSIONS_SCHEMA",
    "AgentResponse",
    "DatasetError",
    "DatasetExistsError",
    "DatasetLockedError",
    "ExportError",
    "ExportSummary",
    "Privacy",
    "PrivacyError",
    "Session",
    "SessionFormatError",
    "SessionTables",
    "SessionkitError",
    "SessionkitWarning",
    "SourceNotFoundError",
    "Timestamp",
    "UserMessage",
    "__version__",
    "activity",
    "connect",
    "evaluation_rates",
    "exchange_counts",
    "exchange_histogram",
    "export",
    "get_session",
    "list_session_files",
    "load_ipython_extension",
    "metadata_keys",
    "persona_usage",
    "phase_funnel",
    "plot_activity",
    "plot_evaluation_rates",
    "plot_exchange_histogram",
    "plot_persona_usage",
    "plot_phase_funnel",
    "plot_seed_usage",
    "plot_turn_latency",
    "read_parquet",
    "read_session",
    "read_sessions",
    "restore",
    "scan_parquet",
    "seed_usage",
    "stats",
    "to_tables",
    "turn_latency",
    "user_summary",
    "write_parquet",
    "write_report",
    "write_sessions",
]
