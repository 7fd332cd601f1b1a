"""The Session model: oxios semantics, the JSON form, and layouts of newer oxios versions."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from sessionkit.exceptions import SessionFormatError
from sessionkit.model import AgentResponse, Session, Timestamp, UserMessage

V2_RESPONSE = """{
  "id": "s-2",
  "user_id": "u",
  "user_messages": [
    {
      "content": "hi",
      "timestamp": "2026-01-01T00:00:00Z"
    }
  ],
  "agent_responses": [
    {
      "content": "hello",
      "session_id": "s-2",
      "phase_reached": "Seed",
      "evaluation_passed": null,
      "timestamp": "2026-01-01T00:00:01Z",
      "trajectory_range": [
        0,
        3
      ]
    }
  ],
  "trajectory_steps": [
    {
      "tool": "grep",
      "ok": true
    }
  ],
  "active_persona_id": "dev",
  "project_id": "p-1",
  "created_at": "2026-01-01T00:00:00Z",
  "updated_at": "2026-01-01T00:00:01Z",
  "metadata": {}
}"""


def test_new_session_is_like_oxios() -> None:
    s = Session.new("user-1")
    assert uuid.UUID(s.id).version == 4
    assert s.created_at == s.updated_at
    assert s.user_id == "user-1" and s.is_empty() and s.exchange_count() == 0
    assert s.metadata == {} and s.active_seed_id is None and s.active_persona_id is None
    assert Session.with_id("u", "fixed").id == "fixed"


def test_every_mutation_moves_updated_at() -> None:
    s = Session.with_id("u", "s")
    stamps = [s.updated_at]
    time.sleep(0.001)
    s.add_user_message("hello")
    assert s.updated_at > stamps[0]
    assert s.user_messages[0].timestamp > s.created_at
    before = s.updated_at
    time.sleep(0.001)
    s.add_agent_response(AgentResponse(content="hi", seed_id="seed-1"))
    assert s.updated_at > before
    before = s.updated_at
    time.sleep(0.001)
    s.set_active_seed("seed-1")
    assert s.updated_at > before
    before = s.updated_at
    time.sleep(0.001)
    s.set_active_persona("dev")
    assert s.updated_at > before
    before = s.updated_at
    time.sleep(0.001)
    s.set_metadata("k", {"nested": [1, 2.5, None, True]})
    assert s.updated_at > before
    assert s.created_at < s.updated_at


def test_exchange_count_is_the_shorter_side() -> None:
    s = Session.with_id("u", "s")
    for i in range(3):
        s.add_user_message(f"m{i}")
    s.add_agent_response(AgentResponse(content="r0"))
    assert s.exchange_count() == 1 and not s.is_empty()
    assert [(m.content, r.content) for m, r in s.exchanges()] == [("m0", "r0")]
    for _ in range(4):
        s.add_agent_response(AgentResponse(content="r"))
    assert s.exchange_count() == 3


def test_metadata_get_and_set() -> None:
    s = Session.with_id("u", "s")
    assert s.get_metadata("missing") is None
    s.set_metadata("list", (1, 2))
    assert s.get_metadata("list") == [1, 2]
    with pytest.raises(ValueError, match="NaN"):
        s.set_metadata("x", float("nan"))
    with pytest.raises(TypeError, match="not a JSON value"):
        s.set_metadata("x", {1, 2})
    with pytest.raises(TypeError, match="keys are strings"):
        s.set_metadata("x", {1: "a"})
    with pytest.raises(TypeError):
        s.set_metadata(3, "a")  # type: ignore[arg-type]


def test_to_json_is_serde_pretty() -> None:
    s = Session(
        id="s",
        user_id="u",
        created_at="2026-01-01T00:00:00Z",
        updated_at="2026-01-01T00:00:00.5Z",
        metadata={"b": 1e300, "a": [], "c": {}, "d": -0.0, "e": 5e-324},
    )
    s.user_messages.append(UserMessage('line\nbreak "quoted" \u0001 </script> ✓', "2026-01-01T00:00:00Z"))
    text = s.to_json()
    assert text.startswith('{\n  "id": "s",\n  "user_id": "u",\n  "user_messages": [\n    {\n')
    assert '"active_seed_id"' not in text and '"active_persona_id"' not in text
    assert '"agent_responses": [],' in text
    assert '"b": 1e300' in text and '"d": -0.0' in text and '"e": 5e-324' in text
    assert '"a": [],' in text and '"c": {},' in text
    assert r'"line\nbreak \"quoted\" \u0001 </script> ✓"' in text
    assert not text.endswith("\n")
    assert list(json.loads(text)["metadata"]) == ["b", "a", "c", "d", "e"]
    assert Session.from_json(text) == s


def test_newer_oxios_fields_are_kept_in_place() -> None:
    s = Session.from_json(V2_RESPONSE)
    assert s.extra == {"trajectory_steps": [{"tool": "grep", "ok": True}], "project_id": "p-1"}
    assert s.field_order is not None and s.field_order[4] == "trajectory_steps"
    r = s.agent_responses[0]
    assert r.seed_id is None and r.extra == {"trajectory_range": [0, 3]}
    assert "seed_id" not in (r.field_order or ())
    assert s.to_json() == V2_RESPONSE


def test_changes_to_a_newer_session_land_where_serde_puts_them() -> None:
    s = Session.from_json(V2_RESPONSE)
    s.set_active_seed("seed-9")
    s.agent_responses[0].seed_id = "seed-9"
    s.extra["new_field"] = 1
    out = json.loads(s.to_json())
    keys = list(out)
    assert keys.index("trajectory_steps") < keys.index("active_seed_id") < keys.index("active_persona_id")
    assert keys[-1] == "new_field"
    resp_keys = list(out["agent_responses"][0])
    assert resp_keys[:3] == ["content", "session_id", "seed_id"]
    # and a cleared optional id is left out again
    s.set_active_persona(None)
    assert "active_persona_id" not in json.loads(s.to_json())


def test_explicit_null_of_an_optional_field_is_kept() -> None:
    text = V2_RESPONSE.replace('"active_persona_id": "dev"', '"active_persona_id": null')
    s = Session.from_json(text)
    assert s.active_persona_id is None
    assert s.to_json() == text


def test_defaults_for_missing_lists_and_metadata() -> None:
    text = '{\n  "id": "s",\n  "user_id": "u",\n  "created_at": "2026-01-01T00:00:00Z",\n  "updated_at": "2026-01-01T00:00:00Z"\n}'
    s = Session.from_json(text)
    assert s.user_messages == [] and s.agent_responses == [] and s.metadata == {}
    assert s.to_json() == text


def test_timestamps_accept_text_and_datetimes() -> None:
    m = UserMessage("x", "2026-01-01T00:00:00.000000001Z")
    assert m.timestamp.ns == 1767225600000000001
    with pytest.raises(TypeError):
        UserMessage("x", 12)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="AgentResponse"):
        Session.with_id("u", "s").add_agent_response("text")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "path", "fragment"),
    [
        ("", None, "empty"),
        ('{"id": "s"', None, "ends too early"),
        ("[]", "$", "expected a JSON object"),
        (
            '{"user_id": "u", "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}',
            "$",
            "`id` is missing",
        ),
        ('{"id": 5, "user_id": "u"}', "$.id", "expected a string, got an integer (5)"),
        ('{"id": "s", "user_id": "u", "created_at": "x", "updated_at": "x"}', "$.created_at", "not an RFC 3339"),
        (
            '{"id": "s", "user_id": "u", "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z", "user_messages": "x"}',
            "$.user_messages",
            "expected an array",
        ),
        (
            '{"id": "s", "user_id": "u", "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z", "user_messages": [{"content": 1, "timestamp": "2026-01-01T00:00:00Z"}]}',
            "$.user_messages[0].content",
            "expected a string",
        ),
        (
            '{"id": "s", "user_id": "u", "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z", "agent_responses": [{"content": "c"}]}',
            "$.agent_responses[0]",
            "`timestamp` is missing",
        ),
        (
            '{"id": "s", "user_id": "u", "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z", "agent_responses": [{"content": "c", "evaluation_passed": 1, "timestamp": "2026-01-01T00:00:00Z"}]}',
            "$.agent_responses[0].evaluation_passed",
            "true, false or null",
        ),
        (
            '{"id": "s", "user_id": "u", "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z", "metadata": []}',
            "$.metadata",
            "expected an object",
        ),
        (
            '{"id": "s", "user_id": "u", "active_seed_id": 3, "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}',
            "$.active_seed_id",
            "a string or null",
        ),
        ('{"id": "s", "metadata": {"k": NaN}}', None, "not valid JSON"),
    ],
)
def test_errors_name_the_source_and_json_path(text: str, path: str | None, fragment: str) -> None:
    with pytest.raises(SessionFormatError) as info:
        Session.from_json(text, source="sessions/x.json")
    err = info.value
    assert err.source == "sessions/x.json" and str(err).startswith("sessions/x.json")
    assert err.path == path
    assert fragment in str(err)


def test_syntax_errors_give_line_and_column() -> None:
    with pytest.raises(SessionFormatError) as info:
        Session.from_json(b'{\n  "id": tru\n}', source="f.json")
    assert info.value.offset == 14 and "(line 3, column 1)" in str(info.value)


def test_repr_is_short() -> None:
    s = Session.with_id("u", "s")
    s.add_user_message("x" * 10_000)
    assert len(repr(s)) < 200 and "user_messages=1" in repr(s)
    assert repr(Timestamp(0)) == "Timestamp('1970-01-01T00:00:00Z')"


def test_errors_survive_pickling() -> None:
    import pickle

    err = SessionFormatError("bad", source="a.json", path="$.id", hint="fix it")
    again = pickle.loads(pickle.dumps(err))
    assert (again.source, again.path, again.hint, str(again)) == ("a.json", "$.id", "fix it", str(err))
