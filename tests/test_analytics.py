"""The helpers, against the shared fixtures' oracles and hand-made sessions."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from conftest import oracle
from polars.testing import assert_frame_equal

from sessionkit.analytics import exchange_counts, persona_usage, seed_usage, stats
from sessionkit.model import AgentResponse, Session, UserMessage
from sessionkit.query import connect
from sessionkit.tables import to_tables

NONE = "<none>"


def _key(value: str | None) -> str:
    return NONE if value is None else value


def test_helpers_match_the_oracles(exported: dict[str, Path], fixture_name: str) -> None:
    o = oracle(fixture_name)
    data = exported[fixture_name]
    ex = exchange_counts(data)
    assert ex.columns == ["session_id", "user_id", "exchange_count"]
    assert dict(zip(ex["session_id"], ex["exchange_count"], strict=True)) == o["exchange_count_by_session"]
    assert ex["session_id"].to_list() == sorted(ex["session_id"].to_list())
    seeds = seed_usage(data)
    assert seeds.columns == ["seed_id", "sessions", "responses", "users"]
    assert {_key(r["seed_id"]): r["sessions"] for r in seeds.iter_rows(named=True) if r["sessions"]} == o.get(
        "sessions_by_active_seed", {NONE: o["sessions"]}
    )
    assert {_key(r["seed_id"]): r["responses"] for r in seeds.iter_rows(named=True) if r["responses"]} == o.get(
        "responses_by_seed", {NONE: o["agent_responses"]}
    )
    assert seeds["sessions"].sum() == o["sessions"] and seeds["responses"].sum() == o["agent_responses"]
    personas = persona_usage(data)
    assert personas.columns == ["persona_id", "sessions", "users", "exchanges"]
    assert {_key(r["persona_id"]): r["sessions"] for r in personas.iter_rows(named=True)} == o[
        "sessions_by_active_persona"
    ]
    assert personas["exchanges"].sum() == o["exchanges"]
    totals = stats(data).row(0, named=True)
    assert (totals["sessions"], totals["messages"], totals["responses"], totals["exchanges"]) == (
        o["sessions"],
        o["user_messages"],
        o["agent_responses"],
        o["exchanges"],
    )


def _crafted() -> list[Session]:
    a = Session(
        id="a",
        user_id="ann",
        created_at="2026-01-01T00:00:00Z",
        updated_at="2026-01-01T00:00:00Z",
        active_seed_id="s1",
        active_persona_id="dev",
    )
    b = Session(
        id="b", user_id="bob", created_at="2026-01-02T00:00:00Z", updated_at="2026-01-02T00:00:00Z", active_seed_id="s1"
    )
    c = Session(id="c", user_id="ann", created_at="2026-01-03T00:00:00Z", updated_at="2026-01-03T00:00:00Z")
    for s, n_msg, seeds in ((a, 3, ["s1", "s1", "s2"]), (b, 1, ["s1", None]), (c, 0, [None])):
        for i in range(n_msg):
            s.user_messages.append(UserMessage(f"m{i}", "2026-01-01T00:00:00Z"))
        for seed in seeds:
            s.agent_responses.append(AgentResponse(content="r", seed_id=seed, timestamp="2026-01-01T00:00:01Z"))
    return [a, b, c]


def test_helpers_on_crafted_sessions() -> None:
    data = to_tables(_crafted())
    assert_frame_equal(
        exchange_counts(data),
        pl.DataFrame({"session_id": ["a", "b", "c"], "user_id": ["ann", "bob", "ann"], "exchange_count": [3, 1, 0]}),
        check_dtypes=False,
    )
    assert_frame_equal(
        seed_usage(data),
        pl.DataFrame(
            {
                "seed_id": ["s1", None, "s2"],
                "sessions": [2, 1, 0],
                "responses": [3, 2, 1],
                "users": [2, 1, 0],
            }
        ),
        check_dtypes=False,
    )
    assert_frame_equal(
        persona_usage(data),
        pl.DataFrame({"persona_id": [None, "dev"], "sessions": [2, 1], "users": [2, 1], "exchanges": [1, 3]}),
        check_dtypes=False,
    )


def test_helpers_take_a_connection() -> None:
    con = connect(to_tables(_crafted()))
    assert exchange_counts(con).height == 3
    assert con.sql("SELECT 1").fetchall() == [(1,)]  # still open
