"""The oxios session model: ``Session``, ``UserMessage``, ``AgentResponse``, and their JSON form.

The classes mirror the Rust structs of oxios (``oxios-kernel/src/state_store.rs``) field for
field and method for method. ``Session.from_json`` / ``Session.to_json`` read and write the
exact text oxios writes (``serde_json::to_string_pretty``), and keep whatever newer oxios
versions add: fields the model does not name are carried in ``extra`` and written back in
their place, recorded by ``field_order``.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter as _Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec

from sessionkit._timestamp import Timestamp
from sessionkit.exceptions import SessionFormatError

__all__ = [
    "MESSAGE_FIELDS",
    "PHASES",
    "RESPONSE_FIELDS",
    "SESSION_FIELDS",
    "AgentResponse",
    "JSONValue",
    "Session",
    "Timestamp",
    "UserMessage",
    "check_session",
    "decode_json",
    "decode_session",
    "encode_session",
]

#: Any value JSON can hold, as Python gives it: dict, list, str, int, float, bool or None.
JSONValue = Any

#: The fields of each record, in the order the Rust structs declare (and serde writes) them.
SESSION_FIELDS = (
    "id",
    "user_id",
    "user_messages",
    "agent_responses",
    "active_seed_id",
    "active_persona_id",
    "created_at",
    "updated_at",
    "metadata",
)
MESSAGE_FIELDS = ("content", "timestamp")
RESPONSE_FIELDS = (
    "content",
    "session_id",
    "seed_id",
    "phase_reached",
    "evaluation_passed",
    "timestamp",
)

#: The orchestration phases of oxios, in the order a turn goes through them.
PHASES = ("Interview", "Seed", "Execute", "Evaluate", "Evolve")

_SESSION_KNOWN = frozenset(SESSION_FIELDS)
_MESSAGE_KNOWN = frozenset(MESSAGE_FIELDS)
_RESPONSE_KNOWN = frozenset(RESPONSE_FIELDS)


def _session_layout(has_seed: bool, has_persona: bool) -> tuple[str, ...]:
    skipped = {"active_seed_id"} if not has_seed else set()
    if not has_persona:
        skipped.add("active_persona_id")
    return tuple(name for name in SESSION_FIELDS if name not in skipped)


# serde's layout of a Session: the optional ids are left out when they are None.
_SESSION_LAYOUTS = {
    (seed, persona): _session_layout(seed, persona) for seed in (False, True) for persona in (False, True)
}


def _now() -> Timestamp:
    return Timestamp.now()


def _as_timestamp(value: Timestamp | datetime | str, what: str) -> Timestamp:
    if type(value) is Timestamp:
        return value
    if isinstance(value, Timestamp):
        return value
    if isinstance(value, datetime):
        return Timestamp.from_datetime(value)
    if isinstance(value, str):
        return Timestamp.parse(value)
    msg = f"{what} must be a sessionkit Timestamp, an aware datetime or RFC 3339 text, got {type(value).__name__}"
    raise TypeError(msg)


@dataclass(slots=True)
class UserMessage:
    """A message the user sent: its text and when it was sent.

    Example:
        >>> UserMessage("hello", "2026-06-03T17:26:17Z").timestamp
        Timestamp('2026-06-03T17:26:17Z')
    """

    content: str
    timestamp: Timestamp = field(default_factory=_now)
    #: Fields of the record that this model does not name (newer oxios versions), in order.
    extra: dict[str, JSONValue] = field(default_factory=dict)
    #: The record's keys in file order when they differ from oxios' own layout, else None.
    field_order: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if type(self.timestamp) is not Timestamp:
            self.timestamp = _as_timestamp(self.timestamp, "UserMessage.timestamp")


@dataclass(slots=True, kw_only=True)
class AgentResponse:
    """The agent's answer to a user message, with the seed, phase and evaluation it reached.

    Example:
        >>> r = AgentResponse(content="done", seed_id="seed-1", phase_reached="Evaluate",
        ...                   evaluation_passed=True, timestamp="2026-06-03T17:26:19.5Z")
        >>> r.evaluation_passed
        True
    """

    content: str
    session_id: str | None = None
    seed_id: str | None = None
    phase_reached: str | None = None
    evaluation_passed: bool | None = None
    timestamp: Timestamp = field(default_factory=_now)
    #: Fields of the record that this model does not name (e.g. ``trajectory_range``), in order.
    extra: dict[str, JSONValue] = field(default_factory=dict)
    #: The record's keys in file order when they differ from oxios' own layout, else None.
    field_order: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if type(self.timestamp) is not Timestamp:
            self.timestamp = _as_timestamp(self.timestamp, "AgentResponse.timestamp")


@dataclass(kw_only=True, repr=False)
class Session:
    """One oxios conversation: the user's messages, the agent's responses, and metadata.

    An exchange is the user message and the agent response at the same index, so
    ``exchange_count()`` is ``min(len(user_messages), len(agent_responses))``. Every
    mutating method sets ``updated_at`` to now, as oxios does.

    Example:
        >>> s = Session.with_id("user-1", "s-1")
        >>> s.add_user_message("What is a seed?")
        >>> s.add_agent_response(AgentResponse(content="A specification.", seed_id="seed-7"))
        >>> s.exchange_count(), s.is_empty()
        (1, False)
        >>> Session.from_json(s.to_json()) == s
        True
    """

    id: str
    user_id: str
    user_messages: list[UserMessage] = field(default_factory=list)
    agent_responses: list[AgentResponse] = field(default_factory=list)
    active_seed_id: str | None = None
    active_persona_id: str | None = None
    created_at: Timestamp
    updated_at: Timestamp
    metadata: dict[str, JSONValue] = field(default_factory=dict)
    #: Top-level fields this model does not name (``trajectory_steps``, ``project_id``, ...).
    extra: dict[str, JSONValue] = field(default_factory=dict)
    #: The file's top-level keys in order when they differ from oxios' own layout, else None.
    #: A key listed here whose value is None is written as ``null``; one left out is omitted.
    field_order: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if type(self.created_at) is not Timestamp:
            self.created_at = _as_timestamp(self.created_at, "Session.created_at")
        if type(self.updated_at) is not Timestamp:
            self.updated_at = _as_timestamp(self.updated_at, "Session.updated_at")

    # -- constructors, as in oxios ------------------------------------------------------
    @classmethod
    def new(cls, user_id: str) -> Session:
        """A new empty session for ``user_id`` with a random UUID v4 id, created now."""
        return cls.with_id(user_id, str(uuid.uuid4()))

    @classmethod
    def with_id(cls, user_id: str, session_id: str) -> Session:
        """A new empty session for ``user_id`` with the given id, created now."""
        now = Timestamp.now()
        return cls(id=session_id, user_id=user_id, created_at=now, updated_at=now)

    # -- the oxios methods ----------------------------------------------------------------
    def add_user_message(self, content: str) -> None:
        """Append a user message stamped now."""
        self.user_messages.append(UserMessage(content, Timestamp.now()))
        self.updated_at = Timestamp.now()

    def add_agent_response(self, response: AgentResponse) -> None:
        """Append an agent response."""
        if not isinstance(response, AgentResponse):
            msg = f"add_agent_response takes an AgentResponse, got {type(response).__name__}"
            raise TypeError(msg)
        self.agent_responses.append(response)
        self.updated_at = Timestamp.now()

    def set_active_seed(self, seed_id: str | None) -> None:
        """Set (or clear, with None) the active seed id."""
        self.active_seed_id = seed_id
        if seed_id is None:
            self._forget_key("active_seed_id")
        self.updated_at = Timestamp.now()

    def set_active_persona(self, persona_id: str | None) -> None:
        """Set (or clear, with None) the active persona id."""
        self.active_persona_id = persona_id
        if persona_id is None:
            self._forget_key("active_persona_id")
        self.updated_at = Timestamp.now()

    def _forget_key(self, key: str) -> None:
        """Cleared optional ids are left out of the file again, as serde does."""
        if self.field_order is not None and key in self.field_order:
            self.field_order = tuple(k for k in self.field_order if k != key)

    def set_metadata(self, key: str, value: JSONValue) -> None:
        """Set a metadata value; it must be JSON (dict, list, str, int, finite float, bool, None)."""
        if type(key) is not str:
            msg = f"metadata keys are strings, got {type(key).__name__}"
            raise TypeError(msg)
        self.metadata[key] = _json_copy(value, f"metadata[{key!r}]")
        self.updated_at = Timestamp.now()

    def get_metadata(self, key: str) -> JSONValue | None:
        """The metadata value under ``key``, or None when there is none."""
        return self.metadata.get(key)

    def exchange_count(self) -> int:
        """The number of exchanges: ``min(len(user_messages), len(agent_responses))``."""
        return min(len(self.user_messages), len(self.agent_responses))

    def is_empty(self) -> bool:
        """True when the session holds no user messages."""
        return not self.user_messages

    def exchanges(self) -> Iterator[tuple[UserMessage, AgentResponse]]:
        """The (user message, agent response) pairs, in order."""
        return zip(self.user_messages, self.agent_responses, strict=False)

    # -- JSON -------------------------------------------------------------------------------
    @classmethod
    def from_json(cls, text: str | bytes, *, source: str = "<text>") -> Session:
        """Parse the JSON text of an oxios session file.

        Raises:
            SessionFormatError: the text is not JSON or not a session; the message names
                ``source`` and the JSON path (or byte offset) of the problem.
        """
        obj = decode_session(text, source=source)
        check_session(obj, source)
        return session_from_raw(obj, source)

    def to_json(self) -> str:
        """The text oxios would write for this session (serde_json's pretty printer)."""
        return encode_session(self).decode()

    def __repr__(self) -> str:
        return (
            f"Session(id={self.id!r}, user_id={self.user_id!r}, "
            f"user_messages={len(self.user_messages)}, agent_responses={len(self.agent_responses)}, "
            f"created_at='{self.created_at}')"
        )

    def _repr_html_(self) -> str:
        from sessionkit._html import session_html

        return session_html(self)


# -- decoding ---------------------------------------------------------------------------------
_DECODER = msgspec.json.Decoder()
_ENCODER = msgspec.json.Encoder()
_BYTE_AT = re.compile(r"\(byte (\d+)\)")
_BOM = b"\xef\xbb\xbf"


def decode_json(data: str | bytes, *, source: str = "<text>") -> JSONValue:
    """Parse JSON text strictly (no NaN, no trailing text), with errors that name ``source``."""
    if not data:
        raise SessionFormatError(
            "the file is empty",
            source=source,
            offset=0,
            hint="oxios never writes an empty session file; it may have been cut off by a crash",
        )
    if isinstance(data, bytes) and data.startswith(_BOM):
        raise SessionFormatError(
            "the text starts with a UTF-8 byte-order mark",
            source=source,
            offset=0,
            hint="oxios writes no byte-order mark; remove the first three bytes",
        )
    try:
        return _DECODER.decode(data)
    except msgspec.DecodeError as err:
        raise _syntax_error(str(err), data, source) from None
    except msgspec.ValidationError as err:  # e.g. a number beyond the range of a double
        raise SessionFormatError(f"not valid JSON: {err}", source=source) from None
    except RecursionError:
        raise SessionFormatError(
            "the JSON nests too deeply to read",
            source=source,
            hint="oxios itself refuses nesting deeper than 128 levels",
        ) from None


_LONE_SURROGATE = re.compile(
    rb"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})|(?<![0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)


def _syntax_error(detail: str, data: str | bytes, source: str) -> SessionFormatError:
    raw = data.encode(errors="surrogatepass") if isinstance(data, str) else data
    if not raw.strip(b"\x00"):
        return SessionFormatError(
            f"the file holds only {len(raw)} zero bytes",
            source=source,
            offset=0,
            hint="a crash can leave such a file before oxios wrote it; there is no session in it",
        )
    match = _BYTE_AT.search(detail)
    offset = int(match.group(1)) if match else None
    reason = _BYTE_AT.sub("", detail).strip().removeprefix("JSON is malformed: ")
    surrogate = _LONE_SURROGATE.search(raw) if "surrogate" in detail or "truncated" in detail else None
    if surrogate is not None:
        reason = f"a lone UTF-16 surrogate escape {surrogate.group().decode()} names no character"
        offset = surrogate.start()
    elif detail.startswith("Input data was truncated"):
        reason = "the JSON text ends too early (truncated file, or an unfinished string or escape)"
        offset = len(raw)
    elif "UTF-8" in detail:
        reason = "the file is not valid UTF-8"
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as err:
            offset = err.start
    else:
        reason = f"not valid JSON: {reason}"
    if offset is not None:
        head = raw[:offset]
        line = head.count(b"\n") + 1
        column = offset - (head.rfind(b"\n") + 1) + 1
        reason += f" (line {line}, column {column})"
    return SessionFormatError(reason, source=source, offset=offset)


def decode_session(data: str | bytes, *, source: str = "<text>") -> JSONValue:
    """``decode_json``, then refuse duplicate keys in the records oxios reads as structs.

    serde refuses a session, message or response that names a field twice; sessionkit
    does too, rather than keep one of the values silently. (Metadata is a map, where oxios
    keeps the last value of a repeated key; so does sessionkit.)
    """
    obj = decode_json(data, source=source)
    if type(obj) is dict:
        check_duplicate_keys(data, obj, source)
    return obj


def count_keys(value: JSONValue) -> int:
    """The object keys anywhere inside a decoded JSON value."""
    count = 0
    if type(value) is dict:
        count = len(value)
        value = value.values()
    for item in value:
        kind = type(item)
        if kind is dict or kind is list:
            count += count_keys(item)
    return count


def _key_count(obj: dict) -> int:
    """The object keys of a decoded session: ``len`` for each record, plus any nested objects."""
    count = len(obj)
    for value in obj.values():
        kind = type(value)
        if kind is list:
            for item in value:
                kind = type(item)
                if kind is dict:
                    count += len(item)
                    for inner in item.values():
                        if type(inner) is dict or type(inner) is list:
                            count += count_keys(inner)
                elif kind is list:
                    count += count_keys(item)
        elif kind is dict:
            count += count_keys(value)
    return count


class _Pairs(dict):
    """A JSON object that remembers the keys it saw twice."""

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__(pairs)
        self.repeated = [k for k, n in _Counter(k for k, _ in pairs).items() if n > 1] if len(self) < len(pairs) else []


def check_duplicate_keys(data: str | bytes, obj: dict, source: str = "<text>") -> None:
    """Raise ``SessionFormatError`` when the session, a message or a response names a key twice.

    The text's keys are counted with a byte count (``":`` ends a key; inside a string a quote
    is escaped as ``\\"``) and compared with the decoded keys; only when they differ (a
    repeated key, or an unusual layout) is the text parsed again to find the repeated key.
    """
    raw = data.encode(errors="surrogatepass") if isinstance(data, str) else data
    keys = _key_count(obj)
    found = raw.count(b'":')
    if found == keys or (found > keys and found - raw.count(b'\\":') == keys):
        return
    import json

    try:
        pairs = json.loads(raw, object_pairs_hook=_Pairs)
    except (ValueError, RecursionError):
        return  # msgspec read it; whatever json objects to is not a duplicate key
    records = [("$", pairs)]
    for name in ("user_messages", "agent_responses"):
        items = pairs.get(name) if isinstance(pairs, dict) else None
        if type(items) is list:
            records += [(f"$.{name}[{i}]", item) for i, item in enumerate(items)]
    for path, record in records:
        if isinstance(record, _Pairs) and record.repeated:
            raise SessionFormatError(
                f"the key `{record.repeated[0]}` appears twice in one object",
                source=source,
                path=path,
                hint="oxios refuses such a file (serde: duplicate field); keep one of the two",
            )


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if type(value) is bool:
        return f"a boolean ({'true' if value else 'false'})"
    if type(value) is int:
        return f"an integer ({value})"
    if type(value) is float:
        return f"a number ({value!r})"
    if type(value) is str:
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"a string ({shown!r})"
    if type(value) is list:
        return "an array"
    if type(value) is dict:
        return "an object"
    return type(value).__name__


def _fail(source: str, path: str, reason: str, hint: str | None = None) -> SessionFormatError:
    return SessionFormatError(reason, source=source, path=path, hint=hint)


def _expect(source: str, path: str, value: object, expected: str) -> SessionFormatError:
    return _fail(source, path, f"expected {expected}, got {_describe(value)}")


def check_session(obj: JSONValue, source: str = "<text>") -> None:
    """Check that decoded JSON has the shape and types of an oxios session.

    Timestamps are checked to be strings here; their RFC 3339 form is checked where they
    are parsed. Raises ``SessionFormatError`` naming ``source`` and the JSON path.
    """
    if type(obj) is not dict:
        raise _expect(source, "$", obj, "a JSON object (a session)")
    for name in ("id", "user_id", "created_at", "updated_at"):
        value = obj.get(name, _MISSING)
        if value is _MISSING:
            raise _fail(source, "$", f"the required field `{name}` is missing")
        if type(value) is not str:
            raise _expect(source, f"$.{name}", value, "a string")
    for name in ("active_seed_id", "active_persona_id"):
        value = obj.get(name)
        if value is not None and type(value) is not str:
            raise _expect(source, f"$.{name}", value, "a string or null")
    metadata = obj.get("metadata", _EMPTY_DICT)
    if type(metadata) is not dict:
        raise _expect(source, "$.metadata", metadata, "an object")
    messages = obj.get("user_messages", _EMPTY_LIST)
    if type(messages) is not list:
        raise _expect(source, "$.user_messages", messages, "an array of messages")
    for i, msg in enumerate(messages):
        if type(msg) is not dict or type(msg.get("content")) is not str or type(msg.get("timestamp")) is not str:
            _check_record(msg, f"$.user_messages[{i}]", source, _MESSAGE_TYPES)
    responses = obj.get("agent_responses", _EMPTY_LIST)
    if type(responses) is not list:
        raise _expect(source, "$.agent_responses", responses, "an array of responses")
    for i, resp in enumerate(responses):
        if (
            type(resp) is not dict
            or type(resp.get("content")) is not str
            or type(resp.get("timestamp")) is not str
            or type(resp.get("evaluation_passed")) not in _OPTIONAL_BOOL
            or type(resp.get("session_id")) not in _OPTIONAL_STR
            or type(resp.get("seed_id")) not in _OPTIONAL_STR
            or type(resp.get("phase_reached")) not in _OPTIONAL_STR
        ):
            _check_record(resp, f"$.agent_responses[{i}]", source, _RESPONSE_TYPES)


_MISSING = object()
_EMPTY_DICT: dict = {}
_EMPTY_LIST: list = []
_OPTIONAL_STR = (str, type(None))
_OPTIONAL_BOOL = (bool, type(None))
# name -> (accepted types, required, description)
_MESSAGE_TYPES = {
    "content": ((str,), True, "a string"),
    "timestamp": ((str,), True, "an RFC 3339 timestamp string"),
}
_RESPONSE_TYPES = {
    "content": ((str,), True, "a string"),
    "session_id": (_OPTIONAL_STR, False, "a string or null"),
    "seed_id": (_OPTIONAL_STR, False, "a string or null"),
    "phase_reached": (_OPTIONAL_STR, False, "a string or null"),
    "evaluation_passed": (_OPTIONAL_BOOL, False, "true, false or null"),
    "timestamp": ((str,), True, "an RFC 3339 timestamp string"),
}


def _check_record(record: object, path: str, source: str, types: dict) -> None:
    if type(record) is not dict:
        raise _expect(source, path, record, "an object")
    for name, (accepted, required, description) in types.items():
        value = record.get(name, _MISSING)
        if value is _MISSING:
            if required:
                raise _fail(source, path, f"the required field `{name}` is missing")
            continue
        if type(value) not in accepted:
            raise _expect(source, f"{path}.{name}", value, description)


def _layout(record: dict, known: frozenset, standard: tuple[str, ...]) -> tuple[dict, tuple[str, ...] | None]:
    keys = tuple(record)
    if keys == standard:
        return {}, None
    return {key: value for key, value in record.items() if key not in known}, keys


def _parse_time(text: str, source: str, path: str) -> Timestamp:
    try:
        return Timestamp.parse(text)
    except ValueError as err:
        raise _fail(source, path, str(err)) from None


def session_from_raw(obj: dict, source: str = "<text>") -> Session:
    """Build a ``Session`` from decoded JSON that ``check_session`` accepted."""
    messages = []
    for i, raw in enumerate(obj.get("user_messages", _EMPTY_LIST)):
        extra, order = _layout(raw, _MESSAGE_KNOWN, MESSAGE_FIELDS)
        messages.append(
            UserMessage(
                raw["content"],
                _parse_time(raw["timestamp"], source, f"$.user_messages[{i}].timestamp"),
                extra,
                order,
            )
        )
    responses = []
    for i, raw in enumerate(obj.get("agent_responses", _EMPTY_LIST)):
        extra, order = _layout(raw, _RESPONSE_KNOWN, RESPONSE_FIELDS)
        responses.append(
            AgentResponse(
                content=raw["content"],
                session_id=raw.get("session_id"),
                seed_id=raw.get("seed_id"),
                phase_reached=raw.get("phase_reached"),
                evaluation_passed=raw.get("evaluation_passed"),
                timestamp=_parse_time(raw["timestamp"], source, f"$.agent_responses[{i}].timestamp"),
                extra=extra,
                field_order=order,
            )
        )
    seed, persona = obj.get("active_seed_id"), obj.get("active_persona_id")
    extra, order = _layout(obj, _SESSION_KNOWN, _SESSION_LAYOUTS[seed is not None, persona is not None])
    return Session(
        id=obj["id"],
        user_id=obj["user_id"],
        user_messages=messages,
        agent_responses=responses,
        active_seed_id=seed,
        active_persona_id=persona,
        created_at=_parse_time(obj["created_at"], source, "$.created_at"),
        updated_at=_parse_time(obj["updated_at"], source, "$.updated_at"),
        metadata=obj.get("metadata", {}),
        extra=extra,
        field_order=order,
    )


def session_layout(obj: dict) -> tuple[dict, tuple[str, ...] | None]:
    """The (extra fields, field order) of a decoded session's top level."""
    seed, persona = obj.get("active_seed_id"), obj.get("active_persona_id")
    return _layout(obj, _SESSION_KNOWN, _SESSION_LAYOUTS[seed is not None, persona is not None])


def message_layout(obj: dict) -> tuple[dict, tuple[str, ...] | None]:
    """The (extra fields, field order) of a decoded user message."""
    return _layout(obj, _MESSAGE_KNOWN, MESSAGE_FIELDS)


def response_layout(obj: dict) -> tuple[dict, tuple[str, ...] | None]:
    """The (extra fields, field order) of a decoded agent response."""
    return _layout(obj, _RESPONSE_KNOWN, RESPONSE_FIELDS)


# -- encoding ---------------------------------------------------------------------------------
def _ordered(
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
    return _ordered(values, extra, order or MESSAGE_FIELDS, MESSAGE_FIELDS, _ALWAYS_MESSAGE)


def response_raw(values: dict[str, JSONValue], extra: Mapping[str, JSONValue], order: tuple[str, ...] | None) -> dict:
    """An agent response as JSON values in file order, from its named ``values``."""
    if order is None and not extra:
        return values
    written = {name: values[name] is not None for name in RESPONSE_FIELDS}
    written["content"] = written["timestamp"] = True
    return _ordered(values, extra, order or RESPONSE_FIELDS, RESPONSE_FIELDS, written)


def session_raw(values: dict[str, JSONValue], extra: Mapping[str, JSONValue], order: tuple[str, ...] | None) -> dict:
    """A session as JSON values in file order, from its named ``values`` (children already JSON)."""
    standard = _SESSION_LAYOUTS[values["active_seed_id"] is not None, values["active_persona_id"] is not None]
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
    return _ordered(values, extra, order or standard, SESSION_FIELDS, written)


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


def _json_copy(value: JSONValue, what: str) -> JSONValue:
    """Check that ``value`` is JSON and return a copy made of dicts, lists and scalars."""
    kind = type(value)
    if value is None or kind is str or kind is bool or kind is int:
        return value
    if kind is float:
        if value != value or value in (float("inf"), float("-inf")):
            msg = f"{what}: JSON has no NaN or infinity; store such a value as null or a string"
            raise ValueError(msg)
        return value
    if isinstance(value, (list, tuple)):
        return [_json_copy(item, f"{what}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if type(key) is not str:
                msg = f"{what}: JSON object keys are strings, got {type(key).__name__} {key!r}"
                raise TypeError(msg)
            out[key] = _json_copy(item, f"{what}[{key!r}]")
        return out
    if isinstance(value, (str, int, float)):  # subclasses such as IntEnum or numpy scalars
        return _json_copy(_plain_scalar(value), what)
    msg = f"{what}: {kind.__name__} is not a JSON value (use dict, list, str, int, float, bool or None)"
    raise TypeError(msg)


def _plain_scalar(value: str | int | float) -> str | int | float:
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    return float(value)
