"""Agent-run records (``<state>/agents/<id>.json``): read, archived, restored byte for byte."""

from __future__ import annotations

import functools
import io
import json
import math
import os
import shutil
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from conftest import FIXTURES, oracle
from hypothesis import HealthCheck, given, settings
from strategies import agent_records

from sessionkit.archive import errors, export, restore, restore_agents
from sessionkit.cli import cli
from sessionkit.exceptions import SessionFormatError
from sessionkit.model import AgentResponse, Session, UserMessage, check_agent, decode_json, encode_raw
from sessionkit.oxios import write_sessions
from sessionkit.privacy import Privacy
from sessionkit.storage import open_dataset
from sessionkit.tables import agent_json, agent_tables
from sessionkit.tables._schemas import AGENT_TOOL_CALLS_SCHEMA, AGENTS_SCHEMA

V2 = FIXTURES / "oxios-v2"
AGENT_FILES = sorted((V2 / "agents").glob("*.json"))


def _raw(path: Path) -> dict:
    return json.loads(path.read_bytes())


def _state(tmp_path: Path, *, sessions: bool = True, agents: int | None = None) -> Path:
    """A copy of the oxios-v2 state directory (with only some agent files, when asked)."""
    state = tmp_path / "state"
    (state / "agents").mkdir(parents=True)
    if sessions:
        shutil.copytree(V2 / "sessions", state / "sessions")
    for path in AGENT_FILES[:agents]:
        shutil.copy2(path, state / "agents" / path.name)
    return state


def _rows(table: pa.Table) -> list[dict]:
    """The rows, timestamps as integer nanoseconds (Python's datetime stops at microseconds)."""
    return table.cast(
        pa.schema([f.with_type(pa.int64()) if pa.types.is_timestamp(f.type) else f for f in table.schema])
    ).to_pylist()


def _agents(out: Path) -> dict[str, dict]:
    return {row["agent_id"]: row for row in _rows(open_dataset(out).read("agents"))}


# -- the tables ---------------------------------------------------------------------------------------
SNAPSHOT = {
    "agents": [
        "agent_id: string not null",
        "name: string not null",
        "status: string not null",
        "created_at: timestamp[ns, tz=UTC] not null",
        "started_at: timestamp[ns, tz=UTC]",
        "completed_at: timestamp[ns, tz=UTC]",
        "project_id: string",
        "error: string",
        "steps_completed: int64 not null",
        "steps_total: int64",
        "tokens_input: int64 not null",
        "tokens_output: int64 not null",
        "cost_usd: double not null",
        "model_id: string",
        "session_id: string",
        "linked_session_id: string",
        "linked_seq: int32",
        "link_candidates: int32",
        "extra: string",
        "field_order: string",
    ],
    "agent_tool_calls": [
        "agent_id: string not null",
        "ord: int32 not null",
        "tool: string not null",
        "input: string not null",
        "output: string not null",
        "duration_ms: int64 not null",
        "is_error: bool not null",
        "tool_call_id: string",
        "timestamp: timestamp[ns, tz=UTC]",
        "extra: string",
        "field_order: string",
    ],
}


def test_agent_schemas_are_the_documented_contract() -> None:
    for name, schema in (("agents", AGENTS_SCHEMA), ("agent_tool_calls", AGENT_TOOL_CALLS_SCHEMA)):
        assert [f"{f.name}: {f.type}" + ("" if f.nullable else " not null") for f in schema] == SNAPSHOT[name]
    docs = (Path(__file__).parent.parent / "docs" / "tables.md").read_text()
    for name, columns in SNAPSHOT.items():
        assert f"\n## {name}\n" in docs
        for column in columns:
            assert f"`{column.split(':')[0]}`" in docs, (name, column)


def _records() -> list[tuple[dict, str]]:
    return [(_raw(p), str(p)) for p in AGENT_FILES]


def test_fixture_records_go_through_the_tables_byte_for_byte() -> None:
    tables = agent_tables(_records())
    assert tables["agents"].schema.equals(AGENTS_SCHEMA, check_metadata=True)
    back = dict(agent_json(tables["agents"], tables["agent_tool_calls"]))
    assert [back[p.stem] for p in AGENT_FILES] == [p.read_bytes() for p in AGENT_FILES]
    # serde's own layout everywhere: nothing needs extra or field_order
    assert tables["agents"]["field_order"].null_count == len(AGENT_FILES)
    assert tables["agent_tool_calls"]["extra"].null_count == tables["agent_tool_calls"].num_rows


def test_fixture_tables_equal_the_oracle() -> None:
    truth = oracle("oxios-v2")
    tables = agent_tables(_records())
    agents = _rows(tables["agents"])
    by_model: dict[str, dict] = {}
    for row in agents:
        got = by_model.setdefault(
            row["model_id"], {"records": 0, "tokens_input": 0, "tokens_output": 0, "cost_usd": 0.0}
        )
        got["records"] += 1
        got["tokens_input"] += row["tokens_input"]
        got["tokens_output"] += row["tokens_output"]
        got["cost_usd"] += row["cost_usd"]
    assert by_model.keys() == truth["agents_by_model"].keys()
    for model, want in truth["agents_by_model"].items():
        assert by_model[model]["records"] == want["records"]
        assert by_model[model]["tokens_input"] == want["tokens_input"]
        assert by_model[model]["tokens_output"] == want["tokens_output"]
        assert by_model[model]["cost_usd"] == pytest.approx(want["cost_usd"], rel=1e-12)
    assert Counter(r["status"] for r in agents) == truth["agents_by_status"]
    calls = tables["agent_tool_calls"]
    assert calls.num_rows == truth["agent_tool_calls"]
    assert sum(calls["is_error"].to_pylist()) == truth["agent_tool_errors"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(agent_records())
def test_any_record_survives_tables_and_parquet_byte_for_byte(record: dict) -> None:
    data = encode_raw(record)
    obj = decode_json(data)
    check_agent(obj)
    tables = agent_tables([(obj, "<hypothesis>")])
    for name in ("agents", "agent_tool_calls"):  # through Parquet, as a dataset holds them
        buffer = io.BytesIO()
        pq.write_table(tables[name], buffer)
        tables[name] = pq.read_table(io.BytesIO(buffer.getvalue()))
    [(aid, back)] = agent_json(tables["agents"], tables["agent_tool_calls"])
    assert aid == record["id"]
    assert back == data


@pytest.mark.parametrize(
    ("record", "path", "reason"),
    [
        ([], "$", "expected a JSON object"),
        ({"id": "a"}, "$", "`name` is missing"),
        ({"id": "a", "name": "n", "status": "Completed", "created_at": 3}, "$.created_at", "expected a string"),
        (
            {"id": "a", "name": "n", "status": "Completed", "created_at": "x", "tokens_input": -1},
            "$.tokens_input",
            "unsigned",
        ),
        (
            {"id": "a", "name": "n", "status": "Completed", "created_at": "x", "tokens_input": 2**63},
            "$.tokens_input",
            "64-bit",
        ),
        ({"id": "a", "name": "n", "status": "Completed", "created_at": "x", "cost_usd": "1"}, "$.cost_usd", "a number"),
        (
            {"id": "a", "name": "n", "status": "Completed", "created_at": "x", "tool_calls": [{"tool": "t"}]},
            "$.tool_calls[0]",
            "`input` is missing",
        ),
        (
            {
                "id": "a",
                "name": "n",
                "status": "Completed",
                "created_at": "x",
                "tool_calls": [{"tool": "t", "input": "", "output": "", "duration_ms": 1, "is_error": 1}],
            },
            "$.tool_calls[0].is_error",
            "true or false",
        ),
    ],
)
def test_a_record_that_is_not_an_agent_record_says_where(record: object, path: str, reason: str) -> None:
    with pytest.raises(SessionFormatError) as caught:
        check_agent(record, "a.json")
    assert caught.value.path == path
    assert reason in str(caught.value)


# -- export and restore -----------------------------------------------------------------------------
def test_export_and_restore_give_back_every_agent_file(tmp_path: Path) -> None:
    out = tmp_path / "out"
    summary = export(V2, out, jobs=1)
    assert (summary.agents_seen, summary.agents_exported, summary.agents) == (len(AGENT_FILES),) * 3
    assert summary.agent_tool_calls == oracle("oxios-v2")["agent_tool_calls"]
    assert restore(out, tmp_path / "back", jobs=1) == len(list((V2 / "sessions").glob("*.json")))
    restored = sorted((tmp_path / "back" / "agents").iterdir())
    assert [p.name for p in restored] == [p.name for p in AGENT_FILES]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(restored, AGENT_FILES, strict=True))


def test_cli_export_and_restore_say_what_they_did_with_agents(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["export", str(V2), str(tmp_path / "out"), "-j", "1", "-q"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["restore", str(tmp_path / "out"), str(tmp_path / "back")])
    assert result.exit_code == 0, result.output
    assert f"restored {len(AGENT_FILES)} agent records to" in result.output


def test_no_agents_leaves_them_out(tmp_path: Path) -> None:
    summary = export(V2, tmp_path / "out", jobs=1, agents=False)
    assert (summary.agents_seen, summary.agents) == (0, 0)
    assert open_dataset(tmp_path / "out").read("agents").num_rows == 0
    result = CliRunner().invoke(cli, ["export", str(V2), str(tmp_path / "cli"), "-j", "1", "--no-agents"])
    assert result.exit_code == 0, result.output
    assert open_dataset(tmp_path / "cli").rows("agents") == 0
    assert restore_agents(tmp_path / "cli", tmp_path / "back") == 0
    assert not (tmp_path / "back" / "agents").exists()


def test_a_state_directory_of_agent_records_only(tmp_path: Path) -> None:
    state = _state(tmp_path, sessions=False, agents=20)
    summary = export(state, tmp_path / "out", jobs=1)
    assert (summary.seen, summary.sessions, summary.agents) == (0, 0, 20)
    # the agents/ folder itself, too: its records are not taken for sessions
    summary = export(state / "agents", tmp_path / "out2", jobs=1)
    assert (summary.seen, summary.quarantined, summary.agents) == (0, 0, 20)
    assert restore_agents(tmp_path / "out2", tmp_path / "back") == 20


def test_sessions_only_still_gives_the_agent_tables(tmp_path: Path) -> None:
    state = tmp_path / "state"
    shutil.copytree(V2 / "sessions", state / "sessions")
    out = tmp_path / "out"
    export(state, out, jobs=1)
    for name in ("agents", "agent_tool_calls"):
        files = sorted((out / name).rglob("*.parquet"))
        assert files and sum(pq.read_metadata(f).num_rows for f in files) == 0
    import sessionkit as sk

    assert sk.connect(out).sql("SELECT count(*) FROM agents").fetchall() == [(0,)]


def test_agents_are_upserted_and_the_pruned_ones_kept(tmp_path: Path) -> None:
    state = _state(tmp_path, agents=30)
    out = tmp_path / "out"
    export(state, out, jobs=1)
    first, second = sorted((state / "agents").iterdir())[:2]
    # oxios prunes one record and rewrites another as its run goes on
    first.unlink()
    record = _raw(second)
    record["status"], record["tokens_output"] = "Failed", record["tokens_output"] + 7
    record["completed_at"] = "2099-01-01T00:00:00Z"
    second.write_bytes(encode_raw(record))
    summary = export(state, out, jobs=1)
    assert (summary.agents_seen, summary.agents_exported, summary.agents_unchanged) == (29, 1, 28)
    rows = _agents(out)
    assert len(rows) == 30 and first.stem in rows
    assert (rows[second.stem]["status"], rows[second.stem]["tokens_output"]) == ("Failed", record["tokens_output"])
    restore_agents(out, tmp_path / "back")
    assert (tmp_path / "back" / "agents" / second.name).read_bytes() == second.read_bytes()
    assert (tmp_path / "back" / "agents" / first.name).read_bytes() == (V2 / "agents" / first.name).read_bytes()
    # an older copy of a record (restored from a backup) does not replace the newer one
    shutil.copy(V2 / "agents" / second.name, second)
    summary = export(state, out, jobs=1)
    assert (summary.agents_exported, summary.agents_unchanged) == (0, 29)
    assert _agents(out)[second.stem]["status"] == "Failed"


def test_an_unchanged_run_writes_no_agent_file(tmp_path: Path) -> None:
    state = _state(tmp_path, agents=10)
    out = tmp_path / "out"
    export(state, out, jobs=1)
    before = sorted(str(p.resolve()) for p in (out / "agents").rglob("*.parquet"))
    summary = export(state, out, jobs=1)
    assert (summary.agents_exported, summary.agents_unchanged, summary.agents) == (0, 10, 10)
    assert sorted(str(p.resolve()) for p in (out / "agents").rglob("*.parquet")) == before


BAD_AGENTS = {
    "not-json.json": b'{\n  "id": ',
    "no-name.json": b'{\n  "id": "a-1",\n  "status": "Completed",\n  "created_at": "2026-08-03T11:02:11Z"\n}',
    "negative.json": b'{\n  "id": "a-2",\n  "name": "n",\n  "status": "Completed",\n  "created_at": "2026-08-03T11:02:11Z",\n  "tokens_input": -3\n}',
    "bad-time.json": b'{\n  "id": "a-3",\n  "name": "n",\n  "status": "Completed",\n  "created_at": "yesterday"\n}',
    "twice.json": b'{\n  "id": "a-4",\n  "name": "n",\n  "name": "m",\n  "status": "Completed",\n  "created_at": "2026-08-03T11:02:11Z"\n}',
    "slash.json": b'{\n  "id": "a/5",\n  "name": "n",\n  "status": "Completed",\n  "created_at": "2026-08-03T11:02:11Z"\n}',
}


def test_bad_agent_files_are_quarantined_and_listed_by_errors(tmp_path: Path) -> None:
    state = _state(tmp_path, agents=5)
    for name, data in BAD_AGENTS.items():
        (state / "agents" / name).write_bytes(data)
    (state / "agents" / "notes.txt").write_text("ignored")
    shutil.copy(AGENT_FILES[0], state / "agents" / "copy.json")  # a second file of one agent id
    out = tmp_path / "out"
    summary = export(state, out, jobs=1)
    bad = len(BAD_AGENTS) + 1
    assert (summary.agents_seen, summary.agents_exported, summary.agents_quarantined, summary.agents_ignored) == (
        5 + bad + 1,
        5,
        bad,
        1,
    )
    table = errors(out).to_pylist()
    by_file = {os.path.basename(row["file"]): row for row in table}
    assert set(by_file) == {*BAD_AGENTS, "copy.json"}
    assert by_file["negative.json"]["json_path"] == "$.tokens_input"
    assert by_file["twice.json"]["json_path"] == "$"
    assert by_file["bad-time.json"]["json_path"] == "$.created_at"
    assert "also held by" in by_file["copy.json"]["message"]
    for row in table:
        assert (
            Path(row["quarantined_as"]).read_bytes() == (state / "agents" / os.path.basename(row["file"])).read_bytes()
        )
    listed = CliRunner().invoke(cli, ["errors", str(out), "--format", "csv"])
    assert listed.exit_code == 0 and "no-name.json" in listed.output and "copy.json" in listed.output
    # next run: the same files, unchanged, still counted in quarantine and not read again
    again = export(state, out, jobs=1)
    assert (again.agents_quarantined, again.agents_unchanged, again.agents_exported) == (bad, 5, 0)
    # a fixed file leaves the errors table
    (state / "agents" / "no-name.json").unlink()
    (state / "agents" / "copy.json").unlink()
    export(state, out, jobs=1)
    files = {os.path.basename(row["file"]) for row in errors(out).to_pylist()}
    assert {"no-name.json", "copy.json"} <= files  # gone from the source: their rows stay, as for session files
    # a bad file made good leaves the errors table
    record = _raw(AGENT_FILES[1])
    record["id"] = "a-1"
    (state / "agents" / "negative.json").write_bytes(encode_raw(record))
    export(state, out, jobs=1)
    assert "negative.json" not in {os.path.basename(row["file"]) for row in errors(out).to_pylist()}


def test_privacy_covers_the_agent_records(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "agents").mkdir(parents=True)
    record = _raw(AGENT_FILES[0])
    record["name"] = "mail me at alice@example.com"
    record["error"] = "failed for bob@example.com"
    record["session_id"] = "s-1"
    record["tool_calls"][0]["input"] = '{"to":"carol@example.com"}'
    record["tool_calls"][0]["output"] = "sent to carol@example.com"
    (state / "agents" / AGENT_FILES[0].name).write_bytes(encode_raw(record))
    out = tmp_path / "out"
    export(state, out, jobs=1, privacy=Privacy(bytes(32), redact="mask", pseudonymize_sessions=True))
    snapshot = open_dataset(out)
    [row] = _rows(snapshot.read("agents"))
    assert row["name"] == "mail me at <EMAIL>" and row["error"] == "failed for <EMAIL>"
    assert row["session_id"].startswith("s_")
    call = _rows(snapshot.read("agent_tool_calls"))[0]
    assert "carol" not in call["input"] and "carol" not in call["output"]


# -- the link to exchanges ---------------------------------------------------------------------------
T0 = "2026-08-03T10:00:00Z"


def _at(seconds: float) -> str:
    from sessionkit._timestamp import Timestamp

    return Timestamp(Timestamp.parse(T0).ns + int(seconds * 1e9)).isoformat()


def _session(sid: str, project: str | None, turns: list[tuple[str, float, float]]) -> Session:
    """A session of ``project`` whose exchanges are (text, message second, response second)."""
    session = Session(
        id=sid,
        user_id="u-1",
        created_at=_at(turns[0][1] if turns else 0),
        updated_at=_at(turns[-1][2] if turns else 0),
        extra={"project_id": project} if project is not None else {},
    )
    for text, asked, answered in turns:
        session.user_messages.append(UserMessage(text, _at(asked)))
        session.agent_responses.append(AgentResponse(content="done", timestamp=_at(answered)))
    return session


def _agent(aid: str, name: str, created: float, project: str | None, session_id: str | None = None) -> dict:
    record = {"id": aid, "name": name, "status": "Completed", "created_at": _at(created)}
    if project is not None:
        record["project_id"] = project
    record.update({"steps_completed": 0, "tokens_input": 10, "tokens_output": 5, "cost_usd": 0.01, "model_id": "m"})
    if session_id is not None:
        record["session_id"] = session_id
    return record


def _write_state(state: Path, sessions: list[Session], agents: list[dict]) -> None:
    (state / "sessions").mkdir(parents=True, exist_ok=True)
    (state / "agents").mkdir(parents=True, exist_ok=True)
    write_sessions(sessions, state, overwrite=True)
    for record in agents:
        (state / "agents" / f"{record['id']}.json").write_bytes(encode_raw(record))


def _links(out: Path) -> dict[str, tuple[str | None, int | None]]:
    return {aid: (row["linked_session_id"], row["linked_seq"]) for aid, row in _agents(out).items()}


def test_the_link_on_crafted_cases(tmp_path: Path) -> None:
    sessions = [
        # the same text twice in one session: the run's time says which exchange
        _session("s-twice", "P", [("run the tests", 0, 10), ("run the tests", 20, 30)]),
        # the same text in two sessions of one project at overlapping times: ambiguous
        _session("s-a", "P", [("deploy", 100, 120)]),
        _session("s-b", "P", [("deploy", 105, 125)]),
        # the same text and time in another project
        _session("s-q", "Q", [("summarise", 200, 210)]),
        _session("s-p", "P", [("summarise", 200, 210)]),
        # no project on either side counts as the same
        _session("s-none", None, [("hello", 300, 310)]),
        _session("s-stored", "P", [("other", 400, 410), ("look", 420, 430)]),
    ]
    agents = [
        _agent("a-second", "run the tests", 21, "P"),
        _agent("a-first", "run the tests", 10, "P"),  # at the response's own time: inside
        _agent("a-ambiguous", "deploy", 110, "P"),
        _agent("a-outside", "run the tests", 31, "P"),  # after the response
        _agent("a-before", "deploy", 99.5, "P"),  # before the message
        _agent("a-project", "summarise", 205, "P"),
        _agent("a-other-project", "summarise", 205, "R"),
        _agent("a-no-project", "hello", 305, None),
        _agent("a-stored", "run the tests", 5, "P", session_id="s-stored"),  # stored id wins
        _agent("a-stored-seq", "look", 425, "P", session_id="s-stored"),
        _agent("a-other-text", "run tests", 5, "P"),
    ]
    state, out = tmp_path / "state", tmp_path / "out"
    _write_state(state, sessions, agents)
    export(state, out, jobs=1)
    assert _links(out) == {
        "a-second": ("s-twice", 1),
        "a-first": ("s-twice", 0),
        "a-ambiguous": (None, None),
        "a-outside": (None, None),
        "a-before": (None, None),
        "a-project": ("s-p", 0),
        "a-other-project": (None, None),
        "a-no-project": ("s-none", 0),
        "a-stored": ("s-stored", None),
        "a-stored-seq": ("s-stored", 1),
        "a-other-text": (None, None),
    }
    import sessionkit as sk

    row = sk.stats(out).select("agent_runs", "runs_linked", "runs_unlinked", "runs_ambiguous").row(0)
    assert row == (11, 6, 5, 1)


def test_the_link_survives_pruning_and_waits_for_a_late_session(tmp_path: Path) -> None:
    state, out = tmp_path / "state", tmp_path / "out"
    early = _session("s-early", "P", [("first", 0, 10)])
    late = _session("s-late", "P", [("second", 50, 60)])
    _write_state(state, [early], [_agent("a-1", "first", 5, "P"), _agent("a-2", "second", 55, "P")])
    export(state, out, jobs=1)
    assert _links(out) == {"a-1": ("s-early", 0), "a-2": (None, None)}
    # oxios prunes the first session; its exchange is still in the archive
    (state / "sessions" / "s-early.json").unlink()
    export(state, out, jobs=1)
    assert _links(out)["a-1"] == ("s-early", 0)
    # the second run's session shows up later (copied back, say): a run with no agent change links it
    write_sessions([late], state)
    summary = export(state, out, jobs=1)
    assert summary.agents_exported == 0
    assert _links(out) == {"a-1": ("s-early", 0), "a-2": ("s-late", 0)}
    # and a pruned agent record keeps its link
    (state / "agents" / "a-1.json").unlink()
    export(state, out, jobs=1)
    assert _links(out)["a-1"] == ("s-early", 0)


def test_pseudonyms_keep_the_link(tmp_path: Path) -> None:
    state = tmp_path / "state"
    _write_state(
        state,
        [_session("s-1", "P", [("mail bob@example.com", 0, 10)])],
        [_agent("a-1", "mail bob@example.com", 5, "P")],
    )
    for redact in ("mask", "hash"):
        out = tmp_path / redact
        export(state, out, jobs=1, privacy=Privacy(bytes(32), redact=redact, pseudonymize_sessions=True))
        session = open_dataset(out).read("sessions")["session_id"][0].as_py()
        assert session.startswith("s_") and _links(out) == {"a-1": (session, 0)}
    out = tmp_path / "drop"
    export(state, out, jobs=1, privacy=Privacy(bytes(32), redact="drop"))
    assert _links(out) == {"a-1": (None, None)}  # dropped texts cannot be compared


# -- cost and model_usage, against figures computed from the raw files -------------------------------
def _ns(text: str) -> int:
    from sessionkit._timestamp import Timestamp

    return Timestamp.parse(text).ns


@functools.cache
def _independent_links() -> dict[str, tuple[str, int]]:
    """The link rule, written again over the raw JSON files: agent id -> (session id, seq)."""
    sessions = [json.loads(p.read_bytes()) for p in sorted((V2 / "sessions").glob("*.json"))]
    found: dict[str, list[tuple[str, int]]] = {}
    for path in AGENT_FILES:
        run = _raw(path)
        created = _ns(run["created_at"])
        for s in sessions:
            if s.get("project_id") != run.get("project_id"):
                continue
            for seq, (m, r) in enumerate(zip(s.get("user_messages", []), s.get("agent_responses", []), strict=False)):
                if m["content"] == run["name"] and _ns(m["timestamp"]) <= created <= _ns(r["timestamp"]):
                    found.setdefault(run["id"], []).append((s["id"], seq))
    return {aid: hits[0] for aid, hits in found.items() if len(hits) == 1}


@pytest.fixture(scope="module")
def modern(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("agents") / "out"
    export(V2, out, jobs=1)
    return out


def test_the_fixture_links_as_the_rule_written_again_says(modern: Path) -> None:
    want = _independent_links()
    assert len(want) == oracle("oxios-v2")["agents_matching_an_exchange"]
    assert {aid: link for aid, link in _links(modern).items() if link[0] is not None} == want


def _day(text: str) -> date:
    return date.fromisoformat(text[:10])


_PERIODS = {
    "day": _day,
    "week": lambda t: _day(t) - timedelta(days=_day(t).weekday()),
    "month": lambda t: _day(t).replace(day=1),
}


@pytest.mark.parametrize("by", ["model", "project", "user", "persona", "day", "week", "month"])
def test_cost_equals_the_raw_files(modern: Path, by: str) -> None:
    import sessionkit as sk

    links = _independent_links()
    sessions = {p.stem: json.loads(p.read_bytes()) for p in (V2 / "sessions").glob("*.json")}

    def key(run: dict) -> object:
        linked = sessions[links[run["id"]][0]] if run["id"] in links else {}
        return {
            "model": lambda: run.get("model_id") or None,
            "project": lambda: run.get("project_id"),
            "user": lambda: linked.get("user_id"),
            "persona": lambda: linked.get("active_persona_id"),
        }.get(by, lambda: _PERIODS[by](run["created_at"]))()

    groups: dict[object, list[dict]] = {}
    for path in AGENT_FILES:
        run = _raw(path)
        groups.setdefault(key(run), []).append(run)
    got = {row[0]: row[1:] for row in sk.cost(modern, by=by).iter_rows()}
    assert got.keys() == groups.keys()
    for k, runs in groups.items():
        dollars = math.fsum(r.get("cost_usd", 0.0) for r in runs)
        tokens = sum(r["tokens_input"] + r["tokens_output"] for r in runs)
        exchanges = len({links[r["id"]] for r in runs if r["id"] in links})
        assert got[k] == (
            len(runs),
            sum(r["status"] == "Failed" for r in runs),
            sum(r["tokens_input"] for r in runs),
            sum(r["tokens_output"] for r in runs),
            dollars,
            exchanges,
            dollars / exchanges if exchanges else None,
            dollars * 1000.0 / tokens if tokens else None,
        ), k
    frame = sk.cost(modern, by=by)
    if by in _PERIODS:
        assert frame[frame.columns[0]].to_list() == sorted(groups)
    else:
        assert frame["cost_usd"].to_list() == sorted(frame["cost_usd"].to_list(), reverse=True)


@pytest.mark.parametrize("by", [None, "day", "week", "project"])
def test_model_usage_equals_the_raw_files(modern: Path, by: str | None) -> None:
    import numpy as np

    import sessionkit as sk

    groups: dict[tuple, list[dict]] = {}
    for path in AGENT_FILES:
        run = _raw(path)
        second = None if by is None else run.get("project_id") if by == "project" else _PERIODS[by](run["created_at"])
        groups.setdefault((run.get("model_id") or None, second), []).append(run)
    frame = sk.model_usage(modern, by=by)
    assert frame.height == len(groups)
    for row in frame.iter_rows(named=True):
        runs = groups[(row["model_id"], None if by is None else row[frame.columns[1]])]
        failed = sum(r["status"] == "Failed" for r in runs)
        n, p, z = len(runs), failed / len(runs), 1.959963984540054
        center = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        times = [
            _ns(r["completed_at"]) - _ns(r["started_at"]) for r in runs if "completed_at" in r and "started_at" in r
        ]
        assert (row["runs"], row["failed_runs"], row["timed_runs"]) == (n, failed, len(times))
        assert (row["tokens_input"], row["tokens_output"]) == (
            sum(r["tokens_input"] for r in runs),
            sum(r["tokens_output"] for r in runs),
        )
        assert row["cost_usd"] == math.fsum(r["cost_usd"] for r in runs)
        assert row["failure_rate"] == p
        assert row["failure_low"] == pytest.approx(0.0 if failed == 0 else max(0.0, center - half), abs=1e-15)
        assert row["failure_high"] == pytest.approx(1.0 if failed == n else min(1.0, center + half), abs=1e-15)
        for q in (50, 90):
            assert row[f"duration_p{q}_s"] == pytest.approx(
                np.percentile(np.array(times, dtype=np.int64), q) / 1e9, rel=1e-12
            )


def test_the_helpers_on_data_without_agent_records(tmp_path: Path) -> None:
    import sessionkit as sk

    tables = sk.to_tables([_session("s-1", "P", [("hi", 0, 1)])])
    assert sk.cost(tables).height == 0 and sk.cost(tables).columns[:2] == ["model_id", "runs"]
    assert sk.model_usage(tables, by="week").height == 0
    con = sk.connect(tables)
    assert con.sql("SELECT agent_id, cost_usd FROM exchanges").fetchall() == [(None, None)]


def test_exchanges_carry_the_linked_runs(modern: Path) -> None:
    import polars as pl

    import sessionkit as sk

    records = {path.stem: _raw(path) for path in AGENT_FILES}
    want = {
        link: (aid, records[aid].get("model_id"), records[aid]["tokens_input"], records[aid]["cost_usd"])
        for aid, link in _independent_links().items()
    }
    sql = sk.connect(modern).sql(
        "SELECT session_id, seq, agent_id, model_id, tokens_input, cost_usd FROM exchanges WHERE agent_id IS NOT NULL"
    )
    got = {(s, q): tuple(rest) for s, q, *rest in sql.fetchall()}
    assert got == want
    lazy = sk.scan_parquet(modern)["exchanges"].filter(pl.col("agent_id").is_not_null()).collect()
    assert {
        (r["session_id"], r["seq"]): (r["agent_id"], r["model_id"], r["tokens_input"], r["cost_usd"])
        for r in lazy.iter_rows(named=True)
    } == got


def _stacked_heights(ax: object) -> dict[object, float]:
    """The height of each stacked bar of ``ax`` (drawn by period), keyed by its period's date."""
    import matplotlib.dates as mdates

    heights: dict[object, float] = {}
    for patch in ax.patches:  # type: ignore[attr-defined]
        day = mdates.num2date(patch.get_x()).date()
        heights[day] = heights.get(day, 0.0) + patch.get_height()
    return heights


def test_plot_cost_draws_the_helpers_figures(modern: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import polars as pl

    import sessionkit as sk

    per_model = sk.cost(modern, by="model")
    ax = sk.plot_cost(modern)
    assert ax.get_title() == "Cost per model" and "USD" in ax.get_xlabel()
    assert [p.get_width() for p in ax.patches] == per_model["cost_usd"].to_list()
    assert [t.get_text() for t in ax.get_yticklabels()] == per_model["model_id"].to_list()
    assert [p.get_width() for p in sk.plot_cost(per_model).patches] == per_model["cost_usd"].to_list()  # from the frame
    few = sk.plot_cost(modern, top=1)  # the rest is one "other" bar
    assert [t.get_text() for t in few.get_yticklabels()] == [per_model["model_id"][0], "other (2)"]
    assert sum(p.get_width() for p in few.patches) == pytest.approx(per_model["cost_usd"].sum())

    # over time, stacked by project: each week's stack is that week's cost; the top projects named, the rest "other"
    weekly = sk.cost(modern, by="week")
    split = sk.cost(modern, by="project", every="week")
    assert split.columns[:2] == ["week", "project_id"] and split["runs"].sum() == len(AGENT_FILES)
    for ax in (sk.plot_cost(modern, by="project", every="week", top=3), sk.plot_cost(split, top=3)):
        assert ax.get_title() == "Cost per week, by project"
        heights = {d - timedelta(days=d.weekday()): h for d, h in _stacked_heights(ax).items()}
        assert heights == pytest.approx(dict(weekly.select("week", "cost_usd").iter_rows()))
        names = [t.get_text() for t in ax.get_legend().get_texts()]
        projects = split.group_by("project_id").agg(pl.col("cost_usd").sum()).height
        assert len(names) >= 4 and names[3] == f"other ({projects - 3})"
    hatched = [p for p in sk.plot_cost(modern, by="month").patches if p.get_hatch()]
    assert len(hatched) == 2  # the runs start and end in the middle of a month
    monthly = sk.cost(modern, by="month")
    assert [p.get_height() for p in sk.plot_cost(modern, by="month").patches] == monthly["cost_usd"].to_list()

    with pytest.raises(ValueError, match=r"cost\(by='model', every=None\)"):
        sk.plot_cost(per_model, by="project")
    days = sk.cost(modern, by="day", every="month")  # a period split by a longer one: each day in its month
    assert days.columns[:2] == ["month", "day"] and days["day"].to_list() == sk.cost(modern, by="day")["day"].to_list()
    empty = sk.plot_cost(sk.to_tables([]), by="project", every="day")
    assert [t.get_text() for t in empty.texts] == ["no data"] and empty.get_title() == "Cost per day, by project"
    plt.close("all")


def test_plot_model_usage_draws_the_helpers_figures(modern: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import sessionkit as sk

    usage = sk.model_usage(modern)
    ax = sk.plot_model_usage(modern)
    ordered = usage.sort("runs", descending=True)
    assert [p.get_width() for p in ax.patches] == ordered["runs"].to_list()
    twin = next(a for a in ax.figure.axes if a is not ax)
    dots = twin.lines[0].get_xdata()
    assert list(dots) == pytest.approx([100 * r for r in ordered["failure_rate"].to_list()])
    weekly = sk.model_usage(modern, by="week")
    for ax in (sk.plot_model_usage(modern, by="week"), sk.plot_model_usage(weekly)):
        assert ax.get_title() == "Model usage: runs per model, by week"
        heights = {d - timedelta(days=d.weekday()): h for d, h in _stacked_heights(ax).items()}
        want: dict[object, float] = {}
        for row in weekly.iter_rows(named=True):
            want[row["week"]] = want.get(row["week"], 0) + row["runs"]
        assert heights == pytest.approx(want)
    by_project = sk.plot_model_usage(modern, by="project", measure="tokens_output")
    assert sum(p.get_width() for p in by_project.patches) == usage["tokens_output"].sum()
    with pytest.raises(ValueError, match="measure must be one of"):
        sk.plot_model_usage(modern, measure="cost")
    with pytest.raises(ValueError, match="split by 'week'"):
        sk.plot_model_usage(weekly, by="day")
    empty = sk.plot_model_usage(sk.to_tables([]), by="week")
    assert [t.get_text() for t in empty.texts] == ["no data"]
    plt.close("all")


def test_a_dataset_written_before_agent_records_reads_them_as_none_and_takes_them(tmp_path: Path) -> None:
    from legacy import legacy_export

    import sessionkit as sk
    from sessionkit.query import scan_parquet
    from sessionkit.storage import check_dataset

    src = tmp_path / "state"
    shutil.copytree(V2 / "sessions", src / "sessions")
    legacy_export(src / "sessions", tmp_path / "old")  # sessionkit 0.1: four tables, no tool_calls/, no agents/
    old = tmp_path / "old"
    check_dataset(old)  # raises unless old holds a dataset
    assert not (old / "agents").exists()
    with sk.connect(old) as con:
        assert con.sql("SELECT count(*) FROM agents").fetchall() == [(0,)]
        assert con.sql("SELECT count(agent_id) FROM exchanges").fetchall() == [(0,)]
    assert sk.cost(old).height == 0 and sk.model_usage(old).height == 0
    assert sk.stats(old).select("agent_runs", "runs_linked").row(0) == (0, 0)
    assert scan_parquet(old)["agent_tool_calls"].collect().height == 0
    shutil.copytree(V2 / "agents", src / "agents")
    export(src, old, jobs=1)  # the next daily run brings the agent records in
    assert sk.stats(old)["agent_runs"].item() == len(AGENT_FILES)
    restore_agents(old, tmp_path / "back")
    for path in AGENT_FILES:
        assert (tmp_path / "back" / "agents" / path.name).read_bytes() == path.read_bytes()


def test_tool_usage_takes_the_error_flags_of_the_linked_runs(modern: Path) -> None:
    import sessionkit as sk

    records = {path.stem: _raw(path) for path in AGENT_FILES}
    by_turn: dict[tuple[str, int], list[str]] = {}
    for aid, link in _independent_links().items():
        by_turn.setdefault(link, []).append(aid)
    want: dict[str, list[int]] = {}  # tool -> [calls, errors, errors_flagged, agent_calls]
    for path in sorted((V2 / "sessions").glob("*.json")):
        s = json.loads(path.read_bytes())
        steps = s.get("trajectory_steps", [])
        checked: dict[int, bool] = {}
        for seq, response in enumerate(s["agent_responses"]):
            span = response.get("trajectory_range")
            runs = by_turn.get((s["id"], seq), [])
            if span is None or len(runs) != 1:
                continue
            calls = records[runs[0]]["tool_calls"]
            turn = list(range(span["start"], span["end"]))
            if [steps[i]["tool_name"] for i in turn] == [c["tool"] for c in calls]:
                checked.update({i: c["is_error"] for i, c in zip(turn, calls, strict=True)})
        for i, step in enumerate(steps):
            row = want.setdefault(step["tool_name"], [0, 0, 0, 0])
            row[0] += 1
            row[1] += checked.get(i, step["is_error"])
            row[2] += step["is_error"]
            row[3] += i in checked
    got = sk.tool_usage(modern)
    assert {
        r[0]: list(r[1:])
        for r in got.select("tool_name", "calls", "errors", "errors_flagged", "agent_calls").iter_rows()
    } == want
    assert sum(v[3] for v in want.values()) == oracle("oxios-v2")["agent_tool_calls"]  # every run's calls are found
    assert sum(v[1] for v in want.values()) > sum(v[2] for v in want.values())  # the session files hide failures
    for row in got.iter_rows(named=True):
        source = "agents" if row["agent_calls"] == row["calls"] else "sessions" if not row["agent_calls"] else "both"
        assert row["errors_source"] == source
    weekly = sk.tool_usage(modern, by="week")
    assert weekly["errors"].sum() == got["errors"].sum() and weekly["agent_calls"].sum() == got["agent_calls"].sum()


def _steps(*tools: tuple[str, bool]) -> list[dict]:
    return [
        {"tool_name": t, "tool_args": {}, "output_summary": "", "duration_ms": 5, "is_error": e, "timestamp": _at(1)}
        for t, e in tools
    ]


def _calls(*tools: tuple[str, bool]) -> list[dict]:
    return [{"tool": t, "input": "{}", "output": "", "duration_ms": 5, "is_error": e} for t, e in tools]


def test_tool_usage_checks_a_turn_only_against_a_run_of_the_same_calls(tmp_path: Path) -> None:
    import sessionkit as sk

    sessions = []
    for sid, text in (("s-same", "same"), ("s-fewer", "fewer"), ("s-other", "other tools"), ("s-two", "two")):
        session = _session(sid, "P", [(text, 0, 10)])
        session.agent_responses[0].extra["trajectory_range"] = {"start": 0, "end": 2}
        session.extra["trajectory_steps"] = _steps(("read", False), ("bash", False))
        sessions.append(session)
    runs = [
        {**_agent("a-same", "same", 5, "P"), "tool_calls": _calls(("read", False), ("bash", True))},
        {**_agent("a-fewer", "fewer", 5, "P"), "tool_calls": _calls(("read", True))},
        {**_agent("a-other", "other tools", 5, "P"), "tool_calls": _calls(("bash", True), ("read", True))},
        # two runs on one exchange (the same request twice at once): neither says which call is whose
        {**_agent("a-two-1", "two", 4, "P"), "tool_calls": _calls(("read", True), ("bash", True))},
        {**_agent("a-two-2", "two", 6, "P"), "tool_calls": _calls(("read", True), ("bash", True))},
    ]
    _write_state(tmp_path / "state", sessions, runs)
    export(tmp_path / "state", tmp_path / "out", jobs=1)
    assert all(seq == 0 for _, seq in _links(tmp_path / "out").values())
    got = {r["tool_name"]: r for r in sk.tool_usage(tmp_path / "out").iter_rows(named=True)}
    assert (got["bash"]["errors"], got["bash"]["errors_flagged"], got["bash"]["agent_calls"]) == (1, 0, 1)
    assert (got["read"]["errors"], got["read"]["agent_calls"], got["read"]["errors_source"]) == (0, 1, "both")
    by_session = (
        sk.connect(tmp_path / "out")
        .sql("SELECT session_id, count(*) FROM tool_calls GROUP BY ALL ORDER BY 1")
        .fetchall()
    )
    assert by_session == [(s, 2) for s in ("s-fewer", "s-other", "s-same", "s-two")]


#: serde's field order of oxios' AgentInfo and ToolCallRecord (crates/oxios-kernel/src/types.rs).
_AGENT_KEYS = (
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
_CALL_KEYS = ("tool", "input", "output", "duration_ms", "is_error", "tool_call_id", "timestamp")


def _in_serde_order(keys: list[str], order: tuple[str, ...]) -> bool:
    return all(k in order for k in keys) and [order.index(k) for k in keys] == sorted(order.index(k) for k in keys)


def _shaped_like_oxios(text: bytes) -> None:
    from sessionkit._timestamp import Timestamp

    record = json.loads(text)
    assert _in_serde_order(list(record), _AGENT_KEYS), list(record)
    assert {
        "id",
        "name",
        "status",
        "created_at",
        "steps_completed",
        "tokens_input",
        "tokens_output",
        "cost_usd",
    } <= set(record)
    assert isinstance(record["cost_usd"], float)  # an f64: "0.0", never "0", as serde_json writes it
    for key in ("created_at", "started_at", "completed_at"):
        if key in record:
            assert Timestamp.parse(record[key]).isoformat() == record[key]  # chrono's AutoSi form
    for call in record.get("tool_calls", []):
        assert _in_serde_order(list(call), _CALL_KEYS) and isinstance(call["input"], str)
        assert "timestamp" not in call or Timestamp.parse(call["timestamp"]).isoformat() == call["timestamp"]
    assert record.get("model_id", "x") != "" and "session_id" not in record  # skipped when empty; never set
    assert encode_raw(record) == text  # serde_json's pretty printer, no final newline


def test_the_generated_agent_records_are_shaped_like_oxios_own(tmp_path: Path) -> None:
    from sessionkit.generate import write_demo_state

    for path in AGENT_FILES:  # the order written down above is the real serialiser's
        _shaped_like_oxios(path.read_bytes())
    write_demo_state(tmp_path / "state", 60, seed=11, shape="modern")
    runs = sorted((tmp_path / "state" / "agents").glob("*.json"))
    assert len(runs) > 100
    for path in runs:
        _shaped_like_oxios(path.read_bytes())
    records = [_raw(p) for p in runs]
    assert {r["status"] for r in records} == {"Completed", "Failed"} and any("error" in r for r in records)
    export(tmp_path / "state", tmp_path / "out", jobs=1)
    links = _links(tmp_path / "out")
    linked = sum(1 for s, _ in links.values() if s is not None)
    assert 0.8 * len(runs) < linked < len(runs)  # nearly all; retries and pruned sessions' runs stay unlinked
    restore_agents(tmp_path / "out", tmp_path / "back")
    assert {p.name: p.read_bytes() for p in (tmp_path / "back" / "agents").glob("*.json")} == {
        p.name: p.read_bytes() for p in runs
    }


def test_the_bundled_modern_sample_holds_the_generators_agent_records(tmp_path: Path) -> None:
    from sessionkit.generate import write_demo_state

    sample = Path(__file__).parent.parent / "data" / "oxios-modern-sample"
    write_demo_state(tmp_path, 200, seed=7, shape="modern")
    for folder in ("sessions", "agents"):  # the sessions are as they were before it wrote agent records
        written = {p.name: p.read_bytes() for p in (tmp_path / folder).glob("*.json")}
        assert {p.name: p.read_bytes() for p in (sample / folder).glob("*.json")} == written, folder


def test_the_cli_privacy_options_cover_the_runs_and_keep_the_link(tmp_path: Path) -> None:
    import sessionkit as sk

    state = tmp_path / "state"
    session = _session("s-1", "P", [("mail alice@example.com the plan", 0, 10)])
    session.agent_responses[0].extra["trajectory_range"] = {"start": 0, "end": 1}
    session.extra["trajectory_steps"] = _steps(("bash", False))
    record = _agent("a-1", "mail alice@example.com the plan", 5, "P")
    record["status"], record["error"] = "Failed", "could not reach bob@example.com"
    record["tool_calls"] = _calls(("bash", True))
    record["tool_calls"][0]["input"] = '{"command":"mail carol@example.com"}'
    record["tool_calls"][0]["output"] = "no route to carol@example.com"
    _write_state(state, [session], [record])
    runner = CliRunner()
    assert runner.invoke(cli, ["keygen", str(tmp_path / "key")]).exit_code == 0
    for redact in ("mask", "hash", "drop"):
        out = tmp_path / redact
        args = ["export", str(state), str(out), "--pseudonymize", str(tmp_path / "key"), "--pseudonymize-sessions"]
        result = runner.invoke(cli, [*args, "--redact", redact, "--jobs", "1"])
        assert result.exit_code == 0, result.output
        snapshot = open_dataset(out)
        run = _rows(snapshot.read("agents"))[0]
        call = _rows(snapshot.read("agent_tool_calls"))[0]
        texts = [run["name"], run["error"], call["input"], call["output"]]
        assert not any(t and "@example.com" in t for t in texts), (redact, texts)
        sid = snapshot.read("sessions")["session_id"][0].as_py()
        assert sid.startswith("s_") and sid != "s-1"
        user = snapshot.read("sessions")["user_id"][0].as_py()
        if redact == "drop":  # the texts are gone: nothing to match the run on
            assert (run["linked_session_id"], run["linked_seq"]) == (None, None)
            continue
        assert (run["linked_session_id"], run["linked_seq"]) == (sid, 0)  # the link holds, on the pseudonyms
        assert sk.cost(out, by="user")["user_id"].to_list() == [user] and user != "u-1"
        assert sk.tool_usage(out).select("errors", "errors_flagged", "agent_calls").row(0) == (1, 0, 1)
