"""DuckDB views over tables in memory and over datasets on disk."""

from __future__ import annotations

import calendar
import time
from pathlib import Path

import duckdb
import pytest
from conftest import FIXTURES, first_message, oracle

from sessionkit.oxios import read_sessions
from sessionkit.query import connect, sql_string
from sessionkit.tables import to_tables


def test_views_over_memory_and_disk_agree(exported: dict[str, Path]) -> None:
    tables = to_tables(read_sessions(FIXTURES / "oxios-v1"))
    for source in (tables, exported["oxios-v1"], str(exported["oxios-v1"])):
        con = connect(source)
        counts = [
            con.sql(f"SELECT count(*) FROM {v}").fetchall()[0][0]
            for v in ("sessions", "messages", "responses", "metadata", "exchanges")
        ]
        o = oracle("oxios-v1")
        assert counts == [
            o[k] for k in ("sessions", "user_messages", "agent_responses", "metadata_entries", "exchanges")
        ]


def test_exchanges_pair_messages_and_responses_by_seq() -> None:
    sessions = read_sessions(FIXTURES / "oxios-edge")
    con = connect(to_tables(sessions))
    rows = con.sql(
        "SELECT session_id, seq, user_content, response_content, latency_s, seed_id, phase_reached, evaluation_passed "
        "FROM exchanges ORDER BY session_id, seq"
    ).fetchall()
    expected = []
    for s in sorted(sessions, key=lambda s: s.id):
        for seq, (m, r) in enumerate(s.exchanges()):
            latency = (r.timestamp.ns - m.timestamp.ns) / 1e9
            expected.append((s.id, seq, m.content, r.content, latency, r.seed_id, r.phase_reached, r.evaluation_passed))
    assert [row[:4] + row[5:] for row in rows] == [e[:4] + e[5:] for e in expected]
    assert all(abs(row[4] - e[4]) < 1e-9 for row, e in zip(rows, expected, strict=True))


def test_timestamps_keep_nanoseconds_in_sql(exported: dict[str, Path]) -> None:
    sid, text = first_message("oxios-v1")
    head, fraction = text.removesuffix("Z").split(".")
    seconds = calendar.timegm(time.strptime(head, "%Y-%m-%dT%H:%M:%S"))
    con = connect(exported["oxios-v1"])
    ns = con.sql(f"SELECT epoch_ns(timestamp) FROM messages WHERE session_id = '{sid}' AND seq = 0").fetchall()
    assert ns == [(seconds * 10**9 + int(fraction),)]


def test_a_connection_is_passed_through_and_bad_data_refused() -> None:
    con = duckdb.connect()
    assert connect(con) is con
    with pytest.raises(TypeError, match="connect takes"):
        connect(42)  # type: ignore[arg-type]


def test_sql_string_quotes() -> None:
    assert sql_string("it's") == "'it''s'"


def test_a_dataset_path_with_a_quote(tmp_path: Path) -> None:
    from sessionkit.archive import export

    out = tmp_path / "o'brien"
    export(FIXTURES / "oxios-v2", out, jobs=1)
    assert connect(out).sql("SELECT count(*) FROM sessions").fetchall() == [(150,)]
