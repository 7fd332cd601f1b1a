"""How a dataset's tables are cut into Parquet files: partitions, clustering order, file stats.

Each table of a dataset is a set of files, each holding its rows in clustering order (by the
creation time of their session, then session id, then position; see
``sessionkit.tables.Clustering``), in row groups of ``ROW_GROUP_ROWS``. A dataset made with
``partition_by="none"`` (the default) keeps a table's files side by side; ``"month"`` and
``"day"`` put them in Hive-style folders of the creation time (``created_month=2026-05/``,
``created_date=2026-05-01/``), which engines that read such folders skip for a time filter.
Every version of a dataset lists its files with their size, rows and range of creation times
(``DataFile``), so a run finds the files an upsert touches without reading the others.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from sessionkit._periods import NS_PER_DAY
from sessionkit.exceptions import DatasetError
from sessionkit.tables import ARCHIVE_SCHEMAS, CLUSTERING, SCHEMAS

if TYPE_CHECKING:
    import numpy as np

#: How a dataset may be partitioned, and the Hive partition column of each choice.
PARTITION_BY = ("none", "month", "day")
PARTITION_COLUMNS = {"month": "created_month", "day": "created_date"}
#: The size compaction makes files (and below a quarter of which a file counts as small).
TARGET_FILE_BYTES = 256 * 2**20
ROW_GROUP_ROWS = 128 * 1024
_ROW_GROUP_BYTES = 32 * 1024 * 1024
_COMPRESSION = "zstd"
_DAY_FOLDER = re.compile(r"(?:^|/)created_date=(\d{4})-(\d{2})-(\d{2})/")
_MONTH_FOLDER = re.compile(r"(?:^|/)created_month=(\d{4})-(\d{2})/")


@dataclass(frozen=True)
class Layout:
    """How a dataset cuts its tables into files; recorded in its manifest, kept by later runs.

    Attributes:
        partition_by: ``"none"``, ``"month"`` or ``"day"`` (of the sessions' creation, UTC).
        target_size: the size in bytes compaction makes files; a file under a quarter of it
            is small.
    """

    partition_by: str = "none"
    target_size: int = TARGET_FILE_BYTES

    def __post_init__(self) -> None:
        check_partition_by(self.partition_by)
        if self.target_size < 1:
            msg = f"target_size must be a positive number of bytes, not {self.target_size}"
            raise ValueError(msg)

    def record(self) -> dict[str, Any]:
        """The layout as the manifest records it."""
        return {"partition_by": self.partition_by, "target_size": self.target_size}

    @classmethod
    def from_record(cls, record: Mapping[str, Any] | None) -> Layout | None:
        """The layout a manifest records, or None for a dataset made before layouts were recorded."""
        if not record:
            return None
        return cls(str(record.get("partition_by", "none")), int(record.get("target_size", TARGET_FILE_BYTES)))


def check_partition_by(value: str) -> str:
    """``value`` if it is a partitioning sessionkit knows, else a ValueError naming those."""
    if value not in PARTITION_BY:
        msg = f"partition_by must be one of {', '.join(PARTITION_BY)}, not {value!r}"
        raise ValueError(msg)
    return value


def parse_size(text: str | int) -> int:
    """A size in bytes from ``"256MB"`` (powers of 1000), ``"256MiB"`` (of 1024), or a number.

    Example:
        >>> parse_size("256MB"), parse_size("1.5KiB"), parse_size("4096")
        (256000000, 1536, 4096)
    """
    if isinstance(text, int):
        return text
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*", str(text).lower())
    if not match:
        msg = f"{text!r} is not a size. Hint: write it like 256MB, 1GiB or 65536"
        raise ValueError(msg)
    number, unit, binary = match.groups()
    base = 1024 if binary.startswith("i") else 1000
    return int(float(number) * base ** " kmgt".index(unit or " "))


def partition_ranges(times: np.ndarray, partition_by: str) -> list[tuple[str, int, int]]:
    """The partition folder (``""`` for none) and the ``[start, stop)`` range of each run of
    ``times`` (nanoseconds, ascending) that falls into one partition."""
    import numpy as np

    if len(times) == 0:
        return []
    if partition_by == "none":
        return [("", 0, len(times))]
    days = np.floor_divide(times, NS_PER_DAY).astype("datetime64[D]")
    buckets = days.astype("datetime64[M]") if partition_by == "month" else days
    starts = [0, *(np.flatnonzero(buckets[1:] != buckets[:-1]) + 1).tolist()]
    stops = [*starts[1:], len(times)]
    column = PARTITION_COLUMNS[partition_by]
    return [(f"{column}={buckets[start]}", start, stop) for start, stop in zip(starts, stops, strict=True)]


@dataclass(frozen=True)
class DataFile:
    """One Parquet file of a table in one version of a dataset.

    Attributes:
        key: its path in the dataset, ``<table>/[<partition>/]<name>.parquet``.
        size: its size in bytes.
        rows: its rows (None: not recorded; read the footer).
        first, last: the least and greatest creation time (nanoseconds) of the sessions its
            rows belong to (None: not known, so any session may have rows there).
    """

    key: str
    size: int
    rows: int | None = None
    first: int | None = None
    last: int | None = None

    @property
    def table(self) -> str:
        return self.key.partition("/")[0]

    @property
    def relative(self) -> str:
        """Its path below its table's folder."""
        return self.key.partition("/")[2]

    def may_hold(self, times: np.ndarray) -> bool:
        """True when a session created at one of ``times`` may have rows in this file."""
        if self.first is None or self.last is None:
            return True
        import numpy as np

        return bool(np.any((times >= self.first) & (times <= self.last)))

    @classmethod
    def legacy(cls, key: str, size: int) -> DataFile:
        """A file of a dataset made before versions recorded stats: its range from its folder."""
        import numpy as np

        day = _DAY_FOLDER.search(key)
        if day:
            start = int(np.datetime64("-".join(day.groups()), "ns").astype(np.int64))
            return cls(key, size, None, start, start + NS_PER_DAY - 1)
        month = _MONTH_FOLDER.search(key)
        if month:
            first = np.datetime64("-".join(month.groups()), "M")
            start, stop = (int(m.astype("datetime64[ns]").astype(np.int64)) for m in (first, first + 1))
            return cls(key, size, None, start, stop - 1)
        return cls(key, size)


def files_record(files: Mapping[str, list[DataFile]]) -> dict[str, Any]:
    """Files as a manifest records them: ``files`` (table -> keys), ``sizes`` and ``stats``."""
    every = [f for table in files.values() for f in table]
    return {
        "files": {table: sorted(f.key for f in table_files) for table, table_files in files.items()},
        "sizes": {f.key: f.size for f in every},
        "stats": {f.key: [f.rows, f.first, f.last] for f in every if f.rows is not None},
    }


def files_from_record(manifest: Mapping[str, Any]) -> dict[str, list[DataFile]] | None:
    """The files a manifest lists, or None when it lists none (a local dataset made before
    versions recorded their files: list its folders)."""
    listed = manifest.get("files")
    if not isinstance(listed, dict):
        return None
    sizes, stats = manifest.get("sizes", {}), manifest.get("stats", {})
    files: dict[str, list[DataFile]] = {}
    for table, keys in listed.items():
        files[table] = []
        for key in keys:
            size = int(sizes.get(key, -1))
            if key in stats:
                rows, first, last = stats[key]
                files[table].append(DataFile(key, size, rows, first, last))
            else:
                files[table].append(DataFile.legacy(key, size))
    return files


def schema_of(table: str) -> pa.Schema:
    """The declared schema of a table of a dataset (the session tables, runs, errors)."""
    schema = SCHEMAS.get(table) or ARCHIVE_SCHEMAS.get(table)
    if schema is None:
        msg = f"no table {table!r} in a sessionkit dataset"
        raise DatasetError(msg)
    return schema


_FREE_TEXT = frozenset({"content", "extra", "value", "message"})


class TableWriter:
    """Streams one table into one Parquet file, in row groups of a bounded size."""

    def __init__(self, path: Path | str, schema: pa.Schema, row_group_rows: int = ROW_GROUP_ROWS) -> None:
        free_text = [name for name in schema.names if name in _FREE_TEXT]
        self.path = path
        self.writer = pq.ParquetWriter(
            path,
            schema,
            compression=_COMPRESSION,
            # ids, phases and keys repeat and compress well in a dictionary; free text does not,
            # and its min/max statistics would only bloat the footer
            use_dictionary=[name for name in schema.names if name not in free_text],
            write_statistics=[name for name in schema.names if name not in free_text],
            sorting_columns=_sorting_columns(schema),
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
        table = self.pending[0] if len(self.pending) == 1 else pa.concat_tables(self.pending)
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


def _sorting_columns(schema: pa.Schema) -> list[pq.SortingColumn] | None:
    """An owner table's files are sorted by its time, then its key; the Parquet footer says so."""
    for name, how in CLUSTERING.items():
        if how.is_owner(name) and SCHEMAS[name].names == schema.names:
            return [
                pq.SortingColumn(schema.get_field_index(how.time)),
                pq.SortingColumn(schema.get_field_index(how.key)),
            ]
    return None


def write_clustered(
    tables: Mapping[str, pa.Table],
    folder: Path,
    name: str,
    *,
    partition_by: str = "none",
    row_group_rows: int = ROW_GROUP_ROWS,
) -> dict[str, list[DataFile]]:
    """Write each table into ``folder/<table>/[<partition>/]<name>``, its rows in clustering
    order, cut at partitions; returns the files written per table (none for an empty table).

    Rows are taken in order one row group at a time (from the table made contiguous once: a
    take from many chunks would gather them all again for every row group).
    """
    from sessionkit.tables import cluster_order  # pyarrow.compute: only when writing

    order = cluster_order(tables)
    written: dict[str, list[DataFile]] = {}
    for table_name, table in tables.items():
        positions, times = order[table_name]
        table = table.combine_chunks()
        written[table_name] = []
        for part, start, stop in partition_ranges(times, partition_by):
            key = f"{table_name}/{part}/{name}" if part else f"{table_name}/{name}"
            path = folder / key
            path.parent.mkdir(parents=True, exist_ok=True)
            writer = TableWriter(path, SCHEMAS[table_name], row_group_rows)
            try:
                for at in range(start, stop, row_group_rows):
                    writer.add(table.take(positions.slice(at, min(stop, at + row_group_rows) - at)))
            finally:
                writer.close()
            size = os.path.getsize(path)
            written[table_name].append(DataFile(key, size, stop - start, int(times[start]), int(times[stop - 1])))
    return written


def write_empty(folder: Path, table: str, name: str) -> DataFile:
    """An empty file of a table at ``folder/<table>/<name>``: a table with no rows still has one
    file, so that every engine's glob finds the table and its columns."""
    key = f"{table}/{name}"
    (folder / table).mkdir(parents=True, exist_ok=True)
    TableWriter(folder / key, schema_of(table)).close()
    return DataFile(key, os.path.getsize(folder / key), 0)


class RollingWriter:
    """One table's rows, coming in clustering order, into files ``<table>/[<partition>/]<prefix>-<n>.parquet``
    in ``folder``: a new file at each partition's end, and past ``target_size`` bytes."""

    def __init__(
        self,
        folder: Path,
        table: str,
        prefix: str,
        partition_by: str = "none",
        row_group_rows: int = ROW_GROUP_ROWS,
        *,
        target_size: int | None = None,
    ) -> None:
        self.folder, self.table, self.prefix, self.partition_by = folder, table, prefix, partition_by
        self.row_group_rows, self.target_size = row_group_rows, target_size
        self.part: str | None = None
        self.writer: TableWriter | None = None
        self.key = ""
        self.rows, self.first, self.last = 0, 0, 0
        self.done: list[DataFile] = []
        self.row_groups = 0

    def add(self, rows: pa.Table, times: np.ndarray) -> None:
        """Rows in clustering order, with the owner time (nanoseconds) of each."""
        for part, start, stop in partition_ranges(times, self.partition_by):
            if part != self.part:
                self._close()
                self.part = part
            if self.writer is None:
                name = f"{self.prefix}-{len(self.done)}.parquet"
                self.key = f"{self.table}/{part}/{name}" if part else f"{self.table}/{name}"
                (self.folder / self.key).parent.mkdir(parents=True, exist_ok=True)
                self.writer = TableWriter(self.folder / self.key, schema_of(self.table), self.row_group_rows)
                self.rows, self.first = 0, int(times[start])
            self.writer.add(rows.slice(start, stop - start))
            self.rows += stop - start
            self.last = int(times[stop - 1])
            if self.target_size is not None and os.path.getsize(self.folder / self.key) >= self.target_size:
                self._close()

    def _close(self) -> None:
        if self.writer is None:
            return
        self.writer.close()
        self.row_groups += self.writer.row_groups
        self.done.append(DataFile(self.key, os.path.getsize(self.folder / self.key), self.rows, self.first, self.last))
        self.writer = None

    def close(self) -> list[DataFile]:
        """The files written (the last one closed now)."""
        self._close()
        return self.done
