"""Compaction: small files into target-size files, as one new version, with the archive's
guarantees (same rows, clustering, atomic publish, SIGKILL safety, one writer), and the
compaction export does by itself as small files pile up."""

from __future__ import annotations

import itertools
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from conftest import FIXTURES, by_session_id, fixture_files
from legacy import legacy_export
from stores import Store, kill_points

import sessionkit as sk
from sessionkit.archive import compact, export, restore
from sessionkit.archive._compact import AUTO_COMPACT_FILES, plan
from sessionkit.exceptions import DatasetLockedError, SourceNotFoundError
from sessionkit.model import AgentResponse, Session, Timestamp, UserMessage, encode_session
from sessionkit.oxios import read_sessions
from sessionkit.storage import MANIFEST_NAME, Layout, open_dataset, read_parquet, writer_lock
from sessionkit.storage import DataFile as File
from sessionkit.tables import CLUSTERING, LATER_TABLES, to_tables
from sessionkit.tables import TABLE_NAMES as ALL_TABLES

#: The tables these tests' sessions (no tool calls, no reasoning) fill; an empty table gets no file.
TABLE_NAMES = tuple(name for name in ALL_TABLES if name not in LATER_TABLES)


def _same(a: sk.SessionTables, b: sk.SessionTables) -> None:
    a, b = by_session_id(a), by_session_id(b)
    for name in TABLE_NAMES:
        assert a[name].equals(b[name]), name


def _files(out: Path, name: str) -> list[Path]:
    return sorted((out / name).rglob("*.parquet"))


def _clustered(out: Path) -> None:
    """Every file of every session table holds its rows in clustering order."""
    sessions = read_parquet(out).sessions
    created = dict(
        zip(sessions["session_id"].to_pylist(), sessions["created_at"].cast("int64").to_pylist(), strict=True)
    )
    for name in TABLE_NAMES:
        how = CLUSTERING[name]
        for path in _files(out, name):
            rows = pq.read_table(path, columns=[how.key, *how.within]).to_pylist()
            keys = [(created[r[how.key]], r[how.key], *(r[c] for c in how.within)) for r in rows]
            assert keys == sorted(keys), path


def _session(sid: str, version: int, day: int, messages: int = 3) -> Session:
    created = 1_780_000_000_000_000_000 + day * 86_400_000_000_000 + sum(map(ord, sid)) * 1000
    s = Session(id=sid, user_id=f"u{day % 5}", created_at=Timestamp(created), updated_at=Timestamp(created + version))
    for i in range(messages):
        text = f"{sid} v{version} m{i} " + "lorem ipsum " * (day % 7)
        s.user_messages.append(UserMessage(text, Timestamp(created + i)))
        s.agent_responses.append(AgentResponse(content=f"answer {i}", timestamp=Timestamp(created + i + 9)))
    s.metadata = {"v": version, "day": day}
    return s


def _write(src: Path, session: Session) -> None:
    (src / f"{session.id}.json").write_bytes(encode_session(session))


def _runs(tmp_path: Path, runs: int, per_run: int = 30, *, out: Any = None) -> tuple[Path, Any]:
    """A source and a dataset (``out``, default ``tmp_path/out``) built by ``runs`` exports of
    ``per_run`` new sessions each."""
    src, out = tmp_path / "sessions", tmp_path / "out" if out is None else out
    src.mkdir()
    for run in range(runs):
        for i in range(per_run):
            _write(src, _session(f"r{run:02d}-{i:03d}", 1, day=run * 3 + i % 3))
        export(src, out, jobs=1)
    return src, out


def test_compaction_makes_target_size_files_with_the_same_rows(tmp_path: Path) -> None:
    src, out = _runs(tmp_path, 8, per_run=60)
    before = read_parquet(out)
    counts = {name: len(_files(out, name)) for name in TABLE_NAMES}
    assert all(count == 8 for count in counts.values())  # one worker: one file per table and run
    target = 16 * 1024
    summary = compact(out, target_size=target, row_group_rows=64)
    _same(read_parquet(out), before)
    _clustered(out)
    for name in TABLE_NAMES:
        files = _files(out, name)
        size = sum(p.stat().st_size for p in files)
        assert len(files) <= math.ceil(size / target) + 1, (name, len(files), size)
        assert summary.files_after[name] == len(files) and summary.bytes_after[name] == size
    assert summary.merged > 0 and "compacted" in summary.line()
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["layout"] == {"partition_by": "none", "target_size": target}
    again = compact(out)  # the recorded target: nothing left to do
    assert again.merged == 0 and "nothing to compact" in again.line()
    assert export(src, out, jobs=1).files_written == 0  # the file index still knows every file


def test_compaction_into_one_file_per_table(tmp_path: Path) -> None:
    _, out = _runs(tmp_path, 5)
    before = read_parquet(out)
    compact(out)
    assert all(len(_files(out, name)) == 1 for name in TABLE_NAMES)
    _same(read_parquet(out), before)
    _clustered(out)


def test_a_merge_cut_into_time_slices_writes_the_same_tables_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DuckDB could not spill one sort of a year's responses (issue 11's cron bench): a large
    # merge is sorted in slices of owner time; here every few bytes start a new slice
    import sessionkit.archive._compact as compact_module

    _, out = _runs(tmp_path, 5)
    before = read_parquet(out)
    sliced: list[int] = []
    real = compact_module._slices

    def spy(times, nbytes):  # type: ignore[no-untyped-def]
        bounds = real(times, nbytes)
        sliced.append(len(bounds))
        return bounds

    monkeypatch.setattr(compact_module, "_SLICE_BYTES", 2048)
    monkeypatch.setattr(compact_module, "_slices", spy)
    compact(out)
    assert max(sliced) > 5
    assert all(len(_files(out, name)) == 1 for name in TABLE_NAMES)
    _same(read_parquet(out), before)
    _clustered(out)


def test_time_slices_cover_every_owner_once_and_keep_equal_times_together() -> None:
    import pyarrow as pa

    from sessionkit.archive._compact import _slices

    times = pa.chunked_array([pa.array([5, 1, 3, 3, 3, 3, 9, 7, 2, 8], pa.timestamp("ns", "UTC"))])
    assert _slices(times, 10) == [(None, None)]  # small: one sort
    bounds = _slices(times, 10**12)  # as many slices as owners, at most
    assert bounds[0][0] is None and bounds[-1][1] is None
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))  # contiguous, ascending
    for t in (1, 2, 3, 5, 7, 8, 9):  # each time in exactly one slice
        inside = [(lo, hi) for lo, hi in bounds if (lo is None or t >= lo) and (hi is None or t < hi)]
        assert len(inside) == 1
    assert len(bounds) == 7  # the four owners created at 3 are never cut apart


def test_an_old_layout_dataset_is_read_then_compacted_with_equal_tables(tmp_path: Path) -> None:
    src = tmp_path / "sessions"
    shutil.copytree(FIXTURES / "oxios-edge" / "sessions", src)
    for path in fixture_files("oxios-v1"):
        shutil.copy(path, src / path.name)
    out = tmp_path / "old"
    legacy_export(src, out, files_per_part=64)
    before = read_parquet(out)
    _same(before, to_tables(read_sessions(src)))
    assert len(_files(out, "sessions")) > 200
    summary = compact(out)
    assert summary.files_after == dict.fromkeys(ALL_TABLES, 1)  # the tables it lacked come with no rows
    _same(read_parquet(out), before)
    _clustered(out)
    assert not any(p.parent.name.startswith("created_date=") for name in TABLE_NAMES for p in _files(out, name))
    assert json.loads((out / MANIFEST_NAME).read_text())["layout"]["partition_by"] == "none"
    assert restore(out, tmp_path / "back") == len(before)
    for path in src.iterdir():
        assert (tmp_path / "back" / "sessions" / path.name).read_bytes() == path.read_bytes()
    again = export(src, out, jobs=1)  # the old file index carries over
    assert (again.exported, again.files_written) == (0, 0)
    assert sk.archive.runs(out).num_rows == 2


@pytest.mark.parametrize("partitions", [("day", "month", "none"), ("month", "day")])
def test_compaction_changes_the_partitioning(tmp_path: Path, partitions: tuple[str, ...]) -> None:
    src, out = _runs(tmp_path, 4)
    before = read_parquet(out)
    for partition_by in partitions:
        compact(out, partition_by=partition_by)
        _same(read_parquet(out), before)
        _clustered(out)
        folders = {p.parent.name.split("=")[0] for p in _files(out, "messages")}
        expected = {"day": {"created_date"}, "month": {"created_month"}, "none": {"messages"}}[partition_by]
        assert folders == expected, (partition_by, folders)
        _write(src, _session(f"late-{partition_by}", 1, day=40))
        summary = export(src, out, jobs=1)  # later runs keep the new partitioning
        assert summary.exported == 1
        before = read_parquet(out)
        assert {p.parent.name.split("=")[0] for p in _files(out, "messages")} == expected


def test_upserts_leave_no_stale_rows_in_compacted_files(tmp_path: Path) -> None:
    src, out = _runs(tmp_path, 4)
    compact(out)
    for run in range(4):  # a newer version of one session of every run, with fewer messages
        _write(src, _session(f"r{run:02d}-007", 2, day=run * 3 + 1, messages=1))
    summary = export(src, out, jobs=1)
    assert summary.exported == 4 and summary.files_rewritten == len(TABLE_NAMES)  # the four compacted files
    fresh = tmp_path / "fresh"
    export(src, fresh, jobs=1)
    _same(read_parquet(out), read_parquet(fresh))
    compact(out)
    _same(read_parquet(out), read_parquet(fresh))


def test_export_compacts_when_small_files_pile_up(tmp_path: Path) -> None:
    src, out = tmp_path / "sessions", tmp_path / "out"
    src.mkdir()
    compacted, lines = [], []
    for run in range(AUTO_COMPACT_FILES + 6):
        for i in range(5):
            _write(src, _session(f"r{run:02d}-{i}", 1, day=run))
        if run % 4 == 3:  # now and then, a session of an earlier run continues
            _write(src, _session(f"r{run - 2:02d}-1", 2, day=run - 2, messages=4))
        summary = export(src, out, jobs=1)
        compacted.append(summary.compacted)
        lines.append(summary.line())
        for name in ("sessions", "messages"):
            assert len(_files(out, name)) <= AUTO_COMPACT_FILES + 1
    assert compacted[:AUTO_COMPACT_FILES] == [0] * AUTO_COMPACT_FILES
    assert sum(compacted) > 0 and any("small files into" in line for line in lines)
    _clustered(out)
    fresh = tmp_path / "fresh"
    export(src, fresh, jobs=1)
    _same(read_parquet(out), read_parquet(fresh))


def test_the_auto_plan_merges_a_bounded_share_of_the_smallest_files() -> None:
    layout = Layout(target_size=1600)
    daily = [File(f"messages/d{i:02d}.parquet", 10 + i, 1) for i in range(AUTO_COMPACT_FILES)]
    assert plan({"messages": daily}, layout, auto=True) == {}  # not more than the threshold yet
    more = [*daily, File("messages/big.parquet", 390, 1), File("messages/huge.parquet", 900, 1)]
    (group,) = plan({"messages": more}, layout, auto=True)["messages"]
    assert [f.key for f in group] == [f.key for f in daily[:7]]  # the smallest, up to a sixteenth of the target
    assert plan({"messages": more}, layout)["messages"] == [more]  # explicit: everything below the target


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sessionkit", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )


def _counts(dataset: Path | str) -> dict[str, int]:
    """The files of each session table in the dataset's current version."""
    snapshot = open_dataset(dataset)
    return {name: len(snapshot.files[name]) for name in TABLE_NAMES}


@pytest.mark.parametrize(("store", "point"), kill_points(compaction=True), indirect=["store"])
def test_a_kill_at_any_point_of_a_compaction_leaves_a_complete_dataset(
    store: Store, point: str, tmp_path: Path
) -> None:
    src, out = _runs(tmp_path, 3, out=store.uri)
    before = read_parquet(out)
    files = _counts(out)
    result = _cli("compact", out, env={"SESSIONKIT_FAILPOINT": point})
    assert result.returncode == -signal.SIGKILL, result.stderr
    _same(read_parquet(out), before)  # the old version or the new one, complete either way
    assert _counts(out) in (files, dict.fromkeys(TABLE_NAMES, 1))
    compact(out, break_lock=True)  # recovers with no manual step (on S3, past the killed one's lease)
    _same(read_parquet(out), before)
    assert _counts(out) == dict.fromkeys(TABLE_NAMES, 1)
    store.assert_tidy()
    assert export(src, out, jobs=1).files_written == 0


def test_a_kill_while_export_compacts_leaves_a_complete_dataset(tmp_path: Path) -> None:
    src, out = _runs(tmp_path, AUTO_COMPACT_FILES, per_run=3)
    before = read_parquet(out)
    _write(src, _session("next", 1, day=90))
    result = _cli("export", str(src), str(out), "-j", "1", env={"SESSIONKIT_FAILPOINT": "auto-compacted"})
    assert result.returncode == -signal.SIGKILL, result.stderr
    _same(read_parquet(out), before)
    summary = export(src, out, jobs=1)
    assert summary.exported == 1 and summary.compacted > 0
    fresh = tmp_path / "fresh"
    export(src, fresh, jobs=1)
    _same(read_parquet(out), read_parquet(fresh))


def test_kills_at_random_moments_of_compactions(tmp_path: Path) -> None:
    src = tmp_path / "sessions"
    src.mkdir()
    out = tmp_path / "out"
    rng = random.Random(11)
    for part in range(6):
        for path in fixture_files()[part * 75 : (part + 1) * 75]:
            shutil.copy(path, src / path.name)
        export(src, out, jobs=1)
    expected = read_parquet(out)
    for round_ in range(6):
        partition = ["day", "month", "none"][round_ % 3]
        proc = subprocess.Popen(
            [sys.executable, "-m", "sessionkit", "compact", str(out), "--partition-by", partition, "-q"]
        )
        time.sleep(rng.uniform(0.3, 2.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        _same(read_parquet(out), expected)  # complete: every session, each in one version
    compact(out, partition_by="none")
    _same(read_parquet(out), expected)
    _clustered(out)


def test_one_writer_at_a_time(tmp_path: Path) -> None:
    _, out = _runs(tmp_path, 2)
    with writer_lock(out), pytest.raises(DatasetLockedError, match="is writing this dataset"):
        compact(out)
    with pytest.raises(SourceNotFoundError, match="no sessionkit dataset to compact"):
        compact(tmp_path / "nothing")


def test_the_cli_compacts(tmp_path: Path) -> None:
    _, out = _runs(tmp_path, 3)
    before = read_parquet(out)
    files = sum(len(_files(out, name)) for name in ALL_TABLES)
    result = _cli("compact", str(out), "--target-size", "1MiB", "--partition-by", "month")
    assert result.returncode == 0, result.stderr
    assert f"compacted {files} files into" in result.stdout and "partitioned by month" in result.stdout
    _same(read_parquet(out), before)
    result = _cli("compact", str(out), "--target-size", "lots")
    assert result.returncode == 2 and "is not a size" in result.stderr
