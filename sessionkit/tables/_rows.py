"""From the tables back to sessions: ``Session`` objects, or the bytes oxios writes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from sessionkit._timestamp import Timestamp
from sessionkit.exceptions import DatasetError
from sessionkit.model import (
    AgentResponse,
    Session,
    UserMessage,
    encode_raw,
    message_raw,
    response_raw,
    session_raw,
)
from sessionkit.tables._schemas import JSON_DECODER, autosi_text
from sessionkit.tables._trajectory import put_back, reasoning_rows, step_rows

if TYPE_CHECKING:
    from sessionkit.tables._session_tables import SessionTables


_NO_ITEMS: list = []
_NO_META: dict = {}


def _first_key(record: dict) -> str:
    for key in record:
        return key
    return ""


def iter_sessions(tables: SessionTables) -> Iterator[Session]:
    """Rebuild ``Session`` objects from the tables, in the order of the sessions table.

    The child rows of a session may come in any order and from any files; they are put back
    in ``seq`` / ``ord`` order.
    """
    messages = _group(tables.messages, "seq", _message_rows)
    responses = _group(tables.responses, "seq", _response_rows)
    metadata = _group(tables.metadata, "ord", _metadata_rows)
    steps = _group(tables.tool_calls, "step", step_rows)
    reasoning = _group(tables.reasoning, "ord", reasoning_rows)
    s = tables.sessions
    columns = [
        s.column(name).to_pylist()
        for name in ("session_id", "user_id", "active_seed_id", "active_persona_id", "extra", "field_order")
    ]
    projects, parents = s.column("project_id").to_pylist(), s.column("parent_session_id").to_pylist()
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
        field_order = _order(order)
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
            extra=put_back(_decode_or(extra, {}), field_order, _taken(sid, i, projects, parents, steps, reasoning)),
            field_order=field_order,
        )
    _check_orphans(messages, responses, metadata, steps, reasoning)


def iter_session_json(tables: SessionTables) -> Iterator[tuple[str, bytes]]:
    """(session id, the bytes oxios writes for it) for each session, in the sessions table's order.

    The fast path of restore: no ``Session`` objects, and timestamps printed all at once.
    """
    messages = _group(tables.messages, "seq", _message_raw_rows)
    responses = _group(tables.responses, "seq", _response_raw_rows)
    metadata = _group(tables.metadata, "ord", _metadata_rows)
    steps = _group(tables.tool_calls, "step", step_rows)
    reasoning = _group(tables.reasoning, "ord", reasoning_rows)
    s = tables.sessions
    projects, parents = s.column("project_id").to_pylist(), s.column("parent_session_id").to_pylist()
    created = autosi_text(s["created_at"])
    updated = autosi_text(s["updated_at"])
    columns = [
        s.column(name).to_pylist()
        for name in ("session_id", "user_id", "active_seed_id", "active_persona_id", "extra", "field_order")
    ]
    seen: set[str] = set()
    for i, (sid, user, seed, persona, extra, order) in enumerate(zip(*columns, strict=True)):
        if sid in seen:
            msg = (
                f"the sessions table holds session {sid!r} twice. Hint: a dataset holds each session once; re-export it"
            )
            raise DatasetError(msg)
        seen.add(sid)
        values = {
            "id": sid,
            "user_id": user,
            "user_messages": messages.pop(sid, _NO_ITEMS),
            "agent_responses": responses.pop(sid, _NO_ITEMS),
            "active_seed_id": seed,
            "active_persona_id": persona,
            "created_at": created[i],
            "updated_at": updated[i],
            "metadata": dict(metadata.pop(sid, _NO_ITEMS)),
        }
        field_order = _order(order)
        more = put_back(_decode_or(extra, _NO_META), field_order, _taken(sid, i, projects, parents, steps, reasoning))
        yield sid, encode_raw(session_raw(values, more, field_order))
    _check_orphans(messages, responses, metadata, steps, reasoning)


def _taken(sid: str, i: int, projects: list, parents: list, steps: dict, reasoning: dict) -> dict[str, Any]:
    """The values of the keys the tables took out of session ``sid`` (row ``i``)."""
    return {
        "project_id": projects[i],
        "parent_session_id": parents[i],
        "trajectory_steps": steps.pop(sid, []),
        "reasoning_records": reasoning.pop(sid, []),
    }


def _order(text: str | None) -> tuple[str, ...] | None:
    return tuple(JSON_DECODER.decode(text)) if text is not None else None


def _check_orphans(*groups: dict[str, list]) -> None:
    for group in groups:
        for sid in group:
            msg = f"rows of session {sid!r} have no row in the sessions table. Hint: the dataset is incomplete; re-export it"
            raise DatasetError(msg)


_RESPONSE_VALUES = ("content", "response_session_id", "seed_id", "phase_reached", "evaluation_passed")


def _message_columns(table: pa.Table, stamps: Callable[[pa.ChunkedArray], list]) -> Iterator[tuple]:
    """(content, timestamp, extra, field_order) of each message row; ``stamps`` converts the times."""
    return zip(
        table.column("content").to_pylist(),
        stamps(table.column("timestamp")),
        table.column("extra").to_pylist(),
        table.column("field_order").to_pylist(),
        strict=True,
    )


def _response_columns(table: pa.Table, stamps: Callable[[pa.ChunkedArray], list]) -> Iterator[tuple]:
    """The named values, then timestamp, extra and field_order, of each response row."""
    return zip(
        *(table.column(name).to_pylist() for name in _RESPONSE_VALUES),
        stamps(table.column("timestamp")),
        table.column("extra").to_pylist(),
        table.column("field_order").to_pylist(),
        strict=True,
    )


def _message_raw_rows(table: pa.Table) -> Iterator[dict]:
    """Messages as JSON values in file order."""
    for content, ts, extra, order in _message_columns(table, autosi_text):
        values = {"content": content, "timestamp": ts}
        yield (
            values
            if extra is None and order is None
            else message_raw(values, _decode_or(extra, _NO_META), _order(order))
        )


def _response_raw_rows(table: pa.Table) -> Iterator[dict]:
    """Responses as JSON values in file order."""
    for content, rsid, seed, phase, passed, ts, extra, order in _response_columns(table, autosi_text):
        values = {
            "content": content,
            "session_id": rsid,
            "seed_id": seed,
            "phase_reached": phase,
            "evaluation_passed": passed,
            "timestamp": ts,
        }
        yield (
            values
            if extra is None and order is None
            else response_raw(values, _decode_or(extra, _NO_META), _order(order))
        )


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
    return JSON_DECODER.decode(value) if value is not None else default


def _message_rows(table: pa.Table) -> Iterator[UserMessage]:
    for content, ts, extra, order in _message_columns(table, _ts_list):
        yield UserMessage(content, ts, _decode_or(extra, {}), _order(order))


def _response_rows(table: pa.Table) -> Iterator[AgentResponse]:
    for content, rsid, seed, phase, passed, ts, extra, order in _response_columns(table, _ts_list):
        yield AgentResponse(
            content=content,
            session_id=rsid,
            seed_id=seed,
            phase_reached=phase,
            evaluation_passed=passed,
            timestamp=ts,
            extra=_decode_or(extra, {}),
            field_order=_order(order),
        )


def _metadata_rows(table: pa.Table) -> Iterator[tuple[str, Any]]:
    for key, value in zip(table.column("key").to_pylist(), table.column("value").to_pylist(), strict=True):
        yield key, JSON_DECODER.decode(value)
