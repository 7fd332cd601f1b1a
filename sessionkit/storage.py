"""The Parquet dataset: reading, scanning and writing it, on disk or on S3.

A dataset is a folder ``OUT/`` in which ``OUT/<table>/**/*.parquet`` reads a table with any
engine (DuckDB, polars, Spark). Each table is a few large files whose rows are ordered by the
creation time of their session (then session id, then position), in row groups of 128k rows,
so that Parquet statistics let engines skip row groups for a time filter; a dataset may also
be partitioned Hive-style by month or day of that time (see ``sessionkit._layout``).
Datasets that sessionkit writes are versioned so that readers never see a half-written one
(see ``sessionkit._versions``)::

    OUT/sessions -> .sessionkit/current/sessions      (likewise messages, responses, metadata,
    OUT/_sessionkit.json -> .sessionkit/current/manifest.json    runs and errors)
    OUT/.sessionkit/current -> versions/000007         (switched atomically, last)
    OUT/quarantine/                                     (copies of files that were not sessions)

Datasets made by older sessionkits (one folder per creation day, many small files) are read
the same way; ``sessionkit compact`` rewrites them into the current layout.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from sessionkit._layout import (
    PARTITION_COLUMNS,
    ROW_GROUP_ROWS,
    DataFile,
    Layout,
    TableWriter,
    check_partition_by,
    files_record,
    write_clustered,
    write_empty,
)
from sessionkit._periods import NS_PER_DAY
from sessionkit._store import ALL_TABLES, Snapshot, check_folder, open_store
from sessionkit._versions import (
    DATASET_FORMAT,
    MANIFEST_NAME,
    QUARANTINE_DIR,
    STATE_DIR,
    VERSION_MANIFEST,
    check_writable,
    current_version,
    failpoint,
    link_or_copy,
    new_staging,
    publish,
    recover,
    write_manifest,
    writer_lock,
)
from sessionkit.exceptions import DatasetExistsError
from sessionkit.tables import (
    SCHEMAS,
    TABLE_NAMES,
)

if TYPE_CHECKING:
    from sessionkit.tables import SessionTables

__all__ = [
    "ALL_TABLES",
    "DATASET_FORMAT",
    "MANIFEST_NAME",
    "PARTITION_COLUMNS",
    "QUARANTINE_DIR",
    "ROW_GROUP_ROWS",
    "STATE_DIR",
    "DataFile",
    "Layout",
    "Snapshot",
    "TableWriter",
    "by_created_date",
    "check_dataset",
    "check_writable",
    "current_version",
    "failpoint",
    "link_or_copy",
    "new_staging",
    "open_dataset",
    "publish",
    "read_parquet",
    "recover",
    "table_files",
    "table_glob",
    "write_manifest",
    "write_parquet",
    "writer_lock",
]


# -- paths ---------------------------------------------------------------------------------------
def table_glob(dataset: str | os.PathLike[str], table: str) -> str:
    """The glob that reads one table with any engine: ``OUT/<table>/**/*.parquet``."""
    return str(Path(dataset) / table / "**" / "*.parquet")


def by_created_date(sessions: pa.Table, name: str) -> list[tuple[str, list[int]]]:
    """The sessions' positions grouped by the UTC date of their ``created_at``, each with the
    key of its file, ``created_date=YYYY-MM-DD/<name>``; dates in order, positions in order
    (the layout of datasets made by sessionkit before 0.2, which tests and benchmarks make)."""
    import numpy as np

    days = np.floor_divide(sessions["created_at"].cast(pa.int64()).to_numpy(), NS_PER_DAY)
    groups = []
    for day in np.unique(days):
        date = (np.datetime64(0, "D") + int(day)).item().isoformat()
        groups.append((f"{PARTITION_COLUMNS['day']}={date}/{name}", np.flatnonzero(days == day).tolist()))
    return groups


def check_dataset(path: str | os.PathLike[str]) -> Path:
    """The folder to read a dataset from, checked: for a versioned dataset, its current version.

    Resolving the version once gives a reader one consistent snapshot, even while an export
    publishes the next version (the previous one is kept until the publish after that).

    Raises:
        SourceNotFoundError: there is no such folder.
        DatasetError: the folder holds no sessionkit dataset.
    """
    return check_folder(path)[0]


def table_files(dataset: Path, table: str) -> list[str]:
    """The Parquet files of one table of a checked local dataset folder (see ``check_dataset``),
    by their real paths (a version's table folder may be shared with other versions)."""
    folder = (dataset / table).resolve()
    return sorted(str(p) for p in folder.rglob("*.parquet") if not p.name.startswith((".", "_")))


def open_dataset(dataset: str | os.PathLike[str]) -> Snapshot:
    """The current version of a dataset: a local folder, or ``s3://bucket/prefix``.

    Resolved once, so everything read through the snapshot comes from one version, even
    while an export publishes the next.

    Raises:
        SourceNotFoundError: no such folder, or nothing published at that S3 prefix.
        DatasetError: the folder or prefix holds no sessionkit dataset, or S3 cannot be reached.
    """
    return open_store(dataset).open()


# -- writing tables ---------------------------------------------------------------------------
def write_parquet(
    tables: SessionTables,
    out: str | os.PathLike[str],
    *,
    partition_by: str = "none",
    row_group_rows: int = ROW_GROUP_ROWS,
) -> Path:
    """Write tables as a new Parquet dataset folder ``out`` (absent or empty), published atomically.

    Each table goes into one file, its rows in clustering order (by the creation time of
    their session), or with ``partition_by="month"`` or ``"day"`` one file per partition.

    Example:
        >>> import sessionkit as sk
        >>> tables = sk.to_tables(sk.read_sessions("data/oxios-sample"))  # doctest: +SKIP
        >>> sk.write_parquet(tables, "build/sample-dataset")  # doctest: +SKIP
    """
    out = Path(out)
    layout = Layout(check_partition_by(partition_by))
    check_writable(out)
    if (out / STATE_DIR).is_dir():
        msg = f"{out}: already holds a dataset. Hint: write into a new folder, or use `sessionkit export` to update it"
        raise DatasetExistsError(msg)
    with writer_lock(out):
        run = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{os.getpid()}"
        staging = new_staging(out, run, ALL_TABLES)
        try:
            cast = {name: tables[name].cast(SCHEMAS[name]) for name in TABLE_NAMES}
            name = f"part-{run}-0.parquet"
            files = write_clustered(
                cast, staging, name, partition_by=layout.partition_by, row_group_rows=row_group_rows
            )
            for table in ALL_TABLES:
                if not files.get(table):
                    files[table] = [write_empty(staging, table, name)]
            counts = {table: t.num_rows for table, t in cast.items()}
            info = {"counts": counts, "layout": layout.record(), **files_record(files)}
            write_manifest(staging, info, name=VERSION_MANIFEST)
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
    from sessionkit.tables import SessionTables

    return SessionTables(**tables)
