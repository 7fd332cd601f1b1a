"""Building the tables: ``to_tables``, and ``TableBuilder`` for the exporter's decoded files."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from sessionkit._timestamp import Timestamp
from sessionkit.exceptions import SessionFormatError
from sessionkit.model import (
    MESSAGE,
    RESPONSE,
    SESSION,
    RecordShape,
    Session,
    check_duplicate_keys,
    check_session,
    count_keys,
    encode_compact,
    record_layout,
)
from sessionkit.tables._schemas import (
    MESSAGES_SCHEMA,
    METADATA_SCHEMA,
    RESPONSES_SCHEMA,
    SESSIONS_SCHEMA,
    TIMESTAMP_NS,
    Z_TIMESTAMP_PATTERN,
    table_of,
)
from sessionkit.tables._session_tables import SessionTables
from sessionkit.tables._trajectory import TrajectoryColumns

_NO_ITEMS: list = []
_NO_META: dict = {}


def to_tables(sessions: Iterable[Session]) -> SessionTables:
    """Turn sessions into the tables.

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


# columns computed in ``finish``, not collected per session
_DERIVED = frozenset({"exchange_count", "project_id", "parent_session_id"})
# the builder's lists, named as the columns they become (plus each child row's session
# ``index``, for errors); ``finish`` builds every table by these names
_SESSION_COLUMNS = tuple(name for name in SESSIONS_SCHEMA.names if name not in _DERIVED)
_MESSAGE_COLUMNS = ("index", *MESSAGES_SCHEMA.names)
_RESPONSE_COLUMNS = ("index", *RESPONSES_SCHEMA.names)
_METADATA_COLUMNS = tuple(METADATA_SCHEMA.names)
_SESSION_OPTIONAL = tuple(name for name in SESSION.fields if name not in SESSION.required)
_RECORD_LISTS = frozenset({"user_messages", "agent_responses"})
_DICT = {dict}


class _Invalid(Exception):
    """Raised inside the hot loop; the caller finds the precise problem with ``check_session``."""


class TableBuilder:
    """Accumulates sessions, as model objects or as decoded JSON, into the columns of the tables.

    ``add_raw`` is the fast path of the exporter: it checks and appends a decoded session
    file in one pass (rolling back on a bad value, then reporting it precisely), and
    ``finish`` parses all timestamps at once in Arrow.
    """

    def __init__(self) -> None:
        self.sources: list[str] = []
        self._raw_times: bool | None = None
        self.s: dict[str, list] = {name: [] for name in _SESSION_COLUMNS}
        self.m: dict[str, list] = {name: [] for name in _MESSAGE_COLUMNS}
        self.r: dict[str, list] = {name: [] for name in _RESPONSE_COLUMNS}
        self.d: dict[str, list] = {name: [] for name in _METADATA_COLUMNS}
        self.tj = TrajectoryColumns()

    def __len__(self) -> int:
        return len(self.s["session_id"])

    def _kind(self, raw: bool) -> None:
        if self._raw_times is None:
            self._raw_times = raw
        elif self._raw_times != raw:
            msg = "a TableBuilder takes either add_raw or add_session, not both"
            raise ValueError(msg)

    def _mark(self) -> tuple[tuple[int, int, int, int], tuple[int, int, int]]:
        return (len(self.s["session_id"]), len(self.m["seq"]), len(self.r["seq"]), len(self.d["ord"])), self.tj.mark()

    def _rollback(self, mark: tuple[tuple[int, int, int, int], tuple[int, int, int]]) -> None:
        lengths, trajectory = mark
        for columns, length in zip((self.s, self.m, self.r, self.d), lengths, strict=True):
            for values in columns.values():
                del values[length:]
        del self.sources[lengths[0] :]
        self.tj.rollback(trajectory)

    def add_raw(self, obj: Any, source: str, data: bytes | None = None) -> None:
        """Add one decoded session file, checking it on the way (timestamps stay text).

        With ``data``, the bytes ``obj`` was decoded from, a key repeated in the session, a
        message or a response is refused too, as serde refuses it (see
        ``sessionkit.model.check_duplicate_keys``); the count of keys comes almost free here.

        Raises:
            SessionFormatError: the file is not a valid session; nothing of it was added.
        """
        self._kind(True)
        mark = self._mark()
        try:
            record_keys = self._append_raw(obj, source)
        except (_Invalid, KeyError, TypeError, AttributeError, IndexError):
            self._rollback(mark)
            check_session(obj, source)  # raises the precise error
            raise SessionFormatError("not a valid oxios session", source=source) from None
        if data is not None:
            keys = len(obj) + record_keys
            for name, value in obj.items():
                if type(value) is dict or (type(value) is list and name not in _RECORD_LISTS):
                    keys += count_keys(value)
            try:
                check_duplicate_keys(data, obj, source, keys=keys)
            except SessionFormatError:
                self._rollback(mark)
                raise

    def _append_raw(self, obj: dict, source: str) -> int:
        """Append one session's rows; returns the object keys of its messages and responses.

        Raises ``_Invalid`` (or a ``KeyError``, ``TypeError``, ...) on a value the declaration
        (``sessionkit.model.SESSION``) does not take; ``add_raw`` then names it.
        """
        types = SESSION.types
        for name in SESSION.required:
            if type(obj[name]) not in types[name]:
                raise _Invalid
        for name in _SESSION_OPTIONAL:
            if name in obj and type(obj[name]) not in types[name]:
                raise _Invalid
        sid = obj["id"]
        messages = obj.get("user_messages", _NO_ITEMS)
        responses = obj.get("agent_responses", _NO_ITEMS)
        metadata = obj.get("metadata", _NO_META)
        index = len(self.s["session_id"])
        extra, order = record_layout(obj, SESSION)
        ranges = [resp.get("trajectory_range") for resp in responses] if "trajectory_steps" in extra else _NO_ITEMS
        self.tj.add(sid, index, extra, ranges)
        self._session_row(
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
        record_keys = _append_records(self.m, messages, MESSAGE, _MESSAGE_PLAN)
        record_keys += _append_records(self.r, responses, RESPONSE, _RESPONSE_PLAN)
        for rows, n in ((self.m, len(messages)), (self.r, len(responses))):
            rows["session_id"].extend([sid] * n)
            rows["index"].extend([index] * n)
            rows["seq"].extend(range(n))
        self._metadata_rows(sid, metadata)
        return record_keys

    def add_session(self, session: Session) -> None:
        """Add one ``Session``."""
        if not isinstance(session, Session):
            msg = f"to_tables takes Session objects, got {type(session).__name__}"
            raise TypeError(msg)
        self._kind(False)
        index = len(self.s["session_id"])
        sid = session.id
        extra = dict(session.extra)
        order = session.field_order
        ranges = (
            [resp.extra.get("trajectory_range") for resp in session.agent_responses]
            if "trajectory_steps" in extra
            else _NO_ITEMS
        )
        self.tj.add(sid, index, extra, ranges)
        if order is None and len(extra) < len(session.extra):  # keep where the keys taken out go
            standard = SESSION.standard(
                {"active_seed_id": session.active_seed_id, "active_persona_id": session.active_persona_id}
            )
            order = (*standard, *session.extra)
        self._session_row(
            sid,
            session.user_id,
            session.active_seed_id,
            session.active_persona_id,
            session.created_at.ns,
            session.updated_at.ns,
            len(session.user_messages),
            len(session.agent_responses),
            extra,
            order,
            f"session {sid!r}",
        )
        m = self.m
        for seq, msg in enumerate(session.user_messages):
            m["session_id"].append(sid)
            m["index"].append(index)
            m["seq"].append(seq)
            m["content"].append(msg.content)
            m["timestamp"].append(msg.timestamp.ns)
            m["extra"].append(encode_compact(msg.extra) if msg.extra else None)
            m["field_order"].append(encode_compact(msg.field_order) if msg.field_order is not None else None)
        r = self.r
        for seq, resp in enumerate(session.agent_responses):
            r["session_id"].append(sid)
            r["index"].append(index)
            r["seq"].append(seq)
            r["content"].append(resp.content)
            r["response_session_id"].append(resp.session_id)
            r["seed_id"].append(resp.seed_id)
            r["phase_reached"].append(resp.phase_reached)
            r["evaluation_passed"].append(resp.evaluation_passed)
            r["timestamp"].append(resp.timestamp.ns)
            r["extra"].append(encode_compact(resp.extra) if resp.extra else None)
            r["field_order"].append(encode_compact(resp.field_order) if resp.field_order is not None else None)
        self._metadata_rows(sid, session.metadata)

    def _session_row(
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
        s = self.s
        self.sources.append(source)
        s["session_id"].append(sid)
        s["user_id"].append(user)
        s["active_seed_id"].append(seed)
        s["active_persona_id"].append(persona)
        s["created_at"].append(created)
        s["updated_at"].append(updated)
        s["n_user_messages"].append(n_messages)
        s["n_agent_responses"].append(n_responses)
        s["extra"].append(encode_compact(extra) if extra else None)
        s["field_order"].append(encode_compact(order) if order is not None else None)

    def _metadata_rows(self, sid: str, metadata: dict) -> None:
        self.s["n_metadata"].append(len(metadata))
        if not metadata:
            return
        d = self.d
        n = len(metadata)
        d["session_id"].extend([sid] * n)
        d["ord"].extend(range(n))
        d["key"].extend(metadata)
        d["value"].extend([encode_compact(value) for value in metadata.values()])

    def finish(self) -> SessionTables:
        """The tables of everything added so far."""
        s, m, r, d = self.s, self.m, self.r, self.d
        if self._raw_times:
            created = self._times(s["created_at"], lambda i: (i, "$.created_at"))
            updated = self._times(s["updated_at"], lambda i: (i, "$.updated_at"))
            m_time = self._times(m["timestamp"], lambda i: (m["index"][i], f"$.user_messages[{m['seq'][i]}].timestamp"))
            r_time = self._times(
                r["timestamp"], lambda i: (r["index"][i], f"$.agent_responses[{r['seq'][i]}].timestamp")
            )
        else:
            created, updated, m_time, r_time = (
                pa.array(values, pa.int64()).cast(TIMESTAMP_NS)
                for values in (s["created_at"], s["updated_at"], m["timestamp"], r["timestamp"])
            )
        n_msg = pa.array(s["n_user_messages"], pa.int32())
        n_resp = pa.array(s["n_agent_responses"], pa.int32())
        sessions = table_of(
            SESSIONS_SCHEMA,
            {
                **s,
                "created_at": created,
                "updated_at": updated,
                "n_user_messages": n_msg,
                "n_agent_responses": n_resp,
                "exchange_count": pc.min_element_wise(n_msg, n_resp),
                "project_id": self.tj.project,
                "parent_session_id": self.tj.parent,
            },
        )
        messages = table_of(MESSAGES_SCHEMA, {**m, "timestamp": m_time}, internal=("index",))
        responses = table_of(RESPONSES_SCHEMA, {**r, "timestamp": r_time}, internal=("index",))
        metadata = table_of(METADATA_SCHEMA, d)
        tool_calls, reasoning = self.tj.finish()
        return SessionTables(sessions, messages, responses, metadata, tool_calls, reasoning)

    def _times(self, texts: list[str], locate: Any) -> pa.Array:
        """Parse RFC 3339 texts to timestamp[ns, UTC], all at once when they are in oxios' own form."""
        try:
            return parse_timestamps(pa.array(texts, pa.string()))
        except _BadTimestamp as err:
            session, path = locate(err.index)
            raise SessionFormatError(err.reason, source=self.sources[session], path=path) from None


class _BadTimestamp(ValueError):
    def __init__(self, index: int, reason: str) -> None:
        super().__init__(reason)
        self.index, self.reason = index, reason


def parse_timestamps(texts: pa.Array | pa.ChunkedArray) -> pa.Array:
    """RFC 3339 texts as timestamp[ns, UTC]: all at once in Arrow when they are in oxios' own
    form (``Z``, at most 9 fraction digits), one by one with ``Timestamp.parse`` otherwise.

    Raises:
        ValueError: a text is not a valid timestamp (``.index`` says which).
    """
    if len(texts) and pc.all(pc.match_substring_regex(texts, Z_TIMESTAMP_PATTERN)).as_py():
        try:
            return pc.cast(texts, TIMESTAMP_NS)
        except pa.ArrowInvalid:
            pass  # an impossible date or an out-of-range year: find it below
    values = []
    for i, text in enumerate(texts.to_pylist()):
        try:
            values.append(Timestamp.parse(text).ns)
        except (ValueError, TypeError) as err:
            raise _BadTimestamp(i, str(err)) from None
    return pa.array(values, pa.int64()).cast(TIMESTAMP_NS)


def _plan(shape: RecordShape, renamed: dict[str, str]) -> tuple[tuple[str, str, frozenset[type], bool], ...]:
    """For each declared field of a record: its name, its table column (the same name unless
    ``renamed``), the Python types it takes, and whether it is required."""
    return tuple((name, renamed.get(name, name), shape.types[name], name in shape.required) for name in shape.fields)


_MESSAGE_PLAN = _plan(MESSAGE, {})
_RESPONSE_PLAN = _plan(RESPONSE, {"session_id": "response_session_id"})


def _append_records(columns: dict[str, list], records: list, shape: RecordShape, plan: tuple) -> int:
    """Append the declared fields of ``records`` (messages or responses) to ``columns``, as
    ``plan`` says, with their extra fields and field order as JSON; returns the object keys they
    hold. Raises ``_Invalid`` (or ``KeyError``) on a record or value the declaration does not
    take. Field by field, all records at once: an optional field missing is None."""
    n = len(records)
    if not n:
        return 0
    if set(map(type, records)) != _DICT:
        raise _Invalid
    for name, column, accepted, required in plan:
        values = [record[name] for record in records] if required else [record.get(name) for record in records]
        if not set(map(type, values)) <= accepted:
            raise _Invalid
        columns[column] += values
    extras, orders = columns["extra"], columns["field_order"]
    if not shape.skipped_when_none and set(map(tuple, records)) == {shape.fields}:  # all in oxios' layout
        extras += [None] * n
        orders += [None] * n
        return len(shape.fields) * n
    keys = 0
    for record in records:
        keys += len(record)
        extra, order = record_layout(record, shape)
        extras.append(encode_compact(extra) if extra else None)
        orders.append(encode_compact(order) if order is not None else None)
        if extra:
            keys += count_keys(list(extra.values()))
    return keys


def take_sessions(tables: SessionTables, rows: Any) -> SessionTables:
    """The sessions at positions ``rows`` (in that order) with all their rows, for tables whose
    child rows follow their sessions in order (as ``TableBuilder`` and export write them)."""
    import numpy as np

    rows = np.asarray(rows, dtype=np.int64)
    s = tables.sessions
    picked = {"sessions": s.take(pa.array(rows))}
    for name, counts in (
        ("messages", s["n_user_messages"]),
        ("responses", s["n_agent_responses"]),
        ("metadata", s["n_metadata"]),
    ):
        picked[name] = tables[name].take(_child_rows(counts.to_numpy().astype(np.int64), rows))
    sids = s["session_id"].to_pylist()
    for name, within in (("tool_calls", "step"), ("reasoning", "ord")):
        table = tables[name]
        if table.num_rows == 0:
            picked[name] = table
            continue
        counts = _run_counts(sids, table["session_id"].to_pylist(), table[within].to_pylist())
        picked[name] = table.take(_child_rows(counts, rows))
    return SessionTables(**picked)


def _child_rows(counts: Any, rows: Any) -> pa.Array:
    """Positions of the child rows of the sessions at ``rows``, in that order, in a table whose
    rows follow their sessions in order, ``counts[i]`` of them for session ``i``."""
    import numpy as np

    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    lengths = counts[rows]
    index = np.repeat(starts[rows] - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths) + np.arange(lengths.sum())
    return pa.array(index, pa.int64())


def _run_counts(sids: list[str], owners: list[str], positions: list[int]) -> Any:
    """How many child rows each session has, from rows that follow their sessions in order.

    Not by id: one batch may hold two files of the same session id (a backup beside the file),
    whose rows must not be mixed. A session's rows are a run of its id starting at position 0;
    each run goes to the next session of that id. (Two sessions of one id of which the first has
    no rows at all cannot be told apart this way; the run goes to the first.)
    """
    import numpy as np

    counts = np.zeros(len(sids), dtype=np.int64)
    at = -1
    for owner, position in zip(owners, positions, strict=True):
        if position == 0 or at < 0:
            at += 1
            while at < len(sids) and sids[at] != owner:
                at += 1
            if at == len(sids):
                msg = f"rows of session {owner!r} do not follow their sessions in order"
                raise ValueError(msg)
        counts[at] += 1
    return counts
