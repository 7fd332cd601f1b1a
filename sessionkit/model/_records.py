"""The records of the oxios model: ``Session``, ``UserMessage``, ``AgentResponse``, and the
building of a ``Session`` from a checked file's JSON values.

The records sit on top of the model's other modules: they use the declaration (``_shape``), the
decoder (``_decode``), the encoder (``_encode``) and the notebook renderer (``_html``), none of
which imports them but to name their types.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sessionkit._timestamp import Timestamp
from sessionkit.exceptions import SessionFormatError
from sessionkit.model._decode import decode_session, record_layout
from sessionkit.model._encode import encode_session
from sessionkit.model._html import session_html
from sessionkit.model._shape import MESSAGE, RESPONSE, SESSION, JSONValue, check_session

#: The fields of each record, in the order the Rust structs declare (and serde writes) them
#: (declared in ``sessionkit.model._shape``).
SESSION_FIELDS = SESSION.fields
MESSAGE_FIELDS = MESSAGE.fields
RESPONSE_FIELDS = RESPONSE.fields

#: The orchestration phases of oxios, in the order a turn goes through them, as oxios writes
#: them in ``phase_reached`` (``Phase::to_string()``: lowercase).
PHASES = ("interview", "seed", "execute", "evaluate", "evolve")


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
        >>> r = AgentResponse(content="done", seed_id="seed-1", phase_reached="evaluate",
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
        return session_html(self)


# -- from a file's JSON values -----------------------------------------------------------------


def _parse_time(text: str, source: str, path: str) -> Timestamp:
    try:
        return Timestamp.parse(text)
    except ValueError as err:
        raise SessionFormatError(str(err), source=source, path=path) from None


def session_from_raw(obj: dict, source: str = "<text>") -> Session:
    """Build a ``Session`` from decoded JSON that ``check_session`` accepted."""
    messages = []
    for i, raw in enumerate(obj.get("user_messages", ())):
        extra, order = record_layout(raw, MESSAGE)
        messages.append(
            UserMessage(
                raw["content"],
                _parse_time(raw["timestamp"], source, f"$.user_messages[{i}].timestamp"),
                extra,
                order,
            )
        )
    responses = []
    for i, raw in enumerate(obj.get("agent_responses", ())):
        extra, order = record_layout(raw, RESPONSE)
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
    extra, order = record_layout(obj, SESSION)
    return Session(
        id=obj["id"],
        user_id=obj["user_id"],
        user_messages=messages,
        agent_responses=responses,
        active_seed_id=obj.get("active_seed_id"),
        active_persona_id=obj.get("active_persona_id"),
        created_at=_parse_time(obj["created_at"], source, "$.created_at"),
        updated_at=_parse_time(obj["updated_at"], source, "$.updated_at"),
        metadata=obj.get("metadata", {}),
        extra=extra,
        field_order=order,
    )


# -- metadata values ---------------------------------------------------------------------------


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
