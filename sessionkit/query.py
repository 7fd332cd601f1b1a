"""SQL over sessions: a DuckDB connection with the table views and ``exchanges``.

A connection to a dataset on disk is read-only by default: the SQL can read the views
and nothing else. See ``connect`` for what that lock-down covers and what it does not.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Union

from sessionkit._process import pid_alive
from sessionkit._store import open_store
from sessionkit.exceptions import PrivacyError
from sessionkit.tables import AGENT_TABLE_NAMES, SCHEMAS, TABLE_NAMES, empty_table

if TYPE_CHECKING:
    import duckdb
    import polars as pl

    from sessionkit._store import Snapshot
    from sessionkit.tables import SessionTables

__all__ = ["EXCHANGES_SQL", "LOCKED_HINT", "Data", "connect", "connection", "is_locked", "scan_parquet", "sql_string"]

#: What the helpers accept as data: tables in memory, a dataset folder, or a connection.
Data = Union["SessionTables", str, os.PathLike, "duckdb.DuckDBPyConnection"]

#: One row per exchange: the user message and the agent response at the same ``seq``.
#: The tool aggregate has no WHERE (a null ``response_seq`` matches no ``seq`` anyway), so that
#: DuckDB drops the join from queries that read none of its columns.
EXCHANGES_SQL = """
CREATE OR REPLACE VIEW exchanges AS
SELECT
    m.session_id,
    m.seq,
    m.content AS user_content,
    m.timestamp AS user_timestamp,
    r.content AS response_content,
    r.timestamp AS response_timestamp,
    (epoch_ns(r.timestamp) - epoch_ns(m.timestamp)) / 1e9 AS latency_s,
    r.seed_id,
    r.phase_reached,
    r.evaluation_passed,
    coalesce(t.n_tool_calls, 0) AS n_tool_calls,
    coalesce(t.tool_errors, 0) AS tool_errors,
    coalesce(t.tool_ms, 0) AS tool_ms,
    s.project_id,
    g.agent_id,
    g.model_id,
    g.tokens_input,
    g.tokens_output,
    g.cost_usd
FROM messages AS m
JOIN responses AS r ON r.session_id = m.session_id AND r.seq = m.seq
LEFT JOIN sessions AS s ON s.session_id = m.session_id
LEFT JOIN (
    SELECT
        session_id,
        response_seq,
        count(*) AS n_tool_calls,
        count(*) FILTER (WHERE is_error) AS tool_errors,
        CAST(sum(duration_ms) AS BIGINT) AS tool_ms
    FROM tool_calls
    GROUP BY session_id, response_seq
) AS t ON t.session_id = m.session_id AND t.response_seq = m.seq
LEFT JOIN (
    -- the agent runs linked to each exchange (nearly always one: then its own id and model)
    SELECT
        linked_session_id,
        linked_seq,
        min(agent_id) AS agent_id,
        min(model_id) AS model_id,
        CAST(sum(tokens_input) AS BIGINT) AS tokens_input,
        CAST(sum(tokens_output) AS BIGINT) AS tokens_output,
        sum(cost_usd) AS cost_usd
    FROM agents
    GROUP BY linked_session_id, linked_seq
) AS g ON g.linked_session_id = m.session_id AND g.linked_seq = m.seq
"""
# Nothing filters the grouped tool calls nor the grouped runs (a null response_seq or linked_seq
# matches no seq anyway), so that DuckDB can drop either join from a query that reads none of its columns: with a WHERE there it
# kept it, and a query of latencies over 200,000 synthetic sessions (2.2M tool calls, bench/synth.py)
# took 2.5 times as long.

#: What to tell someone whose SQL hit the lock-down (DuckDB's own message says what was refused).
LOCKED_HINT = (
    "Hint: this connection is read-only: it reads the views sessions, messages, responses, metadata, "
    "tool_calls, reasoning, agents, agent_tool_calls and exchanges, and no files, extensions or settings; "
    "in Python, sk.connect(..., read_only=False) "
    "gives an unlocked one"
)

# The lock-down, in order: each setting is refused once external access is off or the
# configuration is locked, so the SQL cannot undo any of them.
_LOCK_SETTINGS = (
    "SET python_enable_replacements = false",  # no scans of the caller's Python variables by name
    "SET allowed_directories = []",
    "SET allowed_paths = []",
    "SET enable_external_access = false",  # no file, URL or database outside the allowed ones
    "SET autoinstall_known_extensions = false",
    "SET autoload_known_extensions = false",
    "SET allow_community_extensions = false",
    "SET allow_persistent_secrets = false",
    "SET lock_configuration = true",  # and no SET, RESET or PRAGMA can change any of it back
)

#: How much a locked connection may spill unless ``config`` says otherwise (DuckDB's own
#: default is 90% of the free disk).
MAX_SPILL = "4GiB"
_SPILL_PREFIX = "sessionkit-duckdb-"


def sql_string(text: str) -> str:
    """``text`` as a SQL string literal.

    Example:
        >>> sql_string("it's")
        "'it''s'"
    """
    return "'" + text.replace("'", "''") + "'"


def connect(
    data: Data, *, read_only: bool | None = None, config: Mapping[str, str | int | bool] | None = None
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with views ``sessions``, ``messages``, ``responses``, ``metadata``, ``exchanges``.

    ``data`` is a ``SessionTables`` (registered as Arrow tables, no copy), a dataset folder, or
    ``s3://bucket/prefix`` (read through pyarrow's S3 file system; see ``sessionkit._s3``).
    A connection passed in is returned as it is (with ``read_only=True``, only if it is locked).

    ``read_only`` (default: True for a dataset folder, False for tables in memory) locks the
    connection down: DuckDB itself opens no file at all (a folder's Parquet files are read for
    it through ``pyarrow.dataset``), external access, extension install and load, community
    extensions and persistent secrets are off, Python variables cannot be scanned by name, and
    the configuration is locked, so no ``SET`` can undo this. Reading or globbing any file
    (``read_csv('/etc/passwd')``, ``read_text``, ``glob('/')``, URLs), ``COPY ... TO`` anywhere
    (the dataset's own folder included), ``ATTACH``, ``EXPORT DATABASE``, ``INSTALL``/``LOAD``
    and ``CREATE SECRET`` fail with a DuckDB error; ``SELECT`` over the views works as before.

    Large sorts and joins spill to a private folder (``$TMPDIR/sessionkit-duckdb-<pid>-<random>``,
    mode 0700) of at most ``MAX_SPILL``. DuckDB lets SQL write files there too (``COPY``,
    ``ATTACH``, ``EXPORT DATABASE``; that cap does not bound them), so the folder goes with the
    connection: when it is closed and dropped, at exit, or, for a killed process, at the next
    locked ``connect``. ``config={"temp_directory": ""}`` allows no file at all: a query
    larger than ``memory_limit`` then fails instead of spilling.

    Not covered: the SQL can still use memory and CPU without bound (run untrusted SQL in a
    process with limits and a timeout), create tables and macros in this connection's own
    in-memory database, and fill the disk through the spill folder while the connection lives.
    The lock-down guards the machine, not the data: every row of the views is readable, so
    pseudonymise or redact at export what SQL users must not see. ``read_only=False`` gives the
    old unlocked connection, whose SQL can read and write any file the process can.

    ``config`` holds DuckDB settings for a new connection, applied before the lock-down, e.g.
    ``{"memory_limit": "2GB", "threads": 2}`` for SQL you do not trust, or
    ``"max_temp_directory_size"`` for another spill cap.

    Raises:
        PrivacyError: ``read_only=True`` with a connection that is not locked.

    Example:
        >>> import sessionkit as sk
        >>> con = sk.connect("build/sample-dataset")  # doctest: +SKIP
        >>> con.sql("SELECT count(*) FROM exchanges").fetchall()  # doctest: +SKIP
        [(1843,)]
        >>> con.sql("SELECT * FROM read_csv('/etc/passwd')")  # doctest: +SKIP
        Traceback (most recent call last):
        duckdb.PermissionException: Permission Error: Cannot access file "/etc/passwd" - ...
    """
    import duckdb

    if isinstance(data, duckdb.DuckDBPyConnection):
        if read_only and not is_locked(data):
            msg = f"connect(..., read_only=True) was given a DuckDB connection that is not locked down. {LOCKED_HINT.replace('Hint: this', 'Hint: a locked')}; pass the dataset or tables instead of a connection"
            raise PrivacyError(msg)
        return data
    if isinstance(data, (str, os.PathLike)):
        snapshot = open_store(data).open()  # one version: every view reads its files
        read_only = True if read_only is None else read_only
        con = _dataset_connection(snapshot, read_only, config)
    else:
        from sessionkit.tables import SessionTables  # here: a dataset folder needs only the schemas

        if not isinstance(data, SessionTables):
            msg = f"connect takes SessionTables, a dataset folder or a DuckDB connection, got {type(data).__name__}"
            raise TypeError(msg)
        con = duckdb.connect(config=dict(config or {}))
        for name, table in data.items():
            _view(con, name, table)
        for name in AGENT_TABLE_NAMES:  # tables in memory hold no agent records
            _view(con, name, empty_table(SCHEMAS[name]))
        read_only = bool(read_only)
    con.execute(EXCHANGES_SQL)
    if read_only:
        _lock(con, config or {})
    return con


def _dataset_connection(
    snapshot: Snapshot, read_only: bool, config: Mapping[str, str | int | bool] | None
) -> duckdb.DuckDBPyConnection:
    """A new connection with a view of each table of ``snapshot`` (not yet locked, no ``exchanges``)."""
    import duckdb

    con = duckdb.connect(config=dict(config or {}))
    for name in (*TABLE_NAMES, *AGENT_TABLE_NAMES):
        files = snapshot.paths(name)
        if not files:
            _view(con, name, empty_table(SCHEMAS[name]))
        elif read_only or snapshot.remote:  # S3: through pyarrow, no DuckDB extension
            _view(con, name, snapshot.dataset(name))
        else:  # the very files of the version resolved, read by DuckDB itself
            listed = ", ".join(sql_string(path) for path in files)
            columns = ", ".join(field.name for field in SCHEMAS[name])
            try:
                con.execute(
                    f"CREATE VIEW {name} AS SELECT {columns} FROM read_parquet([{listed}], union_by_name = true)"
                )
            except duckdb.BinderException:  # files of an older sessionkit lack later columns: nulls
                _view(con, name, snapshot.dataset(name))
    return con


def scan_parquet(dataset: str | os.PathLike[str]) -> dict[str, pl.LazyFrame]:
    """Lazy polars frames of the tables (``tool_calls``, ``reasoning``, ``agents`` and
    ``agent_tool_calls`` too) and of ``exchanges``; nothing is read until collected.

    All of them read one version of the dataset. ``exchanges`` is the view of ``connect``, run
    by DuckDB when collected (its one definition is ``EXCHANGES_SQL``); the tables are polars'
    own Parquet scans.

    Example:
        >>> import sessionkit as sk, polars as pl
        >>> lf = sk.scan_parquet("build/sample-dataset")  # doctest: +SKIP
        >>> lf["responses"].filter(pl.col("seed_id") == "seed-3").select(pl.len()).collect()  # doctest: +SKIP
    """
    import polars as pl

    snapshot = open_store(dataset).open()
    frames: dict[str, pl.LazyFrame] = {}
    for name in (*TABLE_NAMES, *AGENT_TABLE_NAMES):
        files = snapshot.paths(name)
        schema = pl.Schema(pl.DataFrame(empty_table(SCHEMAS[name])).schema)
        if not files:
            frames[name] = pl.LazyFrame(schema=schema)
        elif not snapshot.remote:
            frames[name] = pl.scan_parquet(files, schema=schema, missing_columns="insert")  # older files: nulls
        else:  # on S3, through pyarrow's file system and its AWS settings; still lazy
            frames[name] = pl.scan_pyarrow_dataset(snapshot.dataset(name))
    con = _dataset_connection(snapshot, True, None)
    con.execute(EXCHANGES_SQL)
    _lock(con, {})
    times = pl.col("user_timestamp", "response_timestamp")
    # DuckDB names the zone Etc/UTC; the tables' frames (and the declared schemas) say UTC
    frames["exchanges"] = (
        con.sql("SELECT * FROM exchanges").pl(lazy=True).with_columns(times.dt.convert_time_zone("UTC"))
    )
    return frames


def _view(con: duckdb.DuckDBPyConnection, name: str, source: object) -> None:
    """A view ``name`` over an Arrow table or dataset registered on ``con`` (no copy)."""
    con.register(f"_sessionkit_{name}", source)
    con.execute(f"CREATE VIEW {name} AS SELECT * FROM _sessionkit_{name}")


def _lock(con: duckdb.DuckDBPyConnection, config: Mapping[str, str | int | bool]) -> None:
    if "temp_directory" not in config:
        # A spill folder of its own (0700), instead of ``.tmp`` in the working directory. DuckDB
        # lets the SQL write there (COPY, ATTACH, EXPORT DATABASE), so the folder goes with the
        # connection, not only DuckDB's own spill files; a killed process's goes at the next lock.
        _sweep_spill_folders()
        spill = tempfile.mkdtemp(prefix=f"{_SPILL_PREFIX}{os.getpid()}-")
        weakref.finalize(con, shutil.rmtree, spill, ignore_errors=True)
        con.execute(f"SET temp_directory = {sql_string(spill)}")
    if "max_temp_directory_size" not in config:
        con.execute(f"SET max_temp_directory_size = {sql_string(MAX_SPILL)}")
    for statement in _LOCK_SETTINGS:
        con.execute(statement)


def _sweep_spill_folders() -> None:
    """Remove the spill folders of this user's processes that are gone (killed before they
    could remove their own). POSIX only: elsewhere nothing is swept."""
    if os.name != "posix":
        return
    try:
        entries = list(os.scandir(tempfile.gettempdir()))
    except OSError:
        return
    for entry in entries:
        pid, sep, _ = entry.name.removeprefix(_SPILL_PREFIX).partition("-")
        if not entry.name.startswith(_SPILL_PREFIX) or not sep or not pid.isdigit() or pid_alive(int(pid)):
            continue
        try:
            if entry.is_dir(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_uid == os.getuid():
                shutil.rmtree(entry.path, ignore_errors=True)
        except OSError:
            continue


def is_locked(con: duckdb.DuckDBPyConnection) -> bool:
    """True when ``con`` is locked down as ``connect(..., read_only=True)`` leaves it.

    Example:
        >>> import sessionkit as sk
        >>> tables = sk.to_tables([])
        >>> is_locked(connect(tables)), is_locked(connect(tables, read_only=True))
        (False, True)
    """
    row = con.execute(
        "SELECT current_setting('lock_configuration'), current_setting('enable_external_access'), "
        "current_setting('autoload_known_extensions'), current_setting('autoinstall_known_extensions')"
    ).fetchall()[0]
    return row == (True, False, False, False)


@contextmanager
def connection(data: Data, *, read_only: bool | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """``connect(data, read_only=...)`` for a ``with`` block: a connection opened here is closed
    after it, one passed in is left open. ``read_only=False`` is for SQL you trust, such as
    sessionkit's own: a dataset folder is then read by DuckDB's own Parquet reader (statistics,
    row-group skipping, all cores), without a progress bar.

    Example:
        >>> from sessionkit.query import connection
        >>> with connection("build/sample-dataset") as con:  # doctest: +SKIP
        ...     con.sql("SELECT count(*) FROM sessions").fetchall()
        [(300,)]
    """
    import duckdb

    con = connect(data, read_only=read_only)
    if read_only is False and isinstance(data, (str, os.PathLike)):
        # in Jupyter without ipywidgets, DuckDB refuses the setting, and shows no bar there anyway
        with suppress(duckdb.Error):
            con.execute("SET enable_progress_bar = false")
    try:
        yield con
    finally:
        if not isinstance(data, duckdb.DuckDBPyConnection):
            con.close()
