"""Hypothesis strategies for hostile but valid oxios sessions."""

from __future__ import annotations

from hypothesis import strategies as st

from sessionkit._timestamp import NS_MAX, NS_MIN, Timestamp
from sessionkit.model import (
    MESSAGE_FIELDS,
    PHASES,
    RESPONSE_FIELDS,
    SESSION_FIELDS,
    AgentResponse,
    Session,
    UserMessage,
)

# every escape class: quotes, backslashes, control characters, DEL, astral, combining,
# bidi controls, line separators, HTML and SQL; no lone surrogates (UTF-8 cannot carry them)
_SPECIAL = "\"\\/\b\f\n\r\t\x00\x01\x1f\x7f\u0085\u2028\u2029\u202e\u200f\ufeff\U0001f680e\u0301 <>&'" + "</script>"
text = st.text(
    alphabet=st.one_of(st.characters(blacklist_categories=("Cs",)), st.sampled_from(_SPECIAL)),
    max_size=40,
)
ids = st.one_of(st.just(""), text, st.uuids().map(str))
timestamps = st.integers(min_value=NS_MIN, max_value=NS_MAX).map(Timestamp)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.sampled_from([0, -1, 2**63 - 1, -(2**63), 2**64 - 1]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1e300, -1e300, 5e-324, -0.0, 0.1, 1e16, 1e-7, 123456789.0]),
    text,
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(text, children, max_size=4)),
    max_leaves=12,
)


def _deep(depth: int) -> object:
    value: object = "bottom"
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


metadata = st.one_of(
    st.dictionaries(text, json_values, max_size=6),
    st.integers(min_value=1, max_value=60).map(lambda d: {"deep": _deep(d)}),
)
extras = st.dictionaries(text.filter(lambda k: k not in RESPONSE_FIELDS + MESSAGE_FIELDS), json_values, max_size=3)


@st.composite
def layouts(draw: st.DrawFn, fields: tuple[str, ...], required: tuple[str, ...], extra: dict) -> tuple[str, ...] | None:
    """None (oxios' layout) or some order of the required keys, some optional ones, and the extras."""
    if not extra and draw(st.booleans()):
        return None
    optional = [f for f in fields if f not in required and draw(st.booleans())]
    keys = list(required) + optional + list(extra)
    return tuple(draw(st.permutations(keys)))


@st.composite
def messages(draw: st.DrawFn) -> UserMessage:
    extra = draw(st.one_of(st.just({}), extras))
    order = draw(layouts(MESSAGE_FIELDS, MESSAGE_FIELDS, extra))
    return UserMessage(draw(text), draw(timestamps), extra, order)


@st.composite
def responses(draw: st.DrawFn) -> AgentResponse:
    extra = draw(st.one_of(st.just({}), extras))
    return AgentResponse(
        content=draw(text),
        session_id=draw(st.one_of(st.none(), ids)),
        seed_id=draw(st.one_of(st.none(), ids)),
        phase_reached=draw(st.one_of(st.none(), st.sampled_from(PHASES), text)),
        evaluation_passed=draw(st.one_of(st.none(), st.booleans())),
        timestamp=draw(timestamps),
        extra=extra,
        field_order=draw(layouts(RESPONSE_FIELDS, ("content", "timestamp"), extra)),
    )


_SESSION_REQUIRED = ("id", "user_id", "created_at", "updated_at")


@st.composite
def sessions(draw: st.DrawFn) -> Session:
    """A session as decoding a file would give it: layouts only list keys the file would hold."""
    extra = draw(
        st.one_of(st.just({}), st.dictionaries(text.filter(lambda k: k not in SESSION_FIELDS), json_values, max_size=3))
    )
    session = Session(
        id=draw(ids),
        user_id=draw(ids),
        user_messages=draw(st.lists(messages(), max_size=4)),
        agent_responses=draw(st.lists(responses(), max_size=4)),
        active_seed_id=draw(st.one_of(st.none(), ids)),
        active_persona_id=draw(st.one_of(st.none(), ids)),
        created_at=draw(timestamps),
        updated_at=draw(timestamps),
        metadata=draw(metadata),
        extra=extra,
        field_order=draw(layouts(SESSION_FIELDS, _SESSION_REQUIRED, extra)),
    )
    return session


# -- agent-run records (oxios' AgentInfo), as raw JSON values in the order a file holds them ----------
_COUNTS = st.one_of(st.integers(min_value=0, max_value=2**63 - 1), st.sampled_from([0, 1, 2**63 - 1]))
_TIME_TEXT = timestamps.map(lambda t: t.isoformat())


def _agent_extras(known: tuple[str, ...]) -> st.SearchStrategy[dict]:
    return st.one_of(
        st.just({}), st.dictionaries(text.filter(lambda k: k not in known), json_values, min_size=1, max_size=2)
    )


@st.composite
def _record(draw: st.DrawFn, values: dict, standard: tuple[str, ...], known: tuple[str, ...]) -> dict:
    """``values`` laid out as serde would (``standard``), or, now and then, as another writer might:
    keys permuted, defaulted fields left out, optional ones written as null, unknown ones added."""
    extra = draw(_agent_extras(known))
    if not extra and draw(st.booleans()):
        return {key: values[key] for key in standard}
    keys = [
        k
        for k in standard
        if k in ("id", "name", "status", "created_at", "tool", "input", "output", "duration_ms") or draw(st.booleans())
    ]
    keys += [k for k in known if k not in standard and k in values and draw(st.booleans())]  # null or empty, written
    record = {key: values[key] for key in keys}
    record.update(extra)
    order = draw(st.permutations(list(record)))
    return {key: record[key] for key in order}


@st.composite
def tool_call_records(draw: st.DrawFn) -> dict:
    from sessionkit.model import TOOL_CALL_FIELDS, tool_call_standard

    values = {
        "tool": draw(text),
        "input": draw(text),
        "output": draw(text),
        "duration_ms": draw(_COUNTS),
        "is_error": draw(st.booleans()),
        "tool_call_id": draw(st.one_of(st.just(""), text)),
        "timestamp": draw(st.one_of(st.none(), _TIME_TEXT)),
    }
    return draw(_record(values, tool_call_standard(values), TOOL_CALL_FIELDS))


@st.composite
def agent_records(draw: st.DrawFn) -> dict:
    """An agent-run record as a file holds it (see ``sessionkit.model.AGENT_FIELDS``)."""
    from sessionkit.model import AGENT_FIELDS, AGENT_STATUSES, agent_standard

    values = {
        "id": draw(st.uuids().map(str)),
        "name": draw(text),
        "status": draw(st.one_of(st.sampled_from(AGENT_STATUSES), text)),
        "created_at": draw(_TIME_TEXT),
        "project_id": draw(st.one_of(st.none(), ids)),
        "started_at": draw(st.one_of(st.none(), _TIME_TEXT)),
        "completed_at": draw(st.one_of(st.none(), _TIME_TEXT)),
        "error": draw(st.one_of(st.none(), text)),
        "steps_completed": draw(_COUNTS),
        "steps_total": draw(st.one_of(st.none(), _COUNTS)),
        "tool_calls": draw(st.lists(tool_call_records(), max_size=3)),
        "tokens_input": draw(_COUNTS),
        "tokens_output": draw(_COUNTS),
        "cost_usd": draw(
            st.one_of(
                st.floats(allow_nan=False, allow_infinity=False),
                st.sampled_from([0.0, -0.0, 5e-324, 1e300, 0.108426, 1e-7, 1e16]),
                st.integers(min_value=0, max_value=2**53),
            )
        ),
        "model_id": draw(st.one_of(st.just(""), text)),
        "session_id": draw(st.one_of(st.none(), ids)),
    }
    return draw(_record(values, agent_standard({**values, "cost_usd": 0.0}), AGENT_FIELDS))
