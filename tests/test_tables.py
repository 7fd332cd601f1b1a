"""The Arrow tables: declared schemas, and lossless round trips through them."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest
from conftest import FIXTURES, fixture_files
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import sessions as session_strategy

from sessionkit.exceptions import DatasetError
from sessionkit.model import Session, check_session, decode_json, encode_session
from sessionkit.oxios import read_sessions
from sessionkit.tables import (
    MESSAGES_SCHEMA,
    METADATA_SCHEMA,
    REASONING_SCHEMA,
    RESPONSES_SCHEMA,
    SCHEMA_VERSION,
    SCHEMAS,
    SESSIONS_SCHEMA,
    TOOL_CALLS_SCHEMA,
    SessionTables,
    TableBuilder,
    to_tables,
)

SNAPSHOT = {
    "sessions": [
        "session_id: string not null",
        "user_id: string not null",
        "active_seed_id: string",
        "active_persona_id: string",
        "created_at: timestamp[ns, tz=UTC] not null",
        "updated_at: timestamp[ns, tz=UTC] not null",
        "n_user_messages: int32 not null",
        "n_agent_responses: int32 not null",
        "exchange_count: int32 not null",
        "extra: string",
        "field_order: string",
        "n_metadata: int32 not null",
        "project_id: string",
        "parent_session_id: string",
    ],
    "messages": [
        "session_id: string not null",
        "seq: int32 not null",
        "content: string not null",
        "timestamp: timestamp[ns, tz=UTC] not null",
        "extra: string",
        "field_order: string",
    ],
    "responses": [
        "session_id: string not null",
        "seq: int32 not null",
        "content: string not null",
        "response_session_id: string",
        "seed_id: string",
        "phase_reached: string",
        "evaluation_passed: bool",
        "timestamp: timestamp[ns, tz=UTC] not null",
        "extra: string",
        "field_order: string",
    ],
    "metadata": [
        "session_id: string not null",
        "ord: int32 not null",
        "key: string not null",
        "value: string not null",
    ],
    "tool_calls": [
        "session_id: string not null",
        "step: int32 not null",
        "response_seq: int32",
        "tool_name: string",
        "tool_args: string",
        "tool_args_is_text: bool",
        "output_summary: string",
        "duration_ms: int64",
        "is_error: bool",
        "tool_call_id: string",
        "timestamp: timestamp[ns, tz=UTC]",
        "extra: string",
        "field_order: string",
    ],
    "reasoning": [
        "session_id: string not null",
        "ord: int32 not null",
        "source: string",
        "content: string",
        "timestamp: timestamp[ns, tz=UTC]",
        "segments: list<item: struct<before_step: int32, text: string>>",
        "extra: string",
        "field_order: string",
    ],
}


def test_schemas_are_the_documented_contract() -> None:
    for name, schema in [
        ("sessions", SESSIONS_SCHEMA),
        ("messages", MESSAGES_SCHEMA),
        ("responses", RESPONSES_SCHEMA),
        ("metadata", METADATA_SCHEMA),
        ("tool_calls", TOOL_CALLS_SCHEMA),
        ("reasoning", REASONING_SCHEMA),
    ]:
        assert [f"{f.name}: {f.type}" + ("" if f.nullable else " not null") for f in schema] == SNAPSHOT[name]
        assert schema.metadata[b"sessionkit.schema_version"] == SCHEMA_VERSION.encode()


def _bytes(sessions: list[Session]) -> list[bytes]:
    return [encode_session(s) for s in sessions]


def test_fixture_tables_round_trip(fixture_name: str) -> None:
    sessions = read_sessions(FIXTURES / fixture_name)
    tables = to_tables(sessions)
    for name, table in tables.items():
        assert table.schema.equals(SCHEMAS[name], check_metadata=True)
    back = tables.to_sessions()
    assert back == sessions
    assert _bytes(back) == [p.read_bytes() for p in fixture_files(fixture_name)]


def test_the_raw_path_builds_the_same_tables_as_the_model_path(fixture_name: str) -> None:
    files = fixture_files(fixture_name)
    builder = TableBuilder()
    for path in files:
        obj = decode_json(path.read_bytes(), source=str(path))
        check_session(obj, str(path))
        builder.add_raw(obj, str(path))
    raw = builder.finish()
    model = to_tables(read_sessions(FIXTURES / fixture_name))
    for name, table in raw.items():
        assert table.equals(model[name]), name


def test_columns_hold_what_the_contract_says() -> None:
    tables = to_tables(read_sessions(FIXTURES / "oxios-v2"))
    row = tables.sessions.select(["n_user_messages", "n_agent_responses", "exchange_count"]).slice(0, 1).to_pylist()[0]
    assert row["n_user_messages"] >= row["exchange_count"] <= row["n_agent_responses"]
    # today's fields are columns and tables of their own, not extra
    assert tables.sessions["extra"].null_count == tables.sessions.num_rows
    assert (
        tables.tool_calls.num_rows
        and tables.reasoning.num_rows
        and tables.sessions["project_id"].null_count < len(tables)
    )
    odd = Session.with_id("u", "s")
    odd.extra["from_a_later_oxios"] = {"a": 1}
    assert to_tables([odd]).sessions["extra"].to_pylist() == ['{"from_a_later_oxios":{"a":1}}']
    assert tables.responses["seed_id"].null_count == tables.responses.num_rows
    md = to_tables(read_sessions(FIXTURES / "oxios-edge")).metadata
    assert md["ord"].to_pylist()[:1] == [0]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(session_strategy(), max_size=4, unique_by=lambda s: s.id))
def test_hostile_sessions_round_trip_through_json_and_tables(sessions: list[Session]) -> None:
    # JSON: writing is a fixed point of reading
    texts = _bytes(sessions)
    again = [Session.from_json(t) for t in texts]
    assert _bytes(again) == texts
    # tables: to_sessions gives equal sessions, which write the same bytes
    back = to_tables(sessions).to_sessions()
    assert back == sessions
    assert _bytes(back) == texts
    # the exporter's raw path agrees with the model path
    builder = TableBuilder()
    for t in texts:
        obj = decode_json(t)
        check_session(obj)
        builder.add_raw(obj, "<text>")
    raw = builder.finish()
    model = to_tables(again)
    for name, table in raw.items():
        assert table.equals(model[name]), name


def test_child_rows_in_any_order_rebuild_the_same_sessions() -> None:
    sessions = read_sessions(FIXTURES / "oxios-edge")
    tables = to_tables(sessions)
    rng = random.Random(5)

    def shuffled(table: pa.Table) -> pa.Table:
        order = list(range(table.num_rows))
        rng.shuffle(order)
        return table.take(order)

    mixed = SessionTables(
        tables.sessions, shuffled(tables.messages), shuffled(tables.responses), shuffled(tables.metadata)
    )
    assert mixed.to_sessions() == sessions


def test_damaged_tables_are_reported() -> None:
    tables = to_tables(read_sessions(FIXTURES / "oxios-v1"))
    orphan = SessionTables(tables.sessions.slice(1), tables.messages, tables.responses, tables.metadata)
    with pytest.raises(DatasetError, match="no row in the sessions table"):
        orphan.to_sessions()
    doubled = SessionTables(
        pa.concat_tables([tables.sessions, tables.sessions.slice(0, 1)]),
        tables.messages,
        tables.responses,
        tables.metadata,
    )
    with pytest.raises(DatasetError, match="twice"):
        doubled.to_sessions()
    gap = SessionTables(tables.sessions, tables.messages.slice(1), tables.responses, tables.metadata)
    with pytest.raises(DatasetError, match="missing or repeated"):
        gap.to_sessions()
    with pytest.raises(DatasetError, match="lacks the columns"):
        SessionTables(tables.sessions.drop_columns(["user_id"]), tables.messages, tables.responses, tables.metadata)


def test_one_session_out_of_many() -> None:
    sessions = read_sessions(FIXTURES / "oxios-v1")
    tables = to_tables(sessions)
    assert tables.session(sessions[7].id) == sessions[7]
    with pytest.raises(KeyError, match="no session"):
        tables.session("nope")
    assert len(tables) == 300 and "sessions=300" in repr(tables)
    assert tables["messages"] is tables.messages


def test_to_tables_refuses_other_things() -> None:
    with pytest.raises(TypeError, match="Session objects"):
        to_tables([{"id": "x"}])  # type: ignore[list-item]


def test_the_removed_shorthands_name_what_does_their_work() -> None:
    tables = to_tables([])
    with pytest.raises(AttributeError, match=r"call sk\.write_parquet\(tables, out\)"):
        tables.write_parquet("out")  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match=r"call sk\.connect\(tables\)"):
        tables.connect()  # type: ignore[attr-defined]
    assert not hasattr(tables, "no_such_thing") and hasattr(tables, "sessions")


def test_empty_tables_keep_their_schema() -> None:
    tables = to_tables([])
    assert tables.sessions.num_rows == 0 and tables.sessions.schema.equals(SESSIONS_SCHEMA)
    assert tables.to_sessions() == []


@given(st.lists(st.integers(min_value=-(2**63) + 1, max_value=2**63 - 1), max_size=30))
def test_timestamps_print_all_at_once_as_chrono_does(values: list[int]) -> None:
    from sessionkit._timestamp import Timestamp, autosi_text

    column = pa.array(values, pa.int64()).cast(pa.timestamp("ns", tz="UTC"))
    assert autosi_text(column) == [Timestamp(ns).isoformat() for ns in values]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(session_strategy(), max_size=4, unique_by=lambda s: s.id))
def test_the_fast_json_path_writes_what_the_model_writes(sessions: list[Session]) -> None:
    from sessionkit.tables import iter_session_json

    assert list(iter_session_json(to_tables(sessions))) == [(s.id, encode_session(s)) for s in sessions]


def test_tables_are_built_by_column_name_so_swapped_columns_fail() -> None:
    from sessionkit.tables import table_of

    sid, ord_, key, value = pa.array(["s"]), pa.array([0], pa.int32()), pa.array(["k"]), pa.array(['"v"'])
    # by position, two string columns that trade places pass the schema unseen
    swapped = pa.Table.from_arrays([sid, ord_, value, key], schema=METADATA_SCHEMA)
    assert swapped.column("key").to_pylist() == ['"v"']
    # by name, the order they are given in does not matter
    table = table_of(METADATA_SCHEMA, {"session_id": sid, "ord": ord_, "value": value, "key": key})
    assert table.column("key").to_pylist() == ["k"] and table.schema.equals(METADATA_SCHEMA, check_metadata=True)
    # and a name that is not the schema's, a wrong type or a null where none is allowed fails
    with pytest.raises(ValueError, match=r"missing \['key'\], not in it \['keys'\]"):
        table_of(METADATA_SCHEMA, {"session_id": sid, "ord": ord_, "value": value, "keys": key})
    with pytest.raises(TypeError, match="'ord' is int64, the schema says int32"):
        table_of(METADATA_SCHEMA, {"session_id": sid, "ord": pa.array([0]), "value": value, "key": key})
    with pytest.raises(ValueError, match="'key' holds 1 nulls"):
        table_of(
            METADATA_SCHEMA, {"session_id": sid, "ord": ord_, "value": value, "key": pa.array([None], pa.string())}
        )


def test_every_builder_puts_each_field_in_its_own_column() -> None:
    """Each string field of a session has a value of its own: a builder that swapped two columns
    of one type (seed and persona, content and session id, key and value, ...) fails here."""
    from sessionkit._fastjson import fast_tables

    session = Session.from_json(
        '{"id": "S", "user_id": "U", "user_messages": [{"content": "MC", "timestamp": "2026-01-01T00:00:01Z"}],'
        ' "agent_responses": [{"content": "RC", "session_id": "RS", "seed_id": "RD", "phase_reached": "RP",'
        ' "evaluation_passed": true, "timestamp": "2026-01-01T00:00:02Z"}], "active_seed_id": "AS",'
        ' "active_persona_id": "AP", "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:03Z",'
        ' "metadata": {"K": "V"}}'
    )
    data = encode_session(session)
    builder = TableBuilder()
    builder.add_raw(decode_json(data), "s.json", data)
    fast = fast_tables([data])
    assert fast is not None and fast.taken == [True]
    expected = {
        "sessions": {"session_id": "S", "user_id": "U", "active_seed_id": "AS", "active_persona_id": "AP"},
        "messages": {"session_id": "S", "content": "MC"},
        "responses": {
            "session_id": "S",
            "content": "RC",
            "response_session_id": "RS",
            "seed_id": "RD",
            "phase_reached": "RP",
        },
        "metadata": {"session_id": "S", "key": "K", "value": '"V"'},
    }
    for tables in (to_tables([session]), builder.finish(), fast.tables):
        for name, columns in expected.items():
            row = tables[name].to_pylist()[0]
            assert {column: row[column] for column in columns} == columns, name
        times = [tables.sessions[name].cast(pa.int64()).to_pylist() for name in ("created_at", "updated_at")]
        assert times == [[1767225600 * 10**9], [1767225603 * 10**9]]
