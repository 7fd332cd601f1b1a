"""The oxios session model: ``Session``, ``UserMessage``, ``AgentResponse``, and their JSON form.

The shape of a session file is declared once, in ``SessionShape`` and its records (``SESSION``,
``MESSAGE`` and ``RESPONSE`` say what it implies), and every check follows it. The classes
mirror the Rust structs of oxios (``oxios-kernel/src/state_store.rs``) field for
field and method for method. ``Session.from_json`` / ``Session.to_json`` read and write the
exact text oxios writes (``serde_json::to_string_pretty``), and keep whatever newer oxios
versions add: fields the model does not name are carried in ``extra`` and written back in
their place, recorded by ``field_order``.
"""

from sessionkit._timestamp import Timestamp
from sessionkit.model._agent import (
    AGENT_FIELDS,
    AGENT_STATUSES,
    TOOL_CALL_FIELDS,
    agent_layout,
    agent_standard,
    agent_values,
    check_agent,
    check_agent_duplicate_keys,
    record_raw,
    tool_call_layout,
    tool_call_standard,
    tool_call_values,
)
from sessionkit.model._decode import (
    MAX_DEPTH,
    changed_numbers,
    check_duplicate_keys,
    count_keys,
    decode_json,
    decode_session,
    deeper_than,
    message_layout,
    record_layout,
    response_layout,
    session_from_raw,
    session_layout,
)
from sessionkit.model._encode import (
    encode_compact,
    encode_raw,
    encode_session,
    message_raw,
    ordered_record,
    response_raw,
    session_raw,
    session_to_raw,
)
from sessionkit.model._records import (
    MESSAGE_FIELDS,
    PHASES,
    RESPONSE_FIELDS,
    SESSION_FIELDS,
    AgentResponse,
    JSONValue,
    Session,
    UserMessage,
)
from sessionkit.model._shape import (
    MESSAGE,
    RESPONSE,
    SESSION,
    MessageShape,
    RecordShape,
    ResponseShape,
    SessionShape,
    check_session,
)

__all__ = [
    "AGENT_FIELDS",
    "AGENT_STATUSES",
    "MAX_DEPTH",
    "MESSAGE",
    "MESSAGE_FIELDS",
    "PHASES",
    "RESPONSE",
    "RESPONSE_FIELDS",
    "SESSION",
    "SESSION_FIELDS",
    "TOOL_CALL_FIELDS",
    "AgentResponse",
    "JSONValue",
    "MessageShape",
    "RecordShape",
    "ResponseShape",
    "Session",
    "SessionShape",
    "Timestamp",
    "UserMessage",
    "agent_layout",
    "agent_standard",
    "agent_values",
    "changed_numbers",
    "check_agent",
    "check_agent_duplicate_keys",
    "check_duplicate_keys",
    "check_session",
    "count_keys",
    "decode_json",
    "decode_session",
    "deeper_than",
    "encode_compact",
    "encode_raw",
    "encode_session",
    "message_layout",
    "message_raw",
    "ordered_record",
    "record_layout",
    "record_raw",
    "response_layout",
    "response_raw",
    "session_from_raw",
    "session_layout",
    "session_raw",
    "session_to_raw",
    "tool_call_layout",
    "tool_call_standard",
    "tool_call_values",
]
