"""The dataset's layout: few large files per table, partitions, runs that cost what they change,
and datasets of the 0.1 layout (one folder per day) read and updated as they are."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import FIXTURES, by_session_id, fixture_files
from legacy import legacy_export

import sessionkit as sk
from sessionkit.archive import export, restore
from sessionkit.exceptions import DatasetError
from sessionkit.model import Session, Timestamp, UserMessage, encode_session
from sessionkit.oxios import read_sessions
from sessionkit.storage import MANIFEST_NAME, STATE_DIR, read_parquet
from sessionkit.tables import TABLE_NAMES, to_tables


def _same(a: sk.SessionTables, b: sk.SessionTables) -> None:
    a, b = by_session_id(a), by_session_id(b)
    for name in TABLE_NAMES:
        assert a[name].equals(b[name]), name


def _files(out: Path, name: str) -> list[Path]:
    return sorted((out / name).rglob("*.parquet"))


def _session(sid: str, version: int, day: int) -> Session:
    created = 1_780_000_000_000_000_000 + day * 86_400_000_000_000
    s = Session(id=sid, user_id="u", created_at=Timestamp(created), updated_at=Timestamp(created + version))
    s.user_messages.append(UserMessage(f"{sid} v{version}", Timestamp(created + 1)))
    s.metadata = {"v": version}
    return s


def _write(src: Path, session: Session, name: str | None = None) -> None:
    (src / (name or f"{session.id}.json")).write_bytes(encode_session(session))


def _data_files(out: Path) -> dict[str, int]:
    """Every Parquet file under the dataset's state folder, with its inode."""
    return {str(p.relative_to(out)): p.stat().st_ino for p in (out / STATE_DIR).rglob("*.parquet")}


def test_an_unchanged_run_writes_no_table_file_and_links_none(tmp_path: Path) -> None:
    src = tmp_path / "sessions"
    shutil.copytree(FIXTURES / "oxios-v2" / "sessions", src)
    out = tmp_path / "out"
    export(src, out, jobs=2)
    before = _data_files(out)
    folders = {name: (out / name).resolve() for name in TABLE_NAMES}
    again = export(src, out, jobs=2)
    assert (again.exported, again.files_written, again.files_rewritten) == (0, 0, 0)
    after = _data_files(out)
    added = set(after) - set(before)
    assert all("/runs/" in path for path in added), added  # only the runs table records the run
    assert {path: after[path] for path in before if path in after} == {
        path: ino for path, ino in before.items() if path in after
    }
    for name in TABLE_NAMES:  # the new version shares the table folders of the last one
        assert (out / name).resolve() == folders[name]
    assert len(sk.archive.runs(out)) == 2


def test_a_run_rewrites_only_the_files_holding_sessions_it_replaces(tmp_path: Path) -> None:
    src = tmp_path / "sessions"
    src.mkdir()
    for i in range(20):
        _write(src, _session(f"a{i:02d}", 1, day=i))
    out = tmp_path / "out"
    export(src, out, jobs=1)
    first = {name: _files(out, name) for name in TABLE_NAMES}
    for i in range(20):
        _write(src, _session(f"b{i:02d}", 1, day=30 + i))
    export(src, out, jobs=1)
    second = {name: [p for p in _files(out, name) if p not in first[name]] for name in TABLE_NAMES}
    inodes = {p: p.stat().st_ino for name in TABLE_NAMES for p in second[name]}
    _write(src, _session("a03", 2, day=3))  # a newer version of a session of the first run
    summary = export(src, out, jobs=1)
    assert summary.exported == 1 and summary.files_rewritten == 3  # sessions, messages, metadata of run 1
    for path, inode in inodes.items():  # the second run's files are untouched
        assert path.stat().st_ino == inode
    got = read_parquet(out)
    assert got.session("a03").metadata == {"v": 2} and len(got) == 40
    assert sum(1 for s in got.sessions["session_id"].to_pylist() if s == "a03") == 1


def test_the_partitioning_is_recorded_and_kept(tmp_path: Path) -> None:
    src = tmp_path / "sessions"
    shutil.copytree(FIXTURES / "oxios-v1" / "sessions", src)
    out = tmp_path / "out"
    export(src, out, jobs=1, partition_by="month")
    assert json.loads((out / MANIFEST_NAME).read_text())["layout"]["partition_by"] == "month"
    assert all(p.parent.name.startswith("created_month=") for p in _files(out, "messages"))
    with pytest.raises(DatasetError, match="partitioned by month, not day"):
        export(src, out, jobs=1, partition_by="day")
    _write(src, _session("late", 1, day=0))
    export(src, out, jobs=1)  # no option: the dataset's own partitioning
    assert all(p.parent.name.startswith("created_month=") for p in _files(out, "messages"))
    assert json.loads((out / MANIFEST_NAME).read_text())["layout"]["partition_by"] == "month"
    with pytest.raises(ValueError, match="partition_by must be one of none, month, day"):
        export(src, tmp_path / "other", partition_by="year")


def test_duplicates_in_one_workers_share_are_set_aside(tmp_path: Path) -> None:
    src = tmp_path / "sessions"
    src.mkdir()
    for i in range(10):
        _write(src, _session(f"s{i}", 1, day=i))
    _write(src, _session("s3", 5, day=3), name="copy-newer.json")  # newer: wins over s3.json
    _write(src, _session("s4", 1, day=4), name="copy-same.json")  # a tie: the file named after the id wins
    _write(src, _session("s5", 0, day=5), name="zz-older.json")  # older: loses
    summary = export(src, tmp_path / "out", jobs=1, files_per_part=5)
    assert (summary.exported, summary.quarantined) == (10, 3)
    got = read_parquet(tmp_path / "out")
    assert sorted(got.sessions["session_id"].to_pylist()) == [f"s{i}" for i in range(10)]
    assert got.session("s3").metadata == {"v": 5} and got.session("s5").metadata == {"v": 1}
    quarantined = sorted(Path(f).name for f in sk.archive.errors(tmp_path / "out")["file"].to_pylist())
    assert quarantined == ["copy-same.json", "s3.json", "zz-older.json"]


def test_a_dataset_of_the_old_layout_is_read_and_updated(tmp_path: Path) -> None:
    src = tmp_path / "sessions"
    shutil.copytree(FIXTURES / "oxios-v1" / "sessions", src)
    out = tmp_path / "old"
    legacy_export(src, out, files_per_part=100)
    assert len(_files(out, "sessions")) > 100  # one file per part and creation day
    expected = to_tables(read_sessions(src))
    _same(read_parquet(out), expected)
    assert sk.stats(out)["sessions"][0] == 300
    assert restore(out, tmp_path / "back") == 300
    for path in fixture_files("oxios-v1"):
        assert (tmp_path / "back" / "sessions" / path.name).read_bytes() == path.read_bytes()
    again = export(src, out, jobs=1)  # the old file index is read: nothing to do
    assert (again.exported, again.unchanged, again.files_written) == (0, 300, 0)
    changed = sorted(src.iterdir())[7]
    raw = json.loads(changed.read_text())
    raw["updated_at"] = "2030-01-01T00:00:00Z"
    raw["metadata"]["touched"] = True
    changed.write_text(json.dumps(raw, indent=2))
    summary = export(src, out, jobs=1)
    assert summary.exported == 1 and 1 <= summary.files_rewritten <= len(TABLE_NAMES)
    assert all(p.parent.name.startswith("created_date=") for p in _files(out, "messages"))  # its layout, kept
    _same(read_parquet(out), to_tables(read_sessions(src)))


def test_the_summary_counts_match_the_tables(tmp_path: Path) -> None:
    src = tmp_path / "sessions"
    shutil.copytree(FIXTURES / "oxios-edge" / "sessions", src)
    out = tmp_path / "out"
    first = export(src, out, jobs=2)
    victim = sorted(src.iterdir())[0]
    os.utime(victim, ns=(1, 1))  # changed stat, same content: read again, replaced by itself
    second = export(src, out, jobs=1)
    tables = read_parquet(out)
    for summary in (first, second):
        assert summary.sessions == len(tables) and summary.messages == tables.messages.num_rows
        assert summary.exchanges == sum(tables.sessions["exchange_count"].to_pylist())
    assert pq.read_metadata(_files(out, "sessions")[0]).num_rows > 0


def test_runs_add_at_most_one_file_per_table_per_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before any compaction, a table has at most workers x runs files, whatever the runs change."""
    import random

    monkeypatch.setattr("sessionkit.archive._export.MIN_FILES_PER_SHARE", 8)  # both workers get a share
    rng = random.Random(11)
    src = tmp_path / "sessions"
    src.mkdir()
    out = tmp_path / "out"
    workers, made = 2, []
    for run in range(1, 8):  # 7 runs x 2 workers = 14 files at most: below auto-compaction's 16
        for _ in range(40):  # new sessions, created on random days, under random file names
            session = _session(f"s{len(made):04d}", 1, day=rng.randrange(180))
            made.append(session)
            _write(src, session, f"{rng.getrandbits(64):016x}.json")
        for old in rng.sample(made[:-40], min(5, len(made) - 40)):  # and newer versions of old ones
            _write(src, _session(old.id, run + 1, day=0), f"{old.id}.json")
        summary = export(src, out, jobs=workers)
        assert summary.compacted == 0  # no compaction yet: the bound is the runs' own
        if run == 1:
            assert len(_files(out, "sessions")) == workers  # one file per worker: the bound is tight
        for name in ("sessions", "messages", "metadata"):
            assert 1 <= len(_files(out, name)) <= workers * run, (run, name, len(_files(out, name)))
    got = read_parquet(out)
    assert len(got) == len(made)  # every session once, the newest version of each
    assert sorted(got.sessions["session_id"].to_pylist()) == sorted(s.id for s in made)
