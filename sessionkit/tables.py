"""The Arrow contract: the four table schemas, ``SessionTables``, and ``to_tables`` / back.

The schemas are declared here once, with their version in the schema metadata, and every
table is built with ``schema=`` — nothing is inferred from the data. Together the four
tables hold every byte of information of the sessions: ``SessionTables.to_sessions()``
gives back sessions that write out to the very same files.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from sessionkit._timestamp import Timestamp
from sessionkit.exceptions import DatasetError, SessionFormatError
from sessionkit.model import (
    AgentResponse,
    Session,
    UserMessage,
    encode_compact,
    message_layout,
    response_layout,
    session_layout,
)

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "MESSAGES_SCHEMA",
    "METADATA_SCHEMA",
    "RESPONSES_SCHEMA",
    "SCHEMAS",
    "SCHEMA_VERSION",
    "SESSIONS_SCHEMA",
    "TABLE_NAMES",
    "SessionTables",
    "TableBuilder",
    "to_tables",
]

#: Bumped whenever a column is added or changes meaning; stored in every schema's metadata.
SCHEMA_VERSION = "1"
_META = {b"sessionkit.schema_version": SCHEMA_VERSION.encode()}
_TS = pa.timestamp("ns", tz="UTC")

SESSIONS_SCHEMA = pa.schema(
    [
        pa.field("session_id", pa.string(), nullable=False),
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("active_seed_id", pa.string()),
        pa.field("active_persona_id", pa.string()),
        pa.field("created_at", _TS, nullable=False),
        pa.field("updated_at", _TS, nullable=False),
        pa.field("n_user_messages", pa.int32(), nullable=False),
        pa.field("n_agent_responses", pa.int32(), nullable=False),
        pa.field("exchange_count", pa.int32(), nullable=False),
        pa.field("extra", pa.string()),
        pa.field("field_order", pa.string()),
    ],
    metadata=_META,
)
MESSAGES_SCHEMA = pa.schema(
    [
        pa.field("session_id", pa.string(), nullable=False),
        pa.field("seq", pa.int32(), nullable=False),
        pa.field("content", pa.string(), nullable=False),
        pa.field("timestamp", _TS, nullable=False),
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
        pa.field("timestamp", _TS, nullable=False),
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

#: The tables of a dataset, in the order they are written.
TABLE_NAMES = ("sessions", "messages", "responses", "metadata")
SCHEMAS = {
    "sessions": SESSIONS_SCHEMA,
    "messages": MESSAGES_SCHEMA,
    "responses": RESPONSES_SCHEMA,
    "metadata": METADATA_SCHEMA,
}

_Z_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$"
_JSON = msgspec.json.Decoder()


@dataclass(frozen=True, repr=False)
class SessionTables:
    """The four tables of a set of sessions, each a ``pyarrow.Table`` with its declared schema.

    Attributes:
        sessions: one row per session.
        messages: one row per user message (``session_id``, ``seq``).
        responses: one row per agent response (``session_id``, ``seq``).
        metadata: one row per metadata key (``session_id``, ``ord``).

    Example:
        >>> import sessionkit as sk
        >>> tables = sk.to_tables([sk.Session.with_id("user-1", "s-1")])
        >>> tables.sessions.num_rows, tables.messages.num_rows
        (1, 0)
    """

    sessions: pa.Table
    messages: pa.Table
    responses: pa.Table
    metadata: pa.Table

    def __post_init__(self) -> None:
        for name in TABLE_NAMES:
            table = getattr(self, name)
            if not isinstance(table, pa.Table):
                msg = f"SessionTables.{name} must be a pyarrow.Table, got {type(table).__name__}"
                raise TypeError(msg)
            missing = [f.name for f in SCHEMAS[name] if f.name not in table.schema.names]
            if missing:
                msg = f"the {name} table lacks the columns {missing}. Hint: build tables with sk.to_tables or read them with sk.read_parquet"
                raise DatasetError(msg)

    def __getitem__(self, name: str) -> pa.Table:
        if name not in TABLE_NAMES:
            msg = f"no table {name!r}; the tables are {', '.join(TABLE_NAMES)}"
            raise KeyError(msg)
        return getattr(self, name)

    def items(self) -> Iterator[tuple[str, pa.Table]]:
        """(name, table) pairs in the order ``sessions, messages, responses, metadata``."""
        return ((name, getattr(self, name)) for name in TABLE_NAMES)

    def __len__(self) -> int:
        return self.sessions.num_rows

    def __repr__(self) -> str:
        counts = ", ".join(f"{name}={table.num_rows}" for name, table in self.items())
        return f"SessionTables({counts})"

    def _repr_html_(self) -> str:
        from sessionkit._html import tables_html

        return tables_html(self)

    def to_sessions(self) -> list[Session]:
        """The sessions these tables hold, in the order of the ``sessions`` table."""
        return list(iter_sessions(self))

    def session(self, session_id: str) -> Session:
        """The one session with this id, e.g. to read its transcript in a notebook.

        Raises:
            KeyError: no session has this id.
        """
        picked = SessionTables(*(table.filter(pc.equal(table["session_id"], session_id)) for _, table in self.items()))
        found = picked.to_sessions()
        if not found:
            msg = f"no session with id {session_id!r} among {len(self)} sessions"
            raise KeyError(msg)
        return found[0]

    def write_parquet(self, out: str | Path, **options: Any) -> Path:
        """Write the tables as a Parquet dataset folder (see ``sessionkit.storage.write_parquet``)."""
        from sessionkit.storage import write_parquet

        return write_parquet(self, out, **options)

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with views over these tables (see ``sessionkit.connect``)."""
        from sessionkit.query import connect

        return connect(self)


def to_tables(sessions: Iterable[Session]) -> SessionTables:
    """Turn sessions into the four tables.

    Example:
        >>> import sessionkit as sk
        >>> s = sk.Session.with_id("user-1", "s-1")
        >>> s.add_user_message("hi")
        >>> sk.to_tables([s]).messages.column("content").to_pylist()
        ['hi']
    """
    builder = TableBuilder()
    for session in sessions:
        builder.add_session(session)
    return builder.finish()


class TableBuilder:
    """Accumulates sessions, as model objects or as checked decoded JSON, into table columns.

    ``add_raw`` is the fast path of the exporter: it takes the dict that
    ``sessionkit.model.check_session`` accepted and parses all timestamps at once in Arrow.
    """

    def __init__(self) -> None:
        self.sources: list[str] = []
        self._raw_times = False
        self.s_id: list[str] = []
        self.s_user: list[str] = []
        self.s_seed: list[str | None] = []
        self.s_persona: list[str | None] = []
        self.s_created: list[Any] = []
        self.s_updated: list[Any] = []
        self.s_nmsg: list[int] = []
        self.s_nresp: list[int] = []
        self.s_extra: list[str | None] = []
        self.s_order: list[str | None] = []
        self.m_session: list[str] = []
        self.m_index: list[int] = []
        self.m_seq: list[int] = []
        self.m_content: list[str] = []
        self.m_time: list[Any] = []
        self.m_extra: list[str | None] = []
        self.m_order: list[str | None] = []
        self.r_session: list[str] = []
        self.r_index: list[int] = []
        self.r_seq: list[int] = []
        self.r_content: list[str] = []
        self.r_rsid: list[str | None] = []
        self.r_seed: list[str | None] = []
        self.r_phase: list[str | None] = []
        self.r_eval: list[bool | None] = []
        self.r_time: list[Any] = []
        self.r_extra: list[str | None] = []
        self.r_order: list[str | None] = []
        self.d_session: list[str] = []
        self.d_ord: list[int] = []
        self.d_key: list[str] = []
        self.d_value: list[str] = []

    def __len__(self) -> int:
        return len(self.s_id)

    def add_raw(self, obj: dict, source: str) -> None:
        """Add one decoded session file that ``check_session`` accepted (timestamps as text)."""
        if self.s_id and not self._raw_times:
            msg = "a TableBuilder takes either add_raw or add_session, not both"
            raise ValueError(msg)
        self._raw_times = True
        index = len(self.s_id)
        sid = obj["id"]
        messages = obj.get("user_messages", ())
        responses = obj.get("agent_responses", ())
        metadata = obj.get("metadata", {})
        extra, order = session_layout(obj)
        self._add_session_row(
            sid,
            obj["user_id"],
            obj.get("active_seed_id"),
            obj.get("active_persona_id"),
            obj["created_at"],
            obj["updated_at"],
            len(messages),
            len(responses),
            extra,
            order,
            source,
        )
        for seq, msg in enumerate(messages):
            self.m_session.append(sid)
            self.m_index.append(index)
            self.m_seq.append(seq)
            self.m_content.append(msg["content"])
            self.m_time.append(msg["timestamp"])
            extra, order = message_layout(msg)
            self.m_extra.append(encode_compact(extra) if extra else None)
            self.m_order.append(encode_compact(order) if order is not None else None)
        for seq, resp in enumerate(responses):
            self.r_session.append(sid)
            self.r_index.append(index)
            self.r_seq.append(seq)
            self.r_content.append(resp["content"])
            self.r_rsid.append(resp.get("session_id"))
            self.r_seed.append(resp.get("seed_id"))
            self.r_phase.append(resp.get("phase_reached"))
            self.r_eval.append(resp.get("evaluation_passed"))
            self.r_time.append(resp["timestamp"])
            extra, order = response_layout(resp)
            self.r_extra.append(encode_compact(extra) if extra else None)
            self.r_order.append(encode_compact(order) if order is not None else None)
        self._add_metadata(sid, metadata)

    def add_session(self, session: Session) -> None:
        """Add one ``Session``."""
        if self._raw_times:
            msg = "a TableBuilder takes either add_raw or add_session, not both"
            raise ValueError(msg)
        if not isinstance(session, Session):
            msg = f"to_tables takes Session objects, got {type(session).__name__}"
            raise TypeError(msg)
        index = len(self.s_id)
        sid = session.id
        self._add_session_row(
            sid,
            session.user_id,
            session.active_seed_id,
            session.active_persona_id,
            session.created_at.ns,
            session.updated_at.ns,
            len(session.user_messages),
            len(session.agent_responses),
            session.extra,
            session.field_order,
            f"session {sid!r}",
        )
        for seq, msg in enumerate(session.user_messages):
            self.m_session.append(sid)
            self.m_index.append(index)
            self.m_seq.append(seq)
            self.m_content.append(msg.content)
            self.m_time.append(msg.timestamp.ns)
            self.m_extra.append(encode_compact(msg.extra) if msg.extra else None)
            self.m_order.append(encode_compact(msg.field_order) if msg.field_order is not None else None)
        for seq, resp in enumerate(session.agent_responses):
            self.r_session.append(sid)
            self.r_index.append(index)
            self.r_seq.append(seq)
            self.r_content.append(resp.content)
            self.r_rsid.append(resp.session_id)
            self.r_seed.append(resp.seed_id)
            self.r_phase.append(resp.phase_reached)
            self.r_eval.append(resp.evaluation_passed)
            self.r_time.append(resp.timestamp.ns)
            self.r_extra.append(encode_compact(resp.extra) if resp.extra else None)
            self.r_order.append(encode_compact(resp.field_order) if resp.field_order is not None else None)
        self._add_metadata(sid, session.metadata)

    def _add_session_row(
        self,
        sid: str,
        user: str,
        seed: str | None,
        persona: str | None,
        created: Any,
        updated: Any,
        n_messages: int,
        n_responses: int,
        extra: dict,
        order: tuple[str, ...] | None,
        source: str,
    ) -> None:
        self.sources.append(source)
        self.s_id.append(sid)
        self.s_user.append(user)
        self.s_seed.append(seed)
        self.s_persona.append(persona)
        self.s_created.append(created)
        self.s_updated.append(updated)
        self.s_nmsg.append(n_messages)
        self.s_nresp.append(n_responses)
        self.s_extra.append(encode_compact(extra) if extra else None)
        self.s_order.append(encode_compact(order) if order is not None else None)

    def _add_metadata(self, sid: str, metadata: dict) -> None:
        for ord_, (key, value) in enumerate(metadata.items()):
            self.d_session.append(sid)
            self.d_ord.append(ord_)
            self.d_key.append(key)
            self.d_value.append(encode_compact(value))

    def finish(self) -> SessionTables:
        """The four tables of everything added so far."""
        if self._raw_times:
            created = self._times(self.s_created, lambda i: (i, "$.created_at"))
            updated = self._times(self.s_updated, lambda i: (i, "$.updated_at"))
            m_time = self._times(
                self.m_time, lambda i: (self.m_index[i], f"$.user_messages[{self.m_seq[i]}].timestamp")
            )
            r_time = self._times(
                self.r_time, lambda i: (self.r_index[i], f"$.agent_responses[{self.r_seq[i]}].timestamp")
            )
        else:
            created = pa.array(self.s_created, pa.int64()).cast(_TS)
            updated = pa.array(self.s_updated, pa.int64()).cast(_TS)
            m_time = pa.array(self.m_time, pa.int64()).cast(_TS)
            r_time = pa.array(self.r_time, pa.int64()).cast(_TS)
        nmsg = pa.array(self.s_nmsg, pa.int32())
        nresp = pa.array(self.s_nresp, pa.int32())
        sessions = pa.Table.from_arrays(
            [
                pa.array(self.s_id, pa.string()),
                pa.array(self.s_user, pa.string()),
                pa.array(self.s_seed, pa.string()),
                pa.array(self.s_persona, pa.string()),
                created,
                updated,
                nmsg,
                nresp,
                pc.min_element_wise(nmsg, nresp),
                pa.array(self.s_extra, pa.string()),
                pa.array(self.s_order, pa.string()),
            ],
            schema=SESSIONS_SCHEMA,
        )
        messages = pa.Table.from_arrays(
            [
                pa.array(self.m_session, pa.string()),
                pa.array(self.m_seq, pa.int32()),
                pa.array(self.m_content, pa.string()),
                m_time,
                pa.array(self.m_extra, pa.string()),
                pa.array(self.m_order, pa.string()),
            ],
            schema=MESSAGES_SCHEMA,
        )
        responses = pa.Table.from_arrays(
            [
                pa.array(self.r_session, pa.string()),
                pa.array(self.r_seq, pa.int32()),
                pa.array(self.r_content, pa.string()),
                pa.array(self.r_rsid, pa.string()),
                pa.array(self.r_seed, pa.string()),
                pa.array(self.r_phase, pa.string()),
                pa.array(self.r_eval, pa.bool_()),
                r_time,
                pa.array(self.r_extra, pa.string()),
                pa.array(self.r_order, pa.string()),
            ],
            schema=RESPONSES_SCHEMA,
        )
        metadata = pa.Table.from_arrays(
            [
                pa.array(self.d_session, pa.string()),
                pa.array(self.d_ord, pa.int32()),
                pa.array(self.d_key, pa.string()),
                pa.array(self.d_value, pa.string()),
            ],
            schema=METADATA_SCHEMA,
        )
        return SessionTables(sessions, messages, responses, metadata)

    def _times(self, texts: list[str], locate: Any) -> pa.Array:
        """Parse RFC 3339 texts to timestamp[ns, UTC], all at once when they are in oxios' own form."""
        array = pa.array(texts, pa.string())
        if len(array) and pc.all(pc.match_substring_regex(array, _Z_PATTERN)).as_py():
            try:
                return pc.cast(array, _TS)
            except pa.ArrowInvalid:
                pass  # an impossible date or an out-of-range year: find it below
        values = []
        for i, text in enumerate(texts):
            try:
                values.append(Timestamp.parse(text).ns)
            except ValueError as err:
                session, path = locate(i)
                raise SessionFormatError(str(err), source=self.sources[session], path=path) from None
        return pa.array(values, pa.int64()).cast(_TS)


def iter_sessions(tables: SessionTables) -> Iterator[Session]:
    """Rebuild ``Session`` objects from the four tables, in the order of the sessions table.

    The child rows of a session may come in any order and from any files; they are put back
    in ``seq`` / ``ord`` order.
    """
    messages = _group(tables.messages, "seq", _message_rows)
    responses = _group(tables.responses, "seq", _response_rows)
    metadata = _group(tables.metadata, "ord", _metadata_rows)
    s = tables.sessions
    columns = [
        s.column(name).to_pylist()
        for name in ("session_id", "user_id", "active_seed_id", "active_persona_id", "extra", "field_order")
    ]
    created = s.column("created_at").cast(pa.int64()).to_pylist()
    updated = s.column("updated_at").cast(pa.int64()).to_pylist()
    seen: set[str] = set()
    for i, (sid, user, seed, persona, extra, order) in enumerate(zip(*columns, strict=True)):
        if sid in seen:
            msg = (
                f"the sessions table holds session {sid!r} twice. Hint: a dataset holds each session once; re-export it"
            )
            raise DatasetError(msg)
        seen.add(sid)
        yield Session(
            id=sid,
            user_id=user,
            user_messages=messages.pop(sid, []),
            agent_responses=responses.pop(sid, []),
            active_seed_id=seed,
            active_persona_id=persona,
            created_at=Timestamp(created[i]),
            updated_at=Timestamp(updated[i]),
            metadata=dict(metadata.pop(sid, [])),
            extra=_JSON.decode(extra) if extra is not None else {},
            field_order=tuple(_JSON.decode(order)) if order is not None else None,
        )
    orphans = next(iter({**messages, **responses, **metadata}), None)
    if orphans is not None:
        msg = f"rows of session {orphans!r} have no row in the sessions table. Hint: the dataset is incomplete; re-export it"
        raise DatasetError(msg)


def _group(table: pa.Table, position: str, rows: Any) -> dict[str, list]:
    """Child rows grouped by session id, each group in ``position`` order."""
    groups: dict[str, list] = {}
    sids = table.column("session_id").to_pylist()
    positions = table.column(position).to_pylist()
    ordered = True
    last_sid, last_pos = None, -1
    for sid, pos in zip(sids, positions, strict=True):
        if (sid == last_sid and pos != last_pos + 1) or (sid != last_sid and pos != 0):
            ordered = False
            break
        last_sid, last_pos = sid, pos
    if not ordered:
        table = table.sort_by([("session_id", "ascending"), (position, "ascending")])
        sids = table.column("session_id").to_pylist()
        positions = table.column(position).to_pylist()
    for sid, pos, row in zip(sids, positions, rows(table), strict=True):
        group = groups.setdefault(sid, [])
        if pos != len(group):
            msg = f"session {sid!r}: {position} {pos} is missing or repeated in a child table. Hint: the dataset is damaged; re-export it"
            raise DatasetError(msg)
        group.append(row)
    return groups


def _ts_list(column: pa.ChunkedArray) -> list[Timestamp]:
    return [Timestamp(ns) for ns in column.cast(pa.int64()).to_pylist()]


def _decode_or(value: str | None, default: Any) -> Any:
    return _JSON.decode(value) if value is not None else default


def _message_rows(table: pa.Table) -> Iterator[UserMessage]:
    for content, ts, extra, order in zip(
        table.column("content").to_pylist(),
        _ts_list(table.column("timestamp")),
        table.column("extra").to_pylist(),
        table.column("field_order").to_pylist(),
        strict=True,
    ):
        yield UserMessage(content, ts, _decode_or(extra, {}), tuple(_JSON.decode(order)) if order is not None else None)


def _response_rows(table: pa.Table) -> Iterator[AgentResponse]:
    for content, rsid, seed, phase, passed, ts, extra, order in zip(
        *(
            table.column(name).to_pylist()
            for name in ("content", "response_session_id", "seed_id", "phase_reached", "evaluation_passed")
        ),
        _ts_list(table.column("timestamp")),
        table.column("extra").to_pylist(),
        table.column("field_order").to_pylist(),
        strict=True,
    ):
        yield AgentResponse(
            content=content,
            session_id=rsid,
            seed_id=seed,
            phase_reached=phase,
            evaluation_passed=passed,
            timestamp=ts,
            extra=_decode_or(extra, {}),
            field_order=tuple(_JSON.decode(order)) if order is not None else None,
        )


def _metadata_rows(table: pa.Table) -> Iterator[tuple[str, Any]]:
    for key, value in zip(table.column("key").to_pylist(), table.column("value").to_pylist(), strict=True):
        yield key, _JSON.decode(value)
