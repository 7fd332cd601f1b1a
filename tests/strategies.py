"""Hypothesis strategies for hostile but valid oxios sessions."""

from __future__ import annotations

import json

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


# -- what oxios 1.9 and later add: trajectory steps, ranges, reasoning, projects, threads -----------
_stamp_texts = st.one_of(
    timestamps.map(Timestamp.isoformat),  # as oxios prints them
    st.sampled_from(["2026-06-03T17:26:17.000Z", "2026-06-03T17:26:17+00:00", "2026-02-30T00:00:00Z", "", "now"]),
)
_int32s = st.one_of(st.integers(min_value=-(2**31), max_value=2**31 - 1), st.sampled_from([2**31, -(2**31) - 1]))


def _spoil(draw: st.DrawFn, record: dict) -> dict:
    """Sometimes a record oxios would not write: a field gone, the keys reordered, more keys."""
    how = draw(st.sampled_from(["as is", "as is", "as is", "more keys", "drop", "shuffle"]))
    if how == "more keys":
        record.update(
            draw(st.dictionaries(text.filter(lambda k: k not in record), json_values, min_size=1, max_size=2))
        )
    elif how == "drop":
        del record[draw(st.sampled_from(sorted(record)))]
    elif how == "shuffle":
        record = dict(draw(st.permutations(list(record.items()))))
    return record


@st.composite
def steps(draw: st.DrawFn) -> dict:
    """One ``trajectory_steps`` entry: arguments as the call's JSON in a string, or an object."""
    args = draw(
        st.one_of(
            text,
            st.dictionaries(text, json_values, max_size=3),
            json_values.map(lambda v: json.dumps(v)),
            json_values,  # neither: kept in extra
        )
    )
    step = {
        "tool_name": draw(st.one_of(st.sampled_from(["read_file", "shell", "web_search"]), text)),
        "tool_args": args,
        "output_summary": draw(text),
        "duration_ms": draw(st.one_of(st.sampled_from([0, 1, 1500, 2**63 - 1, 2**64 - 1]), scalars)),
        "is_error": draw(st.one_of(st.booleans(), st.booleans(), scalars)),
        "tool_call_id": draw(ids),
        "timestamp": draw(_stamp_texts),
    }
    return _spoil(draw, step)


@st.composite
def reasoning_records(draw: st.DrawFn) -> dict:
    """One ``reasoning_records`` entry, with or without ``segments``."""
    record = {
        "content": draw(text),
        "source": draw(st.one_of(st.sampled_from(["thinking", "compaction"]), text)),
        "timestamp": draw(_stamp_texts),
    }
    if draw(st.booleans()):
        segments = draw(st.lists(st.fixed_dictionaries({"before_step": _int32s, "text": text}), max_size=3))
        record["segments"] = [
            _spoil(draw, segment) if draw(st.integers(0, 9)) == 0 else segment for segment in segments
        ]
    return _spoil(draw, record)


trajectory_ranges = st.one_of(
    st.builds(lambda a, b: {"start": a, "end": b}, st.integers(-1, 6), st.integers(-1, 7)),
    st.builds(lambda a, b: {"end": b, "start": a}, st.integers(0, 4), st.integers(0, 5)),
    json_values,
)
modern_extras = st.fixed_dictionaries(
    {},
    optional={
        "trajectory_steps": st.one_of(st.lists(steps(), max_size=6), json_values),
        "reasoning_records": st.lists(reasoning_records(), max_size=3),
        "project_id": st.one_of(ids, ids, st.none()),
        "parent_session_id": ids,
    },
)


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
    if draw(st.booleans()):
        items = [*extra.items(), ("trajectory_range", draw(trajectory_ranges))]
        extra = dict(draw(st.permutations(items)) if draw(st.booleans()) else items)
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
    modern = draw(st.one_of(st.just({}), modern_extras))
    if modern:  # oxios writes them in the middle of the session; a model's extra may hold them anywhere
        items = [*extra.items(), *modern.items()]
        extra = dict(draw(st.permutations(items)) if draw(st.booleans()) else items)
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
    from sessionkit.model import tool_call_standard
    from sessionkit.model._agent import TOOL_CALL_FIELDS

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
    from sessionkit.model import agent_standard
    from sessionkit.model._agent import AGENT_FIELDS, AGENT_STATUSES

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
