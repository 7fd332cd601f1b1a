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
from sessionkit.archive._listing import stored_path
from sessionkit.exceptions import SessionFormatError, SessionkitError, SourceNotFoundError
from sessionkit.model import decode_json
from sessionkit.privacy import Privacy, PrivacyCounts, mask_text
from sessionkit.storage import TableWriter, by_created_date
from sessionkit.tables import (
    SCHEMAS,
    TABLE_NAMES,
    SessionTables,
    TableBuilder,
    take_sessions,
)

#: Files decoded together before their rows join the part's row-group buffer.
FILES_PER_BATCH = 256


# -- the workers: read, decode, write parts -----------------------------------------------------------
@dataclass
class _PartTask:
    index: int
    files: Sequence[str]
    staging: str
    quarantine: str
    name: str
    run_id: str
    row_group_rows: int
    privacy: Privacy | None = None


@dataclass
class _PartResult:
    index: int
    name: str
    files: int = 0
    nbytes: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    row_groups: dict[str, int] = field(default_factory=dict)
    records: pa.Table | None = None  # one row per good file, columns _RECORD_COLUMNS
    privacy: PrivacyCounts | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)  # bad files, rows of the errors table
    bad_stats: list[tuple] = field(default_factory=list)  # bad files: path, stat...
    vanished: int = 0
    keys: list[str] = field(default_factory=list)  # the files written, as created_date=.../<name>


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


def _export_part(task: _PartTask) -> _PartResult:
    """Worker: one part, i.e. for each creation date among ``task.files``, one Parquet file per
    table at ``<table>/created_date=YYYY-MM-DD/<task.name>`` (Hive-style partitions)."""
    result = _PartResult(task.index, task.name, files=len(task.files))
    writers: dict[str, dict[str, TableWriter]] = {}  # key -> table -> writer
    ordinals: dict[str, int] = {}  # key -> sessions written under it so far
    records: list[tuple] = []
    try:
        for start in range(0, len(task.files), FILES_PER_BATCH):
            decoded = _decode_batch(task.files[start : start + FILES_PER_BATCH], task, result)
            if decoded is None:
                continue
            tables, sources, stats = decoded
            ids = tables.sessions["session_id"].to_pylist()
            named = [os.path.basename(src) == f"{sid}.json" for sid, src in zip(ids, sources, strict=True)]
            if task.privacy is not None and not task.privacy.is_noop:
                tables, counts = task.privacy.apply(tables)
                result.privacy = counts if result.privacy is None else result.privacy + counts
                ids = tables.sessions["session_id"].to_pylist()  # the pseudonyms, for the index
            updated = tables.sessions["updated_at"].cast(pa.int64()).to_pylist()
            for key, rows in by_created_date(tables.sessions, task.name):
                piece = tables if len(rows) == tables.sessions.num_rows else take_sessions(tables, rows)
                if key not in writers:
                    writers[key] = {}
                    for name in TABLE_NAMES:
                        path = Path(task.staging) / name / key
                        path.parent.mkdir(parents=True, exist_ok=True)
                        writers[key][name] = TableWriter(path, SCHEMAS[name], task.row_group_rows)
                for name, table in piece.items():
                    writers[key][name].add(table)
                ordinal = ordinals.get(key, 0)
                for i in rows:
                    records.append(
                        (
                            stored_path(sources[i], task.privacy),
                            sources[i],
                            *_stat_tuple(stats[i]),
                            ids[i],
                            updated[i],
                            ordinal,
                            named[i],
                            key,
                        )
                    )
                    ordinal += 1
                ordinals[key] = ordinal
    finally:
        for by_table in writers.values():
            for name, writer in by_table.items():
                writer.close()
                result.rows[name] = result.rows.get(name, 0) + writer.rows
                result.row_groups[name] = result.row_groups.get(name, 0) + writer.row_groups
    result.keys = list(writers)
    result.records = _records_table(records)  # compact Arrow, not tuples, for the main process to hold
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
    ("ordinal", pa.int64()),
    ("named", pa.bool_()),
    ("part", pa.string()),
]


def _records_table(records: list[tuple]) -> pa.Table:
    """The good files read this run, one row each, from the workers' records."""
    return pa.table({name: pa.array([r[i] for r in records], kind) for i, (name, kind) in enumerate(_RECORD_COLUMNS)})
