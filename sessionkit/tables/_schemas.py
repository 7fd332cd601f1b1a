"""The declared schemas of every table sessionkit writes: the contract with users' SQL."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import pyarrow as pa

#: Bumped whenever a column is added or changes meaning; stored in every schema's metadata.
SCHEMA_VERSION = "2"
_META = {b"sessionkit.schema_version": SCHEMA_VERSION.encode()}
#: The type of every oxios timestamp column: nanoseconds in UTC.
TIMESTAMP_NS = pa.timestamp("ns", tz="UTC")
_TS_US = pa.timestamp("us", tz="UTC")  # the archive's own clock times: microseconds are plenty

SESSIONS_SCHEMA = pa.schema(
    [
        pa.field("session_id", pa.string(), nullable=False),
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("active_seed_id", pa.string()),
        pa.field("active_persona_id", pa.string()),
        pa.field("created_at", TIMESTAMP_NS, nullable=False),
        pa.field("updated_at", TIMESTAMP_NS, nullable=False),
        pa.field("n_user_messages", pa.int32(), nullable=False),
        pa.field("n_agent_responses", pa.int32(), nullable=False),
        pa.field("exchange_count", pa.int32(), nullable=False),
        pa.field("extra", pa.string()),
        pa.field("field_order", pa.string()),
        pa.field("n_metadata", pa.int32(), nullable=False),
        pa.field("project_id", pa.string()),
        pa.field("parent_session_id", pa.string()),
    ],
    metadata=_META,
)
MESSAGES_SCHEMA = pa.schema(
    [
        pa.field("session_id", pa.string(), nullable=False),
        pa.field("seq", pa.int32(), nullable=False),
        pa.field("content", pa.string(), nullable=False),
        pa.field("timestamp", TIMESTAMP_NS, nullable=False),
        pa.field("extra", pa.string()),
        pa.field("field_order", pa.string()),
    ],
    metadata=_META,
)
RESPONSES_SCHEMA = pa.schema(
    [
        pa.field("session_id", pa.string(), nullable=False),
        pa.field("seq", pa.int32(), nullable=False),
        pa.field("content", pa.string(), nullable=False),
        pa.field("response_session_id", pa.string()),
        pa.field("seed_id", pa.string()),
        pa.field("phase_reached", pa.string()),
        pa.field("evaluation_passed", pa.bool_()),
        pa.field("timestamp", TIMESTAMP_NS, nullable=False),
        pa.field("extra", pa.string()),
        pa.field("field_order", pa.string()),
    ],
    metadata=_META,
)
METADATA_SCHEMA = pa.schema(
    [
        pa.field("session_id", pa.string(), nullable=False),
        pa.field("ord", pa.int32(), nullable=False),
        pa.field("key", pa.string(), nullable=False),
        pa.field("value", pa.string(), nullable=False),
    ],
    metadata=_META,
)
#: One row per tool call of a session (an element of oxios' ``trajectory_steps``).
#: A known field whose value does not fit its column (e.g. a timestamp not in chrono's form)
#: stays in ``extra`` under its own name, with the column null, so nothing is lost.
TOOL_CALLS_SCHEMA = pa.schema(
    [
        pa.field("session_id", pa.string(), nullable=False),
        pa.field("step", pa.int32(), nullable=False),
        pa.field("response_seq", pa.int32()),
        pa.field("tool_name", pa.string()),
        pa.field("tool_args", pa.string()),
        pa.field("tool_args_is_text", pa.bool_()),
        pa.field("output_summary", pa.string()),
        pa.field("duration_ms", pa.int64()),
        pa.field("is_error", pa.bool_()),
        pa.field("tool_call_id", pa.string()),
        pa.field("timestamp", TIMESTAMP_NS),
        pa.field("extra", pa.string()),
        pa.field("field_order", pa.string()),
    ],
    metadata=_META,
)
_SEGMENT = pa.struct([pa.field("before_step", pa.int32()), pa.field("text", pa.string())])
#: One row per reasoning record of a session (an element of oxios' ``reasoning_records``).
REASONING_SCHEMA = pa.schema(
    [
        pa.field("session_id", pa.string(), nullable=False),
        pa.field("ord", pa.int32(), nullable=False),
        pa.field("source", pa.string()),
        pa.field("content", pa.string()),
        pa.field("timestamp", TIMESTAMP_NS),
        pa.field("segments", pa.list_(_SEGMENT)),
        pa.field("extra", pa.string()),
        pa.field("field_order", pa.string()),
    ],
    metadata=_META,
)

#: One row per agent run (oxios' ``AgentInfo``, ``<state>/agents/<id>.json``). ``session_id`` is
#: the one oxios stored (it sets none today); ``linked_session_id`` / ``linked_seq`` name the
#: exchange sessionkit matched the run to (see ``sessionkit.archive`` for the rule).
AGENTS_SCHEMA = pa.schema(
    [
        pa.field("agent_id", pa.string(), nullable=False),
        pa.field("name", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("created_at", TIMESTAMP_NS, nullable=False),
        pa.field("started_at", TIMESTAMP_NS),
        pa.field("completed_at", TIMESTAMP_NS),
        pa.field("project_id", pa.string()),
        pa.field("error", pa.string()),
        pa.field("steps_completed", pa.int64(), nullable=False),
        pa.field("steps_total", pa.int64()),
        pa.field("tokens_input", pa.int64(), nullable=False),
        pa.field("tokens_output", pa.int64(), nullable=False),
        pa.field("cost_usd", pa.float64(), nullable=False),
        pa.field("model_id", pa.string()),
        pa.field("session_id", pa.string()),
        pa.field("linked_session_id", pa.string()),
        pa.field("linked_seq", pa.int32()),
        pa.field("link_candidates", pa.int32()),
        pa.field("extra", pa.string()),
        pa.field("field_order", pa.string()),
    ],
    metadata=_META,
)
#: One row per tool call of an agent run, with oxios' own error flag and start time.
AGENT_TOOL_CALLS_SCHEMA = pa.schema(
    [
        pa.field("agent_id", pa.string(), nullable=False),
        pa.field("ord", pa.int32(), nullable=False),
        pa.field("tool", pa.string(), nullable=False),
        pa.field("input", pa.string(), nullable=False),
        pa.field("output", pa.string(), nullable=False),
        pa.field("duration_ms", pa.int64(), nullable=False),
        pa.field("is_error", pa.bool_(), nullable=False),
        pa.field("tool_call_id", pa.string()),
        pa.field("timestamp", TIMESTAMP_NS),
        pa.field("extra", pa.string()),
        pa.field("field_order", pa.string()),
    ],
    metadata=_META,
)

#: One row per export run into a dataset: when, from where, what happened to every file.
RUNS_SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("started_at", _TS_US, nullable=False),
        pa.field("finished_at", _TS_US, nullable=False),
        pa.field("duration_s", pa.float64(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("seen", pa.int64(), nullable=False),
        pa.field("exported", pa.int64(), nullable=False),
        pa.field("unchanged", pa.int64(), nullable=False),
        pa.field("quarantined", pa.int64(), nullable=False),
        pa.field("vanished", pa.int64(), nullable=False),
        pa.field("ignored", pa.int64(), nullable=False),
        pa.field("sessions", pa.int64(), nullable=False),
        pa.field("jobs", pa.int32(), nullable=False),
        pa.field("sessionkit_version", pa.string(), nullable=False),
        pa.field("privacy", pa.string()),
    ],
    metadata=_META,
)
#: One row per source file that could not be read as a session (a copy is in quarantine/).
ERRORS_SCHEMA = pa.schema(
    [
        pa.field("file", pa.string(), nullable=False),
        pa.field("size", pa.int64(), nullable=False),
        pa.field("sha256", pa.string(), nullable=False),
        pa.field("error_class", pa.string(), nullable=False),
        pa.field("json_path", pa.string()),
        pa.field("byte_offset", pa.int64()),
        pa.field("message", pa.string(), nullable=False),
        pa.field("quarantined_as", pa.string(), nullable=False),
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("seen_at", _TS_US, nullable=False),
    ],
    metadata=_META,
)

#: The tables of a dataset, in the order they are written.
TABLE_NAMES = ("sessions", "messages", "responses", "metadata", "tool_calls", "reasoning")
#: The tables of the agent-run records, beside the session tables.
AGENT_TABLE_NAMES = ("agents", "agent_tool_calls")
SCHEMAS = {
    "sessions": SESSIONS_SCHEMA,
    "messages": MESSAGES_SCHEMA,
    "responses": RESPONSES_SCHEMA,
    "metadata": METADATA_SCHEMA,
    "tool_calls": TOOL_CALLS_SCHEMA,
    "reasoning": REASONING_SCHEMA,
    "agents": AGENTS_SCHEMA,
    "agent_tool_calls": AGENT_TOOL_CALLS_SCHEMA,
}
#: Tables added after the first datasets were written: a dataset without their folders
#: (made by an older sessionkit) reads as having no rows in them.
LATER_TABLES = frozenset({"tool_calls", "reasoning"})


@dataclass(frozen=True)
class Clustering:
    """Whose a table's rows are, and the order they are kept in within a dataset's files.

    Every row belongs to one row of an ``owner`` table (its session): ``key`` names the owner in
    both tables, and an export that replaces the owner replaces all its rows. Files hold rows
    ordered by the owner's ``time`` (a column of the owner table: when it was created), then by
    ``key``, then by ``within``, so that Parquet statistics let engines skip row groups for a
    time filter, and a dataset's Hive partitions (by month or day) are of that time.
    """

    owner: str
    key: str
    time: str
    within: tuple[str, ...] = ()

    def is_owner(self, table: str) -> bool:
        """True for the owner table itself (its rows are their own owners)."""
        return self.owner == table


#: How each table of a dataset is clustered; tables added later declare theirs here.
CLUSTERING = {
    "sessions": Clustering("sessions", "session_id", "created_at"),
    "messages": Clustering("sessions", "session_id", "created_at", ("seq",)),
    "responses": Clustering("sessions", "session_id", "created_at", ("seq",)),
    "metadata": Clustering("sessions", "session_id", "created_at", ("ord",)),
    "tool_calls": Clustering("sessions", "session_id", "created_at", ("step",)),
    "reasoning": Clustering("sessions", "session_id", "created_at", ("ord",)),
    "agents": Clustering("agents", "agent_id", "created_at"),
    "agent_tool_calls": Clustering("agents", "agent_id", "created_at", ("ord",)),
}

#: The archive's own tables, beside the session tables of a dataset made by export.
ARCHIVE_SCHEMAS = {"runs": RUNS_SCHEMA, "errors": ERRORS_SCHEMA}


def empty_table(schema: pa.Schema) -> pa.Table:
    """A table with no rows and this schema (``Schema.empty_table`` would import pandas)."""
    return pa.Table.from_batches([], schema=schema)


def table_of(
    schema: pa.Schema,
    columns: Mapping[str, pa.Array | pa.ChunkedArray | Sequence[Any]],
    *,
    internal: Collection[str] = (),
) -> pa.Table:
    """A table of ``schema`` from its columns given by name, never by position.

    Each field takes the column of its own name (a Python sequence is converted to the field's
    type; an Arrow array must have it), so two columns of one type cannot trade places unseen.
    Every field must be given, no other name (except those in ``internal``, the caller's
    bookkeeping), and a field that is not nullable must hold no null.

    Example:
        >>> table_of(METADATA_SCHEMA, {"value": ["1"], "key": ["k"], "ord": [0], "session_id": ["s"]}).column_names
        ['session_id', 'ord', 'key', 'value']
    """
    names = schema.names
    missing = [name for name in names if name not in columns]
    unknown = [name for name in columns if name not in names and name not in internal]
    if missing or unknown:
        msg = f"columns do not match the schema: missing {missing}, not in it {unknown} (schema: {names})"
        raise ValueError(msg)
    arrays = []
    for field in schema:
        column = columns[field.name]
        if not isinstance(column, pa.Array | pa.ChunkedArray):
            column = pa.array(column, field.type)
        elif column.type != field.type:
            msg = f"column {field.name!r} is {column.type}, the schema says {field.type}"
            raise TypeError(msg)
        if not field.nullable and column.null_count:
            msg = f"column {field.name!r} holds {column.null_count} nulls; the schema allows none"
            raise ValueError(msg)
        arrays.append(column)
    return pa.Table.from_arrays(arrays, schema=schema)


#: RFC 3339 text in UTC with a ``Z`` and 0 to 9 fraction digits, which Arrow casts exactly.
Z_TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$"
#: Decodes the JSON text columns (``extra``, ``field_order``, ``tool_args``...).
JSON_DECODER = msgspec.json.Decoder()


def int_times(schema: pa.Schema) -> pa.Schema:
    """``schema`` with its timestamps as int64, to build rows from integer nanoseconds, then cast."""
    return pa.schema([f.with_type(pa.int64()) if pa.types.is_timestamp(f.type) else f for f in schema])
