"""The archive under change and under fire: upserts, kills, full disks, two writers, moving sources."""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa
import pytest
from conftest import BAD, fixture_files
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionkit.archive import errors, export, runs
from sessionkit.exceptions import DatasetLockedError
from sessionkit.model import AgentResponse, Session, Timestamp, UserMessage, encode_session
from sessionkit.query import connect as sk_connect
from sessionkit.storage import STATE_DIR, read_parquet, writer_lock
from sessionkit.tables import TABLE_NAMES


def _session(sid: str, version: int, *, messages: int = 2) -> Session:
    """A small session whose updated_at grows with ``version``, as oxios' does."""
    base = 1_780_000_000_000_000_000
    s = Session(
        id=sid,
        user_id=f"user-{len(sid) % 3}",
        created_at=Timestamp(base),
        updated_at=Timestamp(base + version * 1_000_000_007),
    )
    for i in range(messages + version % 3):
        s.user_messages.append(UserMessage(f"{sid} v{version} m{i}", Timestamp(base + i)))
        s.agent_responses.append(
            AgentResponse(content=f"r{i}", seed_id=f"seed-{version % 2}", timestamp=Timestamp(base + i + 5))
        )
    s.metadata = {"version": version}
    return s


def _write(src: Path, session: Session, name: str | None = None) -> None:
    target = src / (name or f"{session.id}.json")
    tmp = target.with_suffix(".json.tmp")
    tmp.write_bytes(encode_session(session))
    os.replace(tmp, target)  # as oxios-like writers do: a new version renamed into place


def _contents(dataset: Path) -> dict[str, bytes]:
    return {s.id: encode_session(s) for s in read_parquet(dataset).to_sessions()}


def _identity(summary) -> None:
    assert (
        summary.seen == summary.exported + summary.unchanged + summary.quarantined + summary.vanished + summary.ignored
    )


def test_a_second_run_reads_nothing_and_changes_nothing(tmp_path: Path) -> None:
    src = tmp_path / "sessions"
    src.mkdir()
    for path in fixture_files("oxios-v2"):
        shutil.copy(path, src / path.name)
    first = export(src, tmp_path / "out", jobs=1, files_per_part=40)
    before = _contents(tmp_path / "out")
    second = export(src, tmp_path / "out", jobs=1, files_per_part=40)
    assert (second.exported, second.unchanged, second.bytes_read) == (0, 150, 0)
    assert second.files_kept == first.files_written and (second.files_rewritten, second.files_written) == (0, 0)
    assert _contents(tmp_path / "out") == before
    assert [r["exported"] for r in runs(tmp_path / "out").to_pylist()] == [150, 0]


def test_upsert_adds_replaces_and_keeps_pruned(tmp_path: Path) -> None:
    src = tmp_path / "sessions"
    src.mkdir()
    for i in range(10):
        _write(src, _session(f"s{i}", 1))
    export(src, tmp_path / "out", jobs=1, files_per_part=3)
    _write(src, _session("s3", 2))  # changed
    (src / "s5.json").unlink()  # pruned by oxios
    _write(src, _session("s10", 1))  # new
    _write(src, _session("s7", 0))  # rewritten with an older version: the dataset keeps the newer
    (src / "tmp-leftover.json.tmp").write_text("{")
    summary = export(src, tmp_path / "out", jobs=1, files_per_part=3)
    _identity(summary)
    assert (summary.exported, summary.unchanged, summary.ignored, summary.quarantined) == (2, 8, 1, 0)
    got = _contents(tmp_path / "out")
    assert set(got) == {f"s{i}" for i in range(11)}
    assert got["s3"] == encode_session(_session("s3", 2))
    assert got["s5"] == encode_session(_session("s5", 1))
    assert got["s7"] == encode_session(_session("s7", 1))


def test_a_tie_takes_the_content_read_now(tmp_path: Path) -> None:
    src = tmp_path / "sessions"
    src.mkdir()
    _write(src, _session("s", 1))
    export(src, tmp_path / "out", jobs=1)
    same_time = _session("s", 1)
    same_time.metadata = {"edited": True}
    _write(src, same_time)
    assert export(src, tmp_path / "out", jobs=1).exported == 1
    assert _contents(tmp_path / "out")["s"] == encode_session(same_time)


def test_a_fixed_file_is_picked_up_and_its_error_cleared(tmp_path: Path) -> None:
    src = tmp_path / "sessions"
    src.mkdir()
    shutil.copy(BAD / "truncated.json", src / "s0.json")
    first = export(src, tmp_path / "out", jobs=1)
    assert first.quarantined == 1 and errors(tmp_path / "out").num_rows == 1
    again = export(src, tmp_path / "out", jobs=1)  # still bad, not read again, still reported
    assert (again.quarantined, again.bytes_read) == (1, 0)
    _write(src, _session("s0", 1))
    fixed = export(src, tmp_path / "out", jobs=1)
    assert (fixed.exported, fixed.quarantined) == (1, 0)
    assert errors(tmp_path / "out").num_rows == 0
    assert list(_contents(tmp_path / "out")) == ["s0"]


def test_a_duplicate_added_later_is_judged_like_in_a_full_export(tmp_path: Path) -> None:
    src = tmp_path / "sessions"
    src.mkdir()
    _write(src, _session("s", 1))
    export(src, tmp_path / "out", jobs=1)
    _write(src, _session("s", 2), name="copy.json")  # newer, misnamed: wins; s.json is set aside
    summary = export(src, tmp_path / "out", jobs=1)
    _identity(summary)
    assert (summary.exported, summary.quarantined, summary.unchanged) == (1, 1, 0)
    assert _contents(tmp_path / "out")["s"] == encode_session(_session("s", 2))
    full = export(src, tmp_path / "full", jobs=1)
    assert (full.exported, full.quarantined) == (1, 1)
    assert _contents(tmp_path / "full") == _contents(tmp_path / "out")
    assert [Path(r["file"]).name for r in errors(tmp_path / "full").to_pylist()] == ["s.json"]


operations = st.lists(
    st.tuples(st.sampled_from(["add", "modify", "prune", "export"]), st.integers(min_value=0, max_value=7)),
    min_size=1,
    max_size=14,
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(operations)
def test_any_interleaving_equals_a_full_export_of_the_latest_versions(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[str, int]]
) -> None:
    tmp = tmp_path_factory.mktemp("prop")
    src = tmp / "sessions"
    src.mkdir()
    version: dict[str, int] = {}
    latest: dict[str, Session] = {}  # the newest version of each session written
    seen: dict[str, Session] = {}  # the newest version of each session an export saw
    for op, k in [*ops, ("export", 0)]:
        sid = f"s{k}"
        present = (src / f"{sid}.json").exists()
        if (op == "add" and not present) or (op == "modify" and present):
            version[sid] = version.get(sid, 0) + 1
            latest[sid] = _session(sid, version[sid])
            _write(src, latest[sid])
        elif op == "prune" and (src / f"{sid}.json").exists():
            (src / f"{sid}.json").unlink()
        elif op == "export":
            seen.update({p.stem: latest[p.stem] for p in src.glob("*.json")})
            summary = export(src, tmp / "out", jobs=1, files_per_part=2)
            _identity(summary)
            assert summary.quarantined == 0
    union = tmp / "union" / "sessions"
    union.mkdir(parents=True)
    for session in seen.values():
        _write(union, session)
    export(union, tmp / "fresh", jobs=1)
    assert _contents(tmp / "out") == _contents(tmp / "fresh")
    out, fresh = read_parquet(tmp / "out"), read_parquet(tmp / "fresh")
    for name in TABLE_NAMES:
        keys = [
            ("session_id", "ascending"),
            (
                "seq" if name in ("messages", "responses") else "ord" if name == "metadata" else "session_id",
                "ascending",
            ),
        ]
        assert out[name].sort_by(keys).equals(fresh[name].sort_by(keys)), name


def test_the_second_writer_fails_at_once(tmp_path: Path) -> None:
    src = tmp_path / "sessions"
    src.mkdir()
    _write(src, _session("s", 1))
    export(src, tmp_path / "out", jobs=1)
    with writer_lock(tmp_path / "out"):
        started = time.perf_counter()
        with pytest.raises(DatasetLockedError, match="is writing this dataset"):
            export(src, tmp_path / "out", jobs=1)
        assert time.perf_counter() - started < 5
    assert export(src, tmp_path / "out", jobs=1).unchanged == 1


def _cli(*args: str, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sessionkit", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
        **kwargs,
    )


def test_two_exports_at_once_never_interleave(tmp_path: Path) -> None:
    src = tmp_path / "sessions"
    src.mkdir()
    for i in range(400):
        _write(src, _session(f"s{i:03d}", 1))
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "sessionkit", "export", str(src), str(tmp_path / "out"), "-j", "1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [(*p.communicate(timeout=120), p.returncode) for p in procs]
    codes = sorted(r[2] for r in results)
    assert codes[0] == 0
    if codes[1] != 0:
        assert any("is writing this dataset" in r[1] for r in results)
    assert len(_contents(tmp_path / "out")) == 400


KILL_POINTS = [
    "staging",
    "part-written",
    "merged",
    "before-publish",
    "before-rename",
    "after-rename",
    "before-switch",
    "after-switch",
    "after-cleanup",
]


@pytest.mark.parametrize("point", KILL_POINTS)
def test_a_kill_at_any_point_leaves_a_complete_dataset(point: str, tmp_path: Path) -> None:
    src = tmp_path / "sessions"
    src.mkdir()
    for i in range(30):
        _write(src, _session(f"s{i:02d}", 1))
    export(src, tmp_path / "out", jobs=1, files_per_part=7)
    before = _contents(tmp_path / "out")
    for i in range(0, 30, 3):
        _write(src, _session(f"s{i:02d}", 2))
    _write(src, _session("new", 1))
    result = _cli("export", str(src), str(tmp_path / "out"), "-j", "1", env={"SESSIONKIT_FAILPOINT": point})
    assert result.returncode == -signal.SIGKILL, result.stderr
    after_kill = _contents(tmp_path / "out")  # readable, and exactly one of the two versions
    assert after_kill == before or len(after_kill) == 31
    final = export(src, tmp_path / "out", jobs=1, files_per_part=7)  # recovers with no manual step
    _identity(final)
    got = _contents(tmp_path / "out")
    assert len(got) == 31 and got["s03"] == encode_session(_session("s03", 2))
    state = tmp_path / "out" / STATE_DIR
    assert not [p for p in state.iterdir() if p.name.startswith(("staging-", "current.tmp-"))]
    assert len(list((state / "versions").iterdir())) <= 2


def test_kills_at_random_moments(tmp_path: Path) -> None:
    src = tmp_path / "sessions"
    src.mkdir()
    for path in fixture_files("oxios-v1"):
        shutil.copy(path, src / path.name)
    export(src, tmp_path / "out", jobs=1, files_per_part=50)
    before = _contents(tmp_path / "out")
    rng = random.Random(7)
    for _ in range(6):
        for path in rng.sample(sorted(src.iterdir()), 20):
            data = json.loads(path.read_text())
            data["metadata"]["touched"] = rng.random()
            path.write_text(json.dumps(data, indent=2, ensure_ascii=False))
        proc = subprocess.Popen(
            [sys.executable, "-m", "sessionkit", "export", str(src), str(tmp_path / "out"), "-j", "1", "-q"]
        )
        time.sleep(rng.uniform(0.05, 1.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        got = _contents(tmp_path / "out")
        assert set(got) == set(before)  # complete: every session, each in one version
    final = export(src, tmp_path / "out", jobs=1, files_per_part=50)
    _identity(final)
    assert len(_contents(tmp_path / "out")) == 300


def test_a_full_disk_fails_cleanly_and_keeps_the_dataset(tmp_path: Path) -> None:
    src = tmp_path / "sessions"
    src.mkdir()
    for path in fixture_files("oxios-v1")[:100]:
        shutil.copy(path, src / path.name)
    export(src, tmp_path / "out", jobs=1)
    before = _contents(tmp_path / "out")
    for path in fixture_files("oxios-v1")[100:]:
        shutil.copy(path, src / path.name)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (8 * 1024, 8 * 1024))

    result = subprocess.run(
        [sys.executable, "-m", "sessionkit", "export", str(src), str(tmp_path / "out"), "-j", "1"],
        capture_output=True,
        text=True,
        preexec_fn=limit,
        check=False,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "no room" in result.stderr and "previous dataset is unchanged" in result.stderr
    assert _contents(tmp_path / "out") == before
    assert export(src, tmp_path / "out", jobs=1).exported == 200


def test_writers_and_a_pruner_during_the_run(tmp_path: Path) -> None:
    src = tmp_path / "sessions"
    src.mkdir()
    written: dict[str, list[bytes]] = {}
    for i in range(300):
        session = _session(f"s{i:03d}", 1)
        written[session.id] = [encode_session(session)]
        _write(src, session)
    export(src, tmp_path / "out", jobs=1, files_per_part=16)
    stop = threading.Event()

    def churn() -> None:
        rng = random.Random(3)
        version = 2
        while not stop.is_set():
            sid = f"s{rng.randrange(300):03d}"
            if rng.random() < 0.3:
                (src / f"{sid}.json").unlink(missing_ok=True)  # oxios pruning
            else:
                session = _session(sid, version)
                written[sid].append(encode_session(session))
                _write(src, session)  # oxios writing a new version: temp file, then rename
            version += 1

    worker = threading.Thread(target=churn)
    worker.start()
    try:
        for _ in range(3):
            summary = export(src, tmp_path / "out", jobs=1, files_per_part=16)
            _identity(summary)
            assert summary.quarantined == 0
    finally:
        stop.set()
        worker.join()
    export(src, tmp_path / "out", jobs=1, files_per_part=16)
    got = _contents(tmp_path / "out")
    assert set(got) == set(written)  # pruned sessions are kept
    for sid, versions in written.items():
        if (src / f"{sid}.json").exists():
            assert got[sid] == versions[-1]  # present: the newest version
        else:
            assert got[sid] in versions  # pruned: a version that really was written


def test_readers_never_see_a_half_written_dataset(tmp_path: Path) -> None:
    import duckdb

    src = tmp_path / "sessions"
    src.mkdir()
    for i in range(200):
        _write(src, _session(f"s{i:03d}", 1))
    export(src, tmp_path / "out", jobs=1, files_per_part=20)
    stop = threading.Event()
    seen: list[int] = []
    problems: list[str] = []

    def read() -> None:
        glob = str(tmp_path / "out" / "sessions" / "**" / "*.parquet")
        while not stop.is_set():
            # sessionkit's readers take one version: always complete, never an error
            n = (
                sk_connect(tmp_path / "out")
                .sql("SELECT count(*), count(DISTINCT session_id) FROM sessions")
                .fetchall()[0]
            )
            seen.append(n[0])
            if n[0] != n[1]:
                problems.append(f"doubled rows: {n}")
            # a plain glob reader: may have to retry when a switch lands between its listing
            # and its reads (a file it listed is gone), but never counts a mix of versions
            try:
                n = (
                    duckdb.connect()
                    .sql(f"SELECT count(*), count(DISTINCT session_id) FROM read_parquet('{glob}')")
                    .fetchall()[0]
                )
                seen.append(n[0])
                if n[0] != n[1]:
                    problems.append(f"doubled rows: {n}")
            except duckdb.IOException as err:
                if "No such file" not in str(err):
                    problems.append(f"error: {err}")

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for round_ in range(4):
            for i in range(round_ * 10, round_ * 10 + 10):
                _write(src, _session(f"t{i:03d}", 1))
            for i in range(0, 200, 7):
                _write(src, _session(f"s{i:03d}", round_ + 2))
            export(src, tmp_path / "out", jobs=1, files_per_part=20)
    finally:
        stop.set()
        reader.join()
    assert not problems
    assert seen and set(seen) <= {200, 210, 220, 230, 240}


def test_a_publish_while_a_reader_resolves_the_version_does_not_mix_versions(tmp_path: Path, monkeypatch) -> None:
    """A reader looks up the current version once: an export publishing right after that lookup
    changes neither the files it reads nor the version it says it read."""
    import importlib

    import sessionkit._versions
    import sessionkit.storage

    src = tmp_path / "sessions"
    src.mkdir()
    for i in range(3):
        _write(src, _session(f"s{i}", 1))
    out = tmp_path / "out"
    export(src, out, jobs=1)
    for i in range(3, 6):
        _write(src, _session(f"s{i}", 1))
    real = sessionkit._versions.current_version
    published: list[int] = []

    def lookup(path: Path) -> Path | None:
        found = real(path)
        if not published:  # the first lookup of a reader: another process publishes now
            published.append(-1)
            published[0] = export(src, out, jobs=1).exported
        return found

    for name in ("sessionkit.storage", "sessionkit._store"):  # wherever readers look the version up
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(module, "current_version"):
            monkeypatch.setattr(module, "current_version", lookup)
    con = sk_connect(out)
    assert published == [3]
    assert con.sql("SELECT count(*), count(DISTINCT session_id) FROM sessions").fetchall() == [(3, 3)]
    published.clear()
    snapshot = sessionkit.storage.open_dataset(out)
    assert published == [0] and snapshot.version == 2 and snapshot.rows("sessions") == 6
    assert snapshot.folder is not None and int(snapshot.folder.name) == snapshot.version


def test_ignored_entries_are_counted(tmp_path: Path) -> None:
    src = tmp_path / "sessions"
    src.mkdir()
    _write(src, _session("s", 1))
    (src / "half.json.tmp").write_text("{")
    (src / "folder.json").mkdir()
    os.mkfifo(src / "pipe.json")
    outside = tmp_path / "outside.json"
    outside.write_bytes(encode_session(_session("o", 1)))
    os.symlink(outside, src / "link-out.json")
    os.symlink(src / "s.json", src / "link-in.json")
    summary = export(src, tmp_path / "out", jobs=1)
    _identity(summary)
    assert summary.ignored == 4 and summary.seen == 6
    assert (summary.exported, summary.quarantined) == (1, 1)  # the inside link repeats s's id


def test_the_runs_table_records_each_run(tmp_path: Path) -> None:
    src = tmp_path / "sessions"
    src.mkdir()
    _write(src, _session("s", 1))
    export(src, tmp_path / "out", jobs=1)
    shutil.copy(BAD / "empty.json", src / "e.json")
    export(src, tmp_path / "out", jobs=1)
    rows = runs(tmp_path / "out").to_pylist()
    assert [(r["exported"], r["quarantined"], r["unchanged"], r["sessions"]) for r in rows] == [
        (1, 0, 0, 1),
        (0, 1, 1, 1),
    ]
    assert all(r["source"] == str(src.resolve()) and r["sessionkit_version"] for r in rows)
    assert rows[0]["finished_at"] >= rows[0]["started_at"]
    assert isinstance(runs(tmp_path / "out"), pa.Table)
