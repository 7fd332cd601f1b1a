"""The bad-input corpus: every kind gets the bucket and message a careful user would expect."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import BAD, FIXTURES, fixture_files
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionkit.archive import errors, export
from sessionkit.exceptions import SessionFormatError
from sessionkit.model import Session
from sessionkit.oxios import read_sessions
from sessionkit.storage import read_parquet

# file -> (JSON path or None for a byte offset, a fragment of the message)
EXPECTED = {
    "bom.json": (None, "byte-order mark"),
    "created-at-number.json": ("$.created_at", "expected a string, got an integer"),
    "duplicate-keys.json": ("$", "the key `user_id` appears twice"),
    "empty.json": (None, "the file is empty"),
    "evaluation-passed-string.json": ("$.agent_responses[0].evaluation_passed", "true, false or null"),
    "float-where-bool.json": ("$.agent_responses[0].evaluation_passed", "got a number (1.0)"),
    "infinity-literal.json": (None, "not valid JSON"),
    "invalid-utf8.json": (None, "not valid UTF-8"),
    "lone-surrogate.json": (None, "lone UTF-16 surrogate escape \\ud800"),
    "missing-created-at.json": ("$", "`created_at` is missing"),
    "missing-id.json": ("$", "`id` is missing"),
    "missing-message-timestamp.json": ("$.user_messages[0]", "`timestamp` is missing"),
    "missing-response-content.json": ("$.agent_responses[0]", "`content` is missing"),
    "missing-updated-at.json": ("$", "`updated_at` is missing"),
    "missing-user-id.json": ("$", "`user_id` is missing"),
    "nested-too-deep.json": ("$.metadata", "more than the 127 levels of arrays and objects oxios reads"),
    "nan-literal.json": (None, "not valid JSON"),
    "not-an-object.json": ("$", "expected a JSON object"),
    "timestamp-impossible-date.json": ("$.user_messages[0].timestamp", "names no real date"),
    "timestamp-not-rfc3339.json": ("$.user_messages[0].timestamp", "not an RFC 3339 date-time"),
    "timestamp-out-of-range.json": ("$.updated_at", "outside the nanosecond range"),
    "timestamp-ten-digits.json": ("$.user_messages[0].timestamp", "more than 9 fraction digits"),
    "trailing-garbage.json": (None, "trailing characters"),
    "truncated.json": (None, "ends too early"),
    "user-messages-string.json": ("$.user_messages", "expected an array of messages"),
    "wrong-type-active-persona-id.json": ("$.active_persona_id", "a string or null, got an array"),
    "wrong-type-active-seed-id.json": ("$.active_seed_id", "a string or null, got an integer (3)"),
    "wrong-type-agent-responses.json": ("$.agent_responses", "expected an array of responses"),
    "wrong-type-created-at.json": ("$.created_at", "expected a string, got a number"),
    "wrong-type-id.json": ("$.id", "expected a string, got an integer (12)"),
    "wrong-type-message-content.json": ("$.user_messages[0].content", "expected a string, got a number (3.5)"),
    "wrong-type-message.json": ("$.user_messages[0]", "expected an object, got an integer"),
    "wrong-type-metadata.json": ("$.metadata", "expected an object, got an array"),
    "wrong-type-phase-reached.json": ("$.agent_responses[0].phase_reached", "a string or null, got an object"),
    "wrong-type-response-seed-id.json": ("$.agent_responses[0].seed_id", "a string or null, got a boolean"),
    "wrong-type-user-id.json": ("$.user_id", "expected a string, got null"),
    "zero-bytes.json": (None, "only 4096 zero bytes"),
}

# file -> a fragment of the message: sessions the model reads (oxios' serde would too) that
# export quarantines all the same, since restore could not write them back as <id>.json
EXPORT_REFUSES = {
    "id-backslash.json": "cannot be a file name: it holds a slash, a backslash",
    "id-nul.json": "cannot be a file name: it holds a slash, a backslash",
    "id-parent-folder.json": "cannot be a file name: it holds a slash, a backslash",
    "id-slash.json": "cannot be a file name: it holds a slash, a backslash",
    "id-too-long.json": "cannot be a file name: <id>.json would be 256 bytes, over the 255",
}


def test_the_corpus_is_complete() -> None:
    assert sorted(p.name for p in BAD.glob("*.json")) == sorted({*EXPECTED, *EXPORT_REFUSES})


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_model_refuses_with_path_and_message(name: str) -> None:
    path, fragment = EXPECTED[name]
    with pytest.raises(SessionFormatError) as info:
        Session.from_json((BAD / name).read_bytes(), source=name)
    assert info.value.source == name and str(info.value).startswith(name)
    assert info.value.path == path, str(info.value)
    assert fragment in str(info.value)
    if path is None:
        assert info.value.offset is not None


def test_export_quarantines_each_with_the_same_message(tmp_path: Path) -> None:
    src = tmp_path / "sessions"
    src.mkdir()
    expected = {**EXPECTED, **{name: ("$.id", fragment) for name, fragment in EXPORT_REFUSES.items()}}
    for name in expected:
        shutil.copy(BAD / name, src / name)
    good = fixture_files("oxios-v1")[:5]
    for path in good:
        shutil.copy(path, src / path.name)
    summary = export(src, tmp_path / "out", jobs=1)
    assert (summary.seen, summary.exported, summary.quarantined) == (len(expected) + 5, 5, len(expected))
    rows = {Path(r["file"]).name: r for r in errors(tmp_path / "out").to_pylist()}
    assert set(rows) == set(expected)
    for name, (path, fragment) in expected.items():
        row = rows[name]
        assert row["json_path"] == path and fragment in row["message"], (name, row)
        assert (tmp_path / "out" / row["quarantined_as"]).read_bytes() == (BAD / name).read_bytes()
        assert row["size"] == (BAD / name).stat().st_size and len(row["sha256"]) == 64


VALID = fixture_files("oxios-v1")[0].read_bytes()


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=len(VALID) - 1))
def test_a_file_cut_anywhere_is_refused_not_misread(cut: int) -> None:
    with pytest.raises(SessionFormatError) as info:
        Session.from_json(VALID[:cut], source="cut.json")
    assert "cut.json" in str(info.value)


def _one(tmp_path: Path, name: str, data: bytes | str) -> tuple:
    src = tmp_path / "sessions"
    src.mkdir(exist_ok=True)
    (src / name).write_bytes(data.encode() if isinstance(data, str) else data)
    summary = export(src, tmp_path / "out", jobs=1)
    return summary, errors(tmp_path / "out").to_pylist()


def test_nesting_100000_deep_is_quarantined(tmp_path: Path) -> None:
    text = VALID.decode().replace('"metadata": {', '"metadata": {"deep": ' + "[" * 100_000 + "]" * 100_000 + ",", 1)
    summary, rows = _one(tmp_path, "deep.json", text)
    assert summary.quarantined == 1 and "nests too deeply" in rows[0]["message"]


@pytest.mark.parametrize("privacy", [False, True])
def test_nesting_is_read_as_deep_as_oxios_reads_and_no_deeper(tmp_path: Path, privacy: bool) -> None:
    # serde_json reads 127 levels, the session object the first; a metadata value nested ~500
    # deep once crashed a privacy export with a RecursionError and exported nothing
    from sessionkit.privacy import Privacy

    src = tmp_path / "sessions"
    src.mkdir()
    for depth, sid in ((125, "deepest"), (126, "too-deep"), (500, "far-too-deep")):
        value = "[" * depth + "]" * depth
        text = VALID.decode().replace('"metadata": {', '"metadata": {"deep": ' + value + ",", 1)
        (src / f"{sid}.json").write_text(text.replace(json.loads(VALID)["id"], sid))
    options = {"privacy": Privacy(redact="mask", pseudonymize_users=False)} if privacy else {}
    summary = export(src, tmp_path / "out", jobs=1, **options)
    assert (summary.exported, summary.quarantined) == (1, 2)
    rows = errors(tmp_path / "out").to_pylist()
    assert all(r["json_path"] == "$.metadata" and "127 levels" in r["message"] for r in rows)
    assert read_parquet(tmp_path / "out").sessions["session_id"].to_pylist() == ["deepest"]


def _session(**changes: object) -> dict:
    session = json.loads(VALID)
    session.update(changes)
    return session


def test_valid_but_unusual_files_are_exported_losslessly(tmp_path: Path) -> None:
    huge = _session(id="huge")
    huge["user_messages"][0]["content"] = "x" * 50_000_000  # a 50 MB content string
    big_ints = _session(id="big-ints", metadata={"n": 2**70, "m": -(2**65)})
    offsets = _session(id="offsets", created_at="2026-06-03T19:26:17.5+02:00")
    src = tmp_path / "sessions"
    src.mkdir()
    for session in (huge, big_ints, offsets):
        (src / f"{session['id']}.json").write_text(json.dumps(session, indent=2, ensure_ascii=False))
    (src / "not-its-id.json").write_text(json.dumps(_session(id="misnamed"), indent=2, ensure_ascii=False))
    summary = export(src, tmp_path / "out", jobs=1)
    assert (summary.exported, summary.quarantined) == (4, 0)
    back = {s.id: s for s in read_parquet(tmp_path / "out").to_sessions()}
    assert len(back["huge"].user_messages[0].content) == 50_000_000
    assert back["big-ints"].metadata == {"n": 2**70, "m": -(2**65)}
    assert str(back["offsets"].created_at) == "2026-06-03T17:26:17.500Z"  # converted to UTC, as chrono does
    assert "misnamed" in back
    assert {s.id for s in read_sessions(src)} == set(back)


@pytest.mark.parametrize("name", sorted(EXPORT_REFUSES))
def test_ids_that_cannot_be_file_names_are_read_by_the_model(name: str) -> None:
    session = Session.from_json((BAD / name).read_bytes(), source=name)
    assert session.id == json.loads((BAD / name).read_bytes())["id"]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(sorted({*EXPECTED, *EXPORT_REFUSES})))
def test_one_bad_file_never_costs_another_file(tmp_path_factory: pytest.TempPathFactory, name: str) -> None:
    tmp = tmp_path_factory.mktemp("one-bad")
    src = tmp / "sessions"
    src.mkdir()
    shutil.copy(BAD / name, src / "aaa-bad.json")
    for path in fixture_files("oxios-edge")[:3]:
        shutil.copy(path, src / path.name)
    summary = export(src, tmp / "out", jobs=1, files_per_part=2)
    assert (summary.exported, summary.quarantined) == (3, 1)


# -- tests/bad/private: valid sessions that attack a privacy export -----------------------------------------
PLANTS = json.loads((BAD / "private" / "plants.json").read_text())


def test_the_private_corpus_is_complete() -> None:
    assert sorted(p.name for p in (BAD / "private").glob("*.json") if p.name != "plants.json") == sorted(PLANTS)


def test_hostile_sessions_leave_nothing_planted_in_a_private_export(tmp_path: Path) -> None:
    from test_privacy_export import _every_text

    from sessionkit.privacy import Privacy
    from sessionkit.tables import iter_session_json

    src = tmp_path / "sessions"
    src.mkdir()
    for name in PLANTS:
        shutil.copy(BAD / "private" / name, src / name)
    out = tmp_path / "out"
    privacy = Privacy(bytes(range(32)), pseudonymize_sessions=True, redact="mask")
    summary = export(src, out, jobs=1, privacy=privacy)
    assert (summary.exported, summary.quarantined) == (len(PLANTS), 0)
    tables = read_parquet(out)
    cells, raws = _every_text(out)
    restored = b"".join(data for _, data in iter_session_json(tables))
    for name, plants in PLANTS.items():
        for plant in plants:
            assert not any(plant in cell for cell in cells), (name, plant)
            assert not any(plant.encode() in raw for raw in raws), (name, plant)
            assert plant.encode() not in restored, (name, plant)
    for s in tables.to_sessions():  # still valid oxios sessions
        assert Session.from_json(s.to_json()) == s


# -- agent-run records (<state>/agents/*.json): bad/agents/, file -> (JSON path or None, a fragment)
AGENT_EXPECTED = {
    "bom.json": (None, "byte-order mark"),
    "completed-at-impossible-date.json": ("$.completed_at", "names no real date"),
    "cost-string.json": ("$.cost_usd", "expected a number, got a string"),
    "created-at-not-rfc3339.json": ("$.created_at", "not an RFC 3339 date-time"),
    "duplicate-keys.json": ("$", "the key `status` appears twice"),
    "empty.json": (None, "the file is empty"),
    "id-slash.json": ("$.id", "cannot be a file name"),
    "invalid-utf8.json": (None, "not valid UTF-8"),
    "missing-created-at.json": ("$", "`created_at` is missing"),
    "missing-name.json": ("$", "`name` is missing"),
    "name-number.json": ("$.name", "expected a string, got an integer"),
    "not-an-object.json": ("$", "expected a JSON object (an agent record), got an array"),
    "steps-total-string.json": ("$.steps_total", "expected an unsigned integer, got a string"),
    "tokens-beyond-u64.json": ("$.tokens_output", "beyond what the tables keep"),
    "tokens-float.json": ("$.tokens_input", "expected an unsigned integer, got a number (1.5)"),
    "tokens-negative.json": ("$.tokens_input", "expected an unsigned integer, got an integer (-3)"),
    "tool-call-duration-negative.json": ("$.tool_calls[0].duration_ms", "got an integer (-1)"),
    "tool-call-is-error-string.json": ("$.tool_calls[0].is_error", "expected true or false, got a string"),
    "tool-call-missing-tool.json": ("$.tool_calls[0]", "`tool` is missing"),
    "tool-call-timestamp-ten-digits.json": ("$.tool_calls[0].timestamp", "more than 9 fraction digits"),
    "tool-calls-object.json": ("$.tool_calls", "expected an array of tool calls, got an object"),
    "truncated.json": (None, "ends too early"),
}


def test_bad_agent_files_are_quarantined_listed_and_counted_by_strict(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from sessionkit.cli import cli

    folder = BAD / "agents"
    assert sorted(p.name for p in folder.glob("*.json")) == sorted(AGENT_EXPECTED)
    state = tmp_path / "state"
    (state / "agents").mkdir(parents=True)
    (state / "sessions").mkdir()
    for name in AGENT_EXPECTED:
        shutil.copy(folder / name, state / "agents" / name)
    good = sorted((FIXTURES / "oxios-v2" / "agents").glob("*.json"))[:3]
    for path in good:
        shutil.copy(path, state / "agents" / path.name)
    for path in fixture_files("oxios-v2")[:2]:
        shutil.copy(path, state / "sessions" / path.name)
    runner = CliRunner()
    strict = runner.invoke(cli, ["export", str(state), str(tmp_path / "out"), "--jobs", "1", "--strict"])
    assert strict.exit_code == 1 and f"{len(AGENT_EXPECTED)} quarantined" in strict.output, strict.output
    rows = {Path(r["file"]).name: r for r in errors(tmp_path / "out").to_pylist()}
    assert set(rows) == set(AGENT_EXPECTED)
    for name, (path, fragment) in AGENT_EXPECTED.items():
        row = rows[name]
        assert row["json_path"] == path and fragment in row["message"], (name, row)
        assert (tmp_path / "out" / row["quarantined_as"]).read_bytes() == (folder / name).read_bytes()
    listed = runner.invoke(cli, ["errors", str(tmp_path / "out"), "--format", "csv"])
    assert listed.exit_code == 0 and all(name in listed.output for name in AGENT_EXPECTED)
    # the next run reads nothing again, and --strict still counts what stays in quarantine
    again = runner.invoke(cli, ["export", str(state), str(tmp_path / "out"), "--jobs", "1", "--strict"])
    assert again.exit_code == 1, again.output
    for name in AGENT_EXPECTED:
        (state / "agents" / name).unlink()
    fixed = runner.invoke(cli, ["export", str(state), str(tmp_path / "out"), "--jobs", "1", "--strict"])
    assert fixed.exit_code == 0, fixed.output  # gone from the source: no longer counted
