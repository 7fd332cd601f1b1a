"""The Parquet dataset on disk: its layout, and writing, reading and scanning it.

A dataset is a folder ``OUT/`` with one folder per table, each holding ``.parquet`` files
(zstd), so that ``read_parquet('OUT/messages/**/*.parquet')`` in DuckDB, polars or Spark
reads a table, plus ``OUT/_sessionkit.json`` describing how it was made.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from sessionkit.exceptions import DatasetError, DatasetExistsError, SourceNotFoundError
from sessionkit.tables import SCHEMA_VERSION, SCHEMAS, TABLE_NAMES, SessionTables

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "MANIFEST_NAME",
    "ROW_GROUP_ROWS",
    "TableWriter",
    "check_dataset",
    "is_dataset",
    "read_parquet",
    "scan_parquet",
    "table_files",
    "table_glob",
    "write_parquet",
]

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


def is_dataset(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a folder holding a sessionkit dataset."""
    path = Path(path)
    return path.is_dir() and all((path / name).is_dir() for name in TABLE_NAMES)


def check_dataset(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    if not path.exists():
        msg = f"{path}: no such dataset folder. Hint: create one with `sessionkit export SRC {path}`"
        raise SourceNotFoundError(msg)
    missing = [name for name in TABLE_NAMES if not (path / name).is_dir()]
    if missing:
        msg = f"{path}: not a sessionkit dataset (no {', '.join(n + '/' for n in missing)} folder). Hint: point at the OUT folder of `sessionkit export`"
        raise DatasetError(msg)
    return path


def table_files(dataset: Path, table: str) -> list[str]:
    return sorted(str(p) for p in (dataset / table).rglob("*.parquet") if not p.name.startswith((".", "_")))


def prepare_out(out: Path) -> None:
    if out.exists():
        if not out.is_dir():
            msg = f"{out}: exists and is not a folder. Hint: choose a new folder for the dataset"
            raise DatasetExistsError(msg)
        if any(out.iterdir()):
            msg = f"{out}: the folder already holds files. Hint: export into a new or empty folder (incremental export into an existing dataset is not supported yet)"
            raise DatasetExistsError(msg)


def staging_dir(out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.staging-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    for name in TABLE_NAMES:
        (staging / name).mkdir(parents=True)
    return staging


def publish(staging: Path, out: Path) -> None:
    """Move the finished dataset into place in one rename (``out`` is absent or empty)."""
    if out.exists():
        out.rmdir()
    os.replace(staging, out)


def write_manifest(folder: Path, info: dict[str, Any]) -> None:
    manifest = {
        "format": DATASET_FORMAT,
        "schema_version": SCHEMA_VERSION,
        "sessionkit_version": _version(),
        "tables": {name: f"{name}/**/*.parquet" for name in TABLE_NAMES},
        **info,
    }
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")


class TableWriter:
    """Streams one table into one Parquet file, in row groups of a bounded size."""

    def __init__(self, path: Path, schema: pa.Schema, row_group_rows: int) -> None:
        self.writer = pq.ParquetWriter(path, schema, compression=_COMPRESSION)
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
    """Write tables as a Parquet dataset folder ``out`` (which must be new or empty).

    Example:
        >>> import sessionkit as sk
        >>> tables = sk.to_tables(sk.read_sessions("data/oxios-sample"))  # doctest: +SKIP
        >>> sk.write_parquet(tables, "build/sample-dataset")  # doctest: +SKIP
    """
    out = Path(out)
    prepare_out(out)
    staging = staging_dir(out)
    try:
        for name, table in tables.items():
            writer = TableWriter(staging / name / "part-00000.parquet", SCHEMAS[name], row_group_rows)
            writer.add(table.cast(SCHEMAS[name]))
            writer.close()
        write_manifest(staging, {"counts": {name: t.num_rows for name, t in tables.items()}})
        publish(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def read_parquet(dataset: str | os.PathLike[str]) -> SessionTables:
    """Read a dataset folder into memory as ``SessionTables`` (columns cast to the declared schemas).

    Example:
        >>> import sessionkit as sk
        >>> data = sk.read_parquet("build/sample-dataset")  # doctest: +SKIP
        >>> data.sessions.num_rows  # doctest: +SKIP
        300
    """
    folder = check_dataset(dataset)
    tables = {}
    for name in TABLE_NAMES:
        schema = SCHEMAS[name]
        files = table_files(folder, name)
        try:
            table = ds.dataset(files, schema=schema, format="parquet").to_table()
        except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as err:
            msg = f"{folder / name}: cannot be read as the {name} table ({err}). Hint: the dataset may be damaged or from another tool; re-export it"
            raise DatasetError(msg) from err
        tables[name] = table
    return SessionTables(**tables)


def scan_parquet(dataset: str | os.PathLike[str]) -> dict[str, pl.LazyFrame]:
    """Lazy polars frames of the tables and of ``exchanges``; nothing is read until collected.

    Example:
        >>> import sessionkit as sk, polars as pl
        >>> lf = sk.scan_parquet("build/sample-dataset")  # doctest: +SKIP
        >>> lf["responses"].filter(pl.col("seed_id") == "seed-3").select(pl.len()).collect()  # doctest: +SKIP
    """
    import polars as pl

    folder = check_dataset(dataset)
    frames: dict[str, pl.LazyFrame] = {}
    for name in TABLE_NAMES:
        files = table_files(folder, name)
        schema = pl.Schema(pl.from_arrow(SCHEMAS[name].empty_table()).schema)
        frames[name] = pl.scan_parquet(files, schema=schema) if files else pl.LazyFrame(schema=schema)
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


# names of the first release, kept for callers
_check_dataset = check_dataset
_table_files = table_files
