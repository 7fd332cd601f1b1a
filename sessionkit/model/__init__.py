"""The oxios session model: ``Session``, ``UserMessage``, ``AgentResponse``, and their JSON form.

The shape of a session file is declared once, in ``SessionShape`` and its records (``SESSION``,
``MESSAGE`` and ``RESPONSE`` say what it implies), and every check follows it. The classes
mirror the Rust structs of oxios (``oxios-kernel/src/state_store.rs``) field for
field and method for method. ``Session.from_json`` / ``Session.to_json`` read and write the
exact text oxios writes (``serde_json::to_string_pretty``), and keep whatever newer oxios
versions add: fields the model does not name are carried in ``extra`` and written back in
their place, recorded by ``field_order``.
"""

# ``x as x``: not documented, for sessionkit's other packages, which may not import this
# package's private modules; free to change. __all__ holds the documented names.
from sessionkit._timestamp import Timestamp
from sessionkit.model._agent import AGENT_FIELDS as AGENT_FIELDS
from sessionkit.model._agent import AGENT_STATUSES as AGENT_STATUSES
from sessionkit.model._agent import TOOL_CALL_FIELDS as TOOL_CALL_FIELDS
from sessionkit.model._agent import agent_layout as agent_layout
from sessionkit.model._agent import agent_standard as agent_standard
from sessionkit.model._agent import agent_values as agent_values
from sessionkit.model._agent import check_agent as check_agent
from sessionkit.model._agent import check_agent_duplicate_keys as check_agent_duplicate_keys
from sessionkit.model._agent import record_raw as record_raw
from sessionkit.model._agent import tool_call_layout as tool_call_layout
from sessionkit.model._agent import tool_call_standard as tool_call_standard
from sessionkit.model._agent import tool_call_values as tool_call_values
from sessionkit.model._decode import MAX_DEPTH as MAX_DEPTH
from sessionkit.model._decode import changed_numbers as changed_numbers
from sessionkit.model._decode import check_duplicate_keys as check_duplicate_keys
from sessionkit.model._decode import count_keys as count_keys
from sessionkit.model._decode import decode_json as decode_json
from sessionkit.model._decode import decode_session as decode_session
from sessionkit.model._decode import deeper_than as deeper_than
from sessionkit.model._decode import record_layout as record_layout
from sessionkit.model._encode import encode_compact as encode_compact
from sessionkit.model._encode import encode_raw as encode_raw
from sessionkit.model._encode import encode_session as encode_session
from sessionkit.model._encode import message_raw as message_raw
from sessionkit.model._encode import ordered_record as ordered_record
from sessionkit.model._encode import response_raw as response_raw
from sessionkit.model._encode import session_raw as session_raw
from sessionkit.model._encode import session_to_raw as session_to_raw
from sessionkit.model._html import session_html as session_html
from sessionkit.model._records import MESSAGE_FIELDS as MESSAGE_FIELDS
from sessionkit.model._records import PHASES as PHASES
from sessionkit.model._records import RESPONSE_FIELDS as RESPONSE_FIELDS
from sessionkit.model._records import SESSION_FIELDS as SESSION_FIELDS
from sessionkit.model._records import AgentResponse, Session, UserMessage
from sessionkit.model._records import session_from_raw as session_from_raw
from sessionkit.model._shape import MESSAGE as MESSAGE
from sessionkit.model._shape import RESPONSE as RESPONSE
from sessionkit.model._shape import SESSION as SESSION
from sessionkit.model._shape import JSONValue as JSONValue
from sessionkit.model._shape import RecordShape as RecordShape
from sessionkit.model._shape import SessionShape as SessionShape
from sessionkit.model._shape import check_session as check_session
from sessionkit.model._shape import step_owners as step_owners

__all__ = ["AgentResponse", "Session", "Timestamp", "UserMessage"]
