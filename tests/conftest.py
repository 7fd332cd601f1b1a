"""Shared test fixtures: the oxios fixture folders copied from ../shared, and small helpers."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from stores import STORES, Store, moto_server

from sessionkit.tables import SessionTables, cluster_order, take_sessions

HERE = Path(__file__).parent
FIXTURES = HERE / "fixtures"
FIXTURE_NAMES = ("oxios-v1", "oxios-v2", "oxios-edge")
BAD = HERE / "bad"
ROOT = HERE.parent


def fixture_files(name: str | None = None) -> list[Path]:
    """Every session file of one fixture folder, or of all of them."""
    names = [name] if name else FIXTURE_NAMES
    return sorted(p for n in names for p in (FIXTURES / n / "sessions").glob("*.json"))


def oracle(name: str) -> dict:
    """The independently computed counts of a fixture folder."""
    return json.loads((FIXTURES / name / "oracle.json").read_text())


def first_message(name: str, *, exchange: bool = False) -> tuple[str, str]:
    """(session id, timestamp text with all nine fraction digits) of the first message of the
    session with the smallest id that has messages (with ``exchange``: that also has a response),
    read from the raw files."""
    sessions = [json.loads(p.read_bytes()) for p in fixture_files(name)]
    wanted = ("user_messages", "agent_responses") if exchange else ("user_messages",)
    first = min((s for s in sessions if all(s.get(k) for k in wanted)), key=lambda s: s["id"].encode())
    head, _, fraction = first["user_messages"][0]["timestamp"].removesuffix("Z").partition(".")
    return first["id"], f"{head}.{fraction:0<9}Z"


@pytest.fixture(params=FIXTURE_NAMES)
def fixture_name(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each fixture folder exported once to a dataset, shared by the tests that only read it."""
    from sessionkit.archive import export

    out = {}
    for name in FIXTURE_NAMES:
        target = tmp_path_factory.mktemp("datasets") / name
        export(FIXTURES / name, target, jobs=1)
        out[name] = target
    return out


def in_cluster_order(tables: SessionTables) -> SessionTables:
    """``tables`` in the order a dataset's file holds them: by the sessions' creation time,
    then session id, then position."""
    order = cluster_order(dict(tables.items()))
    return SessionTables(**{name: table.take(order[name][0]) for name, table in tables.items()})


def by_session_id(tables: SessionTables) -> SessionTables:
    """``tables`` sorted by session id (stable), to compare datasets whatever their file order."""
    import numpy as np

    ids = np.array(tables.sessions["session_id"].to_pylist(), dtype=object)
    return take_sessions(tables, np.argsort(ids, kind="stable").tolist())


def tool_errors_from_the_runs(name: str | Path) -> dict[str, tuple[int, int]]:
    """Per tool of fixture ``name``: (errors, calls with a flag), computed here from the raw JSON as
    ``tool_usage`` documents it: a run is linked to the one exchange whose message text is its
    name, in a session of its project, that it was created within; a turn with exactly one run
    whose calls are the turn's (same tools, same order) takes the run's ``is_error`` flags."""
    from sessionkit._timestamp import Timestamp

    def ns(text: str) -> int:
        return Timestamp.parse(text).ns

    folder = name if isinstance(name, Path) else FIXTURES / name  # a fixture's name, or a state folder
    sessions = [json.loads(p.read_bytes()) for p in sorted((folder / "sessions").glob("*.json"))]
    runs = [json.loads(p.read_bytes()) for p in sorted((folder / "agents").glob("*.json"))]
    turns: dict[tuple[str, int], list[dict]] = {}
    for run in runs:
        hits = [
            (s["id"], seq)
            for s in sessions
            if s.get("project_id") == run.get("project_id")
            for seq, (m, r) in enumerate(zip(s.get("user_messages", []), s.get("agent_responses", []), strict=False))
            if m["content"] == run["name"] and ns(m["timestamp"]) <= ns(run["created_at"]) <= ns(r["timestamp"])
        ]
        if len(hits) == 1:
            turns.setdefault(hits[0], []).append(run)
    out: dict[str, list[int]] = {}
    for s in sessions:
        steps = s.get("trajectory_steps", [])
        flags: dict[int, bool] = {}
        for seq, response in enumerate(s["agent_responses"]):
            span, linked = response.get("trajectory_range"), turns.get((s["id"], seq), [])
            if span is None or len(linked) != 1:
                continue
            calls, turn = linked[0].get("tool_calls", []), range(span["start"], span["end"])
            if [steps[i]["tool_name"] for i in turn] == [c["tool"] for c in calls]:
                flags.update({i: c["is_error"] for i, c in zip(turn, calls, strict=True)})
        for i, step in enumerate(steps):
            flag = flags.get(i, step.get("is_error"))
            counts = out.setdefault(step["tool_name"], [0, 0])
            counts[0] += flag is True
            counts[1] += flag is not None
    return {tool: (e, f) for tool, (e, f) in out.items()}


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """A moto S3 server for the tests of one module (see ``stores.moto_server``)."""
    with moto_server() as url:
        yield url


_buckets = itertools.count()


@pytest.fixture
def bucket(server: str) -> str:
    """A new, empty bucket for one test."""
    from sessionkit import _s3

    name = f"team-{next(_buckets)}"
    _s3.client().create_bucket(Bucket=name)
    return name


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """Where a test's dataset goes, once per store: a folder on disk, then ``s3://`` on moto."""
    if request.param == "disk":
        return Store("disk", str(tmp_path / "out"))
    return Store("s3", f"s3://{request.getfixturevalue('bucket')}/out")
