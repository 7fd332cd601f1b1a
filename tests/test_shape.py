"""The shape of a session is declared once (``SessionShape``): every checker follows it and they agree."""

from __future__ import annotations

import copy
from typing import Any

import msgspec
import pyarrow as pa
import pytest
from conftest import fixture_files
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionkit import _fastjson
from sessionkit.exceptions import SessionFormatError
from sessionkit.model import (
    MESSAGE,
    MESSAGE_FIELDS,
    RESPONSE,
    RESPONSE_FIELDS,
    SESSION,
    SESSION_FIELDS,
    Session,
    SessionShape,
    check_session,
    decode_json,
    encode_raw,
)
from sessionkit.tables import TableBuilder


def test_the_field_lists_and_layouts_come_from_the_declaration() -> None:
    assert (SESSION.fields, MESSAGE.fields, RESPONSE.fields) == (SESSION_FIELDS, MESSAGE_FIELDS, RESPONSE_FIELDS)
    assert SESSION.fields == tuple(f.name for f in msgspec.structs.fields(SessionShape))
    assert SESSION.required == ("id", "user_id", "created_at", "updated_at")
    assert SESSION.skipped_when_none == {"active_seed_id", "active_persona_id"}
    assert "active_seed_id" not in SESSION.standard({}) and "active_seed_id" in SESSION.standard(
        {"active_seed_id": "s"}
    )
    assert RESPONSE.standard({}) == RESPONSE.fields  # serde writes a response's nulls
    # the Arrow fast path parses the declared fields, typed as declared (metadata: any JSON, in Python)
    schema = _fastjson._SCHEMA
    assert tuple(schema.names) == tuple(name for name in SESSION.fields if name != "metadata")
    assert schema.field("agent_responses").type.value_type == pa.struct(
        [(name, pa.bool_() if name == "evaluation_passed" else pa.string()) for name in RESPONSE.fields]
    )


def test_errors_say_what_the_declaration_takes() -> None:
    base = {"id": "s", "user_id": "u", "created_at": "t", "updated_at": "t"}
    cases = [
        (
            {**base, "user_messages": [{"content": "c"}]},
            "$.user_messages[0]",
            "the required field `timestamp` is missing",
        ),
        (
            {**base, "agent_responses": [{"content": "c", "timestamp": "t", "seed_id": 4}]},
            "$.agent_responses[0].seed_id",
            "expected a string or null, got an integer (4)",
        ),
        ({**base, "agent_responses": {}}, "$.agent_responses", "expected an array of responses, got an object"),
        ({**base, "metadata": "m"}, "$.metadata", "expected an object, got a string ('m')"),
        (["s"], "$", "expected a JSON object (a session), got an array"),
        # a record's timestamp is wanted as RFC 3339 text; the session's own, as a string
        (
            {**base, "user_messages": [{"content": "c", "timestamp": 3}]},
            "$.user_messages[0].timestamp",
            "expected an RFC 3339 timestamp string, got an integer (3)",
        ),
        (
            {**base, "agent_responses": [{"content": "c", "timestamp": None}]},
            "$.agent_responses[0].timestamp",
            "expected an RFC 3339 timestamp string, got null",
        ),
        ({**base, "created_at": 3}, "$.created_at", "expected a string, got an integer (3)"),
    ]
    for obj, path, message in cases:
        with pytest.raises(SessionFormatError) as info:
            check_session(obj, "f.json")
        assert (info.value.path, info.value.reason) == (path, message)


_VALUES = st.sampled_from([None, 0, 2.5, True, "", "2026-13-01T00:00:00Z", [], {}, [{}], {"k": 1}])
#: Sessions of the old oxios (seeds, personas) and of today's (trajectory steps, reasoning,
#: ranges on the responses), and the edge cases.
_FILES = [p.read_bytes() for name in ("oxios-v1", "oxios-v2", "oxios-edge") for p in fixture_files(name)[:15]]


def _paths(obj: dict) -> list[tuple[Any, ...]]:
    """Where a value can be changed: each declared field, of the session and of its records."""
    paths: list[tuple[Any, ...]] = [(name,) for name in SESSION.fields]
    for name, shape in (("user_messages", MESSAGE), ("agent_responses", RESPONSE)):
        for i in range(len(obj.get(name, []))):
            paths += [(name, i)] + [(name, i, field) for field in shape.fields]
    return paths


def _outcome(run: Any) -> tuple[str, str | None, str] | None:
    try:
        run()
    except SessionFormatError as err:
        return type(err).__name__, err.path, str(err)
    return None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(_FILES) - 1), st.data(), st.booleans(), _VALUES)
def test_the_model_the_builder_and_the_fast_path_agree(file: int, draw: Any, delete: bool, value: Any) -> None:
    """One file with one declared value changed or removed: the model (msgspec) and the exporter's
    builder refuse it with the same path and message, or both take it; the Arrow fast path never
    takes a file they refuse."""
    obj = decode_json(_FILES[file])
    path = draw.draw(st.sampled_from(_paths(obj)))
    changed = copy.deepcopy(obj)
    *parents, last = path
    target = changed
    for step in parents:
        target = target[step]
    if delete and type(target) is dict:
        target.pop(last, None)
    elif delete:
        del target[last]
    else:
        target[last] = value
    text = encode_raw(changed)

    def build() -> None:
        builder = TableBuilder()
        builder.add_raw(decode_json(text), "f.json", text)
        builder.finish()

    model = _outcome(lambda: Session.from_json(text, source="f.json"))
    assert _outcome(build) == model
    fast = _fastjson.fast_tables([text])
    if model is not None:
        assert fast is None or fast.taken == [False]
