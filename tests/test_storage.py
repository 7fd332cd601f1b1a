"""The Parquet dataset: export, write, read, scan and restore."""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest
from conftest import FIXTURE_NAMES, FIXTURES, in_cluster_order, oracle
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import sessions as session_strategy

from sessionkit.archive import export
from sessionkit.exceptions import DatasetError, SourceNotFoundError
from sessionkit.model import Session, encode_session
from sessionkit.oxios import read_sessions
from sessionkit.query import connect, scan_parquet
from sessionkit.storage import (
    MANIFEST_NAME,
    PARTITION_COLUMNS,
    read_parquet,
    table_glob,
    write_parquet,
)
from sessionkit.tables import AGENT_TABLE_NAMES, CLUSTERING, SCHEMAS, TABLE_NAMES, to_tables


def _same_tables(a, b) -> None:
    for name in TABLE_NAMES:
        assert a[name].equals(b[name]), name


def test_export_writes_one_folder_per_table(exported: dict[str, Path]) -> None:
    out = exported["oxios-v1"]
    for name in TABLE_NAMES:
        files = sorted((out / name).rglob("*.parquet"))
        assert len(files) == 1 and files[0].parent.name != "created_date"  # one worker, one file, no partitions
        meta = pq.ParquetFile(files[0]).metadata
        assert meta.row_group(0).column(0).compression == "ZSTD" if meta.num_row_groups else True
        assert pq.read_schema(files[0]).equals(SCHEMAS[name])
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["format"] == "sessionkit-dataset" and manifest["counts"]["sessions"] == 300
    assert manifest["layout"]["partition_by"] == "none"
    messages = sorted((out / "messages").rglob("*.parquet"))
    assert manifest["files"]["messages"] == [f"messages/{messages[0].name}"] and manifest["stats"]


def test_the_documented_glob_reads_each_table(exported: dict[str, Path]) -> None:
    out = exported["oxios-v2"]
    con = duckdb.connect()
    n = con.sql(f"SELECT count(*) FROM read_parquet('{table_glob(out, 'messages')}')").fetchall()[0][0]
    assert n == oracle("oxios-v2")["user_messages"]
    responses = pl.scan_parquet(table_glob(out, "responses")).select(pl.len()).collect().item()
    assert responses == oracle("oxios-v2")["agent_responses"]


def test_readers_read_the_files_the_version_lists_not_a_stray_copy(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    export(FIXTURES / "oxios-v1", out, jobs=1)
    part = next((out / "sessions").rglob("*.parquet"))
    (part.parent / "copied-by-hand.parquet").write_bytes(part.read_bytes())  # into the version's folder
    assert read_parquet(out).sessions.num_rows == oracle("oxios-v1")["sessions"]
    assert connect(out).sql("SELECT count(*) FROM sessions").fetchall() == [(oracle("oxios-v1")["sessions"],)]
    assert (
        pl.scan_parquet(table_glob(out, "sessions")).select(pl.len()).collect().item()
        == 2 * oracle("oxios-v1")["sessions"]
    )  # the glob does


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
    _same_tables(back, in_cluster_order(tables))
    expected = in_cluster_order(tables).to_sessions()
    assert [encode_session(s) for s in back.to_sessions()] == [encode_session(s) for s in expected]


def test_read_parquet_explains_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(SourceNotFoundError, match="no such dataset"):
        read_parquet(tmp_path / "nope")
    (tmp_path / "half" / "sessions").mkdir(parents=True)
    with pytest.raises(DatasetError, match="not a sessionkit dataset"):
        read_parquet(tmp_path / "half")


def test_scan_parquet_is_lazy_and_matches(exported: dict[str, Path]) -> None:
    frames = scan_parquet(exported["oxios-v1"])
    assert set(frames) == {*TABLE_NAMES, *AGENT_TABLE_NAMES, "exchanges"}  # the agent tables: issue 13
    with connect(exported["oxios-v1"]) as con:  # the same columns, in the same order, as the view
        assert frames["exchanges"].collect_schema().names() == con.sql("SELECT * FROM exchanges").columns
    assert all(isinstance(f, pl.LazyFrame) for f in frames.values())
    ex = frames["exchanges"].select(pl.len()).collect().item()
    assert ex == oracle("oxios-v1")["exchanges"]
    one_seed = frames["responses"].filter(pl.col("seed_id") == "seed-0").select(pl.len()).collect().item()
    con = duckdb.connect()
    expected = con.sql(
        f"SELECT count(*) FROM read_parquet('{table_glob(exported['oxios-v1'], 'responses')}') WHERE seed_id = 'seed-0'"
    ).fetchall()[0][0]
    assert one_seed == expected


def test_the_exchanges_of_sql_and_of_polars_agree(exported: dict[str, Path]) -> None:
    """scan_parquet's ``exchanges`` is the SQL view, run by DuckDB when collected: on every
    fixture it gives the view's rows, column for column, in the declared schemas' UTC (DuckDB
    names it ``Etc/UTC``), filtered and projected as polars asks."""
    from polars.testing import assert_frame_equal

    keys = ["session_id", "seq"]
    utc = [pl.col(c).dt.convert_time_zone("UTC") for c in ("user_timestamp", "response_timestamp")]
    for out in exported.values():
        with connect(out) as con:
            sql = con.sql("SELECT * FROM exchanges").pl().with_columns(utc).sort(keys)
        lazy = scan_parquet(out)["exchanges"]
        frame = lazy.collect().sort(keys)
        assert sql.height and frame.schema == sql.schema
        assert frame.schema["user_timestamp"] == pl.Datetime("ns", "UTC")
        assert_frame_equal(frame, sql)
        first = lazy.filter(pl.col("seq") == 0).select("session_id", "latency_s").collect().sort("session_id")
        assert_frame_equal(first, sql.filter(pl.col("seq") == 0).select("session_id", "latency_s").sort("session_id"))


def test_all_fixtures_at_once(tmp_path: Path) -> None:
    sessions = [s for name in FIXTURE_NAMES for s in read_sessions(FIXTURES / name)]
    write_parquet(to_tables(sessions), tmp_path / "all")
    assert read_parquet(tmp_path / "all").to_sessions() == in_cluster_order(to_tables(sessions)).to_sessions()


def test_rows_are_clustered_by_creation_time_within_files(exported: dict[str, Path]) -> None:
    for out in exported.values():
        sessions = read_parquet(out).sessions
        created = dict(
            zip(sessions["session_id"].to_pylist(), sessions["created_at"].cast("int64").to_pylist(), strict=True)
        )
        for name in TABLE_NAMES:
            how = CLUSTERING[name]
            for path in (out / name).rglob("*.parquet"):
                table = pq.read_table(path, columns=[how.key, *how.within])
                keys = [
                    (created[row[how.key]], row[how.key], *(row[c] for c in how.within)) for row in table.to_pylist()
                ]
                assert keys == sorted(keys), path


def test_engines_skip_row_groups_for_a_time_filter(tmp_path: Path) -> None:
    sessions = [s for name in FIXTURE_NAMES for s in read_sessions(FIXTURES / name)]
    out = tmp_path / "ds"
    write_parquet(to_tables(sessions), out, row_group_rows=20)
    created = sorted(s.created_at.ns for s in sessions)
    cut = created[len(created) - 25]  # the newest 25 sessions (some share a time)
    glob = table_glob(out, "sessions")
    con = duckdb.connect()
    where = f"WHERE epoch_ns(created_at) >= {cut}"
    plan = con.sql(f"EXPLAIN ANALYZE SELECT session_id FROM read_parquet('{glob}') {where}").fetchall()[0][1]
    scanned = int(re.search(r"Row Groups Scanned: (\d+) */ *(\d+)", plan).group(1))
    total = pq.ParquetFile(next((out / "sessions").rglob("*.parquet"))).metadata.num_row_groups
    assert total >= 20 and scanned <= 3, plan  # the time filter reads the last row groups only
    got = con.sql(f"SELECT count(*) FROM read_parquet('{glob}') {where}").fetchall()[0][0]
    assert got == sum(c >= cut for c in created)


@pytest.mark.parametrize("partition_by", ["month", "day"])
def test_engines_prune_by_partitions(tmp_path: Path, partition_by: str) -> None:
    out = tmp_path / "ds"
    export(FIXTURES / "oxios-v1", out, jobs=1, partition_by=partition_by)
    column = PARTITION_COLUMNS[partition_by]
    # the UTC calendar day or month of each session's creation, as polars computes it (no pandas needed)
    form = "%Y-%m-%d" if partition_by == "day" else "%Y-%m"
    days = pl.from_arrow(read_parquet(out).sessions.select(["session_id", "created_at"])).with_columns(
        pl.col("created_at").dt.to_string(form).alias("day")
    )
    day = days["day"][0]
    expected = sorted(days.filter(pl.col("day") == day)["session_id"])
    con = duckdb.connect()
    glob = table_glob(out, "sessions")
    plan = con.sql(
        f"EXPLAIN ANALYZE SELECT session_id FROM read_parquet('{glob}', hive_partitioning = true) "
        f"WHERE {column} = '{day}'"
    ).fetchall()[0][1]
    rows = con.sql(
        f"SELECT session_id FROM read_parquet('{glob}', hive_partitioning = true) WHERE {column} = '{day}' ORDER BY 1"
    ).fetchall()
    assert [r[0] for r in rows] == expected
    assert re.search(r"Scanning Files: 1/\d+", plan), plan  # the other partitions' files are skipped
    # polars reads the partition column from the path and gives the same sessions
    lazy = pl.scan_parquet(glob, hive_partitioning=True)
    picked = lazy.filter(pl.col(column).cast(pl.String).str.slice(0, len(day)) == day).collect()
    assert sorted(picked["session_id"]) == expected
    # a session's messages sit in its own partition
    by_day = con.sql(
        f"SELECT count(*) FROM read_parquet('{table_glob(out, 'messages')}', hive_partitioning = true) AS m "
        f"JOIN read_parquet('{glob}', hive_partitioning = true) AS s USING (session_id) "
        f"WHERE m.{column} <> s.{column}"
    ).fetchall()
    assert by_day == [(0,)]
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["layout"]["partition_by"] == partition_by
