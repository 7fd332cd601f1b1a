"""Compaction: a table's small files rewritten into files of the target size, in clustering order.

``compact(OUT)`` merges, in every table (and partition), the files below the target size into
files of that size, and publishes the result as one new version with the same guarantees as
an export: one writer, atomic publish (on disk a symlink switch, on S3 a manifest created with
a conditional write), and a process killed at any point leaves the previous version or the
new one. It also changes a dataset's partitioning, and rewrites datasets of the 0.1 layout (a
folder per day) into the current one. ``export`` compacts by itself, a little at a time, when
a table has more than ``AUTO_COMPACT_FILES`` small files (a quarter of the target or less).

The merge itself is DuckDB's: it reads the files (through pyarrow, on disk or on S3), orders
the rows by the creation time of their session (a join with the sessions table for the child
tables), spilling to disk when memory runs short, and streams them in order to sessionkit's
writer, which starts a new file past the target size or at a partition's end.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from sessionkit._layout import DataFile, Layout, RollingWriter, check_partition_by, parse_size, write_empty
from sessionkit._progress import Progress
from sessionkit._progress import resolve as resolve_progress
from sessionkit._store import NextVersion, Snapshot, new_run_id, open_store
from sessionkit._versions import failpoint
from sessionkit.archive._pool import default_jobs
from sessionkit.exceptions import DatasetError, SourceNotFoundError
from sessionkit.tables import CLUSTERING, SCHEMAS, TABLE_NAMES, empty_table

#: ``export`` compacts a table (or a partition of it) holding more small files than this.
AUTO_COMPACT_FILES = 16
#: DuckDB's memory for a merge; beyond it, it spills to the staging folder.
_MEMORY_LIMIT = "1GB"
#: The most uncompressed bytes one sort of a merge takes. DuckDB 2.0.1 cannot spill a sort of
#: wide rows far enough: sorting 504k responses (450 MB) failed at a 1 GB limit, "could not
#: allocate block". So a larger merge is cut into slices of its owners' creation time, each
#: sorted on its own, in order (the rows of one owner time are always in one slice).
_SLICE_BYTES = 192 * 2**20
_ROW_GROUP_ROWS = 128 * 1024


@dataclass
class CompactSummary:
    """What a compaction did: files and bytes of each session table before and after."""

    dataset: str
    run_id: str = ""
    files_before: dict[str, int] = field(default_factory=dict)
    files_after: dict[str, int] = field(default_factory=dict)
    bytes_before: dict[str, int] = field(default_factory=dict)
    bytes_after: dict[str, int] = field(default_factory=dict)
    merged: int = 0  # files rewritten
    written: int = 0  # files they became
    layout: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def line(self) -> str:
        """A one-line human summary."""
        before, after = sum(self.files_before.values()), sum(self.files_after.values())
        mb = sum(self.bytes_after.values()) / 1e6
        if not self.merged:
            return f"{self.dataset}: nothing to compact ({after} files, {mb:.1f} MB)"
        return (
            f"{self.dataset}: compacted {self.merged} files into {self.written}; {before} files before, "
            f"{after} after ({mb:.1f} MB, partitioned by {self.layout.get('partition_by')}) in {self.seconds:.2f} s"
        )


def compact(
    dataset: str | os.PathLike[str],
    *,
    target_size: int | str | None = None,
    partition_by: str | None = None,
    jobs: int | None = None,
    row_group_rows: int = _ROW_GROUP_ROWS,
    progress: Progress = None,
    break_lock: bool = False,
) -> CompactSummary:
    """Rewrite a dataset's small files into files of the target size, as one new version.

    In every session table (and partition), the files below ``target_size`` are merged into
    files of that size, their rows in clustering order; larger files stay as they are. With
    ``partition_by`` different from the dataset's, or on a dataset of the 0.1 layout, every
    file is rewritten into the new layout. Readers see the old version or the new one, never
    a mix; a killed compaction leaves the old one. The tables hold the same rows after.

    Args:
        dataset: a dataset folder, or ``s3://bucket/prefix``.
        target_size: bytes (or text like ``"256MB"``); default: the dataset's own (256 MiB
            unless a compaction set another), which later exports also use.
        partition_by: ``"none"``, ``"month"`` or ``"day"``; default: the dataset's own
            (``"none"`` for a dataset of the 0.1 layout).
        jobs: DuckDB's threads (default: all cores).
        row_group_rows: the most rows in one Parquet row group.
        progress: a progress bar over the tables (see ``export``).
        break_lock: on S3, take over the writer's lock of a writer known to be dead.

    Raises:
        SourceNotFoundError: there is no dataset there.
        DatasetLockedError: an export or another compaction is writing the dataset.

    Example:
        >>> import sessionkit as sk
        >>> sk.compact("build/sample-dataset").line()  # doctest: +SKIP
        'build/sample-dataset: nothing to compact (6 files, 0.9 MB)'
    """
    started = time.perf_counter()
    if partition_by is not None:
        check_partition_by(partition_by)
    size = parse_size(target_size) if target_size is not None else None
    threads = default_jobs() if jobs is None else max(1, int(jobs))
    store = open_store(dataset)
    if store.current() is None:  # before the lock, which would make the folder
        msg = f"{store.uri}: no sessionkit dataset to compact. Hint: point at the OUT of `sessionkit export`, or create one with `sessionkit export SRC {store.uri}`"
        raise SourceNotFoundError(msg)
    run_id = new_run_id()
    with store.writing(run_id, break_lock=break_lock) as staging:
        previous = store.current()
        if previous is None:
            msg = f"{store.uri}: the dataset was removed while compaction waited for it"
            raise SourceNotFoundError(msg)
        layout, migrate = _target_layout(previous, size, partition_by)
        next_version = NextVersion.keeping_all(previous, staging, layout)
        summary = compact_version(next_version, migrate, run_id, threads, row_group_rows, progress)
        failpoint("compacted")
        if summary.merged or layout.record() != previous.manifest.get("layout"):
            store.publish(next_version, run_id)
        else:  # nothing new: still clear what killed writers left
            store.tidy(previous)
    summary.dataset = store.uri
    summary.seconds = time.perf_counter() - started
    return summary


def _target_layout(previous: Snapshot, size: int | None, partition_by: str | None) -> tuple[Layout, bool]:
    """The layout a compaction writes, and whether every file must be rewritten into it."""
    have = previous.layout
    if have is None:  # the 0.1 layout: rewrite it all
        return Layout(partition_by or "none", size or Layout().target_size), True
    layout = Layout(partition_by or have.partition_by, size or have.target_size)
    return layout, layout.partition_by != have.partition_by


def compact_version(
    next_version: NextVersion,
    migrate: bool,
    run_id: str,
    threads: int,
    row_group_rows: int,
    progress: Progress = None,
    *,
    auto: bool = False,
) -> CompactSummary:
    """Merge the files ``plan`` picks in ``next_version``, in place; returns what was done."""
    layout = next_version.layout
    assert layout is not None
    summary = CompactSummary("", run_id, layout=layout.record())
    files = next_version.files()
    for name in TABLE_NAMES:
        summary.files_before[name] = len(files[name])
        summary.bytes_before[name] = sum(f.size for f in files[name])
    groups = plan(files, layout, auto=auto, migrate=migrate)
    todo = [(name, group) for name in TABLE_NAMES for group in groups.get(name, [])]
    if todo:
        update, done = resolve_progress(progress, "compact", unit="table", total=len(todo))
        try:
            owners = _owners(next_version)
            for step, (name, group) in enumerate(todo, start=1):
                prefix = f"part-{run_id}-c{step}"
                rows = sum(f.rows or 0 for f in group) if all(f.rows is not None for f in group) else None
                inputs = [next_version.where(f) for f in group]
                written = merge(
                    name, inputs, owners, next_version.staging, prefix, layout, row_group_rows, threads, rows=rows
                )
                next_version.replace(name, group, written)
                summary.merged += len(group)
                summary.written += len(written)
                if update is not None:
                    update(step, len(todo))
        finally:
            done()
    for name in TABLE_NAMES:  # a table with no rows still has one (empty) file
        if not next_version.kept.get(name) and not next_version.new.get(name):
            next_version.new[name] = [write_empty(next_version.staging, name, f"part-{run_id}-empty.parquet")]
    files = next_version.files()
    for name in TABLE_NAMES:
        summary.files_after[name] = len(files[name])
        summary.bytes_after[name] = sum(f.size for f in files[name])
    return summary


def plan(
    files: dict[str, list[DataFile]], layout: Layout, *, auto: bool = False, migrate: bool = False
) -> dict[str, list[list[DataFile]]]:
    """The groups of files to merge in each session table.

    ``migrate``: all of a table's files, into the new layout. Else, within each partition: the
    files below the target size (when there are two or more); or, for ``auto``, only when there
    are more than ``AUTO_COMPACT_FILES`` files of a quarter of the target or less, the
    smallest of them, as many as fit in a sixteenth of the target (in a quarter when there are
    three times that many), and at least two; so each export does a bounded share of the work.
    """
    groups: dict[str, list[list[DataFile]]] = {}
    for name in TABLE_NAMES:
        table = files.get(name, [])
        if migrate:
            if table:
                groups[name] = [list(table)]
            continue
        by_partition: dict[str, list[DataFile]] = {}
        for file in table:
            by_partition.setdefault(file.relative.rpartition("/")[0], []).append(file)
        for _, members in sorted(by_partition.items()):
            if auto:
                small = sorted((f for f in members if f.size <= layout.target_size // 4), key=lambda f: (f.size, f.key))
                if len(small) <= AUTO_COMPACT_FILES:
                    continue
                budget = layout.target_size // (16 if len(small) <= 3 * AUTO_COMPACT_FILES else 4)
                pick: list[DataFile] = []
                for file in small:
                    if len(pick) >= 2 and sum(f.size for f in pick) + file.size > budget:
                        break
                    pick.append(file)
                groups.setdefault(name, []).append(pick)
            else:
                small = [f for f in members if f.size < layout.target_size]
                if len(small) >= 2:
                    groups.setdefault(name, []).append(small)
    return groups


def _owners(next_version: NextVersion) -> pa.Table:
    """The sessions of the next version: their key and creation time, for ordering child rows."""
    how = CLUSTERING["sessions"]
    schema = pa.schema([SCHEMAS["sessions"].field(how.key), SCHEMAS["sessions"].field(how.time)])
    import pyarrow.parquet as pq

    pieces = []
    for file in next_version.files()["sessions"]:
        path, fs = next_version.where(file)
        pieces.append(pq.read_table(path, columns=schema.names, schema=schema, filesystem=fs))
    return pa.concat_tables(pieces) if pieces else empty_table(schema)


def merge(
    table: str,
    inputs: list[tuple[str, Any]],
    owners: pa.Table,
    staging: Path,
    prefix: str,
    layout: Layout,
    row_group_rows: int,
    threads: int,
    *,
    rows: int | None = None,
) -> list[DataFile]:
    """Rewrite the files ``inputs`` (path, pyarrow file system or None) of ``table`` into new
    files ``<table>/[<partition>/]<prefix>-<n>.parquet`` in ``staging``, rows in clustering
    order, a new file past ``layout.target_size`` or at a partition's end.

    ``rows``: how many rows the inputs hold, checked against what was written.
    """
    import duckdb
    import pyarrow.dataset as ds

    how, schema = CLUSTERING[table], SCHEMAS[table]
    spill = Path(tempfile.mkdtemp(prefix=".spill-", dir=staging))
    con = duckdb.connect(config={"threads": threads, "memory_limit": _MEMORY_LIMIT, "temp_directory": str(spill)})
    try:
        by_fs: dict[int, tuple[Any, list[str]]] = {}
        for path, fs in inputs:
            by_fs.setdefault(id(fs), (fs, []))[1].append(path)
        sources = []
        for i, (fs, paths) in enumerate(by_fs.values()):
            con.register(f"source_{i}", ds.dataset(paths, schema=schema, format="parquet", filesystem=fs))
            sources.append(f"SELECT * FROM source_{i}")
        rows_sql = " UNION ALL ".join(sources)
        columns = ", ".join(f"t.{name}" for name in schema.names)
        within = "".join(f", t.{column}" for column in how.within)
        if how.is_owner(table):
            time, sql = f"t.{how.time}", f"SELECT {columns}, epoch_ns(t.{how.time}) AS __time FROM ({rows_sql}) AS t"
            order = f"ORDER BY t.{how.time}, t.{how.key}"
        else:
            con.register("owners", owners)
            time = f"o.{how.time}"
            sql = (
                f"SELECT {columns}, epoch_ns(o.{how.time}) AS __time FROM ({rows_sql}) AS t "
                f"LEFT JOIN owners AS o ON o.{how.key} = t.{how.key}"
            )
            order = f"ORDER BY o.{how.time} NULLS FIRST, t.{how.key}{within}"
        bounds = _slices(owners[how.time], _input_bytes(inputs))
        queries = [f"{sql} {_slice_filter(time, lo, hi)} {order}" for lo, hi in bounds]
        writer = RollingWriter(
            staging, table, prefix, layout.partition_by, row_group_rows, target_size=layout.target_size
        )
        try:
            batches = (batch for query in queries for batch in con.sql(query).to_arrow_reader(row_group_rows))
            for batch in batches:
                times = batch.column(batch.num_columns - 1)
                if times.null_count:
                    missing = batch.column(schema.get_field_index(how.key)).filter(times.is_null())[0].as_py()
                    msg = f"the {table} table has rows of {how.key} {missing!r}, which the {how.owner} table lacks. Hint: the dataset is damaged; export it again into a new folder"
                    raise DatasetError(msg)
                body = pa.Table.from_batches([batch]).drop_columns(["__time"]).cast(schema)
                writer.add(body, times.to_numpy(zero_copy_only=False))
        finally:
            written = writer.close()
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)
    if rows is not None and sum(f.rows or 0 for f in written) != rows:
        msg = f"compacting {table}: {rows} rows read but {sum(f.rows or 0 for f in written)} written; nothing was published"
        raise DatasetError(msg)
    return written


def _input_bytes(inputs: list[tuple[str, Any]]) -> int:
    """The uncompressed bytes of the files' rows, from their footers."""
    import pyarrow.parquet as pq

    total = 0
    for path, fs in inputs:
        meta = pq.read_metadata(path, filesystem=fs)
        total += sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    return total


def _slice_filter(time: str, lo: int | None, hi: int | None) -> str:
    """SQL: the WHERE clause of the slice ``[lo, hi)`` of ``time`` (ns; None: open). The first
    slice also takes rows without a time, for the merge to name them."""
    if lo is None and hi is None:
        return ""
    if lo is None:
        return f"WHERE ({time} IS NULL OR epoch_ns({time}) < {hi})"
    if hi is None:
        return f"WHERE epoch_ns({time}) >= {lo}"
    return f"WHERE epoch_ns({time}) >= {lo} AND epoch_ns({time}) < {hi}"


def _slices(times: pa.ChunkedArray, nbytes: int) -> list[tuple[int | None, int | None]]:
    """Bounds ``[lo, hi)`` of owner creation time (ns; None: open) that cut a merge of
    ``nbytes`` into sorts of about ``_SLICE_BYTES``, each holding about as many owners."""
    import numpy as np

    count = min(-(-nbytes // _SLICE_BYTES), len(times))
    if count <= 1:
        return [(None, None)]
    ns = np.sort(times.cast(pa.int64()).drop_null().to_numpy())
    cuts = sorted({int(ns[i * len(ns) // count]) for i in range(1, count)})
    edges: list[int | None] = [None, *cuts, None]
    return list(itertools.pairwise(edges))
