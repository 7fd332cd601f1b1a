"""Today's oxios fields as tables: tool_calls, reasoning, project and parent ids, losslessly."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest
from conftest import fixture_files, oracle
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from legacy import legacy_export
from strategies import json_values, text, timestamps

import sessionkit as sk
from sessionkit.model import Session, check_session, decode_json, encode_raw, encode_session
from sessionkit.privacy import Privacy
from sessionkit.query import scan_parquet
from sessionkit.storage import read_parquet, write_parquet
from sessionkit.tables import TableBuilder, iter_session_json, to_tables

V2 = "oxios-v2"


# -- the fixture written by oxios' own serialisers ----------------------------------------------
@pytest.fixture(scope="module")
def v2() -> sk.SessionTables:
    return to_tables(sk.read_sessions(fixture_files(V2)[0].parent))


def test_the_tables_hold_what_the_oracle_counts(v2: sk.SessionTables) -> None:
    facts = oracle(V2)
    calls, reasoning = v2.tool_calls, v2.reasoning
    assert calls.num_rows == facts["trajectory_steps"] and reasoning.num_rows == facts["reasoning_records"]
    assert dict(Counter(reasoning["source"].to_pylist())) == facts["reasoning_by_source"]
    owners = {
        (s, q)
        for s, q in zip(calls["session_id"].to_pylist(), calls["response_seq"].to_pylist(), strict=True)
        if q is not None
    }
    assert len(owners) == facts["responses_with_steps"]
    per_tool: dict[str, dict] = {}
    for row in calls.select(["session_id", "tool_name", "is_error", "duration_ms"]).to_pylist():
        tool = per_tool.setdefault(row["tool_name"], {"calls": 0, "errors": 0, "sessions": set(), "sum": 0, "max": 0})
        tool["calls"] += 1
        tool["errors"] += row["is_error"]
        tool["sessions"].add(row["session_id"])
        tool["sum"] += row["duration_ms"]
        tool["max"] = max(tool["max"], row["duration_ms"])
    assert {
        name: {
            "calls": t["calls"],
            "errors": t["errors"],
            "sessions": len(t["sessions"]),
            "duration_ms_sum": t["sum"],
            "duration_ms_max": t["max"],
        }
        for name, t in per_tool.items()
    } == facts["tools"]
    projects = Counter(p if p is not None else "<none>" for p in v2.sessions["project_id"].to_pylist())
    assert dict(projects) == facts["sessions_by_project"]
    parents = [p for p in v2.sessions["parent_session_id"].to_pylist() if p is not None]
    ids = set(v2.sessions["session_id"].to_pylist())
    assert len(parents) == facts["sessions_with_parent"] and sum(p in ids for p in parents) == facts["parents_in_set"]
    # nothing of these stays in extra: the fixture is all in oxios' own layout
    for name in ("sessions", "tool_calls", "reasoning"):
        assert v2[name]["extra"].null_count == len(v2[name])


def test_tool_args_are_json_text_whether_stored_as_object_or_string(v2: sk.SessionTables) -> None:
    raw = [
        step["tool_args"] for p in fixture_files(V2) for step in json.loads(p.read_bytes()).get("trajectory_steps", [])
    ]
    con = sk.connect(v2)
    rows = con.sql(
        "SELECT tool_args, tool_args_is_text, json_valid(tool_args) FROM tool_calls ORDER BY session_id, step"
    )
    got = rows.fetchall()
    assert sorted(r[1] for r in got) == sorted(type(a) is str for a in raw)
    assert all(valid for _, _, valid in got)  # oxios' strings are the call's JSON
    paths = con.sql("SELECT count(*) FROM tool_calls WHERE json_extract_string(tool_args, '$.path') IS NOT NULL")
    assert paths.fetchall()[0][0] == sum("path" in (json.loads(a) if type(a) is str else a) for a in raw)


def test_fixture_restores_byte_identical_through_parquet(v2: sk.SessionTables, tmp_path: Path) -> None:
    write_parquet(v2, tmp_path / "ds")
    back = read_parquet(tmp_path / "ds")
    files = {p.stem: p.read_bytes() for p in fixture_files(V2)}
    restored = dict(iter_session_json(back))
    assert restored == files
    assert {s.id: encode_session(s) for s in back.to_sessions()} == files


def test_old_and_todays_files_mixed_in_one_export_restore_to_the_byte(tmp_path: Path) -> None:
    """Old files take the fast path and today's the general one, in the same batch: their rows,
    tool calls and reasoning included, are put back in file order before they are written."""
    from sessionkit.archive import export, restore

    src = tmp_path / "src" / "sessions"
    src.mkdir(parents=True)
    old, new = fixture_files("oxios-v1")[:12], fixture_files(V2)[:12]
    for i, path in enumerate(p for pair in zip(old, new, strict=True) for p in pair):
        target = src / path.name
        shutil.copyfile(path, target)
        os.utime(target, ns=(1_750_000_000 * 10**9 + i, 1_750_000_000 * 10**9 + i))  # read alternately
    export(src.parent, tmp_path / "ds", jobs=1)
    tables = read_parquet(tmp_path / "ds")
    assert tables.tool_calls.num_rows == sum(len(json.loads(p.read_bytes()).get("trajectory_steps", [])) for p in new)
    assert restore(tmp_path / "ds", tmp_path / "back") == 24
    for path in (*old, *new):
        assert (tmp_path / "back" / "sessions" / path.name).read_bytes() == path.read_bytes()


def test_exchanges_count_the_tool_calls_of_each_response(v2: sk.SessionTables, tmp_path: Path) -> None:
    expected = {}
    for p in fixture_files(V2):
        s = json.loads(p.read_bytes())
        steps = s.get("trajectory_steps", [])
        for seq, r in enumerate(s["agent_responses"][: len(s["user_messages"])]):
            span = r.get("trajectory_range")
            mine = steps[span["start"] : span["end"]] if span else []
            expected[(s["id"], seq)] = (
                len(mine),
                sum(x["is_error"] for x in mine),
                sum(x["duration_ms"] for x in mine),
                s.get("project_id"),
            )
    query = "SELECT session_id, seq, n_tool_calls, tool_errors, tool_ms, project_id FROM exchanges"
    got = {(r[0], r[1]): tuple(r[2:]) for r in sk.connect(v2).sql(query).fetchall()}
    assert got == expected
    write_parquet(v2, tmp_path / "ds")
    lazy = scan_parquet(tmp_path / "ds")["exchanges"].collect()
    polars = {
        (r["session_id"], r["seq"]): (r["n_tool_calls"], r["tool_errors"], r["tool_ms"], r["project_id"])
        for r in lazy.iter_rows(named=True)
    }
    assert polars == expected
    assert set(scan_parquet(tmp_path / "ds")) >= {"tool_calls", "reasoning"}


def test_a_backup_copy_beside_the_file_does_not_mix_its_tool_calls_in(tmp_path: Path) -> None:
    # a state directory restored from a backup: an older copy of a session under another name,
    # read in the same batch; export keeps the newer, and only its steps
    src = tmp_path / "state" / "sessions"
    src.mkdir(parents=True)
    files = fixture_files(V2)
    path = next(f for f in files if len(json.loads(f.read_bytes()).get("trajectory_steps", [])) >= 4)
    session = json.loads(path.read_bytes())
    shutil.copy(path, src / path.name)
    (src / f"backup-{path.name}").write_bytes(
        path.read_bytes().replace(session["updated_at"].encode(), b"2000-01-01T00:00:00Z")
    )
    others = [f for f in files if f != path][:4]
    for other in others:
        shutil.copy(other, src / other.name)
    summary = sk.export(src.parent, tmp_path / "out", jobs=1)
    assert (summary.exported, summary.quarantined) == (5, 1)
    mine = [sid for sid in read_parquet(tmp_path / "out").tool_calls["session_id"].to_pylist() if sid == session["id"]]
    assert len(mine) == len(session["trajectory_steps"])
    assert sk.restore(tmp_path / "out", tmp_path / "back", jobs=1) == 5
    for f in [path, *others]:
        assert (tmp_path / "back" / "sessions" / f.name).read_bytes() == f.read_bytes()


def test_a_dataset_of_an_older_sessionkit_reads_with_empty_new_tables(tmp_path: Path) -> None:
    src = tmp_path / "sessions"
    src.mkdir()
    for path in fixture_files("oxios-v1")[:20]:
        shutil.copy(path, src / path.name)
    legacy_export(src, tmp_path / "old")  # four tables, no project_id column, no tool_calls/
    tables = read_parquet(tmp_path / "old")
    assert tables.tool_calls.num_rows == 0 and tables.tool_calls.schema.equals(sk.TOOL_CALLS_SCHEMA)
    assert tables.sessions["project_id"].null_count == tables.sessions.num_rows
    for read_only in (True, False):  # through pyarrow, and through DuckDB's own reader
        con = sk.connect(tmp_path / "old", read_only=read_only)
        row = con.execute("SELECT count(*), sum(n_tool_calls), count(project_id) FROM exchanges").fetchone()
        assert row == (sum(tables.sessions["exchange_count"].to_pylist()), 0, 0)
    assert len(scan_parquet(tmp_path / "old")["exchanges"].collect()) == row[0]


# -- hostile but valid sessions in today's shape --------------------------------------------------
_ODD_TIMES = ["2026-06-14T15:55:37.062000Z", "2026-02-30T00:00:00Z", "2026-06-14T15:55:37+02:00", "nope", None, 7]
_stamp = st.one_of(timestamps.map(lambda t: t.isoformat()), st.sampled_from(_ODD_TIMES))


@st.composite
def _record(draw: st.DrawFn, fields: dict) -> dict:
    """A record with the given field strategies: some left out, some odd keys, in some order."""
    values = {name: draw(strategy) for name, strategy in fields.items()}
    if draw(st.booleans()):
        values = {k: v for k, v in values.items() if draw(st.integers(0, 4))}
        values.update(draw(st.dictionaries(text.filter(lambda k: k not in fields), json_values, max_size=2)))
        values = dict(draw(st.permutations(list(values.items()))))
    return values


_steps = st.lists(
    _record(
        {
            "tool_name": st.one_of(st.sampled_from(["read", "bash", "grep"]), text, st.none()),
            "tool_args": st.one_of(
                st.just('{"path":"src/"}'), text, st.dictionaries(text, json_values, max_size=3), json_values
            ),
            "output_summary": st.one_of(text, st.none()),
            "duration_ms": st.one_of(st.integers(0, 10**6), st.sampled_from([0, 2**63 - 1, 2**63, -1, 1.5, "9"])),
            "is_error": st.one_of(st.booleans(), st.none(), st.just("yes")),
            "tool_call_id": st.one_of(text, st.none()),
            "timestamp": _stamp,
        }
    ),
    max_size=5,
)
_segments = st.one_of(
    st.lists(
        st.fixed_dictionaries({"before_step": st.integers(-3, 2**31 + 3), "text": st.one_of(text, st.none())}),
        max_size=3,
    ),
    st.none(),
    st.just([{"text": "x", "before_step": 1}]),
    st.just(["a"]),
)
_reasoning = st.lists(
    _record(
        {
            "content": text,
            "source": st.one_of(st.sampled_from(["thinking", "compaction"]), text),
            "timestamp": _stamp,
            "segments": _segments,
        }
    ),
    max_size=3,
)
_range = st.one_of(
    st.fixed_dictionaries({"start": st.integers(-2, 7), "end": st.integers(-2, 8)}),
    st.just({"start": "0", "end": 2}),
    st.just([0, 1]),
)


@st.composite
def modern_sessions(draw: st.DrawFn) -> dict:
    """A session file's JSON value in today's shape, with every optional part present or not."""
    n = draw(st.integers(0, 3))
    messages = [{"content": draw(text), "timestamp": draw(timestamps).isoformat()} for _ in range(n)]
    responses = []
    for _ in range(draw(st.integers(0, 3))):
        r = {
            "content": draw(text),
            "session_id": draw(st.one_of(st.none(), text)),
            "phase_reached": draw(st.sampled_from(["execute", "interview", "Evaluate"])),
            "evaluation_passed": draw(st.one_of(st.none(), st.booleans())),
            "timestamp": draw(timestamps).isoformat(),
        }
        if draw(st.booleans()):
            r["trajectory_range"] = draw(_range)
        responses.append(r)
    s: dict = {"id": draw(st.uuids().map(str)), "user_id": draw(text), "user_messages": messages}
    s["agent_responses"] = responses
    for key, strategy in (
        ("trajectory_steps", st.one_of(_steps, st.just([]), st.just([1, {"tool_name": "x"}]))),
        ("reasoning_records", _reasoning),
        ("active_persona_id", text),
        ("project_id", st.one_of(text, st.none(), st.just(3))),
        ("parent_session_id", st.one_of(st.uuids().map(str), st.none())),
    ):
        if draw(st.booleans()):
            s[key] = draw(strategy)
    s["created_at"] = draw(timestamps).isoformat()
    s["updated_at"] = draw(timestamps).isoformat()
    s["metadata"] = draw(st.dictionaries(text, json_values, max_size=2))
    return s


def _file(value: dict) -> bytes:
    return encode_raw(value)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(modern_sessions(), min_size=1, max_size=4, unique_by=lambda s: s["id"]))
def test_todays_sessions_round_trip_to_the_byte(values: list[dict]) -> None:
    files = {v["id"]: _file(v) for v in values}
    builder = TableBuilder()
    for data in files.values():
        obj = decode_json(data)
        check_session(obj)
        builder.add_raw(obj, "<text>", data)
    raw = builder.finish()
    assert dict(iter_session_json(raw)) == files
    model = to_tables([Session.from_json(data) for data in files.values()])
    for name, table in raw.items():
        assert table.equals(model[name]), name
    assert {s.id: encode_session(s) for s in model.to_sessions()} == files
    # what fits a column is in it; what does not is kept in extra
    for row in raw.tool_calls.drop_columns(["timestamp"]).to_pylist():
        assert row["tool_args"] is not None or row["field_order"] is not None


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(modern_sessions(), min_size=1, max_size=3, unique_by=lambda s: s["id"]))
def test_todays_sessions_round_trip_through_parquet(values: list[dict]) -> None:
    files = {v["id"]: _file(v) for v in values}
    tables = to_tables([Session.from_json(data) for data in files.values()])
    with tempfile.TemporaryDirectory() as folder:
        write_parquet(tables, Path(folder) / "ds")
        back = read_parquet(Path(folder) / "ds")
    assert dict(iter_session_json(back)) == files


def test_response_seq_is_the_first_response_whose_range_holds_the_step() -> None:
    value = {
        "id": "s",
        "user_id": "u",
        "user_messages": [],
        "agent_responses": [
            {
                "content": "a",
                "session_id": None,
                "phase_reached": "execute",
                "evaluation_passed": None,
                "timestamp": "2026-06-01T00:00:00Z",
                "trajectory_range": {"start": 1, "end": 3},
            },
            {
                "content": "b",
                "session_id": None,
                "phase_reached": "execute",
                "evaluation_passed": None,
                "timestamp": "2026-06-01T00:00:01Z",
                "trajectory_range": {"start": 2, "end": 9},
            },
        ],
        "trajectory_steps": [
            {
                "tool_name": t,
                "tool_args": {},
                "output_summary": "",
                "duration_ms": 0,
                "is_error": False,
                "tool_call_id": None,
                "timestamp": "2026-06-01T00:00:00Z",
            }
            for t in "wxyzv"
        ],
        "created_at": "2026-06-01T00:00:00Z",
        "updated_at": "2026-06-01T00:00:00Z",
        "metadata": {},
    }
    tables = to_tables([Session.from_json(_file(value))])
    assert tables.tool_calls["response_seq"].to_pylist() == [None, 0, 0, 1, 1]


def test_odd_values_stay_in_extra_with_the_column_null() -> None:
    step = {
        "tool_name": "read",
        "tool_args": "x",
        "output_summary": None,
        "duration_ms": 1.5,
        "is_error": False,
        "tool_call_id": "c",
        "timestamp": "2026-06-14T15:55:37.062000Z",
    }
    value = {
        "id": "s",
        "user_id": "u",
        "trajectory_steps": [step],
        "created_at": "2026-06-01T00:00:00Z",
        "updated_at": "2026-06-01T00:00:00Z",
    }
    data = _file(value)
    tables = to_tables([Session.from_json(data)])
    row = tables.tool_calls.to_pylist()[0]
    assert row["duration_ms"] is None and row["timestamp"] is None and row["tool_args"] == "x"
    assert json.loads(row["extra"]) == {"duration_ms": 1.5, "timestamp": "2026-06-14T15:55:37.062000Z"}
    assert dict(iter_session_json(tables)) == {"s": data}


# -- privacy ---------------------------------------------------------------------------------
def test_redact_covers_tool_calls_and_reasoning(v2: sk.SessionTables) -> None:
    out, _ = Privacy(redact="drop", pseudonymize_users=False).apply(v2)
    assert set(out.tool_calls["output_summary"].to_pylist()) <= {"", None}
    assert set(out.tool_calls["tool_args"].to_pylist()) <= {"", None}
    assert set(out.reasoning["content"].to_pylist()) <= {"", None}
    texts = {seg["text"] for segs in out.reasoning["segments"].to_pylist() if segs for seg in segs}
    assert texts <= {"", None}
    assert all(dict(iter_session_json(out)))  # still restorable
    secret = "mail me at someone@example.com"
    s = Session.with_id("u", "s")
    s.extra["trajectory_steps"] = [
        {
            "tool_name": "bash",
            "tool_args": {"cmd": secret},
            "output_summary": secret,
            "duration_ms": 1,
            "is_error": False,
            "tool_call_id": None,
            "timestamp": "2026-06-01T00:00:00Z",
        },
        {
            "tool_name": "bash",
            "tool_args": json.dumps({"cmd": secret}),
            "output_summary": "",
            "duration_ms": 1,
            "is_error": False,
            "tool_call_id": None,
            "timestamp": "2026-06-01T00:00:00Z",
        },
    ]
    s.extra["reasoning_records"] = [
        {
            "content": secret,
            "source": "thinking",
            "timestamp": "2026-06-01T00:00:00Z",
            "segments": [{"before_step": 0, "text": secret}],
        }
    ]
    masked, _ = Privacy(redact="mask", pseudonymize_users=False).apply(to_tables([s]))
    restored = b"".join(data for _, data in iter_session_json(masked))
    assert b"someone@example.com" not in restored and restored.count(b"<EMAIL>") == 5
    assert masked.tool_calls["tool_args_is_text"].to_pylist() == [False, True]


def test_pseudonymize_covers_parent_session_ids(v2: sk.SessionTables) -> None:
    out, _ = Privacy(key=b"k" * 32, pseudonymize_sessions=True).apply(v2)
    before = [p for p in v2.sessions["parent_session_id"].to_pylist() if p]
    after = [p for p in out.sessions["parent_session_id"].to_pylist() if p]
    assert len(after) == len(before) and not set(after) & set(before)
    ids = set(out.sessions["session_id"].to_pylist())
    assert sum(p in ids for p in after) == oracle(V2)["parents_in_set"]  # threads still join
    for name in ("tool_calls", "reasoning"):
        assert set(out[name]["session_id"].to_pylist()) <= ids
    assert pa.compute.all(pa.compute.starts_with(out.tool_calls["session_id"], "s_")).as_py()
