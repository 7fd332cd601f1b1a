"""The workers' side of an export: read, decode and check files, write one part per table."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from sessionkit._fastjson import fast_tables
from sessionkit.archive._listing import inside, stored_path
from sessionkit.exceptions import SessionFormatError, SessionkitError, SourceNotFoundError
from sessionkit.model import decode_json
from sessionkit.oxios import file_name_problem
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


#: The largest source file read, in bytes. oxios holds a session in memory and rewrites its
#: file whole on every change, so no session file comes near this; a larger one is quarantined
#: unread rather than read into memory.
MAX_FILE_BYTES = 256 << 20

_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


class NotAFileError(OSError):
    """A listed path no longer names a regular file in the source folder: replaced after
    listing by a FIFO, a device, a folder, or a link that leads elsewhere. Counted as vanished."""


class FileTooLargeError(OSError):
    """A source file over ``MAX_FILE_BYTES``: quarantined without its bytes."""


def _open(path: str) -> int:
    """Open a listed file for reading, never following a link out of its folder and never
    waiting on a FIFO (``O_NOFOLLOW | O_NONBLOCK``)."""
    try:
        return os.open(path, _OPEN_FLAGS)
    except OSError as err:
        if err.errno not in (errno.ELOOP, errno.EMLINK):  # EMLINK: O_NOFOLLOW on a link, on FreeBSD
            raise
    # a link: the listing took it because it led to a file in the source folder; check again now
    target = os.path.realpath(path)
    if not inside(target, os.path.realpath(os.path.dirname(path))):
        raise NotAFileError(errno.EXDEV, "the link leads out of the source folder", path)
    try:
        return os.open(target, _OPEN_FLAGS)
    except OSError as err:
        if err.errno in (errno.ELOOP, errno.EMLINK):  # replaced by a link since realpath
            raise NotAFileError(err.errno, "the link changed while it was opened", path) from None
        raise


def _read(path: str) -> tuple[bytes, os.stat_result]:
    """The bytes of a regular file and the stat of the very file they came from.

    Raises:
        NotAFileError: ``path`` is no longer a regular file in its folder.
        FileTooLargeError: the file holds more than ``MAX_FILE_BYTES``.
    """
    fd = _open(path)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotAFileError(errno.EINVAL, "not a regular file", path)
        limit = MAX_FILE_BYTES
        if st.st_size > limit:
            raise FileTooLargeError(errno.EFBIG, f"{st.st_size} bytes, over {limit}", path)
        data = os.read(fd, st.st_size + 1)
        if len(data) > st.st_size:  # growing while we read: take all of it, up to the limit
            chunks, total = [data], len(data)
            while chunk := os.read(fd, min(1 << 20, limit + 1 - total)):
                chunks.append(chunk)
                total += len(chunk)
                if total > limit:
                    raise FileTooLargeError(errno.EFBIG, f"over {limit} bytes", path)
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
        tmp = f"{target}{_TMP}{os.getpid()}"
        try:
            with open(tmp, "wb") as handle:
                handle.write(data)
            os.replace(tmp, target)
        except BaseException:  # a full disk, a kill: no half copy left behind
            with contextlib.suppress(OSError):
                os.remove(tmp)
            raise
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


_TMP = ".tmp-"
#: A copy being written for this long is surely dead, even if its process id came back.
_TMP_MAX_AGE_S = 3600


def sweep_quarantine(folder: str | os.PathLike[str]) -> int:
    """Remove the half-written copies (``*.tmp-PID``) that killed runs left in a quarantine
    folder: those whose process is gone, or older than an hour. Returns how many."""
    removed = 0
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:  # no quarantine folder yet
        return 0
    for entry in entries:
        name, _, pid = entry.name.rpartition(_TMP)
        if not name or not pid.isdigit():
            continue
        try:
            if _alive(int(pid)) and now - entry.stat(follow_symlinks=False).st_mtime < _TMP_MAX_AGE_S:
                continue  # another run sharing this folder is writing it now
            os.remove(entry.path)
            removed += 1
        except OSError:
            continue
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except OverflowError:  # no process has such a number
        return False
    return True


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
        except (FileNotFoundError, NotAFileError):
            result.vanished += 1
            continue
        except FileTooLargeError as err:
            too_large = SessionFormatError(
                f"the file is too large to be a session ({err.strerror}); it was not read, nor copied",
                source=path,
                hint="oxios rewrites a session's file whole on every change and never writes one this large; look at what wrote it",
            )
            result.errors.append(quarantine(task.quarantine, path, b"", too_large, task.run_id, task.privacy))
            result.bad_stats.append((stored_path(path, task.privacy), 0, 0, 0, 0))
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
    # ids that cannot be file names: oxios cannot have written them, and restore could not write them back
    unsafe = {}
    for row, sid in enumerate(tables.sessions["session_id"].to_pylist()):
        problem = file_name_problem(sid)
        if problem is not None:
            unsafe[row] = problem
    if unsafe:
        for row, problem in unsafe.items():
            path, data, st = read[order[row]]
            err = SessionFormatError(
                f"the session id cannot be a file name: {problem}",
                source=path,
                path="$.id",
                hint="oxios names a session's file after its id and refuses such ids; this file was not written by oxios",
            )
            result.errors.append(quarantine(task.quarantine, path, data, err, task.run_id, task.privacy))
            result.bad_stats.append((stored_path(path, task.privacy), *_stat_tuple(st)))
        kept = [row for row in range(len(order)) if row not in unsafe]
        if not kept:
            return None
        tables, order = take_sessions(tables, kept), [order[row] for row in kept]
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
