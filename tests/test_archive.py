"""Export and restore: streaming, parallel, deterministic, and all-or-nothing."""

from __future__ import annotations

import multiprocessing
import os
import re
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import BAD, FIXTURES, by_session_id, fixture_files

from sessionkit.archive import ExportError, _pool, errors, export, restore
from sessionkit.exceptions import DatasetExistsError
from sessionkit.generate import write_demo_state
from sessionkit.oxios import read_sessions
from sessionkit.storage import read_parquet
from sessionkit.tables import LATER_TABLES, to_tables
from sessionkit.tables import TABLE_NAMES as ALL_TABLES

#: The tables these tests' sessions (no tool calls, no reasoning) fill; an empty table gets no file.
TABLE_NAMES = tuple(name for name in ALL_TABLES if name not in LATER_TABLES)


def _same_tables(a, b) -> None:
    """The same sessions with the same rows, whatever the order of the files they came from."""
    a, b = by_session_id(a), by_session_id(b)
    for name in TABLE_NAMES:
        assert a[name].equals(b[name]), name


def _without_run(path: Path, out: Path) -> str:
    """A file's path in a dataset, with the run id of its name blanked: ``part-RUN-00001``."""
    return re.sub(r"part-[0-9T]+-[0-9a-f]+-", "part-RUN-", path.relative_to(out).as_posix())


def _files(out: Path, name: str) -> list[Path]:
    """The Parquet files of one table of a dataset."""
    return sorted((out / name).rglob("*.parquet"))


def test_export_equals_the_model_path(exported: dict[str, Path], fixture_name: str) -> None:
    _same_tables(read_parquet(exported[fixture_name]), to_tables(read_sessions(FIXTURES / fixture_name)))


def test_parallel_streaming_export_equals_the_serial_one(tmp_path: Path) -> None:
    serial = export(FIXTURES / "oxios-v1", tmp_path / "serial", jobs=1)
    parallel = export(FIXTURES / "oxios-v1", tmp_path / "parallel", jobs=2, files_per_part=70, row_group_rows=50)
    assert parallel.jobs == 2 and parallel.files_written == sum(
        len(_files(tmp_path / "parallel", n)) for n in TABLE_NAMES
    )
    assert serial.files_written == len(TABLE_NAMES)  # one worker: one file per table
    _same_tables(read_parquet(tmp_path / "serial"), read_parquet(tmp_path / "parallel"))
    assert (serial.sessions, serial.messages, serial.responses) == (
        parallel.sessions,
        parallel.messages,
        parallel.responses,
    )


def test_row_groups_stay_bounded(tmp_path: Path) -> None:
    # 2,400 generated sessions, 1,200 files' rows to a file: two files per table
    source = write_demo_state(tmp_path / "state", 2400)
    summary = export(source, tmp_path / "out", jobs=1, files_per_part=1200, row_group_rows=100)
    assert summary.files_written == 2 * len(TABLE_NAMES)
    for name in TABLE_NAMES:
        files = _files(tmp_path / "out", name)
        assert len(files) == 2
        sizes = []
        for file in files:
            meta = pq.ParquetFile(file).metadata
            sizes += [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        assert max(sizes) <= 100 and sum(sizes) == getattr(summary, name)
        assert name not in ("messages", "responses") or len(sizes) > len(files)
        assert summary.row_groups[name] == len(sizes)
    assert summary.row_groups["messages"] >= 2722 // 100


def test_restore_gives_back_every_file(exported: dict[str, Path], fixture_name: str, tmp_path: Path) -> None:
    count = restore(exported[fixture_name], tmp_path)
    originals = fixture_files(fixture_name)
    assert count == len(originals)
    for src in originals:
        assert (tmp_path / "sessions" / src.name).read_bytes() == src.read_bytes()
    with pytest.raises(FileExistsError, match="already exists"):
        restore(exported[fixture_name], tmp_path)
    assert restore(exported[fixture_name], tmp_path, overwrite=True) == count


def test_export_refuses_a_folder_with_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(DatasetExistsError, match="not a sessionkit dataset"):
        export(FIXTURES / "oxios-v1", out)
    assert (out / "keep.txt").read_text() == "mine"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert export(FIXTURES / "oxios-v1", empty, jobs=1).sessions == 300


def test_bad_files_are_quarantined_and_the_good_ones_exported(tmp_path: Path) -> None:
    src = tmp_path / "state" / "sessions"
    src.mkdir(parents=True)
    for path in fixture_files("oxios-v1")[:20]:
        shutil.copy(path, src / path.name)
    for bad in sorted(BAD.glob("*.json")):
        shutil.copy(bad, src / bad.name)
    summary = export(tmp_path / "state", tmp_path / "out", jobs=1)
    n_bad = len(list(BAD.glob("*.json")))
    assert (summary.exported, summary.quarantined, summary.seen) == (20, n_bad, 20 + n_bad)
    table = errors(tmp_path / "out")
    assert sorted(Path(f).name for f in table["file"].to_pylist()) == sorted(p.name for p in BAD.glob("*.json"))
    for row in table.to_pylist():
        copy = tmp_path / "out" / row["quarantined_as"]
        assert copy.read_bytes() == (BAD / Path(row["file"]).name).read_bytes()
    with pytest.raises(ExportError, match="not valid oxios sessions"):
        export(tmp_path / "state", tmp_path / "out", jobs=1, strict=True)
    assert read_parquet(tmp_path / "out").sessions.num_rows == 20


def test_a_repeated_session_id_quarantines_the_stray_copy(tmp_path: Path) -> None:
    src = tmp_path / "sessions"
    src.mkdir()
    first = fixture_files("oxios-v1")[0]
    shutil.copy(first, src / first.name)
    shutil.copy(first, src / "copy-of-it.json")
    summary = export(src, tmp_path / "out", jobs=1)
    assert (summary.exported, summary.quarantined) == (1, 1)
    (row,) = errors(tmp_path / "out").to_pylist()
    assert row["file"].endswith("copy-of-it.json") and row["error_class"] == "DuplicateSessionId"


def test_a_misnamed_file_with_a_fresh_id_is_fine(tmp_path: Path) -> None:
    src = tmp_path / "sessions"
    src.mkdir()
    first = fixture_files("oxios-v1")[0]
    shutil.copy(first, src / "renamed.json")
    assert export(src, tmp_path / "out", jobs=1).sessions == 1


def test_empty_source_gives_an_empty_dataset(tmp_path: Path) -> None:
    (tmp_path / "sessions").mkdir()
    summary = export(tmp_path / "sessions", tmp_path / "out")
    assert summary.sessions == 0
    tables = read_parquet(tmp_path / "out")
    assert all(t.num_rows == 0 for _, t in tables.items())
    assert restore(tmp_path / "out", tmp_path / "back") == 0


def test_parallel_restore_equals_the_serial_one(tmp_path: Path) -> None:
    export(FIXTURES / "oxios-edge", tmp_path / "ds", jobs=1, files_per_part=40)
    assert restore(tmp_path / "ds", tmp_path / "a", jobs=2) == 150
    assert restore(tmp_path / "ds", tmp_path / "b", jobs=1) == 150
    for src in fixture_files("oxios-edge"):
        assert (tmp_path / "a" / "sessions" / src.name).read_bytes() == src.read_bytes()
        assert (tmp_path / "b" / "sessions" / src.name).read_bytes() == src.read_bytes()


def test_restore_from_tables_in_memory_and_from_unaligned_files(tmp_path: Path) -> None:
    tables = to_tables(read_sessions(FIXTURES / "oxios-v2"))
    assert restore(tables, tmp_path / "mem") == 150
    # a dataset whose tables are split into differently named files still restores
    out = tmp_path / "hand"
    for name, table in tables.items():
        (out / name).mkdir(parents=True)
        half = table.num_rows // 2
        pq.write_table(table.slice(0, half), out / name / f"{name}-a.parquet")
        pq.write_table(table.slice(half), out / name / f"{name}-b.parquet")
    assert restore(out, tmp_path / "disk", jobs=2) == 150
    for src in fixture_files("oxios-v2"):
        assert (tmp_path / "mem" / "sessions" / src.name).read_bytes() == src.read_bytes()
        assert (tmp_path / "disk" / "sessions" / src.name).read_bytes() == src.read_bytes()


def test_export_progress_reaches_the_file_count(tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    export(FIXTURES / "oxios-v1", tmp_path / "out", jobs=1, files_per_part=64, progress=lambda *a: seen.append(a))
    assert seen == sorted(seen) and seen[-1] == (300, 300) and len(seen) == 5


def test_the_tables_do_not_depend_on_the_number_of_workers(tmp_path: Path) -> None:
    one = export(FIXTURES / "oxios-v2", tmp_path / "one", jobs=1, files_per_part=32, row_group_rows=64)
    two = export(FIXTURES / "oxios-v2", tmp_path / "two", jobs=2, files_per_part=32, row_group_rows=64)
    _same_tables(read_parquet(tmp_path / "one"), read_parquet(tmp_path / "two"))
    for name in TABLE_NAMES:  # each worker cuts its share after 32 files' rows: 150 = 5 x 32, 75 = 3 x 32
        assert (len(_files(tmp_path / "one", name)), len(_files(tmp_path / "two", name))) == (5, 6)
    assert (one.jobs, two.jobs) == (1, 2)


def test_a_worker_writes_one_file_per_table_and_run(tmp_path: Path) -> None:
    src = tmp_path / "sessions"
    src.mkdir()
    files = fixture_files()
    for runs, chunk in enumerate((files[:200], files[200:400], files[400:]), start=1):
        for path in chunk:
            shutil.copy(path, src / path.name)
        summary = export(src, tmp_path / "out", jobs=2, files_per_part=None)
        for name in TABLE_NAMES:  # at most one file per worker and run (metadata: not in every run)
            assert 1 <= len(_files(tmp_path / "out", name)) <= 2 * runs, name
        assert summary.files_written <= 2 * len(TABLE_NAMES)


def test_workers_see_the_environment_as_it_is_now(monkeypatch: pytest.MonkeyPatch) -> None:
    # a fork server's children inherit the server's environment, from when it started: an
    # AWS_ENDPOINT_URL set later (a notebook cell, a test fixture) would not reach them
    context = multiprocessing.get_context("forkserver")
    monkeypatch.setattr(_pool, "_pool_context", lambda: context)
    monkeypatch.delenv("SESSIONKIT_PROBE", raising=False)
    with _pool.WorkerPool(2) as pool:  # starts the fork server, if no test did before
        assert list(pool.map(os.getenv, ["SESSIONKIT_PROBE"] * 4)) == [None] * 4
    monkeypatch.setenv("SESSIONKIT_PROBE", "now")
    with _pool.WorkerPool(2) as pool:
        assert list(pool.map(os.getenv, ["SESSIONKIT_PROBE"] * 4)) == ["now"] * 4
