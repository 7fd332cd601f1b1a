"""Building the tables: ``to_tables``, and ``TableBuilder`` for the exporter's decoded files."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from sessionkit._timestamp import Timestamp
from sessionkit.exceptions import SessionFormatError
from sessionkit.model import (
    MESSAGE_FIELDS,
    RESPONSE_FIELDS,
    SESSION_LAYOUTS,
    Session,
    check_duplicate_keys,
    check_session,
    count_keys,
    encode_compact,
    message_layout,
    response_layout,
    session_layout,
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


def _first_key(record: dict) -> str:
    for key in record:
        return key
    return ""


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
_STR_OR_NONE = (str, type(None))
_BOOL_OR_NONE = (bool, type(None))
_STR_TYPE = {str}
_STR_OR_NONE_TYPES = {str, type(None)}
_BOOL_OR_NONE_TYPES = {bool, type(None)}
_MESSAGE_LAYOUT = {MESSAGE_FIELDS}
_RECORD_LISTS = frozenset({"user_messages", "agent_responses"})
_RESPONSE_LAYOUT = {RESPONSE_FIELDS}


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
        """Append one session's rows; returns the object keys of its messages and responses."""
        sid = obj["id"]
        user = obj["user_id"]
        created, updated = obj["created_at"], obj["updated_at"]
        seed, persona = obj.get("active_seed_id"), obj.get("active_persona_id")
        if (
            type(sid) is not str
            or type(user) is not str
            or type(created) is not str
            or type(updated) is not str
            or type(seed) not in _STR_OR_NONE
            or type(persona) not in _STR_OR_NONE
        ):
            raise _Invalid
        messages = obj.get("user_messages", _NO_ITEMS)
        responses = obj.get("agent_responses", _NO_ITEMS)
        metadata = obj.get("metadata", _NO_META)
        if type(messages) is not list or type(responses) is not list or type(metadata) is not dict:
            raise _Invalid
        index = len(self.s["session_id"])
        extra, order = session_layout(obj)
        ranges = [resp.get("trajectory_range") for resp in responses] if "trajectory_steps" in extra else _NO_ITEMS
        self.tj.add(sid, index, extra, ranges)
        self._session_row(
            sid, user, seed, persona, created, updated, len(messages), len(responses), extra, order, source
        )
        m = self.m
        m_content, m_time, m_extra, m_order = m["content"], m["timestamp"], m["extra"], m["field_order"]
        n = len(messages)
        if n and set(map(tuple, messages)) == _MESSAGE_LAYOUT:  # all in oxios' layout: whole columns at once
            contents = [msg["content"] for msg in messages]
            times = [msg["timestamp"] for msg in messages]
            if not set(map(type, contents)) | set(map(type, times)) <= _STR_TYPE:
                raise _Invalid
            m_content += contents
            m_time += times
            m_extra += [None] * n
            m_order += [None] * n
            record_keys = 2 * n
            messages = _NO_ITEMS
        else:
            record_keys = 0
        for msg in messages:
            content, ts = msg["content"], msg["timestamp"]
            if type(content) is not str or type(ts) is not str:
                raise _Invalid
            m_content.append(content)
            m_time.append(ts)
            if len(msg) == 2 and _first_key(msg) == "content":
                m_extra.append(None)
                m_order.append(None)
            else:
                extra, order = message_layout(msg)
                m_extra.append(encode_compact(extra) if extra else None)
                m_order.append(encode_compact(order) if order is not None else None)
                if extra:
                    record_keys += count_keys(list(extra.values()))
            record_keys += len(msg)
        m["session_id"].extend([sid] * n)
        m["index"].extend([index] * n)
        m["seq"].extend(range(n))
        r = self.r
        r_content, r_rsid, r_seed, r_phase = r["content"], r["response_session_id"], r["seed_id"], r["phase_reached"]
        r_passed, r_time, r_extra, r_order = r["evaluation_passed"], r["timestamp"], r["extra"], r["field_order"]
        n = len(responses)
        if n and set(map(tuple, responses)) == _RESPONSE_LAYOUT:  # all in oxios' layout: whole columns at once
            content, rsid, rseed, phase, passed, ts = ([resp[f] for resp in responses] for f in RESPONSE_FIELDS)
            if not (
                set(map(type, content)) | set(map(type, ts)) <= _STR_TYPE
                and set(map(type, rsid)) | set(map(type, rseed)) | set(map(type, phase)) <= _STR_OR_NONE_TYPES
                and set(map(type, passed)) <= _BOOL_OR_NONE_TYPES
            ):
                raise _Invalid
            r_content += content
            r_rsid += rsid
            r_seed += rseed
            r_phase += phase
            r_passed += passed
            r_time += ts
            r_extra += [None] * n
            r_order += [None] * n
            record_keys += 6 * n
            responses = _NO_ITEMS
        for resp in responses:
            content, ts = resp["content"], resp["timestamp"]
            rsid, rseed = resp.get("session_id"), resp.get("seed_id")
            phase, passed = resp.get("phase_reached"), resp.get("evaluation_passed")
            if (
                type(content) is not str
                or type(ts) is not str
                or type(rsid) not in _STR_OR_NONE
                or type(rseed) not in _STR_OR_NONE
                or type(phase) not in _STR_OR_NONE
                or type(passed) not in _BOOL_OR_NONE
            ):
                raise _Invalid
            r_content.append(content)
            r_rsid.append(rsid)
            r_seed.append(rseed)
            r_phase.append(phase)
            r_passed.append(passed)
            r_time.append(ts)
            extra, order = response_layout(resp)
            r_extra.append(encode_compact(extra) if extra else None)
            r_order.append(encode_compact(order) if order is not None else None)
            record_keys += len(resp)
            if extra:
                record_keys += count_keys(list(extra.values()))
        r["session_id"].extend([sid] * n)
        r["index"].extend([index] * n)
        r["seq"].extend(range(n))
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
            standard = SESSION_LAYOUTS[session.active_seed_id is not None, session.active_persona_id is not None]
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
