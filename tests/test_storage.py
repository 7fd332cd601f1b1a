"""The Parquet dataset: export, write, read, scan and restore."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest
from conftest import BAD, FIXTURE_NAMES, FIXTURES, fixture_files
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import sessions as session_strategy

from sessionkit.exceptions import DatasetError, DatasetExistsError, SourceNotFoundError
from sessionkit.model import Session, encode_session
from sessionkit.oxios import read_sessions
from sessionkit.storage import (
    MANIFEST_NAME,
    ExportError,
    export,
    read_parquet,
    restore,
    scan_parquet,
    table_glob,
    write_parquet,
)
from sessionkit.tables import SCHEMAS, TABLE_NAMES, to_tables


def _same_tables(a, b) -> None:
    for name in TABLE_NAMES:
        assert a[name].equals(b[name]), name


def test_export_writes_one_folder_per_table(exported: dict[str, Path]) -> None:
    out = exported["oxios-v1"]
    for name in TABLE_NAMES:
        files = list((out / name).glob("*.parquet"))
        assert files
        meta = pq.ParquetFile(files[0]).metadata
        assert meta.row_group(0).column(0).compression == "ZSTD" if meta.num_row_groups else True
        assert pq.read_schema(files[0]).equals(SCHEMAS[name])
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["format"] == "sessionkit-dataset" and manifest["export"]["sessions"] == 300


def test_the_documented_glob_reads_each_table(exported: dict[str, Path]) -> None:
    out = exported["oxios-v2"]
    con = duckdb.connect()
    n = con.sql(f"SELECT count(*) FROM read_parquet('{table_glob(out, 'messages')}')").fetchall()[0][0]
    assert n == 1550
    assert pl.scan_parquet(table_glob(out, "responses")).select(pl.len()).collect().item() == 1542


def test_export_equals_the_model_path(exported: dict[str, Path], fixture_name: str) -> None:
    _same_tables(read_parquet(exported[fixture_name]), to_tables(read_sessions(FIXTURES / fixture_name)))


def test_parallel_streaming_export_equals_the_serial_one(tmp_path: Path) -> None:
    serial = export(FIXTURES / "oxios-v1", tmp_path / "serial", jobs=1)
    parallel = export(FIXTURES / "oxios-v1", tmp_path / "parallel", jobs=2, files_per_task=7, row_group_rows=50)
    assert parallel.jobs == 2
    _same_tables(read_parquet(tmp_path / "serial"), read_parquet(tmp_path / "parallel"))
    assert (serial.sessions, serial.messages, serial.responses) == (
        parallel.sessions,
        parallel.messages,
        parallel.responses,
    )


def test_row_groups_stay_bounded(tmp_path: Path) -> None:
    summary = export(FIXTURES / "oxios-v1", tmp_path / "out", jobs=1, files_per_task=10, row_group_rows=100)
    for name in TABLE_NAMES:
        (file,) = (tmp_path / "out" / name).glob("*.parquet")
        meta = pq.ParquetFile(file).metadata
        sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        assert max(sizes) <= 100 and sum(sizes) == getattr(summary, name)
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


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)
@given(st.lists(session_strategy(), max_size=5, unique_by=lambda s: s.id))
def test_parquet_write_read_is_lossless(tmp_path_factory: pytest.TempPathFactory, sessions: list[Session]) -> None:
    out = tmp_path_factory.mktemp("pq") / "ds"
    tables = to_tables(sessions)
    write_parquet(tables, out)
    back = read_parquet(out)
    _same_tables(back, tables)
    assert [encode_session(s) for s in back.to_sessions()] == [encode_session(s) for s in sessions]


def test_export_refuses_a_folder_with_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(DatasetExistsError, match="already holds files"):
        export(FIXTURES / "oxios-v1", out)
    assert (out / "keep.txt").read_text() == "mine"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert export(FIXTURES / "oxios-v1", empty, jobs=1).sessions == 300


def test_bad_files_stop_the_export_and_are_all_named(tmp_path: Path) -> None:
    src = tmp_path / "state" / "sessions"
    src.mkdir(parents=True)
    for path in fixture_files("oxios-v1")[:20]:
        shutil.copy(path, src / path.name)
    for bad in sorted(BAD.glob("*.json")):
        shutil.copy(bad, src / bad.name)
    with pytest.raises(ExportError) as info:
        export(tmp_path / "state", tmp_path / "out", jobs=1)
    named = {Path(str(err).split(":")[0]).name for err in info.value.errors}
    assert named == {p.name for p in BAD.glob("*.json")}
    assert "nothing was written" in str(info.value)
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".out.staging-*"))


def test_a_repeated_session_id_is_an_error(tmp_path: Path) -> None:
    src = tmp_path / "sessions"
    src.mkdir()
    first = fixture_files("oxios-v1")[0]
    shutil.copy(first, src / first.name)
    shutil.copy(first, src / "copy-of-it.json")
    with pytest.raises(ExportError, match="is also the id of"):
        export(src, tmp_path / "out", jobs=1)


def test_a_misnamed_file_with_a_fresh_id_is_fine(tmp_path: Path) -> None:
    src = tmp_path / "sessions"
    src.mkdir()
    first = fixture_files("oxios-v1")[0]
    shutil.copy(first, src / "renamed.json")
    assert export(src, tmp_path / "out", jobs=1).sessions == 1


def test_read_parquet_explains_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(SourceNotFoundError, match="no such dataset"):
        read_parquet(tmp_path / "nope")
    (tmp_path / "half" / "sessions").mkdir(parents=True)
    with pytest.raises(DatasetError, match="not a sessionkit dataset"):
        read_parquet(tmp_path / "half")


def test_scan_parquet_is_lazy_and_matches(exported: dict[str, Path]) -> None:
    frames = scan_parquet(exported["oxios-v1"])
    assert set(frames) == {*TABLE_NAMES, "exchanges"}
    assert all(isinstance(f, pl.LazyFrame) for f in frames.values())
    ex = frames["exchanges"].select(pl.len()).collect().item()
    assert ex == 2694
    one_seed = frames["responses"].filter(pl.col("seed_id") == "seed-0").select(pl.len()).collect().item()
    con = duckdb.connect()
    expected = con.sql(
        f"SELECT count(*) FROM read_parquet('{table_glob(exported['oxios-v1'], 'responses')}') WHERE seed_id = 'seed-0'"
    ).fetchall()[0][0]
    assert one_seed == expected


def test_empty_source_gives_an_empty_dataset(tmp_path: Path) -> None:
    (tmp_path / "sessions").mkdir()
    summary = export(tmp_path / "sessions", tmp_path / "out")
    assert summary.sessions == 0
    tables = read_parquet(tmp_path / "out")
    assert all(t.num_rows == 0 for _, t in tables.items())
    assert restore(tmp_path / "out", tmp_path / "back") == 0


def test_all_fixtures_at_once(tmp_path: Path) -> None:
    sessions = [s for name in FIXTURE_NAMES for s in read_sessions(FIXTURES / name)]
    write_parquet(to_tables(sessions), tmp_path / "all")
    assert read_parquet(tmp_path / "all").to_sessions() == sessions
