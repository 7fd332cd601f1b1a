"""The Arrow contract: the table schemas, ``SessionTables``, and ``to_tables`` / back.

The schemas are declared here once, with their version in the schema metadata, and every
table is built with ``schema=`` — nothing is inferred from the data. Together the
tables hold every byte of information of the sessions: ``SessionTables.to_sessions()``
gives back sessions that write out to the very same files.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sessionkit import _lazy

# ``x as x``: not documented, for sessionkit's other packages, which may not import this
# package's private modules; free to change. __all__ holds the documented names.
from sessionkit.tables._schemas import AGENT_TABLE_NAMES as AGENT_TABLE_NAMES
from sessionkit.tables._schemas import (
    AGENT_TOOL_CALLS_SCHEMA,
    AGENTS_SCHEMA,
    ARCHIVE_SCHEMAS,
    MESSAGES_SCHEMA,
    METADATA_SCHEMA,
    REASONING_SCHEMA,
    RESPONSES_SCHEMA,
    SCHEMAS,
    SESSIONS_SCHEMA,
    TOOL_CALLS_SCHEMA,
)
from sessionkit.tables._schemas import CLUSTERING as CLUSTERING
from sessionkit.tables._schemas import ERRORS_SCHEMA as ERRORS_SCHEMA
from sessionkit.tables._schemas import LATER_TABLES as LATER_TABLES
from sessionkit.tables._schemas import RUNS_SCHEMA as RUNS_SCHEMA
from sessionkit.tables._schemas import SCHEMA_VERSION as SCHEMA_VERSION
from sessionkit.tables._schemas import TABLE_NAMES as TABLE_NAMES
from sessionkit.tables._schemas import Clustering as Clustering
from sessionkit.tables._schemas import empty_table as empty_table
from sessionkit.tables._schemas import int_times as int_times
from sessionkit.tables._schemas import table_of as table_of

if TYPE_CHECKING:
    from sessionkit.tables._agents import agent_json as agent_json
    from sessionkit.tables._agents import agent_rows as agent_rows
    from sessionkit.tables._agents import agent_tables as agent_tables
    from sessionkit.tables._builder import TableBuilder as TableBuilder
    from sessionkit.tables._builder import parse_timestamps as parse_timestamps
    from sessionkit.tables._builder import take_sessions as take_sessions
    from sessionkit.tables._builder import to_tables
    from sessionkit.tables._cluster import cluster_order as cluster_order
    from sessionkit.tables._html import tables_html as tables_html
    from sessionkit.tables._link import link_sql as link_sql
    from sessionkit.tables._rows import iter_session_json as iter_session_json
    from sessionkit.tables._session_tables import SessionTables
    from sessionkit.tables._session_tables import thread_roots as thread_roots

#: Names imported on first use (``SessionTables`` and ``to_tables`` documented, the others for
#: sessionkit's other packages, as above). The schemas need pyarrow alone; building and reading
#: tables also needs pyarrow.compute and the model, which commands such as ``sessionkit sql``
#: never touch (``pyarrow.compute`` alone is about 30 ms of their start-up).
_LAZY = {
    "agent_json": "sessionkit.tables._agents",
    "agent_rows": "sessionkit.tables._agents",
    "agent_tables": "sessionkit.tables._agents",
    "TableBuilder": "sessionkit.tables._builder",
    "parse_timestamps": "sessionkit.tables._builder",
    "take_sessions": "sessionkit.tables._builder",
    "to_tables": "sessionkit.tables._builder",
    "cluster_order": "sessionkit.tables._cluster",
    "tables_html": "sessionkit.tables._html",
    "link_sql": "sessionkit.tables._link",
    "iter_session_json": "sessionkit.tables._rows",
    "SessionTables": "sessionkit.tables._session_tables",
    "thread_roots": "sessionkit.tables._session_tables",
}


def __getattr__(name: str) -> Any:
    return _lazy.attribute(globals(), _LAZY, name)


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "AGENTS_SCHEMA",
    "AGENT_TOOL_CALLS_SCHEMA",
    "ARCHIVE_SCHEMAS",
    "MESSAGES_SCHEMA",
    "METADATA_SCHEMA",
    "REASONING_SCHEMA",
    "RESPONSES_SCHEMA",
    "SCHEMAS",
    "SESSIONS_SCHEMA",
    "TOOL_CALLS_SCHEMA",
    "SessionTables",
    "to_tables",
]
