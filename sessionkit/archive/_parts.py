"""The workers' side of an export: read, decode and check files, write one part per table."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from sessionkit._fastjson import fast_tables
from sessionkit._layout import DataFile, write_clustered
from sessionkit.archive._listing import stored_path
from sessionkit.archive._pool import report_progress
from sessionkit.exceptions import SessionFormatError, SessionkitError, SourceNotFoundError
from sessionkit.model import decode_json
from sessionkit.privacy import Privacy, PrivacyCounts, mask_text
from sessionkit.tables import (
    CLUSTERING,
    TABLE_NAMES,
    SessionTables,
    TableBuilder,
    take_sessions,
)

#: Files decoded together, before their rows join the worker's buffer.
FILES_PER_BATCH = 256


# -- the workers: read, decode, write files -----------------------------------------------------------
#: A worker writes what it has decoded once it holds this many bytes of tables (so memory stays
#: bounded whatever the size of its share): one file per table, rows in clustering order.
FLUSH_BYTES = 128 * 2**20
#: ... or this many rows in one table (the row count of a large file).
FLUSH_ROWS = 1_000_000


@dataclass
class _PartTask:
    """One worker's share of a run: its files, and where and how to write their rows."""

    index: int
    files: Sequence[str]
    staging: str
    quarantine: str
    run_id: str
    row_group_rows: int
    privacy: Privacy | None = None
    partition_by: str = "none"
    files_per_part: int | None = None  # at most this many source files' rows in one file per table
    flush_bytes: int = FLUSH_BYTES


@dataclass
class _PartResult:
    index: int
    files: int = 0
    nbytes: int = 0
    written: dict[str, list[DataFile]] = field(default_factory=dict)  # table -> files written in staging
    row_groups: dict[str, int] = field(default_factory=dict)
    records: pa.Table | None = None  # one row per good file, columns _RECORD_COLUMNS
    privacy: PrivacyCounts | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)  # bad files, rows of the errors table
    bad_stats: list[tuple] = field(default_factory=list)  # bad files: path, stat...
    vanished: int = 0


def _read(path: str) -> tuple[bytes, os.stat_result]:
    """The bytes of a file and the stat of the very file they came from."""
    fd = os.open(path, os.O_RDONLY)
    try:
        st = os.fstat(fd)
        data = os.read(fd, st.st_size + 1)
        if len(data) > st.st_size:  # growing while we read: take all of it
            chunks = [data]
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
            data = b"".join(chunks)
        return data, st
    finally:
        os.close(fd)


def quarantine(
    folder: str, path: str, data: bytes, err: SessionkitError | str, run_id: str, privacy: Privacy | None = None
) -> dict[str, Any]:
    """Copy a bad file's bytes into the quarantine folder and describe it as a row of ``errors``.

    Under privacy settings the row names the file by its stored form and masks the message.
    """
    digest = hashlib.sha256(data).hexdigest()
    name = f"{digest[:16]}-{os.path.basename(stored_path(path, privacy))}"
    os.makedirs(folder, exist_ok=True)
    target = os.path.join(folder, name)
    if not os.path.exists(target):
        tmp = f"{target}.tmp-{os.getpid()}"
        with open(tmp, "wb") as handle:
            handle.write(data)
        os.replace(tmp, target)
    if isinstance(err, SessionFormatError):
        kind, json_path, offset, message = type(err).__name__, err.path, err.offset, err.reason
        if err.hint:
            message += f". Hint: {err.hint}"
    elif isinstance(err, SessionkitError):
        kind, json_path, offset, message = type(err).__name__, None, None, str(err)
    else:
        kind, json_path, offset, message = "DuplicateSessionId", "$.id", None, str(err)
    if privacy is not None and not privacy.is_noop:
        message = mask_text(message)
    return {
        "file": stored_path(path, privacy),
        "size": len(data),
        "sha256": digest,
        "error_class": kind,
        "json_path": json_path,
        "byte_offset": offset,
        "message": message,
        "quarantined_as": target,
        "run_id": run_id,
        "seen_at": time.time_ns() // 1000,
    }


def _stat_tuple(st: os.stat_result) -> tuple[int, int, int, int]:
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


def _decode_batch(
    paths: Sequence[str], task: _PartTask, result: _PartResult
) -> tuple[SessionTables, list[str], list[os.stat_result]] | None:
    """Read, decode and check files into tables; a bad file is quarantined, a vanished one counted.

    Files in serde's own layout go through Arrow's JSON reader all at once (``_fastjson``);
    the others, file by file, through ``TableBuilder.add_raw``. The rows come out in file order.
    """
    read: list[tuple[str, bytes, os.stat_result]] = []
    for path in paths:
        try:
            data, st = _read(path)
        except FileNotFoundError:
            result.vanished += 1
            continue
        except OSError as err:
            problem = SourceNotFoundError(f"cannot be read ({err.strerror or err})")
            result.errors.append(quarantine(task.quarantine, path, b"", problem, task.run_id, task.privacy))
            result.bad_stats.append((stored_path(path, task.privacy), 0, 0, 0, 0))
            continue
        result.nbytes += len(data)
        read.append((path, data, st))
    if not read:
        return None
    fast = fast_tables([data for _, data, _ in read])
    taken = fast[1] if fast is not None else [False] * len(read)
    general = _decode_general([item for item, took in zip(read, taken, strict=True) if not took], task, result)
    order = [i for i, took in enumerate(taken) if took]
    pieces = [fast[0]] if fast is not None else []
    if general is not None:
        tables, sources, _ = general
        index = {path: i for i, (path, _, _) in enumerate(read)}
        order += [index[source] for source in sources]
        pieces.append(tables)
    if not pieces:
        return None
    tables = (
        pieces[0]
        if len(pieces) == 1
        else SessionTables(*(pa.concat_tables([piece[name] for piece in pieces]) for name in TABLE_NAMES))
    )
    if order != sorted(order):  # fast and general rows interleave: put them back in file order
        tables = take_sessions(tables, sorted(range(len(order)), key=order.__getitem__))
        order.sort()
    return tables, [read[i][0] for i in order], [read[i][2] for i in order]


def _decode_general(
    read: list[tuple[str, bytes, os.stat_result]], task: _PartTask, result: _PartResult
) -> tuple[SessionTables, list[str], list[os.stat_result]] | None:
    """The general path: each file decoded by msgspec, checked and added by ``TableBuilder``."""
    builder = TableBuilder()
    good: list[tuple[Any, str, bytes, os.stat_result]] = []
    for path, data, st in read:
        try:
            obj = decode_json(data, source=path)
            builder.add_raw(obj, path, data)
        except SessionkitError as err:
            result.errors.append(quarantine(task.quarantine, path, data, err, task.run_id, task.privacy))
            result.bad_stats.append((stored_path(path, task.privacy), *_stat_tuple(st)))
            continue
        good.append((obj, path, data, st))
    if not good:
        return None
    try:
        return builder.finish(), builder.sources, [st for *_, st in good]
    except SessionFormatError:
        pass
    # a timestamp is bad somewhere: sort out which files, one by one
    builder = TableBuilder()
    stats = []
    for obj, path, data, st in good:
        single = TableBuilder()
        single.add_raw(obj, path)
        try:
            single.finish()
        except SessionFormatError as err:
            result.errors.append(quarantine(task.quarantine, path, data, err, task.run_id, task.privacy))
            result.bad_stats.append((stored_path(path, task.privacy), *_stat_tuple(st)))
            continue
        builder.add_raw(obj, path)
        stats.append(st)
    return (builder.finish(), builder.sources, stats) if len(builder) else None


class _Buffer:
    """What a worker decoded and has not written yet: tables, and a record per session.

    A session id is held once: of two files with the same id, the one that would lose in the
    dataset (older ``updated_at``, not named after the id, later path) is not written, and its
    record says so (the main process quarantines it as a duplicate)."""

    def __init__(self) -> None:
        self.pieces: list[SessionTables] = []
        self.records: list[list[Any]] = []
        self.holder: dict[str, int] = {}  # session id -> index of the record whose rows are held
        self.nbytes = 0
        self.table_rows: dict[str, int] = {}
        self.sources = 0

    def add(self, tables: SessionTables, records: list[list[Any]]) -> None:
        base = len(self.records)
        self.records.extend(records)
        keep: list[int] = []
        for position, record in enumerate(records):
            sid = record[_SID]
            held = self.holder.get(sid)
            if held is not None and not _beats(record, self.records[held]):
                record[_WRITTEN] = False
                continue
            if held is not None:  # the new one wins: set aside the one held
                self.records[held][_WRITTEN] = False
                if held >= base:
                    keep.remove(held - base)
                else:
                    self._drop(sid)
            self.holder[sid] = base + position
            keep.append(position)
        if len(keep) != len(records):
            tables = take_sessions(tables, keep)
        self.pieces.append(tables)
        for name, table in tables.items():
            self.nbytes += table.nbytes
            self.table_rows[name] = self.table_rows.get(name, 0) + table.num_rows
        self.sources += len(records)

    @property
    def rows(self) -> int:
        """The rows of its largest table."""
        return max(self.table_rows.values(), default=0)

    def _drop(self, sid: str) -> None:
        """Take the rows of one session out of the pieces held (its id is held once)."""
        import pyarrow.compute as pc

        self.pieces = [
            SessionTables(
                **{name: table.filter(pc.not_equal(table[CLUSTERING[name].key], sid)) for name, table in piece.items()}
            )
            for piece in self.pieces
        ]

    def tables(self) -> dict[str, pa.Table]:
        return {name: pa.concat_tables([piece[name] for piece in self.pieces]) for name in TABLE_NAMES}


# the fields of a record (see _RECORD_COLUMNS)
_PATH, _SID, _UPDATED, _NAMED, _PART, _WRITTEN = 0, 6, 7, 8, 9, 10


def _beats(record: list[Any], other: list[Any]) -> bool:
    """True when ``record``'s file wins over ``other``'s for one session id: the newer
    ``updated_at``, then the file named after the id, then the first path (as ``_merge``)."""
    return (-record[_UPDATED], not record[_NAMED], record[_PATH]) < (-other[_UPDATED], not other[_NAMED], other[_PATH])


def _export_part(task: _PartTask) -> _PartResult:
    """Worker: decode a share of a run's files and write their rows, one file per table (and
    partition) for every ``FLUSH_BYTES`` of decoded tables, at
    ``<table>/[<partition>/]part-<run>-<share>-<n>.parquet``, rows in clustering order."""
    result = _PartResult(task.index, files=len(task.files))
    result.written = {name: [] for name in TABLE_NAMES}
    buffer = _Buffer()
    records: list[list[Any]] = []

    def flush() -> None:
        nonlocal buffer
        if not buffer.records:
            return
        name = f"part-{task.run_id}-{task.index}-{_flushes[0]}.parquet"
        _flushes[0] += 1
        for record in buffer.records:
            record[_PART] = name
        written = write_clustered(
            buffer.tables(),
            Path(task.staging),
            name,
            partition_by=task.partition_by,
            row_group_rows=task.row_group_rows,
        )
        for table, files in written.items():
            result.written[table].extend(files)
            result.row_groups[table] = result.row_groups.get(table, 0) + sum(
                -(-f.rows // task.row_group_rows) for f in files if f.rows
            )
        records.extend(buffer.records)
        buffer = _Buffer()

    _flushes = [0]
    step = min(FILES_PER_BATCH, task.files_per_part or FILES_PER_BATCH)
    for start in range(0, len(task.files), step):
        decoded = _decode_batch(task.files[start : start + step], task, result)
        if decoded is not None:
            tables, sources, stats = decoded
            ids = tables.sessions["session_id"].to_pylist()
            named = [os.path.basename(src) == f"{sid}.json" for sid, src in zip(ids, sources, strict=True)]
            if task.privacy is not None and not task.privacy.is_noop:
                tables, counts = task.privacy.apply(tables)
                result.privacy = counts if result.privacy is None else result.privacy + counts
                ids = tables.sessions["session_id"].to_pylist()  # the pseudonyms, for the index
            updated = tables.sessions["updated_at"].cast(pa.int64()).to_pylist()
            buffer.add(
                tables,
                [
                    [stored_path(src, task.privacy), src, *_stat_tuple(st), sid, up, nm, None, True]
                    for src, st, sid, up, nm in zip(sources, stats, ids, updated, named, strict=True)
                ],
            )
        report_progress(min(step, len(task.files) - start))
        full = buffer.nbytes >= task.flush_bytes or buffer.rows >= FLUSH_ROWS
        if full or (task.files_per_part and buffer.sources >= task.files_per_part):
            flush()
    flush()
    result.records = _records_table(records)  # compact Arrow, not lists, for the main process to hold
    return result


_RECORD_COLUMNS = [
    ("path", pa.string()),
    ("real", pa.string()),
    ("size", pa.int64()),
    ("mtime_ns", pa.int64()),
    ("ctime_ns", pa.int64()),
    ("inode", pa.int64()),
    ("session_id", pa.string()),
    ("updated_at_ns", pa.int64()),
    ("named", pa.bool_()),
    ("part", pa.string()),  # the name of the files its rows went into
    ("written", pa.bool_()),  # False: a duplicate id the worker already set aside
]


def _records_table(records: list[tuple]) -> pa.Table:
    """The good files read this run, one row each, from the workers' records."""
    return pa.table({name: pa.array([r[i] for r in records], kind) for i, (name, kind) in enumerate(_RECORD_COLUMNS)})
