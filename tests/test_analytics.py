"""The helpers, against the shared fixtures' oracles, plain Python over the raw files, and hand-made sessions.

Three kinds of expectation, none computed by sessionkit: the counts in each fixture's
``oracle.json`` (written by the Rust program that wrote the files), the same questions
answered here in plain Python straight from the JSON files, and small crafted sessions whose
answers are written out by hand.
"""

from __future__ import annotations

import calendar
import json
import math
import re
from collections import Counter, defaultdict
from datetime import date, timedelta
from functools import cache
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from conftest import FIXTURES, oracle
from crafted import phase_case_session, quality_sessions
from polars.testing import assert_frame_equal

from sessionkit.analytics import (
    activity,
    evaluation_rates,
    exchange_counts,
    exchange_histogram,
    get_session,
    metadata_keys,
    persona_usage,
    phase_funnel,
    run_sql,
    seed_usage,
    stats,
    turn_latency,
    user_summary,
)
from sessionkit.model import PHASES, AgentResponse, Session, UserMessage
from sessionkit.query import connect
from sessionkit.tables import SCHEMAS, SessionTables, empty_table, to_tables

NONE = "<none>"
Z = 1.959963984540054


def _phase(value: str | None) -> str | None:
    """oxios' phase names whatever their ASCII case, as oxios writes them; other values as they are."""
    folded = (
        value.translate(str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")) if value else value
    )
    return folded if folded in ("interview", "seed", "execute", "evaluate", "evolve") else value


def _key(value: str | None) -> str:
    return NONE if value is None else value


# -- the raw fixture files, read without sessionkit -----------------------------------------------
_STAMP = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?Z$")


def _ns(text: str) -> int:
    y, mo, d, h, mi, s, frac = _STAMP.match(text).groups()
    seconds = calendar.timegm((int(y), int(mo), int(d), int(h), int(mi), int(s), 0, 0, 0))
    return seconds * 1_000_000_000 + int((frac or "").ljust(9, "0"))


def _day(ns: int) -> date:
    return date(1970, 1, 1) + timedelta(days=ns // 86_400_000_000_000)


def _week(ns: int) -> date:
    d = _day(ns)
    return d - timedelta(days=d.weekday())


def _month(ns: int) -> date:
    return _day(ns).replace(day=1)


@cache
def raw(name: str) -> tuple[dict, ...]:
    return tuple(json.loads(p.read_text()) for p in sorted((FIXTURES / name / "sessions").glob("*.json")))


def _responses(name: str):
    for s in raw(name):
        for r in s.get("agent_responses", []):
            yield s, r


def _wilson(passed: int, failed: int) -> tuple[float, float]:
    """The Wilson interval as the roots of (p̂ - p)² = z² p (1 - p) / n, a quadratic in p."""
    n = passed + failed
    ph = passed / n
    a = 1 + Z * Z / n
    b = -(2 * ph + Z * Z / n)
    c = ph * ph
    root = math.sqrt(b * b - 4 * a * c)
    return max(0.0, (-b - root) / (2 * a)), min(1.0, (-b + root) / (2 * a))


# -- the helpers that were there before ----------------------------------------------------------
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


# -- the new helpers against the oracles and plain Python ----------------------------------------
def test_exchange_histogram_matches_the_oracle(exported: dict[str, Path], fixture_name: str) -> None:
    o = oracle(fixture_name)
    got = exchange_histogram(exported[fixture_name])
    expected = sorted((int(k), v) for k, v in o["exchange_count_histogram"].items())
    assert_frame_equal(
        got,
        pl.DataFrame(
            {
                "exchange_count": [k for k, _ in expected],
                "sessions": [v for _, v in expected],
                "share": [v / o["sessions"] for _, v in expected],
            }
        ),
        check_dtypes=False,
    )


def test_phase_funnel_matches_the_oracle(exported: dict[str, Path], fixture_name: str) -> None:
    o = oracle(fixture_name)
    got = phase_funnel(exported[fixture_name])
    assert got.columns == [
        "phase",
        "responses",
        "response_share",
        "responses_reached",
        "sessions",
        "session_share",
        "sessions_reached",
    ]
    assert got["phase"].to_list()[:5] == list(PHASES)
    assert {_key(r["phase"]): r["responses"] for r in got.iter_rows(named=True) if r["responses"]} == o[
        "responses_by_phase"
    ]
    # sessions by the furthest phase, straight from the files
    rank = {p: i for i, p in enumerate(PHASES)}
    furthest: Counter[str | None] = Counter()
    for s in raw(fixture_name):
        phases = [_phase(r.get("phase_reached")) for r in s.get("agent_responses", [])]
        if not phases:
            continue
        known = [p for p in phases if p in rank]
        other = sorted(p for p in phases if p is not None and p not in rank)
        furthest[max(known, key=rank.get) if known else (other[0] if other else None)] += 1
    assert {r["phase"]: r["sessions"] for r in got.iter_rows(named=True) if r["sessions"]} == dict(furthest)
    with_responses = sum(furthest.values())
    assert got["session_share"].to_list() == pytest.approx([r / with_responses for r in got["sessions"]])
    assert got["response_share"].sum() == pytest.approx(1.0)
    known = got.head(5)
    assert known["responses_reached"].to_list() == [sum(known["responses"][i:]) for i in range(5)]
    assert known["sessions_reached"].to_list() == [sum(known["sessions"][i:]) for i in range(5)]


def test_phase_funnel_splits(exported: dict[str, Path], fixture_name: str) -> None:
    o = oracle(fixture_name)
    data = exported[fixture_name]
    by_persona = phase_funnel(data, by="persona")
    whole = phase_funnel(data)
    summed = by_persona.group_by("phase").agg(pl.col("responses", "sessions").sum())
    assert dict(summed.select("phase", "responses").iter_rows()) == dict(whole.select("phase", "responses").iter_rows())
    assert dict(summed.select("phase", "sessions").iter_rows()) == dict(whole.select("phase", "sessions").iter_rows())
    by_seed = phase_funnel(data, by="seed")
    assert by_seed.columns[0] == "seed_id"
    per_seed = by_seed.group_by("seed_id").agg(pl.col("responses").sum())
    assert {_key(k): v for k, v in per_seed.iter_rows()} == o.get("responses_by_seed", {NONE: o["agent_responses"]})


def test_evaluation_rates_match_the_oracle(exported: dict[str, Path], fixture_name: str) -> None:
    o = oracle(fixture_name)
    data = exported[fixture_name]
    got = evaluation_rates(data)
    assert got.columns == [
        "seed_id",
        "responses",
        "passed",
        "failed",
        "unknown",
        "pass_rate",
        "pass_rate_low",
        "pass_rate_high",
    ]
    assert {_key(r["seed_id"]): [r["passed"], r["failed"], r["unknown"]] for r in got.iter_rows(named=True)} == o[
        "evaluation_by_seed"
    ]
    for r in got.iter_rows(named=True):
        if r["passed"] + r["failed"] == 0:
            assert r["pass_rate"] is None and r["pass_rate_low"] is None
            continue
        assert r["pass_rate"] == pytest.approx(r["passed"] / (r["passed"] + r["failed"]))
        assert (r["pass_rate_low"], r["pass_rate_high"]) == pytest.approx(_wilson(r["passed"], r["failed"]))
    totals = [sum(v[i] for v in o["evaluation_by_seed"].values()) for i in range(3)]
    for by in ("persona", "phase", "day", "week"):
        split = evaluation_rates(data, by=by)
        assert [split[c].sum() for c in ("passed", "failed", "unknown")] == totals, by
    by_phase = evaluation_rates(data, by="phase")
    assert {_key(p): n for p, n in by_phase.select("phase", "responses").iter_rows()} == o["responses_by_phase"]
    order = [p for p in by_phase["phase"].to_list() if p in PHASES]
    assert order == [p for p in PHASES if p in order]


def test_evaluation_rates_by_week_against_python(exported: dict[str, Path], fixture_name: str) -> None:
    expected: dict[date, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for _, r in _responses(fixture_name):
        row = expected[_week(_ns(r["timestamp"]))]
        row[0] += 1
        row[{True: 1, False: 2, None: 3}[r.get("evaluation_passed")]] += 1
    weeks = sorted(expected)
    assert_frame_equal(
        evaluation_rates(exported[fixture_name], by="week").select("week", "responses", "passed", "failed", "unknown"),
        pl.DataFrame(
            {
                "week": weeks,
                "responses": [expected[w][0] for w in weeks],
                "passed": [expected[w][1] for w in weeks],
                "failed": [expected[w][2] for w in weeks],
                "unknown": [expected[w][3] for w in weeks],
            }
        ),
        check_dtypes=False,
    )


def _latency_rows(name: str):
    """(phase, latency in seconds or None) for every message/response position, from the files."""
    for s in raw(name):
        messages, responses = s.get("user_messages", []), s.get("agent_responses", [])
        for i in range(max(len(messages), len(responses))):
            m = messages[i] if i < len(messages) else None
            r = responses[i] if i < len(responses) else None
            latency = (_ns(r["timestamp"]) - _ns(m["timestamp"])) / 1e9 if m and r else None
            yield (_phase(r.get("phase_reached")) if r else None), latency


def _latency_expectation(latencies: list[float | None]) -> dict:
    valid = np.array([v for v in latencies if v is not None and v >= 0])
    stats_ = {"mean_s": None, "p50_s": None, "p90_s": None, "p99_s": None, "max_s": None}
    if valid.size:
        p50, p90, p99 = np.percentile(valid, [50, 90, 99])
        stats_ = {"mean_s": valid.mean(), "p50_s": p50, "p90_s": p90, "p99_s": p99, "max_s": valid.max()}
    return {
        "exchanges": sum(v is not None for v in latencies),
        "count": int(valid.size),
        "negative": sum(v is not None and v < 0 for v in latencies),
        "missing": sum(v is None for v in latencies),
        **stats_,
    }


def test_turn_latency_against_python(exported: dict[str, Path], fixture_name: str) -> None:
    o = oracle(fixture_name)
    data = exported[fixture_name]
    rows = list(_latency_rows(fixture_name))
    got = turn_latency(data)
    expected = _latency_expectation([v for _, v in rows])
    assert expected["exchanges"] == o["exchanges"]
    assert_frame_equal(got, pl.DataFrame([expected]), check_dtypes=False, rel_tol=1e-9)
    by_phase = turn_latency(data, by="phase")
    groups: dict[str | None, list] = defaultdict(list)
    for phase, v in rows:
        groups[phase].append(v)
    order = sorted(groups, key=lambda p: (PHASES.index(p) if p in PHASES else 5 + (p is None), p or ""))
    want = pl.DataFrame([{"phase": p, **_latency_expectation(groups[p])} for p in order])
    assert_frame_equal(by_phase, want, check_dtypes=False, rel_tol=1e-9)


def test_activity_against_python(exported: dict[str, Path], fixture_name: str) -> None:
    for every, bucket in (("1d", _day), ("1w", _week), ("1mo", _month)):
        sessions: Counter[date] = Counter()
        messages: Counter[date] = Counter()
        responses: Counter[date] = Counter()
        users: dict[date, set] = defaultdict(set)
        for s in raw(fixture_name):
            created = bucket(_ns(s["created_at"]))
            sessions[created] += 1
            users[created].add(s["user_id"])
            for m in s.get("user_messages", []):
                messages[bucket(_ns(m["timestamp"]))] += 1
                users[bucket(_ns(m["timestamp"]))].add(s["user_id"])
            for r in s.get("agent_responses", []):
                responses[bucket(_ns(r["timestamp"]))] += 1
        periods = sorted(set(sessions) | set(messages) | set(responses))
        # partial: the data's first instant (created, sent) after the period's start, or its
        # last (also updated) before the period's end
        stamps = [
            [
                _ns(s["created_at"]),
                *(_ns(x["timestamp"]) for k in ("user_messages", "agent_responses") for x in s.get(k, [])),
            ]
            for s in raw(fixture_name)
        ]
        first = min(t for ts in stamps for t in ts)
        last = max(max(*ts, _ns(s["updated_at"])) for ts, s in zip(stamps, raw(fixture_name), strict=True))

        def starts(p: date) -> int:
            return (p - date(1970, 1, 1)).days * 86_400_000_000_000

        def ends(p: date, every: str = every) -> int:
            nxt = {"1d": p + timedelta(days=1), "1w": p + timedelta(days=7)}.get(every) or (
                date(p.year + p.month // 12, p.month % 12 + 1, 1)
            )
            return starts(nxt)

        want = pl.DataFrame(
            {
                "period": periods,
                "sessions": [sessions[p] for p in periods],
                "active_users": [len(users[p]) for p in periods],
                "messages": [messages[p] for p in periods],
                "responses": [responses[p] for p in periods],
                "partial": [starts(p) < first or ends(p) - 1 > last for p in periods],
            }
        )
        assert want["partial"].sum() >= 1  # at least the last period
        assert_frame_equal(activity(exported[fixture_name], every=every), want, check_dtypes=False)


def test_user_summary_against_the_oracle_and_python(exported: dict[str, Path], fixture_name: str) -> None:
    o = oracle(fixture_name)
    got = user_summary(exported[fixture_name])
    assert dict(got.select("user_id", "sessions").iter_rows()) == o["sessions_by_user"]
    by_user: dict[str, list[dict]] = defaultdict(list)
    for s in raw(fixture_name):
        by_user[s["user_id"]].append(s)

    def favourite(items: list[str | None]) -> str | None:
        counts = Counter(i for i in items if i is not None)
        return min(counts, key=lambda k: (-counts[k], k)) if counts else None

    rows = []
    for user, ss in by_user.items():
        n_msg = [len(s.get("user_messages", [])) for s in ss]
        n_resp = [len(s.get("agent_responses", [])) for s in ss]
        rows.append(
            {
                "user_id": user,
                "sessions": len(ss),
                "exchanges": sum(map(min, n_msg, n_resp)),
                "messages": sum(n_msg),
                "first_seen": min(_ns(s["created_at"]) for s in ss),
                "last_seen": max(_ns(s["updated_at"]) for s in ss),
                "seeds": len({s.get("active_seed_id") for s in ss} - {None}),
                "personas": len({s.get("active_persona_id") for s in ss} - {None}),
                "favourite_seed": favourite([s.get("active_seed_id") for s in ss]),
                "favourite_persona": favourite([s.get("active_persona_id") for s in ss]),
            }
        )
    rows.sort(key=lambda r: (-r["sessions"], r["user_id"]))
    want = pl.DataFrame(rows, schema_overrides={"favourite_seed": pl.String, "favourite_persona": pl.String})
    got = got.with_columns(pl.col("first_seen", "last_seen").dt.epoch("ns"))
    assert_frame_equal(got, want, check_dtypes=False)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", list: "array", dict: "object"}[type(value)]


def test_metadata_keys_against_the_oracle_and_python(exported: dict[str, Path], fixture_name: str) -> None:
    o = oracle(fixture_name)
    got = metadata_keys(exported[fixture_name])
    assert dict(got.select("key", "sessions").iter_rows()) == o["metadata_key_counts"]
    types: dict[str, Counter] = defaultdict(Counter)
    created: dict[str, list[int]] = defaultdict(list)
    for s in raw(fixture_name):
        for key, value in s.get("metadata", {}).items():
            types[key][_json_type(value)] += 1
            created[key].append(_ns(s["created_at"]))
    rows = [
        {
            "key": key,
            "sessions": o["metadata_key_counts"][key],
            "share": o["metadata_key_counts"][key] / o["sessions"],
            "types": sorted(types[key]),
            **{t: types[key][t] for t in ("string", "number", "boolean", "null", "object", "array")},
            "first_created": min(created[key]),
            "last_created": max(created[key]),
        }
        for key in types
    ]
    rows.sort(key=lambda r: (-r["sessions"], r["key"]))
    got = got.with_columns(pl.col("first_created", "last_created").dt.epoch("ns"))
    assert_frame_equal(got, pl.DataFrame(rows), check_dtypes=False)


def test_usage_splits_add_up(exported: dict[str, Path], fixture_name: str) -> None:
    o = oracle(fixture_name)
    data = exported[fixture_name]
    for by in ("day", "week", "month", "user", "persona"):
        split = seed_usage(data, by=by)
        assert split.columns[1:] == ["seed_id", "sessions", "responses", "users"], by
        assert (split["sessions"].sum(), split["responses"].sum()) == (o["sessions"], o["agent_responses"]), by
        per_seed = split.group_by("seed_id").agg(pl.col("sessions", "responses").sum())
        assert_frame_equal(
            per_seed.sort("seed_id", nulls_last=True),
            seed_usage(data).select("seed_id", "sessions", "responses").sort("seed_id", nulls_last=True),
        )
        assert split.columns[0] == {"user": "user_id", "persona": "persona_id"}.get(by, by)
    for by in ("day", "week", "month", "user", "seed"):
        split = persona_usage(data, by=by)
        assert split.columns[1:] == ["persona_id", "sessions", "users", "exchanges"], by
        assert (split["sessions"].sum(), split["exchanges"].sum()) == (o["sessions"], o["exchanges"]), by
    by_user = seed_usage(data, by="user").group_by("user_id").agg(pl.col("sessions").sum())
    assert dict(by_user.iter_rows()) == o["sessions_by_user"]
    # sessions by month of created_at and responses by month of their timestamp, from the files
    sessions = Counter((_month(_ns(s["created_at"])), s.get("active_seed_id")) for s in raw(fixture_name))
    responses = Counter((_month(_ns(r["timestamp"])), r.get("seed_id")) for _, r in _responses(fixture_name))
    got = seed_usage(data, by="month")
    assert {(m, s): n for m, s, n in got.select("month", "seed_id", "sessions").iter_rows() if n} == dict(sessions)
    assert {(m, s): n for m, s, n in got.select("month", "seed_id", "responses").iter_rows() if n} == dict(responses)
    months = got["month"].to_list()
    assert months == sorted(months)


# -- crafted sessions, answers by hand --------------------------------------------------------------
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
    assert phase_funnel(con).height == 6
    assert con.sql("SELECT 1").fetchall() == [(1,)]  # still open


@pytest.fixture(scope="module")
def quality() -> object:
    return to_tables(quality_sessions())


def test_crafted_exchange_histogram(quality: object) -> None:
    assert_frame_equal(
        exchange_histogram(quality),
        pl.DataFrame({"exchange_count": [0, 1, 3], "sessions": [1, 2, 1], "share": [0.25, 0.5, 0.25]}),
        check_dtypes=False,
    )


def test_crafted_phase_funnel(quality: object) -> None:
    phases = ["interview", "seed", "execute", "evaluate", "evolve", "Refine", None]
    assert_frame_equal(
        phase_funnel(quality),
        pl.DataFrame(
            {
                "phase": phases,
                "responses": [1, 0, 1, 1, 1, 1, 1],
                "response_share": [1 / 6, 0.0, 1 / 6, 1 / 6, 1 / 6, 1 / 6, 1 / 6],
                "responses_reached": [4, 3, 3, 2, 1, 1, 1],
                "sessions": [0, 0, 0, 1, 1, 1, 0],
                "session_share": [0.0, 0.0, 0.0, 1 / 3, 1 / 3, 1 / 3, 0.0],
                "sessions_reached": [2, 2, 2, 2, 1, 1, 0],
            }
        ),
        check_dtypes=False,
    )
    by_persona = phase_funnel(quality, by="persona")
    assert by_persona["persona_id"].unique(maintain_order=True).to_list() == ["dev", "ops", None]
    dev = by_persona.filter(pl.col("persona_id") == "dev")
    assert dev["responses"].to_list() == [1, 0, 1, 1, 0] and dev["sessions"].to_list() == [0, 0, 0, 1, 0]
    by_seed = phase_funnel(quality, by="seed")
    s1 = by_seed.filter(pl.col("seed_id") == "s1")
    # p's s1 responses got to execute, s's to evolve
    assert s1["phase"].to_list() == [*PHASES, None]
    assert s1["sessions"].to_list() == [0, 0, 1, 0, 1, 0]
    assert s1["sessions_reached"].to_list() == [2, 2, 2, 1, 1, 0]


def test_phases_match_whatever_their_case() -> None:
    data = to_tables([phase_case_session()])
    funnel = phase_funnel(data)
    # the five in lifecycle order, lowercase; then other values by name (binary order); then null
    assert funnel.select("phase", "responses").rows() == [
        ("interview", 0),
        ("seed", 1),
        ("execute", 4),
        ("evaluate", 0),
        ("evolve", 0),
        ("Refine", 1),
        ("refine", 1),
        ("\u0130nterview", 1),  # not an ASCII letter: not folded, so no engine's Unicode tables matter
        (None, 1),
    ]
    assert funnel.filter(pl.col("phase") == "execute")["sessions"].to_list() == [1]  # the furthest phase
    rates = evaluation_rates(data, by="phase")
    assert rates.select("phase", "responses", "passed", "failed").rows() == [
        ("seed", 1, 0, 1),
        ("execute", 4, 2, 2),
        ("Refine", 1, 1, 0),
        ("refine", 1, 0, 1),
        ("\u0130nterview", 1, 1, 0),
        (None, 1, 1, 0),
    ]
    assert turn_latency(data, by="phase")["phase"].to_list() == rates["phase"].to_list()


def test_crafted_evaluation_rates(quality: object) -> None:
    low, high = _wilson(1, 1)
    assert_frame_equal(
        evaluation_rates(quality, by="seed"),
        pl.DataFrame(
            {
                "seed_id": ["s1", "s2", None],
                "responses": [4, 1, 1],
                "passed": [1, 0, 1],
                "failed": [1, 1, 0],
                "unknown": [2, 0, 0],
                "pass_rate": [0.5, 0.0, 1.0],
                "pass_rate_low": [low, 0.0, _wilson(1, 0)[0]],
                "pass_rate_high": [high, _wilson(0, 1)[1], 1.0],
            }
        ),
        check_dtypes=False,
    )
    assert (round(low, 4), round(high, 4)) == (0.0945, 0.9055)  # the textbook value for 1 of 2
    by_phase = evaluation_rates(quality, by="phase")
    assert by_phase["phase"].to_list() == ["interview", "execute", "evaluate", "evolve", "Refine", None]
    assert by_phase["pass_rate"].to_list() == [None, 1.0, 0.0, 0.0, 1.0, None]
    by_day = evaluation_rates(quality, by="day")
    assert by_day["day"].to_list() == [date(2026, 1, 5), date(2026, 2, 1)]
    assert by_day["responses"].to_list() == [4, 2]
    by_persona = evaluation_rates(quality, by="persona")
    assert by_persona.select("persona_id", "passed", "failed").rows() == [("dev", 1, 1), ("ops", 0, 1), (None, 1, 0)]


def test_crafted_turn_latency(quality: object) -> None:
    assert_frame_equal(
        turn_latency(quality),
        pl.DataFrame(
            {
                "exchanges": [5],
                "count": [4],
                "negative": [1],
                "missing": [2],
                "mean_s": [5.0],
                "p50_s": [4.0],
                "p90_s": [8.5],
                "p99_s": [9.85],
                "max_s": [10.0],
            }
        ),
        check_dtypes=False,
    )
    by_phase = turn_latency(quality, by="phase")
    assert by_phase["phase"].to_list() == ["interview", "execute", "evaluate", "evolve", "Refine", None]
    assert by_phase.select("exchanges", "count", "negative", "missing").rows() == [
        (1, 1, 0, 0),
        (1, 1, 0, 0),
        (1, 0, 1, 0),
        (0, 0, 0, 1),
        (1, 1, 0, 0),
        (1, 1, 0, 1),
    ]
    assert by_phase["p50_s"].to_list() == [2.0, 5.0, None, None, 10.0, 3.0]
    by_day = turn_latency(quality, by="day")  # the day of the message: q's first is on Sunday
    assert by_day.select("day", "exchanges", "missing").rows() == [
        (date(2026, 1, 4), 1, 0),
        (date(2026, 1, 5), 3, 1),
        (date(2026, 2, 1), 1, 1),
    ]
    by_persona = turn_latency(quality, by="persona")
    assert by_persona.select("persona_id", "count", "negative", "missing").rows() == [
        ("dev", 2, 1, 0),
        ("ops", 1, 0, 1),
        (None, 1, 0, 1),
    ]


def _latency_tables(latencies_ns: list[int], batches: int) -> SessionTables:
    """One exchange per session with the given latencies, the tables cut into record batches."""
    n = len(latencies_ns)
    base = 1_767_225_600_000_000_000  # 2026-01-01, in ns
    ids = pa.array([f"s{i:07d}" for i in range(n)])
    seq = pa.array([0] * n, pa.int32())
    text = pa.array(["x"] * n)
    columns = {
        "messages": {"session_id": ids, "seq": seq, "content": text, "timestamp": pa.array([base] * n)},
        "responses": {
            "session_id": ids,
            "seq": seq,
            "content": text,
            "timestamp": pa.array([base + v for v in latencies_ns]),
        },
    }
    tables = {}
    for name in ("messages", "responses"):
        schema = SCHEMAS[name]
        arrays = [columns[name].get(f.name, pa.nulls(n, f.type)).cast(f.type) for f in schema]
        table = pa.Table.from_arrays(arrays, schema=schema)
        tables[name] = pa.Table.from_batches(table.to_batches(max_chunksize=-(-n // batches)), schema=schema)
    return SessionTables(sessions=empty_table(SCHEMAS["sessions"]), metadata=empty_table(SCHEMAS["metadata"]), **tables)


def test_turn_latency_is_the_same_bits_whatever_the_threads_and_row_order() -> None:
    # a float sum depends on the order of its terms: a parallel avg() of float seconds gave
    # another last digit on every run; sums of integer nanoseconds cannot
    rng = np.random.default_rng(7)
    latencies = [int(v) for v in rng.integers(-2_000_000_000, 90_000_000_000, 400_003)]
    tables = _latency_tables(latencies, batches=16)
    backwards = _latency_tables(latencies[::-1], batches=7)
    results = []
    for data, threads in ((tables, 1), (tables, 2), (tables, 4), (backwards, 3)):
        con = connect(data, config={"threads": threads})
        results.append(turn_latency(con))
        results.append(turn_latency(con))
        con.close()
    for other in results[1:]:
        assert_frame_equal(other, results[0], check_exact=True)
    # and the bits are the exact statistics, rounded as documented
    valid = sorted(v for v in latencies if v >= 0)
    last = len(valid) - 1
    want = {"mean_s": float(sum(valid)) / float(len(valid)) / 1e9, "max_s": valid[-1] / 1e9}
    for p in (50, 90, 99):
        lo, rest = divmod(last * p, 100)
        hi = lo + (rest > 0)
        want[f"p{p}_s"] = (float(valid[lo]) + float(valid[hi] - valid[lo]) * (rest / 100.0)) / 1e9
        assert abs(want[f"p{p}_s"] - float(np.percentile(valid, p)) / 1e9) <= 1e-15 * want[f"p{p}_s"]
    got = results[0].row(0, named=True)
    assert {k: got[k] for k in want} == want
    assert (got["count"], got["negative"], got["missing"]) == (len(valid), len(latencies) - len(valid), 0)


def test_crafted_activity(quality: object) -> None:
    # the data starts at 1969-12-31T23:59:59.5Z and ends at 2026-02-01T00:00:04Z, inside the
    # first and last period of every size: those two are partial
    columns = ["period", "sessions", "active_users", "messages", "responses", "partial"]
    daily = [
        (date(1969, 12, 31), 1, 1, 0, 0, True),
        (date(2026, 1, 4), 1, 1, 1, 0, False),
        (date(2026, 1, 5), 1, 2, 4, 4, False),
        (date(2026, 2, 1), 1, 1, 1, 2, True),
    ]
    weekly = [
        (date(1969, 12, 29), 1, 1, 0, 0, True),
        (date(2025, 12, 29), 1, 1, 1, 0, False),
        (date(2026, 1, 5), 1, 2, 4, 4, False),
        (date(2026, 1, 26), 1, 1, 1, 2, True),
    ]
    monthly = [
        (date(1969, 12, 1), 1, 1, 0, 0, True),
        (date(2026, 1, 1), 2, 2, 5, 4, False),
        (date(2026, 2, 1), 1, 1, 1, 2, True),
    ]
    for every, rows in (("1d", daily), ("1w", weekly), ("1mo", monthly)):
        want = pl.DataFrame(rows, schema=columns, orient="row")
        assert_frame_equal(activity(quality, every=every), want, check_dtypes=False)
    assert activity(quality).schema["period"] == pl.Date and activity(quality).schema["partial"] == pl.Boolean
    whole = activity(to_tables(quality_sessions()[:1]), every="1d")  # one day, from 10:00 to 10:05
    assert whole["partial"].to_list() == [True]


def test_crafted_user_summary(quality: object) -> None:
    got = user_summary(quality)
    assert got.select(
        "user_id", "sessions", "exchanges", "messages", "seeds", "personas", "favourite_seed", "favourite_persona"
    ).rows() == [
        ("ann", 2, 3, 3, 1, 1, "s1", "dev"),
        ("bob", 1, 1, 2, 0, 0, None, None),
        ("cy", 1, 1, 1, 1, 1, "s1", "ops"),
    ]
    first = got["first_seen"].dt.epoch("ns").to_list()
    assert first[0] == -500_000_000  # 1969-12-31T23:59:59.5Z, to the nanosecond
    assert got["last_seen"].dt.epoch("ns")[1] == _ns("2026-01-05T00:00:10Z")
    assert got.schema["first_seen"] == pl.Datetime("ns", "UTC")


def test_crafted_metadata_keys(quality: object) -> None:
    got = metadata_keys(quality).with_columns(pl.col("first_created", "last_created").dt.epoch("ns"))
    want = pl.DataFrame(
        {
            "key": ["channel", "cfg", "n", "tags"],
            "sessions": [3, 1, 1, 1],
            "share": [0.75, 0.25, 0.25, 0.25],
            "types": [["null", "string"], ["object"], ["number"], ["array"]],
            "string": [2, 0, 0, 0],
            "number": [0, 0, 1, 0],
            "boolean": [0, 0, 0, 0],
            "null": [1, 0, 0, 0],
            "object": [0, 1, 0, 0],
            "array": [0, 0, 0, 1],
            "first_created": [
                -500_000_000,
                -500_000_000,
                _ns("2026-01-05T10:00:00Z"),
                _ns("2026-01-04T23:59:59.999999999Z"),
            ],
            "last_created": [
                _ns("2026-01-05T10:00:00Z"),
                -500_000_000,
                _ns("2026-01-05T10:00:00Z"),
                _ns("2026-01-04T23:59:59.999999999Z"),
            ],
        }
    )
    assert_frame_equal(got, want, check_dtypes=False)


def test_crafted_usage_splits(quality: object) -> None:
    assert_frame_equal(
        seed_usage(quality, by="month"),
        pl.DataFrame(
            [
                (date(1969, 12, 1), None, 1, 0, 1),
                (date(2026, 1, 1), "s1", 1, 2, 1),
                (date(2026, 1, 1), None, 1, 1, 1),
                (date(2026, 1, 1), "s2", 0, 1, 0),
                (date(2026, 2, 1), "s1", 1, 2, 1),
            ],
            schema=["month", "seed_id", "sessions", "responses", "users"],
            orient="row",
        ),
        check_dtypes=False,
    )
    assert_frame_equal(
        persona_usage(quality, by="seed"),
        pl.DataFrame(
            [
                ("s1", "dev", 1, 1, 2),
                ("s1", "ops", 1, 1, 1),
                ("s2", "dev", 0, 0, 1),
                (None, None, 1, 1, 1),
                (None, "dev", 1, 1, 0),
            ],
            schema=["seed_id", "persona_id", "sessions", "users", "exchanges"],
            orient="row",
        ),
        check_dtypes=False,
    )
    by_user = seed_usage(quality, by="user")
    assert by_user.select("user_id", "seed_id", "sessions", "responses").rows() == [
        ("ann", "s1", 1, 2),
        ("ann", None, 1, 0),
        ("ann", "s2", 0, 1),
        ("bob", None, 1, 1),
        ("cy", "s1", 1, 2),
    ]
    by_day = persona_usage(quality, by="day")  # q was created on Sunday, its exchange answered on Monday
    assert by_day.filter(pl.col("persona_id").is_null()).select("day", "sessions", "exchanges").rows() == [
        (date(2026, 1, 4), 1, 0),
        (date(2026, 1, 5), 0, 1),
    ]


def test_time_buckets_ignore_the_connection_time_zone(quality: object) -> None:
    con = connect(quality)
    con.execute("SET TimeZone = 'Pacific/Kiritimati'")  # UTC+14: every local day differs from UTC's
    assert_frame_equal(activity(con), activity(quality))
    assert_frame_equal(user_summary(con), user_summary(quality))
    assert user_summary(con).schema["first_seen"] == pl.Datetime("ns", "UTC")


def test_empty_data_gives_empty_frames() -> None:
    data = to_tables([])
    assert exchange_histogram(data).height == 0
    assert seed_usage(data, by="week").columns == ["week", "seed_id", "sessions", "responses", "users"]
    funnel = phase_funnel(data)
    assert funnel["phase"].to_list() == list(PHASES) and funnel["responses"].sum() == 0
    assert funnel["response_share"].null_count() == 5
    assert turn_latency(data).row(0) == (0, 0, 0, 0, None, None, None, None, None)
    assert evaluation_rates(data).height == 0
    assert activity(data, every="1w").height == 0
    assert user_summary(data).height == 0
    assert metadata_keys(data).height == 0


@pytest.mark.parametrize(
    ("helper", "options", "message"),
    [
        (seed_usage, {"by": "seed"}, "seed_usage: by must be one of None, 'day', 'week', 'month', 'user', 'persona'"),
        (persona_usage, {"by": "persona"}, "persona_usage: by must be one of"),
        (phase_funnel, {"by": "day"}, "phase_funnel: by must be one of None, 'seed', 'persona'"),
        (evaluation_rates, {"by": None}, "evaluation_rates: by must be one of 'seed'"),
        (evaluation_rates, {"by": "month"}, "not 'month'"),
        (turn_latency, {"by": "week"}, "turn_latency: by must be one of"),
        (activity, {"every": "1h"}, "activity: every must be one of '1d', '1w', '1mo', not '1h'"),
    ],
)
def test_bad_options_are_refused(helper: object, options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        helper(to_tables([]), **options)


def test_options_are_keyword_only(quality: object) -> None:
    with pytest.raises(TypeError):
        seed_usage(quality, "day")


def test_get_session_from_a_dataset(exported: dict[str, Path]) -> None:
    data = exported["oxios-edge"]
    for path in sorted((FIXTURES / "oxios-edge" / "sessions").glob("*.json"))[:5]:
        session = get_session(data, path.stem)
        assert session.to_json().encode() == path.read_bytes()
    con = connect(data)
    assert get_session(con, path.stem).id == path.stem
    with pytest.raises(KeyError, match="no session with id 'nope'"):
        get_session(data, "nope")
    tables = to_tables(quality_sessions())
    assert get_session(tables, "q").user_id == "bob"


def test_run_sql_hands_over_a_frame_as_the_helpers_do(exported: dict[str, Path]) -> None:
    import duckdb

    data = exported["oxios-v1"]
    sql = "SELECT count(*) AS n, sum(length(content)) AS characters, max(timestamp) AS last FROM responses"
    con = connect(data)
    raw = con.sql(sql).pl()
    assert isinstance(raw.schema["characters"], pl.Decimal)  # DuckDB's own: a sum of integers is HUGEINT
    got = run_sql(data, sql)
    assert got.schema["characters"] == pl.Int64 and got.schema["last"] == pl.Datetime("ns", "UTC")
    assert got["characters"].item() == int(raw["characters"].item()) > 0
    assert_frame_equal(run_sql(data, sql, read_only=False), got)  # DuckDB's own reader: the same
    assert_frame_equal(run_sql(con, sql), got)
    assert con.sql("SELECT count(*) FROM sessions").fetchall() == [(300,)]  # a connection given stays open
    with pytest.raises(duckdb.Error):  # a folder is locked down unless read_only=False
        run_sql(data, "SELECT * FROM read_text('/etc/hostname')")
    assert run_sql(con, "CREATE TABLE t AS SELECT 1 AS x").columns == ["Count"]  # what DuckDB reports for it
