"""The Arrow contract: the table schemas, ``SessionTables``, and ``to_tables`` / back.

The schemas are declared here once, with their version in the schema metadata, and every
table is built with ``schema=`` — nothing is inferred from the data. Together the
tables hold every byte of information of the sessions: ``SessionTables.to_sessions()``
gives back sessions that write out to the very same files.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sessionkit import _lazy
from sessionkit.tables._schemas import (
    AGENT_TABLE_NAMES,
    AGENT_TOOL_CALLS_SCHEMA,
    AGENTS_SCHEMA,
    ARCHIVE_SCHEMAS,
    CLUSTERING,
    ERRORS_SCHEMA,
    LATER_TABLES,
    MESSAGES_SCHEMA,
    METADATA_SCHEMA,
    REASONING_SCHEMA,
    RESPONSES_SCHEMA,
    RUNS_SCHEMA,
    SCHEMA_VERSION,
    SCHEMAS,
    SESSIONS_SCHEMA,
    TABLE_NAMES,
    TOOL_CALLS_SCHEMA,
    Clustering,
    autosi_text,
    empty_table,
    table_of,
)

if TYPE_CHECKING:
    from sessionkit.tables._agents import agent_json, agent_tables
    from sessionkit.tables._builder import TableBuilder, parse_timestamps, take_sessions, to_tables
    from sessionkit.tables._cluster import cluster_order
    from sessionkit.tables._rows import iter_session_json, iter_sessions
    from sessionkit.tables._session_tables import SessionTables, thread_roots
    from sessionkit.tables._trajectory import step_owners

#: Names imported on first use. The schemas above need pyarrow alone; building and reading
#: tables also needs pyarrow.compute and the model, which commands such as ``sessionkit sql``
#: never touch (``pyarrow.compute`` alone is about 30 ms of their start-up).
_LAZY = {
    "agent_json": "sessionkit.tables._agents",
    "agent_tables": "sessionkit.tables._agents",
    "TableBuilder": "sessionkit.tables._builder",
    "parse_timestamps": "sessionkit.tables._builder",
    "take_sessions": "sessionkit.tables._builder",
    "to_tables": "sessionkit.tables._builder",
    "cluster_order": "sessionkit.tables._cluster",
    "iter_session_json": "sessionkit.tables._rows",
    "iter_sessions": "sessionkit.tables._rows",
    "SessionTables": "sessionkit.tables._session_tables",
    "thread_roots": "sessionkit.tables._session_tables",
    "step_owners": "sessionkit.tables._trajectory",
}


def __getattr__(name: str) -> Any:
    return _lazy.attribute(globals(), _LAZY, name)


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "AGENTS_SCHEMA",
    "AGENT_TABLE_NAMES",
    "AGENT_TOOL_CALLS_SCHEMA",
    "ARCHIVE_SCHEMAS",
    "CLUSTERING",
    "ERRORS_SCHEMA",
    "LATER_TABLES",
    "MESSAGES_SCHEMA",
    "METADATA_SCHEMA",
    "REASONING_SCHEMA",
    "RESPONSES_SCHEMA",
    "RUNS_SCHEMA",
    "SCHEMAS",
    "SCHEMA_VERSION",
    "SESSIONS_SCHEMA",
    "TABLE_NAMES",
    "TOOL_CALLS_SCHEMA",
    "Clustering",
    "SessionTables",
    "TableBuilder",
    "agent_json",
    "agent_tables",
    "autosi_text",
    "cluster_order",
    "empty_table",
    "iter_session_json",
    "iter_sessions",
    "parse_timestamps",
    "step_owners",
    "table_of",
    "take_sessions",
    "thread_roots",
    "to_tables",
]
