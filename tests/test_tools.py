"""Helpers over today's oxios tables: tool_usage, tool_sequences, project_usage, threads, generations."""

from __future__ import annotations

import io
import json
import math
from collections import Counter
from itertools import pairwise
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from conftest import fixture_files, oracle

import sessionkit as sk
from sessionkit.model import Session
from sessionkit.tables import to_tables

V2 = "oxios-v2"
T0 = "2026-06-01T00:00:00Z"


def _raw(name: str) -> list[dict]:
    return [json.loads(p.read_bytes()) for p in fixture_files(name)]


def _step(tool: str, ms: int, error: bool = False, at: str = T0) -> dict:
    return {
        "tool_name": tool,
        "tool_args": {},
        "output_summary": "",
        "duration_ms": ms,
        "is_error": error,
        "tool_call_id": None,
        "timestamp": at,
    }


def _session(sid: str, steps: list[dict], ranges: list[tuple[int, int]], **extra: object) -> Session:
    s = Session.with_id("u-" + sid[-1], sid)
    for start, end in ranges:
        s.add_user_message("q")
        s.add_agent_response(sk.AgentResponse(content="a", phase_reached="execute"))
        s.agent_responses[-1].extra["trajectory_range"] = {"start": start, "end": end}
    s.extra["trajectory_steps"] = steps
    s.extra.update(extra)
    return s


def _wilson(k: int, n: int) -> tuple[float, float]:
    z = 1.959963984540054
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (0.0 if k == 0 else max(0.0, centre - half)), (1.0 if k == n else min(1.0, centre + half))


# -- tool_usage ---------------------------------------------------------------------------------
def test_tool_usage_equals_the_oracle(exported: dict[str, Path]) -> None:
    got = sk.tool_usage(exported[V2])
    want = oracle(V2)["tools"]
    rows = {r["tool_name"]: r for r in got.iter_rows(named=True)}
    assert set(rows) == set(want)
    for tool, facts in want.items():
        row = rows[tool]
        # the session files' flags; ``errors`` takes the agent records' (issue 13, tests/test_agents.py)
        assert (row["calls"], row["errors_flagged"], row["sessions"], row["duration_max_ms"]) == (
            facts["calls"],
            facts["errors"],
            facts["sessions"],
            facts["duration_ms_max"],
        )
    assert got["calls"].to_list() == sorted(got["calls"].to_list(), reverse=True)


def test_tool_usage_percentiles_leave_unmeasured_calls_apart() -> None:
    durations = [0, 0, 5, 7, 11, 13, 100, 1000]
    steps = [_step("read", ms, error=i in (1, 4)) for i, ms in enumerate(durations)] + [_step("bash", 3)]
    tables = to_tables([_session("s-1", steps, [(0, 4), (4, 9)])])
    got = sk.tool_usage(tables)
    assert got.columns == [
        "tool_name",
        "calls",
        "sessions",
        "responses",
        "errors",
        "errors_flagged",
        "errors_source",
        "agent_calls",
        "error_rate",
        "error_rate_low",
        "error_rate_high",
        "zero_duration",
        "duration_p50_ms",
        "duration_p90_ms",
        "duration_p99_ms",
        "duration_max_ms",
    ]
    read = got.row(0, named=True)
    measured = np.array([d for d in durations if d > 0])
    assert (read["tool_name"], read["calls"], read["responses"], read["errors"], read["zero_duration"]) == (
        "read",
        8,
        2,
        2,
        2,
    )
    for p in (50, 90, 99):
        assert read[f"duration_p{p}_ms"] == pytest.approx(float(np.percentile(measured, p)), rel=1e-12)
    assert read["error_rate"] == 2 / 8
    # no agent records: every count is the session files'
    assert (read["errors_flagged"], read["errors_source"], read["agent_calls"]) == (2, "sessions", 0)
    assert (read["error_rate_low"], read["error_rate_high"]) == pytest.approx(_wilson(2, 8), abs=1e-12)
    assert got.row(1, named=True)["tool_name"] == "bash"


def test_tool_usage_by_every_group(exported: dict[str, Path]) -> None:
    whole = sk.tool_usage(exported[V2])
    for by, column in (("persona", "persona_id"), ("project", "project_id"), ("day", "day"), ("week", "week")):
        grouped = sk.tool_usage(exported[V2], by=by)
        assert grouped.columns[0] == column
        per_tool = grouped.group_by("tool_name").agg(pl.col("calls").sum(), pl.col("errors").sum())
        assert dict(per_tool.select("tool_name", "calls").iter_rows()) == dict(
            whole.select("tool_name", "calls").iter_rows()
        )
    projects = sk.tool_usage(exported[V2], by="project")
    calls = Counter()
    for s in _raw(V2):
        for step in s.get("trajectory_steps", []):
            calls[s.get("project_id"), step["tool_name"]] += 1
    assert {(r["project_id"], r["tool_name"]): r["calls"] for r in projects.iter_rows(named=True)} == calls
    with pytest.raises(ValueError, match="by must be one of"):
        sk.tool_usage(exported[V2], by="seed")


def test_helpers_on_data_without_tool_calls_give_empty_frames_with_their_columns(exported: dict[str, Path]) -> None:
    for name, helper in (("tool_usage", sk.tool_usage), ("tool_sequences", sk.tool_sequences)):
        frame = helper(exported["oxios-v1"])
        assert frame.height == 0 and frame.width >= 4, name
    assert sk.tool_usage(exported["oxios-v1"]).columns == sk.tool_usage(exported[V2]).columns
    assert sk.threads(exported["oxios-v1"]).height == 0
    assert sk.threads(to_tables([])).columns == sk.threads(exported[V2]).columns
    projects = sk.project_usage(exported["oxios-v1"])
    assert projects.height == 1 and projects["project_id"].to_list() == [None]
    assert projects["tool_calls"].to_list() == [0]


# -- tool_sequences -----------------------------------------------------------------------------
def test_tool_sequences_count_runs_within_one_turn() -> None:
    steps = [_step(t, 1) for t in ["a", "b", "a", "b", "c", "a", "b"]]
    # turn 0 holds a b a b, turn 1 holds c a b: "b a" never crosses turns
    tables = to_tables(
        [_session("s-1", steps, [(0, 4), (4, 7)]), _session("s-2", [_step("a", 1), _step("b", 1)], [(0, 2)])]
    )
    got = sk.tool_sequences(tables)
    assert got.rows() == [("a → b", 4, 2, 3), ("b → a", 1, 1, 1), ("c → a", 1, 1, 1)]
    assert sk.tool_sequences(tables, n=3).rows() == [
        ("a → b → a", 1, 1, 1),
        ("b → a → b", 1, 1, 1),
        ("c → a → b", 1, 1, 1),
    ]
    assert sk.tool_sequences(tables, top=1).height == 1
    with pytest.raises(ValueError, match="n must be one of"):
        sk.tool_sequences(tables, n=5)
    with pytest.raises(ValueError, match="top must be a whole number"):
        sk.tool_sequences(tables, top=0)


def test_tool_sequences_on_the_fixture(exported: dict[str, Path]) -> None:
    pairs = Counter()
    for s in _raw(V2):
        steps = s.get("trajectory_steps", [])
        for r in s["agent_responses"]:
            span = r.get("trajectory_range")
            if span:
                names = [x["tool_name"] for x in steps[span["start"] : span["end"]]]
                pairs.update(f"{a} → {b}" for a, b in pairwise(names))
    got = sk.tool_sequences(exported[V2], top=1000)
    assert dict(zip(got["sequence"], got["count"], strict=True)) == pairs


# -- projects, threads, generations ------------------------------------------------------------
def test_project_usage_equals_the_oracle(exported: dict[str, Path]) -> None:
    got = sk.project_usage(exported[V2])
    sessions = {
        ("<none>" if r["project_id"] is None else r["project_id"]): r["sessions"] for r in got.iter_rows(named=True)
    }
    assert sessions == oracle(V2)["sessions_by_project"]
    assert got["tool_calls"].sum() == oracle(V2)["trajectory_steps"]
    assert got["project_id"].to_list()[-1] is None or got["sessions"].to_list() == sorted(got["sessions"], reverse=True)
    by_month = sk.project_usage(exported[V2], by="month")
    assert by_month.columns[:2] == ["month", "project_id"] and by_month["sessions"].sum() == 150


def test_threads_follow_parents_through_pruned_roots() -> None:
    def s(sid: str, parent: str | None) -> Session:
        x = _session(sid, [], [])
        if parent is not None:
            x.extra["parent_session_id"] = parent
        return x

    tables = to_tables(
        [s("a", None), s("b", "a"), s("c", "b"), s("d", "a"), s("e", "gone"), s("f", "gone"), s("g", None)]
    )
    got = sk.threads(tables)
    assert got.select("root_session_id", "root_pruned", "sessions", "depth").rows() == [
        ("a", False, 4, 2),
        ("gone", True, 2, 0),
    ]
    loop = to_tables([s("x", "y"), s("y", "x")])  # not something oxios writes, but no hang
    assert sk.threads(loop)["sessions"].sum() == 2


def test_threads_on_the_fixture(exported: dict[str, Path]) -> None:
    facts = oracle(V2)
    got = sk.threads(exported[V2])
    with_parent = facts["sessions_with_parent"]
    in_data_roots = got.filter(~pl.col("root_pruned")).height
    assert got["sessions"].sum() == with_parent + in_data_roots
    assert got["depth"].max() == max(int(d) for d in facts["thread_depth_histogram"])


def test_generations_count_each_part_of_the_shape(exported: dict[str, Path]) -> None:
    raw = _raw(V2)
    got = sk.generations(exported[V2])
    totals = got.drop("month").sum().row(0, named=True)
    assert totals["sessions"] == len(raw)
    assert totals["with_trajectories"] == sum(bool(s.get("trajectory_steps")) for s in raw)
    assert totals["with_projects"] == sum(s.get("project_id") is not None for s in raw)
    assert totals["with_threads"] == facts_parent(raw)
    assert totals["with_reasoning_segments"] == sum(
        any(r.get("segments") is not None for r in s.get("reasoning_records", [])) for s in raw
    )
    old = sk.generations(exported["oxios-v1"]).drop("month").sum().row(0, named=True)
    assert old["with_seed_ids"] > 0 and old["with_trajectories"] == 0


def facts_parent(raw: list[dict]) -> int:
    return sum(s.get("parent_session_id") is not None for s in raw)


# -- charts -------------------------------------------------------------------------------------
def test_tool_charts_draw_the_helpers_figures(exported: dict[str, Path]) -> None:
    import matplotlib.pyplot as plt

    data = exported[V2]
    usage = sk.tool_usage(data)
    ax = sk.plot_tool_usage(data)
    assert [p.get_width() for p in ax.patches] == usage["calls"].to_list()  # eight tools: all shown
    assert [t.get_text() for t in ax.get_yticklabels()] == usage["tool_name"].to_list()
    twin = next(a for a in ax.figure.axes if a is not ax)
    rates = [100 * r for r in usage["error_rate"].to_list()]
    assert list(twin.lines[0].get_xdata()) == pytest.approx(rates)
    durations = sk.plot_tool_durations(data, top=3)
    assert durations.get_xscale() == "log" and len(durations.get_yticklabels()) == 3
    assert durations.get_yticklabels()[0].get_text().startswith("read (n=")
    projects = sk.plot_project_usage(data, measure="tool_calls", top=3)
    assert [t.get_text() for t in projects.get_yticklabels()][-1].startswith("other (")
    weekly = sk.plot_tool_usage(data, by="week", measure="errors")
    assert weekly.get_title() == "Tool usage: errors per tool, by week"
    for axes in (ax, durations, projects, weekly):
        axes.figure.savefig(io.BytesIO(), format="png", dpi=50)
    empty = sk.plot_tool_durations(exported["oxios-v1"])
    assert "no data" in [t.get_text() for t in empty.texts]
    plt.close("all")


# -- the generator's modern shape ---------------------------------------------------------------
def test_the_modern_generator_writes_oxios_own_layout(tmp_path: Path) -> None:
    from sessionkit.generate import generate_modern_sessions

    fixture_keys = {tuple(s) for s in _raw(V2)}
    step_keys = {tuple(step) for s in _raw(V2) for step in s.get("trajectory_steps", [])}
    response_keys = {tuple(r) for s in _raw(V2) for r in s["agent_responses"]}
    sessions = list(generate_modern_sessions(120, seed=3))
    files = [json.loads(s.to_json()) for s in sessions]
    assert {tuple(f) for f in files} <= fixture_keys  # serde's layouts, optional keys left out
    assert {tuple(step) for f in files for step in f["trajectory_steps"]} <= step_keys
    assert {tuple(r) for f in files for r in f["agent_responses"]} <= response_keys
    tables = to_tables(sessions)
    assert tables.tool_calls.num_rows and tables.reasoning.num_rows
    assert tables.sessions["project_id"].null_count < len(sessions) and tables.sessions[
        "parent_session_id"
    ].null_count < len(sessions)
    assert set(tables.responses["phase_reached"].to_pylist()) <= {"execute", "interview"}
    assert tables.sessions["active_seed_id"].null_count == len(sessions)
    assert [json.loads(s.to_json()) for s in generate_modern_sessions(120, seed=3)] == files  # seeded


def test_the_bundled_modern_sample_is_what_the_generator_writes() -> None:
    from sessionkit.generate import generate_modern_sessions

    folder = Path(__file__).parent.parent / "data" / "oxios-modern-sample" / "sessions"
    written = {s.id: s.to_json().encode() for s in generate_modern_sessions(200, seed=7)}
    assert {p.stem: p.read_bytes() for p in folder.glob("*.json")} == written


def test_a_thread_of_sessions_in_order() -> None:
    def s(sid: str, parent: str | None, day: int) -> Session:
        x = _session(sid, [], [])
        x.created_at = sk.Timestamp.parse(f"2026-06-{day:02d}T00:00:00Z")
        if parent is not None:
            x.extra["parent_session_id"] = parent
        return x

    tables = to_tables(
        [s("c", "b", 3), s("a", None, 1), s("b", "a", 2), s("d", "a", 4), s("z", None, 1), s("e", "gone", 5)]
    )
    assert [x.id for x in tables.thread("c")] == ["a", "b", "c", "d"]
    assert [x.id for x in tables.thread("a")] == ["a", "b", "c", "d"]
    assert [x.id for x in tables.thread("z")] == ["z"] and [x.id for x in tables.thread("e")] == ["e"]
    with pytest.raises(KeyError, match="no session with id 'nope'"):
        tables.thread("nope")
