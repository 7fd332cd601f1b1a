"""Writing a session's JSON exactly as serde_json's pretty printer does."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import msgspec

from sessionkit.model._shape import MESSAGE, RESPONSE, SESSION, JSONValue

if TYPE_CHECKING:
    from sessionkit.model._records import Session

_ENCODER = msgspec.json.Encoder()


def ordered_record(
    values: Mapping[str, JSONValue],
    extra: Mapping[str, JSONValue],
    order: tuple[str, ...],
    fields: tuple[str, ...],
    written: Mapping[str, bool],
) -> dict[str, JSONValue]:
    """Lay out a record in ``order``, placing known fields missing from it where serde would."""
    keys = [key for key in order if key in values or key in extra]
    present = set(keys)
    for rank, name in enumerate(fields):
        if name in present or not written[name]:
            continue
        # just before the next named field that follows it in the struct, else at the end
        at = next(
            (i for i, key in enumerate(keys) if key in values and fields.index(key) > rank),
            len(keys),
        )
        keys.insert(at, name)
        present.add(name)
    keys.extend(key for key in extra if key not in present)
    return {key: values[key] if key in values else extra[key] for key in keys}


def message_raw(values: dict[str, JSONValue], extra: Mapping[str, JSONValue], order: tuple[str, ...] | None) -> dict:
    """A user message as JSON values in file order, from its named ``values`` (timestamp as text)."""
    if order is None and not extra:
        return values
    return ordered_record(values, extra, order or MESSAGE.fields, MESSAGE.fields, _ALWAYS_MESSAGE)


def response_raw(values: dict[str, JSONValue], extra: Mapping[str, JSONValue], order: tuple[str, ...] | None) -> dict:
    """An agent response as JSON values in file order, from its named ``values``."""
    if order is None and not extra:
        return values
    written = {name: values[name] is not None for name in RESPONSE.fields}
    written["content"] = written["timestamp"] = True
    return ordered_record(values, extra, order or RESPONSE.fields, RESPONSE.fields, written)


def session_raw(values: dict[str, JSONValue], extra: Mapping[str, JSONValue], order: tuple[str, ...] | None) -> dict:
    """A session as JSON values in file order, from its named ``values`` (children already JSON)."""
    standard = SESSION.standard(values)
    if order is None and not extra:
        return {key: values[key] for key in standard}
    written = {
        "id": True,
        "user_id": True,
        "user_messages": bool(values["user_messages"]),
        "agent_responses": bool(values["agent_responses"]),
        "active_seed_id": values["active_seed_id"] is not None,
        "active_persona_id": values["active_persona_id"] is not None,
        "created_at": True,
        "updated_at": True,
        "metadata": bool(values["metadata"]),
    }
    return ordered_record(values, extra, order or standard, SESSION.fields, written)


_ALWAYS_MESSAGE = {"content": True, "timestamp": True}


def session_to_raw(session: Session) -> dict[str, JSONValue]:
    """The session as plain JSON values, keys in the order oxios writes them."""
    messages = [
        message_raw({"content": m.content, "timestamp": m.timestamp.isoformat()}, m.extra, m.field_order)
        for m in session.user_messages
    ]
    responses = [
        response_raw(
            {
                "content": r.content,
                "session_id": r.session_id,
                "seed_id": r.seed_id,
                "phase_reached": r.phase_reached,
                "evaluation_passed": r.evaluation_passed,
                "timestamp": r.timestamp.isoformat(),
            },
            r.extra,
            r.field_order,
        )
        for r in session.agent_responses
    ]
    values = {
        "id": session.id,
        "user_id": session.user_id,
        "user_messages": messages,
        "agent_responses": responses,
        "active_seed_id": session.active_seed_id,
        "active_persona_id": session.active_persona_id,
        "created_at": session.created_at.isoformat(),
        "updated_at": session.updated_at.isoformat(),
        "metadata": session.metadata,
    }
    return session_raw(values, session.extra, session.field_order)


def encode_raw(raw: JSONValue) -> bytes:
    """JSON values as serde_json's pretty printer writes them (2-space indent, no final newline)."""
    return msgspec.json.format(_ENCODER.encode(raw), indent=2)


def encode_session(session: Session) -> bytes:
    """The bytes oxios writes for ``session``."""
    return encode_raw(session_to_raw(session))


def encode_compact(value: JSONValue) -> str:
    """Compact JSON text of a value (serde_json's ``to_string``), e.g. for a table cell."""
    return _ENCODER.encode(value).decode()
