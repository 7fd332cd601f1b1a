"""The locked-down DuckDB connection: hostile SQL fails safely, ordinary SQL and the helpers work."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import FIXTURES
from polars.testing import assert_frame_equal

from sessionkit.analytics import exchange_counts, persona_usage, seed_usage, stats
from sessionkit.exceptions import PrivacyError
from sessionkit.oxios import read_sessions
from sessionkit.query import LOCKED_HINT, connect, is_locked
from sessionkit.storage import write_parquet
from sessionkit.tables import SessionTables, to_tables


@pytest.fixture(scope="module")
def tables() -> SessionTables:
    return to_tables(read_sessions(FIXTURES / "oxios-edge"))


@pytest.fixture(scope="module")
def dataset(tables: SessionTables, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dataset of its own: if the lock-down failed, the hostile SQL below would damage it."""
    return write_parquet(tables, tmp_path_factory.mktemp("safe-sql") / "dataset")


@pytest.fixture(scope="module")
def outside(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder outside the dataset, with a Parquet file and a secret in it."""
    folder = tmp_path_factory.mktemp("outside")
    pq.write_table(pa.table({"secret": ["hunter2"]}), folder / "other.parquet")
    (folder / "secret.txt").write_text("hunter2\n")
    return folder


def _snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()
    }


HOSTILE = [
    # reading files outside the views
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_csv_auto('/etc/passwd', sep = ':')",
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM read_blob('/etc/passwd')",
    "SELECT * FROM read_json('/etc/hostname')",
    "SELECT * FROM read_csv('/proc/self/environ')",
    "SELECT * FROM sniff_csv('/etc/passwd')",
    "SELECT * FROM read_text('{outside}/secret.txt')",
    "SELECT * FROM read_parquet('{outside}/other.parquet')",
    "SELECT * FROM parquet_metadata('{outside}/other.parquet')",
    "SELECT * FROM read_parquet('{dataset}/sessions/*.parquet')",
    "SELECT * FROM '/etc/passwd'",
    "SELECT * FROM '{outside}/other.parquet'",
    "SELECT * FROM glob('/')",
    "SELECT * FROM glob('/*')",
    "SELECT * FROM glob('{dataset}/**')",
    "SELECT * FROM hostile_local",  # a Python variable of the caller, by name
    # the network
    "SELECT * FROM read_csv('https://example.com/x.csv')",
    "SELECT * FROM read_parquet('http://127.0.0.1:9/x.parquet')",
    "SELECT * FROM read_parquet('s3://bucket/x.parquet')",
    # writing, in the dataset and elsewhere
    "COPY sessions TO '{outside}/stolen.csv'",
    "COPY (SELECT 1 AS a) TO '{dataset}/x.csv'",
    "COPY (SELECT 1 AS a) TO '{dataset}/sessions/part-00000.parquet' (FORMAT parquet, USE_TMP_FILE false)",
    "COPY (SELECT 1 AS a) TO '{dataset}/sessions/part-00000.parquet' (FORMAT csv, OVERWRITE_OR_IGNORE)",
    "COPY (SELECT 1) TO '/dev/stdout'",
    "EXPORT DATABASE '{outside}/export'",
    "EXPORT DATABASE '{dataset}/export'",
    "IMPORT DATABASE '{outside}'",
    "ATTACH '{outside}/x.duckdb' AS x",
    "ATTACH '{dataset}/x.duckdb' AS x",
    "ATTACH 'md:'",
    # extensions and secrets
    "INSTALL httpfs",
    "FORCE INSTALL httpfs",
    "LOAD httpfs",
    "INSTALL sqlite",
    "CREATE SECRET s (TYPE s3, KEY_ID 'a', SECRET 'b')",
    "CREATE PERSISTENT SECRET s (TYPE s3, KEY_ID 'a', SECRET 'b')",
    # undoing the lock-down
    "SET enable_external_access = true",
    "SET GLOBAL enable_external_access = true",
    "RESET enable_external_access",
    "SET allowed_directories = ['/']",
    "SET allowed_paths = ['/etc/passwd']",
    "SET autoinstall_known_extensions = true",
    "SET autoload_known_extensions = true",
    "SET allow_community_extensions = true",
    "SET python_enable_replacements = true",
    "SET temp_directory = '{outside}'",
    "SET lock_configuration = false",
    "PRAGMA lock_configuration = false",
    "SET profiling_output = '{outside}/profile.json'",
    "PRAGMA enable_profiling",
    "SET threads = 64",
]


@pytest.mark.parametrize("sql", HOSTILE)
@pytest.mark.parametrize("source", ["dataset", "tables"])
def test_hostile_sql_fails_and_touches_nothing(
    sql: str, source: str, dataset: Path, tables: SessionTables, outside: Path
) -> None:
    hostile_local = pa.table({"secret": ["hunter2"]})  # noqa: F841 - the SQL tries to scan it by name
    before, before_outside = _snapshot(dataset), _snapshot(outside)
    con = connect(dataset) if source == "dataset" else connect(tables, read_only=True)
    statement = sql.format(dataset=dataset, outside=outside)
    with pytest.raises(duckdb.Error) as info:
        result = con.sql(statement)
        if result is not None:
            result.fetchall()
    message = str(info.value)
    assert "hunter2" not in message and "root:" not in message
    assert con.sql("SELECT count(*) FROM sessions").fetchall() == [(150,)]  # still usable
    con.close()
    assert _snapshot(dataset) == before
    assert _snapshot(outside) == before_outside


def test_the_errors_say_what_was_refused(dataset: Path) -> None:
    con = connect(dataset)
    with pytest.raises(duckdb.PermissionException, match=r"/etc/passwd.*disabled by configuration"):
        con.sql("SELECT * FROM read_csv('/etc/passwd')").fetchall()
    with pytest.raises(duckdb.InvalidInputException, match="configuration has been locked"):
        con.execute("SET enable_external_access = true")
    assert "read-only" in LOCKED_HINT and LOCKED_HINT.startswith("Hint:")


def test_read_only_is_the_default_on_disk_and_optional_in_memory(dataset: Path, tables: SessionTables) -> None:
    assert is_locked(connect(dataset))
    assert is_locked(connect(str(dataset)))
    assert not is_locked(connect(dataset, read_only=False))
    assert not is_locked(connect(tables))
    assert is_locked(connect(tables, read_only=True))
    assert not is_locked(duckdb.connect())


def test_an_unlocked_connection_is_not_taken_as_read_only(dataset: Path) -> None:
    locked = connect(dataset)
    assert connect(locked, read_only=True) is locked
    assert connect(locked) is locked
    plain = duckdb.connect()
    assert connect(plain) is plain
    with pytest.raises(PrivacyError, match="not locked down"):
        connect(plain, read_only=True)


def test_limits_set_before_the_lock_hold(dataset: Path) -> None:
    con = connect(dataset, config={"memory_limit": "256MB", "threads": 1})
    assert is_locked(con)
    assert con.sql("SELECT current_setting('threads')").fetchall() == [(1,)]
    assert con.sql("SELECT current_setting('memory_limit')").fetchall() == [("244.1 MiB",)]  # 256 MB
    with pytest.raises(duckdb.InvalidInputException, match="locked"):
        con.execute("SET memory_limit = '64GB'")


def test_spilling_goes_to_a_private_temporary_folder(dataset: Path) -> None:
    con = connect(dataset)
    spill = con.sql("SELECT current_setting('temp_directory')").fetchall()[0][0]
    assert Path(spill).parent == Path(tempfile.gettempdir())
    assert Path(spill).name.startswith("sessionkit-duckdb-")
    allowed = con.sql("SELECT current_setting('allowed_directories')").fetchall()[0][0]
    assert all(Path(d).resolve() == Path(spill).resolve() for d in allowed)  # not the working directory
    assert not os.path.exists(Path.cwd() / ".tmp" / "x.csv")


# A sort that makes DuckDB spill under a 32 MB memory limit (about a second); take its first
# row with fetchone (a LIMIT would make it a top-n, which does not spill).
_SPILL = "SELECT range AS i, repeat('x', 100) AS s FROM range(600000) ORDER BY s DESC, i"
_WRITES = [
    "COPY (SELECT 42 AS answer) TO '{spill}/copy.csv'",
    "ATTACH '{spill}/attached.duckdb' AS other; CREATE TABLE other.t AS SELECT 1 AS x; DETACH other",
    "EXPORT DATABASE '{spill}/export'",
]


def test_files_written_into_the_spill_folder_go_with_the_connection(dataset: Path) -> None:
    # before: after a spill the SQL could COPY, ATTACH and EXPORT DATABASE into the spill
    # folder (DuckDB always allows its temp_directory), and those files outlived close()
    con = connect(dataset, config={"memory_limit": "32MB", "threads": 1})
    spill = con.sql("SELECT current_setting('temp_directory')").fetchall()[0][0]
    assert con.execute(_SPILL).fetchone() == (0, "x" * 100)
    assert any(name.startswith("duckdb_temp_") for name in os.listdir(spill))  # it did spill
    for sql in _WRITES:
        con.execute(sql.format(spill=spill))
    assert {"copy.csv", "attached.duckdb", "export"} <= set(os.listdir(spill))
    mode = os.stat(spill).st_mode
    con.close()
    del con
    assert not os.path.exists(spill)
    assert os.name != "posix" or mode & 0o077 == 0  # and while it lived, spilled rows were not for other users


def test_spilling_is_capped(dataset: Path) -> None:
    con = connect(dataset, config={"memory_limit": "32MB", "threads": 1})
    assert con.sql("SELECT current_setting('max_temp_directory_size')").fetchall() == [("4.0 GiB",)]
    small = connect(dataset, config={"memory_limit": "32MB", "threads": 1, "max_temp_directory_size": "1MB"})
    with pytest.raises(duckdb.OutOfMemoryException, match="max_temp_directory_size"):
        small.execute(_SPILL).fetchone()


def test_no_spill_folder_means_no_file_written_at_all(dataset: Path) -> None:
    con = connect(dataset, config={"memory_limit": "32MB", "threads": 1, "temp_directory": ""})
    assert con.sql("SELECT current_setting('temp_directory'), current_setting('allowed_directories')").fetchall() == [
        ("", [])
    ]
    for sql in _WRITES:
        with pytest.raises(duckdb.PermissionException):
            con.execute(sql.format(spill=tempfile.gettempdir()))
    with pytest.raises(duckdb.OutOfMemoryException):  # a query too large fails instead of spilling
        con.execute(_SPILL).fetchone()


_KILLED = """
import os, signal, sys
from sessionkit.query import connect
con = connect(sys.argv[1], config={"memory_limit": "32MB", "threads": 1})
spill = con.sql("SELECT current_setting('temp_directory')").fetchall()[0][0]
con.execute(sys.argv[2]).fetchone()
con.execute(f"COPY (SELECT 42) TO '{spill}/copy.csv'")
print(f"\\nspill={spill}", flush=True)  # on a line of its own: a slow query's progress bar may precede it
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.skipif(os.name != "posix", reason="the sweep looks for dead processes by id, on POSIX")
def test_a_killed_process_spill_folder_goes_at_the_next_lock(dataset: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", _KILLED, str(dataset), _SPILL], capture_output=True, text=True, check=False
    )
    assert result.returncode == -9, result.stderr[-2000:]
    spill = result.stdout.rsplit("\nspill=", 1)[-1].strip()
    assert os.path.exists(os.path.join(spill, "copy.csv"))
    connect(dataset).close()
    assert not os.path.exists(spill)


ORDINARY = [
    "SELECT count(*), count(DISTINCT user_id), min(created_at), max(updated_at) FROM sessions",
    "SELECT session_id, seq, content, timestamp FROM messages ORDER BY session_id, seq",
    "SELECT * FROM responses WHERE evaluation_passed AND seed_id IS NOT NULL ORDER BY session_id, seq",
    "SELECT * FROM responses WHERE evaluation_passed IS NULL ORDER BY session_id, seq",
    "SELECT session_id, seq FROM messages WHERE timestamp < TIMESTAMPTZ '1971-01-01 00:00:00+00' ORDER BY ALL",
    "SELECT session_id, seq FROM messages WHERE content LIKE '%DROP TABLE%' OR content = '' ORDER BY ALL",
    "SELECT session_id, seq FROM responses WHERE phase_reached IN ('evaluate', 'evolve') ORDER BY ALL",
    "SELECT key, count(*) FROM metadata WHERE key <> 'channel' GROUP BY key ORDER BY ALL",
    "SELECT session_id, epoch_ns(timestamp) FROM messages WHERE epoch_ns(timestamp) % 1000 <> 0 ORDER BY ALL",
    # rounded: a float sum depends on the order rows arrive in, which parallel scans do not fix
    "SELECT phase_reached, count(*), round(avg(latency_s), 6) FROM exchanges GROUP BY ALL ORDER BY ALL",
    "SELECT s.user_id, count(*) FROM sessions s JOIN messages m USING (session_id) GROUP BY ALL ORDER BY ALL",
    "SELECT session_id, seq, row_number() OVER (PARTITION BY session_id ORDER BY seq DESC) FROM messages ORDER BY ALL",
    "SELECT json_extract(value, '$') IS NOT NULL, count(*) FROM metadata GROUP BY ALL ORDER BY ALL",
    "CREATE TEMP TABLE t AS SELECT session_id FROM sessions; SELECT count(*) FROM t",
]


@pytest.mark.parametrize("sql", ORDINARY)
def test_ordinary_sql_gives_the_same_answers_locked(sql: str, dataset: Path, tables: SessionTables) -> None:
    locked, unlocked, memory = connect(dataset), connect(dataset, read_only=False), connect(tables)
    expected = unlocked.sql(sql).fetchall()
    assert locked.sql(sql).fetchall() == expected
    assert memory.sql(sql).fetchall() == expected
    assert expected  # every query above returns rows


def test_the_helpers_run_unchanged_on_a_locked_connection(dataset: Path, tables: SessionTables) -> None:
    con = connect(dataset)
    for helper in (seed_usage, persona_usage, exchange_counts, stats):
        assert_frame_equal(helper(con), helper(tables))
        assert_frame_equal(helper(dataset), helper(tables))
    assert con.sql("SELECT 1").fetchall() == [(1,)]  # the helpers leave a connection given to them open


def test_the_views_keep_types_and_nanoseconds(dataset: Path) -> None:
    con = connect(dataset)
    unlocked = connect(dataset, read_only=False)
    describe = "SELECT column_name, column_type FROM (DESCRIBE {})"
    for view in ("sessions", "messages", "responses", "metadata", "exchanges"):
        assert con.sql(describe.format(view)).fetchall() == unlocked.sql(describe.format(view)).fetchall()
    sql = "SELECT epoch_ns(timestamp) FROM messages ORDER BY session_id, seq"
    assert con.sql(sql).fetchall() == unlocked.sql(sql).fetchall()


def test_a_dataset_without_rows_still_has_its_views(tmp_path: Path) -> None:
    empty = write_parquet(to_tables([]), tmp_path / "empty")
    con = connect(empty)
    assert is_locked(con)
    assert [con.sql(f"SELECT count(*) FROM {v}").fetchall()[0][0] for v in ("sessions", "exchanges")] == [0, 0]


CONTROL = [
    "SELECT * FROM read_text('{outside}/secret.txt')",
    "SELECT * FROM read_parquet('{outside}/other.parquet')",
    "SELECT * FROM glob('{outside}/*')",
    "COPY (SELECT 1 AS a) TO '{outside}/copy.csv'",
    "SELECT * FROM hostile_local",
]


@pytest.mark.parametrize("sql", CONTROL)
def test_the_same_sql_works_unlocked(sql: str, tables: SessionTables, tmp_path: Path) -> None:
    """A control: the hostile statements fail because of the lock-down, not because they are wrong."""
    hostile_local = pa.table({"secret": ["hunter2"]})  # noqa: F841 - the SQL scans it by name
    pq.write_table(pa.table({"secret": ["hunter2"]}), tmp_path / "other.parquet")
    (tmp_path / "secret.txt").write_text("hunter2\n")
    con = connect(tables, read_only=False)
    result = con.sql(sql.format(outside=tmp_path))
    if result is not None:
        assert result.fetchall()
