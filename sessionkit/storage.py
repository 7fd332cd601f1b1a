"""The Parquet dataset on disk: its layout, atomic publishing, and reading and scanning it.

A dataset is a folder ``OUT/`` in which ``OUT/<table>/**/*.parquet`` reads a table with any
engine (DuckDB, polars, Spark). Datasets that sessionkit writes are versioned so that readers
never see a half-written one::

    OUT/sessions -> .sessionkit/current/sessions      (likewise messages, responses, metadata,
    OUT/_sessionkit.json -> .sessionkit/current/manifest.json    runs and errors)
    OUT/.sessionkit/current -> versions/000007         (switched atomically, last)
    OUT/.sessionkit/versions/000007/<table>/created_date=2026-05-01/part-<run>-00003.parquet
    OUT/quarantine/                                     (copies of files that were not sessions)

The four session tables are partitioned Hive-style by the UTC date of the session's
``created_at`` (a session's messages, responses and metadata sit in its partition), so
engines that read ``created_date=`` folders (DuckDB's ``hive_partitioning``, polars, Spark)
skip the dates a query filters out. File names carry the run id, so files of different runs
never collide. Within a date, rows follow the order in which export read the files.

A writer builds the next version in ``.sessionkit/staging-*`` (hard links for unchanged
parts), renames it into ``versions/``, then switches ``current`` with one atomic rename.
The previous version is kept until the next publish, for readers still in flight. A writer
killed at any point leaves the current version untouched; the next writer clears its debris.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from sessionkit._s3 import is_s3
from sessionkit.exceptions import DatasetError, DatasetExistsError, DatasetLockedError, SourceNotFoundError
from sessionkit.tables import (
    ARCHIVE_SCHEMAS,
    SCHEMA_VERSION,
    SCHEMAS,
    TABLE_NAMES,
    SessionTables,
    empty_table,
    take_sessions,
)

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "ALL_TABLES",
    "MANIFEST_NAME",
    "PARTITION_COLUMN",
    "ROW_GROUP_ROWS",
    "Snapshot",
    "TableWriter",
    "by_created_date",
    "check_dataset",
    "failpoint",
    "is_dataset",
    "open_dataset",
    "read_parquet",
    "scan_parquet",
    "table_files",
    "table_glob",
    "write_parquet",
]

#: The Hive partition of the session tables: the UTC date of the session's ``created_at``.
PARTITION_COLUMN = "created_date"
_NS_PER_DAY = 86_400_000_000_000
#: The file in a dataset's folder that says what it is and how it was made.
MANIFEST_NAME = "_sessionkit.json"
DATASET_FORMAT = "sessionkit-dataset"
_COMPRESSION = "zstd"
ROW_GROUP_ROWS = 128 * 1024
_ROW_GROUP_BYTES = 64 * 1024 * 1024


def _version() -> str:
    from sessionkit import __version__

    return __version__


# -- paths ---------------------------------------------------------------------------------------
def table_glob(dataset: str | os.PathLike[str], table: str) -> str:
    """The glob that reads one table with any engine: ``OUT/<table>/**/*.parquet``."""
    return str(Path(dataset) / table / "**" / "*.parquet")


def by_created_date(sessions: pa.Table, name: str) -> list[tuple[str, list[int]]]:
    """The sessions' positions grouped by the UTC date of their ``created_at``, each with the
    key of its file, ``created_date=YYYY-MM-DD/<name>``; dates in order, positions in order."""
    import numpy as np

    days = np.floor_divide(sessions["created_at"].cast(pa.int64()).to_numpy(), _NS_PER_DAY)
    groups = []
    for day in np.unique(days):
        date = (np.datetime64(0, "D") + int(day)).item().isoformat()
        groups.append((f"{PARTITION_COLUMN}={date}/{name}", np.flatnonzero(days == day).tolist()))
    return groups


def is_dataset(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a folder holding a sessionkit dataset."""
    path = Path(path)
    return path.is_dir() and all((path / name).is_dir() for name in TABLE_NAMES)


def check_dataset(path: str | os.PathLike[str]) -> Path:
    """The folder to read a dataset from, checked: for a versioned dataset, its current version.

    Resolving the version once gives a reader one consistent snapshot, even while an export
    publishes the next version (the previous one is kept until the publish after that).

    Raises:
        SourceNotFoundError: there is no such folder.
        DatasetError: the folder holds no sessionkit dataset.
    """
    if is_s3(path):
        msg = f"{path}: an s3:// dataset has no folder to check. Hint: use sessionkit.storage.open_dataset, which reads its manifest"
        raise DatasetError(msg)
    path = Path(path)
    if not path.exists():
        msg = f"{path}: no such dataset folder. Hint: create one with `sessionkit export SRC {path}`"
        raise SourceNotFoundError(msg)
    version = current_version(path)
    folder = version if version is not None else path
    missing = [name for name in TABLE_NAMES if not (folder / name).is_dir()]
    if missing:
        msg = f"{path}: not a sessionkit dataset (no {', '.join(n + '/' for n in missing)} folder). Hint: point at the OUT folder of `sessionkit export`"
        raise DatasetError(msg)
    return folder


def table_files(dataset: Path, table: str) -> list[str]:
    """The Parquet files of one table of a checked local dataset folder (see ``check_dataset``)."""
    return sorted(str(p) for p in (dataset / table).rglob("*.parquet") if not p.name.startswith((".", "_")))


@dataclass(frozen=True)
class Snapshot:
    """One version of a dataset, local or on S3: the files of every table, and how to read them.

    ``filesystem`` is None for a local dataset, else pyarrow's file system the paths belong to.
    """

    location: str
    files: dict[str, list[str]]
    filesystem: Any = None
    version: int | None = None
    sizes: dict[str, int] | None = None  # path -> bytes, where the manifest records them

    def dataset(self, table: str) -> Any:
        """A ``pyarrow.dataset.Dataset`` of one table with its declared schema (nothing read yet)."""
        import pyarrow.dataset as ds  # here, not at the top: it imports pandas when installed

        paths, schema = self.files.get(table, []), ALL_SCHEMAS[table]
        if self.sizes is None or not paths or any(p not in self.sizes for p in paths):
            return ds.dataset(paths, schema=schema, format="parquet", filesystem=self.filesystem)
        # sizes known: no request per file to learn them (on S3, one round trip fewer each)
        form = ds.ParquetFileFormat()
        fragments = [form.make_fragment(p, filesystem=self.filesystem, file_size=self.sizes[p]) for p in paths]
        return ds.FileSystemDataset(fragments, schema, form, self.filesystem)

    def read(self, table: str) -> pa.Table:
        """One table, read whole into memory."""
        try:
            return self.dataset(table).to_table()
        except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as err:
            msg = f"{self.location}/{table}: cannot be read as the {table} table ({err}). Hint: the dataset may be damaged, from another tool, or changed by an export while it was read; read it again or re-export it"
            raise DatasetError(msg) from err

    def rows(self, table: str) -> int:
        """The rows of one table, from the Parquet footers alone."""
        return sum(fragment.metadata.num_rows for fragment in self.dataset(table).get_fragments())


def open_dataset(dataset: str | os.PathLike[str]) -> Snapshot:
    """The current version of a dataset: a local folder, or ``s3://bucket/prefix``.

    Resolved once, so everything read through the snapshot comes from one version, even
    while an export publishes the next.

    Raises:
        SourceNotFoundError: no such folder, or nothing published at that S3 prefix.
        DatasetError: the folder or prefix holds no sessionkit dataset, or S3 cannot be reached.
    """
    if is_s3(dataset):
        from sessionkit import _s3

        location = _s3.S3Location.parse(str(dataset))
        fs = _s3.filesystem()
        latest = _s3.latest_manifest(fs, location)
        if latest is None:
            msg = f"{location.uri}: no sessionkit dataset there (no {_s3.MANIFESTS}/). Hint: create one with `sessionkit export SRC {location.uri}`"
            raise SourceNotFoundError(msg)
        version, manifest = latest
        files = {name: [location.path(key) for key in manifest["files"].get(name, [])] for name in ALL_TABLES}
        sizes = {location.path(key): size for key, size in manifest.get("sizes", {}).items()}
        return Snapshot(location.uri, files, fs, version, sizes)
    folder = check_dataset(dataset)
    current = current_version(Path(dataset))
    files = {name: table_files(folder, name) for name in ALL_TABLES}
    return Snapshot(str(dataset), files, None, int(current.name) if current is not None else None)


def failpoint(name: str) -> None:
    """A testing hook: with ``SESSIONKIT_FAILPOINT=<name>`` the process kills itself (SIGKILL)
    right here, so tests can prove that a crash at every step leaves a readable dataset."""
    if os.environ.get("SESSIONKIT_FAILPOINT") == name:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


STATE_DIR = ".sessionkit"
QUARANTINE_DIR = "quarantine"
#: Every table folder of a dataset that export writes: the four session tables, runs, errors.
ALL_TABLES = (*TABLE_NAMES, *ARCHIVE_SCHEMAS)
ALL_SCHEMAS = {**SCHEMAS, **ARCHIVE_SCHEMAS}


def current_version(out: Path) -> Path | None:
    """The folder of the dataset's current version, or None for a dataset not versioned."""
    pointer = out / STATE_DIR / "current"
    return pointer.resolve() if pointer.is_symlink() and pointer.exists() else None


def check_writable(out: Path) -> None:
    """``out`` must be absent, empty, or a versioned sessionkit dataset."""
    if not out.exists():
        return
    if not out.is_dir():
        msg = f"{out}: exists and is not a folder. Hint: choose a folder for the dataset"
        raise DatasetExistsError(msg)
    if (out / STATE_DIR).is_dir() or not any(out.iterdir()):
        return
    msg = (
        f"{out}: the folder holds files that are not a sessionkit dataset. "
        "Hint: export into a new or empty folder, or into a dataset that sessionkit export made"
    )
    raise DatasetExistsError(msg)


@contextmanager
def writer_lock(out: Path) -> Iterator[None]:
    """Hold the dataset's one-writer lock; a second writer fails at once with a clear message.

    The lock is an advisory ``flock`` on ``.sessionkit/lock``: the kernel drops it when the
    holder dies, even by SIGKILL, so a crash never leaves a stale lock behind.
    """
    state = out / STATE_DIR
    state.mkdir(parents=True, exist_ok=True)
    fd = os.open(state / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            msg = (
                f"{out}: another export is writing this dataset ({holder}). Hint: wait for it to finish, then run again"
            )
            raise DatasetLockedError(msg) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing drops the flock


def recover(out: Path) -> None:
    """Clear what a killed writer left: staging folders, a half-made pointer, unpublished versions.

    Call with the writer lock held.
    """
    state = out / STATE_DIR
    if not state.is_dir():
        return
    current = current_version(out)
    for entry in state.iterdir():
        if entry.name.startswith(("staging-", "current.tmp-")):
            _remove(entry)
    versions = state / "versions"
    if versions.is_dir():
        for entry in versions.iterdir():
            if current is None or entry.name > current.name:
                _remove(entry)


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def new_staging(out: Path, run_id: str) -> Path:
    """An empty folder for the next version, with one folder per table."""
    staging = out / STATE_DIR / f"staging-{run_id}"
    for name in ALL_TABLES:
        (staging / name).mkdir(parents=True, exist_ok=True)
    return staging


def _fsync(path: Path, *, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_tree(folder: Path) -> None:
    """Make every file and folder under ``folder`` durable: one ``syncfs`` of its file system
    where Linux offers it (a partitioned version has thousands of small files), else an
    ``fsync`` of each."""
    if _syncfs is not None:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            if _syncfs(fd) == 0:
                return
        finally:
            os.close(fd)
    for parent, _, names in os.walk(folder):
        for name in names:
            _fsync(Path(parent) / name)
        _fsync(Path(parent), directory=True)


def _find_syncfs() -> Any:
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None


_syncfs = _find_syncfs()


def publish(out: Path, staging: Path, *, durable: bool = True) -> Path:
    """Make ``staging`` the dataset's current version: rename it into ``versions/``, switch the
    pointer with one atomic rename, then drop versions older than the previous one.

    With ``durable`` the new files are fsynced first, so a power cut cannot publish a
    version whose data is not on disk. Call with the writer lock held.
    """
    state = out / STATE_DIR
    versions = state / "versions"
    versions.mkdir(parents=True, exist_ok=True)
    if durable:
        _sync_tree(staging)
    previous = current_version(out)
    number = 1 + max((int(p.name) for p in versions.iterdir() if p.name.isdigit()), default=0)
    final = versions / f"{number:06d}"
    failpoint("before-rename")
    os.rename(staging, final)
    failpoint("after-rename")
    pointer_tmp = state / f"current.tmp-{os.getpid()}"
    pointer_tmp.unlink(missing_ok=True)
    os.symlink(f"versions/{final.name}", pointer_tmp)
    if durable:
        _fsync(versions, directory=True)
    failpoint("before-switch")
    os.replace(pointer_tmp, state / "current")  # the moment of publication
    failpoint("after-switch")
    if durable:
        _fsync(state, directory=True)
    for name in (*ALL_TABLES, MANIFEST_NAME):
        link = out / name
        if not link.is_symlink():
            target = f"{STATE_DIR}/current/{'manifest.json' if name == MANIFEST_NAME else name}"
            os.symlink(target, link, target_is_directory=name != MANIFEST_NAME)
    for entry in versions.iterdir():
        if entry != final and (previous is None or entry != previous):
            _remove(entry)
    failpoint("after-cleanup")
    return final


def link_or_copy(source: Path, target: Path) -> None:
    """Hard-link an unchanged file into the next version (a copy where links are refused)."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def write_manifest(folder: Path, info: dict[str, Any], *, name: str = MANIFEST_NAME) -> None:
    """Describe a dataset (or one version of it): format, schema version, table globs, and ``info``."""
    manifest = {
        "format": DATASET_FORMAT,
        "schema_version": SCHEMA_VERSION,
        "sessionkit_version": _version(),
        "tables": {name: f"{name}/**/*.parquet" for name in TABLE_NAMES},
        **info,
    }
    (folder / name).write_text(json.dumps(manifest, indent=2) + "\n")


_FREE_TEXT = frozenset({"content", "extra", "value", "message"})


class TableWriter:
    """Streams one table into one Parquet file, in row groups of a bounded size."""

    def __init__(self, path: Path, schema: pa.Schema, row_group_rows: int) -> None:
        free_text = [name for name in schema.names if name in _FREE_TEXT]
        self.writer = pq.ParquetWriter(
            path,
            schema,
            compression=_COMPRESSION,
            # ids, phases and keys repeat and compress well in a dictionary; free text does not,
            # and its min/max statistics would only bloat the footer
            use_dictionary=[name for name in schema.names if name not in free_text],
            write_statistics=[name for name in schema.names if name not in free_text],
        )
        self.row_group_rows = row_group_rows
        self.pending: list[pa.Table] = []
        self.pending_rows = 0
        self.pending_bytes = 0
        self.rows = 0
        self.row_groups = 0

    def add(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        self.pending.append(table)
        self.pending_rows += table.num_rows
        self.pending_bytes += table.nbytes
        while self.pending_rows >= self.row_group_rows or self.pending_bytes >= _ROW_GROUP_BYTES:
            self._flush(min(self.row_group_rows, self.pending_rows))

    def _flush(self, rows: int) -> None:
        table = pa.concat_tables(self.pending)
        head, tail = table.slice(0, rows), table.slice(rows)
        self.writer.write_table(head, row_group_size=rows)
        self.rows += head.num_rows
        self.row_groups += 1
        self.pending = [tail] if tail.num_rows else []
        self.pending_rows = tail.num_rows
        self.pending_bytes = tail.nbytes if tail.num_rows else 0

    def close(self) -> None:
        if self.pending_rows:
            self._flush(self.pending_rows)
        self.writer.close()


# -- writing tables ---------------------------------------------------------------------------
def write_parquet(tables: SessionTables, out: str | os.PathLike[str], *, row_group_rows: int = ROW_GROUP_ROWS) -> Path:
    """Write tables as a new Parquet dataset folder ``out`` (absent or empty), published atomically.

    Example:
        >>> import sessionkit as sk
        >>> tables = sk.to_tables(sk.read_sessions("data/oxios-sample"))  # doctest: +SKIP
        >>> sk.write_parquet(tables, "build/sample-dataset")  # doctest: +SKIP
    """
    out = Path(out)
    check_writable(out)
    if (out / STATE_DIR).is_dir():
        msg = f"{out}: already holds a dataset. Hint: write into a new folder, or use `sessionkit export` to update it"
        raise DatasetExistsError(msg)
    with writer_lock(out):
        run = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{os.getpid()}"
        staging = new_staging(out, run)
        try:
            tables = SessionTables(**{name: tables[name].cast(SCHEMAS[name]) for name in TABLE_NAMES})
            groups = by_created_date(tables.sessions, f"part-{run}-00000.parquet")
            for key, rows in groups or [(f"part-{run}-00000.parquet", [])]:
                piece = tables if len(rows) == tables.sessions.num_rows else take_sessions(tables, rows)
                for name, schema in SCHEMAS.items():
                    (staging / name / key).parent.mkdir(parents=True, exist_ok=True)
                    writer = TableWriter(staging / name / key, schema, row_group_rows)
                    writer.add(piece[name])
                    writer.close()
            for name, schema in ARCHIVE_SCHEMAS.items():
                TableWriter(staging / name / f"part-{run}-00000.parquet", schema, row_group_rows).close()
            counts = {name: t.num_rows for name, t in tables.items()}
            write_manifest(staging, {"counts": counts}, name="manifest.json")
            publish(out, staging)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return out


def read_parquet(dataset: str | os.PathLike[str]) -> SessionTables:
    """Read a dataset (a folder, or ``s3://bucket/prefix``) into memory as ``SessionTables`` (columns cast to the declared schemas).

    Example:
        >>> import sessionkit as sk
        >>> data = sk.read_parquet("build/sample-dataset")  # doctest: +SKIP
        >>> data.sessions.num_rows  # doctest: +SKIP
        300
    """
    snapshot = open_dataset(dataset)
    tables = {name: snapshot.read(name) for name in TABLE_NAMES}
    return SessionTables(**tables)


def scan_parquet(dataset: str | os.PathLike[str]) -> dict[str, pl.LazyFrame]:
    """Lazy polars frames of the tables and of ``exchanges``; nothing is read until collected.

    Example:
        >>> import sessionkit as sk, polars as pl
        >>> lf = sk.scan_parquet("build/sample-dataset")  # doctest: +SKIP
        >>> lf["responses"].filter(pl.col("seed_id") == "seed-3").select(pl.len()).collect()  # doctest: +SKIP
    """
    import polars as pl

    snapshot = open_dataset(dataset)
    frames: dict[str, pl.LazyFrame] = {}
    for name in TABLE_NAMES:
        files = snapshot.files[name]
        schema = pl.Schema(pl.from_arrow(empty_table(SCHEMAS[name])).schema)
        if not files:
            frames[name] = pl.LazyFrame(schema=schema)
        elif snapshot.filesystem is None:
            frames[name] = pl.scan_parquet(files, schema=schema)
        else:  # on S3, through pyarrow's file system and its AWS settings; still lazy
            frames[name] = pl.scan_pyarrow_dataset(snapshot.dataset(name))
    messages = frames["messages"].select(
        "session_id", "seq", pl.col("content").alias("user_content"), pl.col("timestamp").alias("user_timestamp")
    )
    responses = frames["responses"].select(
        "session_id",
        "seq",
        pl.col("content").alias("response_content"),
        pl.col("timestamp").alias("response_timestamp"),
        "seed_id",
        "phase_reached",
        "evaluation_passed",
    )
    frames["exchanges"] = messages.join(responses, on=["session_id", "seq"], how="inner").select(
        "session_id",
        "seq",
        "user_content",
        "user_timestamp",
        "response_content",
        "response_timestamp",
        ((pl.col("response_timestamp").dt.epoch("ns") - pl.col("user_timestamp").dt.epoch("ns")) / 1e9).alias(
            "latency_s"
        ),
        "seed_id",
        "phase_reached",
        "evaluation_passed",
    )
    return frames
