"""oxios' agent-run records (``AgentInfo``, ``<state>/agents/<id>.json``): checks and layouts.

oxios writes one pretty-printed ``AgentInfo`` per agent run (``crates/oxios-kernel/src/types.rs``)
with serde: fields in struct order, ``Option`` fields left out when None, ``tool_calls`` left out
when empty, ``model_id`` and a tool call's ``tool_call_id`` left out when empty strings. A record
is kept as named values (the columns of the ``agents`` and ``agent_tool_calls`` tables), plus
``extra`` (fields this model does not name, and a known field whose JSON form the column cannot
give back, such as a ``cost_usd`` written as an integer) and ``field_order`` (the record's keys
when they differ from serde's layout), so that it writes back to the very same bytes.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from sessionkit.exceptions import SessionFormatError
from sessionkit.model._shape import JSONValue

#: The fields of ``AgentInfo``, in the order the struct declares (and serde writes) them.
AGENT_FIELDS = (
    "id",
    "name",
    "status",
    "created_at",
    "project_id",
    "started_at",
    "completed_at",
    "error",
    "steps_completed",
    "steps_total",
    "tool_calls",
    "tokens_input",
    "tokens_output",
    "cost_usd",
    "model_id",
    "session_id",
)
#: The fields of ``ToolCallRecord``, in struct order.
TOOL_CALL_FIELDS = ("tool", "input", "output", "duration_ms", "is_error", "tool_call_id", "timestamp")

#: oxios' ``AgentStatus`` variants, as serde writes them.
AGENT_STATUSES = ("Starting", "Running", "Idle", "Stopped", "Failed", "Completed")

_AGENT_KNOWN = frozenset(AGENT_FIELDS)
_TOOL_KNOWN = frozenset(TOOL_CALL_FIELDS)
_INT64_MAX = 2**63 - 1
_MISSING = object()


def _fail(source: str, path: str, reason: str, hint: str | None = None) -> SessionFormatError:
    return SessionFormatError(reason, source=source, path=path, hint=hint)


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def _string(obj: dict, name: str, path: str, source: str, *, required: bool, nullable: bool = False) -> None:
    value = obj.get(name, _MISSING)
    if value is _MISSING:
        if required:
            raise _fail(source, path, f"the required field `{name}` is missing")
        return
    if type(value) is str or (nullable and value is None):
        return
    expected = "a string or null" if nullable else "a string"
    raise _fail(source, f"{path}.{name}", f"expected {expected}, got {_kind(value)}")


def _count(obj: dict, name: str, path: str, source: str, *, required: bool, nullable: bool = False) -> None:
    """An unsigned integer (Rust ``u64`` / ``usize``) that the tables keep as int64."""
    value = obj.get(name, _MISSING)
    if value is _MISSING:
        if required:
            raise _fail(source, path, f"the required field `{name}` is missing")
        return
    if nullable and value is None:
        return
    if type(value) is not int or value < 0:
        raise _fail(source, f"{path}.{name}", f"expected an unsigned integer, got {_kind(value)} ({value!r})")
    if value > _INT64_MAX:
        raise _fail(
            source,
            f"{path}.{name}",
            f"{value} is beyond what the tables keep (a signed 64-bit integer)",
            hint="no agent run reaches such a count; the file was not written by oxios",
        )


def check_agent(obj: JSONValue, source: str = "<text>") -> None:
    """Check that decoded JSON has the shape and types of an oxios ``AgentInfo``.

    Timestamps are checked to be strings here; their RFC 3339 form is checked where they are
    parsed. Raises ``SessionFormatError`` naming ``source`` and the JSON path.

    Example:
        >>> check_agent({"id": "a-1", "name": "hi", "status": "Completed", "created_at": "2026-08-03T11:02:11Z"})
        >>> check_agent({"id": "a-1"})
        Traceback (most recent call last):
        sessionkit.exceptions.SessionFormatError: <text>: at $: the required field `name` is missing
    """
    if type(obj) is not dict:
        raise _fail(source, "$", f"expected a JSON object (an agent record), got {_kind(obj)}")
    for name in ("id", "name", "status", "created_at"):
        _string(obj, name, "$", source, required=True)
    for name in ("project_id", "started_at", "completed_at", "error", "session_id"):
        _string(obj, name, "$", source, required=False, nullable=True)
    _string(obj, "model_id", "$", source, required=False)
    for name in ("steps_completed", "tokens_input", "tokens_output"):
        _count(obj, name, "$", source, required=False)
    _count(obj, "steps_total", "$", source, required=False, nullable=True)
    cost = obj.get("cost_usd", 0.0)
    if type(cost) not in (int, float):
        raise _fail(source, "$.cost_usd", f"expected a number, got {_kind(cost)}")
    calls = obj.get("tool_calls", [])
    if type(calls) is not list:
        raise _fail(source, "$.tool_calls", f"expected an array of tool calls, got {_kind(calls)}")
    for i, call in enumerate(calls):
        path = f"$.tool_calls[{i}]"
        if type(call) is not dict:
            raise _fail(source, path, f"expected an object (a tool call), got {_kind(call)}")
        for name in ("tool", "input", "output"):
            _string(call, name, path, source, required=True)
        _count(call, "duration_ms", path, source, required=True)
        flag = call.get("is_error", False)
        if type(flag) is not bool:
            raise _fail(source, f"{path}.is_error", f"expected true or false, got {_kind(flag)}")
        _string(call, "tool_call_id", path, source, required=False)
        _string(call, "timestamp", path, source, required=False, nullable=True)


def agent_standard(values: dict[str, Any]) -> tuple[str, ...]:
    """The keys serde writes for an agent record with these named values."""
    return tuple(
        name
        for name in AGENT_FIELDS
        if not (
            (
                name in ("project_id", "started_at", "completed_at", "error", "steps_total", "session_id")
                and values[name] is None
            )
            or (name == "tool_calls" and not values[name])
            or (name == "model_id" and not values[name])
        )
    )


def tool_call_standard(values: dict[str, Any]) -> tuple[str, ...]:
    """The keys serde writes for a tool call with these named values."""
    return tuple(
        name
        for name in TOOL_CALL_FIELDS
        if not ((name == "tool_call_id" and not values[name]) or (name == "timestamp" and values[name] is None))
    )


def _layout(record: dict, known: frozenset, standard: tuple[str, ...]) -> tuple[dict, tuple[str, ...] | None]:
    keys = tuple(record)
    extra = {key: value for key, value in record.items() if key not in known}
    return extra, (None if keys == standard else keys)


def agent_values(obj: dict) -> dict[str, Any]:
    """The named values of a checked agent record (timestamps as text; tool calls left raw)."""
    cost = obj.get("cost_usd", 0.0)
    return {
        "id": obj["id"],
        "name": obj["name"],
        "status": obj["status"],
        "created_at": obj["created_at"],
        "project_id": obj.get("project_id"),
        "started_at": obj.get("started_at"),
        "completed_at": obj.get("completed_at"),
        "error": obj.get("error"),
        "steps_completed": obj.get("steps_completed", 0),
        "steps_total": obj.get("steps_total"),
        "tool_calls": obj.get("tool_calls", []),
        "tokens_input": obj.get("tokens_input", 0),
        "tokens_output": obj.get("tokens_output", 0),
        "cost_usd": float(cost),
        "model_id": obj.get("model_id"),
        "session_id": obj.get("session_id"),
    }


def agent_layout(obj: dict, values: dict[str, Any]) -> tuple[dict, tuple[str, ...] | None]:
    """The (extra, field order) of a checked agent record whose named values are ``values``."""
    extra, order = _layout(obj, _AGENT_KNOWN, agent_standard(values))
    if "cost_usd" in obj and type(obj["cost_usd"]) is not float:  # e.g. 0: the double would write 0.0
        extra["cost_usd"] = obj["cost_usd"]
    return extra, order


def tool_call_values(call: dict) -> dict[str, Any]:
    """The named values of a checked tool call (timestamp as text)."""
    return {
        "tool": call["tool"],
        "input": call["input"],
        "output": call["output"],
        "duration_ms": call["duration_ms"],
        "is_error": call.get("is_error", False),
        "tool_call_id": call.get("tool_call_id"),
        "timestamp": call.get("timestamp"),
    }


def tool_call_layout(call: dict, values: dict[str, Any]) -> tuple[dict, tuple[str, ...] | None]:
    """The (extra, field order) of a checked tool call whose named values are ``values``."""
    return _layout(call, _TOOL_KNOWN, tool_call_standard(values))


def record_raw(
    values: dict[str, Any], extra: dict[str, JSONValue], order: tuple[str, ...] | None, standard: tuple[str, ...]
) -> dict[str, JSONValue]:
    """A record as JSON values in file order: ``order`` (else serde's ``standard`` layout), each key
    from ``extra`` when it is there (unknown fields, verbatim known ones), else from ``values``."""
    keys = order if order is not None else standard
    return {key: extra[key] if key in extra else values.get(key) for key in keys}


class _Pairs(dict):
    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__(pairs)
        self.repeated = [k for k, n in Counter(k for k, _ in pairs).items() if n > 1] if len(self) < len(pairs) else []


def check_agent_duplicate_keys(data: bytes, keys: int, source: str) -> None:
    """Refuse an agent record or tool call that names a key twice, as serde does.

    ``keys`` is the number of object keys decoded; only when the text holds more ``":`` than
    that is it parsed again to find the repeated key.
    """
    found = data.count(b'":')
    if found == keys or (found > keys and found - data.count(b'\\":') == keys):
        return
    try:
        pairs = json.loads(data, object_pairs_hook=_Pairs)
    except (ValueError, RecursionError):
        return
    records = [("$", pairs)]
    calls = pairs.get("tool_calls") if isinstance(pairs, dict) else None
    if type(calls) is list:
        records += [(f"$.tool_calls[{i}]", call) for i, call in enumerate(calls)]
    for path, record in records:
        if isinstance(record, _Pairs) and record.repeated:
            raise _fail(
                source,
                path,
                f"the key `{record.repeated[0]}` appears twice in one object",
                hint="oxios refuses such a file (serde: duplicate field); keep one of the two",
            )
