"""The workers' side of an export: read, decode and check files, write one part per table."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import stat
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from sessionkit._fastjson import fast_tables
from sessionkit._layout import DataFile, RollingWriter
from sessionkit._process import pid_alive
from sessionkit.archive._listing import stored_path
from sessionkit.archive._pool import report_progress
from sessionkit.exceptions import SessionFormatError, SessionkitError, SourceNotFoundError
from sessionkit.model import MESSAGE_FIELDS, RESPONSE_FIELDS, SESSION_FIELDS, changed_numbers, decode_json
from sessionkit.oxios import file_name_problem, inside
from sessionkit.privacy import Privacy, PrivacyCounts, mask_text
from sessionkit.tables import (
    TABLE_NAMES,
    SessionTables,
    TableBuilder,
    cluster_order,
    take_sessions,
)

#: Files decoded together, before their rows join the worker's buffer.
FILES_PER_BATCH = 256


# -- the workers: read, decode, write files -----------------------------------------------------------
#: A worker reads its share in units of this many bytes of source files, each of which becomes
#: one file per table (about a quarter of the size: near compaction's target). Only a unit's
#: order is held, not its bytes, so memory does not grow with it.
FLUSH_BYTES = 1024 * 2**20


@dataclass
class PartTask:
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
    flush_bytes: int = FLUSH_BYTES  # ... and about this many bytes of source files


@dataclass
class PartResult:
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
    changed_numbers: list[tuple[str, list[str]]] = field(default_factory=list)  # file, numbers restore respells


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


def read_source(path: str) -> tuple[bytes, os.stat_result]:
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
    private = privacy is not None and not privacy.is_noop
    if private and not isinstance(err, str):  # a reason made by us from stored forms is kept
        message = mask_text(value_free(message))
    return {
        "file": stored_path(path, privacy),
        "size": len(data),
        "sha256": digest,
        "error_class": kind,
        "json_path": json_path,
        "byte_offset": offset,
        "message": message,
        "quarantined_as": name if private else target,  # under privacy, no path of the machine
        "run_id": run_id,
        "seen_at": time.time_ns() // 1000,
    }


_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'" + r'|"(?:[^"\\]|\\.)*"')
_VALUE = re.compile(r"\b(a boolean|an integer|a number|a string) \([^()]*\)")
_NAME = re.compile(r"`([^`]*)`")
_FIELD_NAMES = frozenset({*SESSION_FIELDS, *MESSAGE_FIELDS, *RESPONSE_FIELDS})


def value_free(message: str) -> str:
    """An error message without the values it quotes, for a dataset under privacy settings:
    quoted text becomes ``'…'``, ``an integer (12)`` becomes ``an integer``, and a name in
    backticks stays only if it is a field of the oxios schema.

    Example:
        >>> value_free("expected a string, got an integer (12); the key `alice@x.org` appears twice; 'bob' is not RFC 3339")
        "expected a string, got an integer; the key `…` appears twice; '…' is not RFC 3339"
    """
    message = _QUOTED.sub("'…'", message)
    message = _VALUE.sub(r"\1", message)
    return _NAME.sub(lambda m: m.group(0) if m.group(1) in _FIELD_NAMES else "`…`", message)


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
            if pid_alive(int(pid)) and now - entry.stat(follow_symlinks=False).st_mtime < _TMP_MAX_AGE_S:
                continue  # another run sharing this folder is writing it now
            os.remove(entry.path)
            removed += 1
        except OSError:
            continue
    return removed


def _stat_tuple(st: os.stat_result) -> tuple[int, int, int, int]:
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


def _read_files(paths: Sequence[str], task: PartTask, result: PartResult) -> list[tuple[str, bytes, os.stat_result]]:
    """The bytes and stat of each file; a vanished one is counted, an unreadable one quarantined."""
    read: list[tuple[str, bytes, os.stat_result]] = []
    for path in paths:
        try:
            data, st = read_source(path)
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
    return read


def _decode_batch(
    read: list[tuple[str, bytes, os.stat_result]], task: PartTask, result: PartResult
) -> tuple[SessionTables, list[str], list[os.stat_result]] | None:
    """Decode and check files into tables; a bad file is quarantined.

    Files in serde's own layout go through Arrow's JSON reader all at once (``_fastjson``);
    the others, file by file, through ``TableBuilder.add_raw``. The rows come out in file order.
    """
    if not read:
        return None
    fast = fast_tables([data for _, data, _ in read])
    taken = fast.taken if fast is not None else [False] * len(read)
    fast_numbers = fast.changed_numbers if fast is not None else {}
    general = _decode_general([item for item, took in zip(read, taken, strict=True) if not took], task, result)
    order = [i for i, took in enumerate(taken) if took]
    pieces = [fast.tables] if fast is not None else []
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
    for i in order:
        path, data, _ = read[i]
        # the fast path looked at its files' numbers already, where that layout has them
        changed = fast_numbers.get(i, []) if taken[i] else changed_numbers(data)
        if changed:  # under privacy settings, numbers are data: the file is named, they are not
            result.changed_numbers.append((stored_path(path, task.privacy), [] if task.privacy else changed[:3]))
    return tables, [read[i][0] for i in order], [read[i][2] for i in order]


def _decode_general(
    read: list[tuple[str, bytes, os.stat_result]], task: PartTask, result: PartResult
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


_CREATED = b'\n  "created_at": "'
_ID = b'{\n  "id": "'


class _Created(msgspec.Struct):
    """What the order of files needs, for a file not in serde's own layout."""

    id: str = ""
    created_at: str = ""


_CREATED_DECODER = msgspec.json.Decoder(_Created)


_TAIL = 4096


def _probe(path: str) -> tuple[str | None, str, int]:
    """A file's session creation time (text) and id, for ordering files before they are read,
    and its size; from its first bytes and its last 4 KB (serde's layout puts created_at at the
    start of a line near the end), else from the whole JSON. Anything odd: no time (the read
    that counts deals with it)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None, "", 0
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None, "", 0
        head = os.pread(fd, 256, 0)
        tail = os.pread(fd, _TAIL, max(0, st.st_size - _TAIL))
        at = tail.rfind(_CREATED)
        start = at + len(_CREATED)
        end = tail.find(b'"', start)
        if at >= 0 and head.startswith(_ID) and 0 < end - start < 64:
            sid = head[len(_ID) : head.find(b'"', len(_ID))].decode("utf-8", "replace")
            return tail[start:end].decode("ascii", "replace"), sid, st.st_size
        found = _CREATED_DECODER.decode(os.pread(fd, st.st_size, 0))
        return found.created_at or None, found.id, st.st_size
    except (OSError, msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None, "", 0
    finally:
        os.close(fd)


def _creation_order(probes: list[tuple[str | None, str, int]]) -> list[int]:
    """The positions of files in the order of their sessions' creation time, then id (files
    without a time last). Decoding puts rows in this order, so a file's rows need no sorting
    after (checked then)."""
    import numpy as np

    from sessionkit.tables import parse_timestamps

    texts = pa.array([text for text, _, _ in probes], pa.string())
    try:
        times = parse_timestamps(pc.fill_null(texts, "1970-01-01T00:00:00Z")).cast(pa.int64())
        times = np.where(texts.is_null().to_numpy(zero_copy_only=False), np.iinfo(np.int64).max, times.to_numpy())
    except (ValueError, pa.ArrowInvalid):  # a bad timestamp somewhere: the decoder names it; listing order
        return list(range(len(probes)))
    return sorted(range(len(probes)), key=lambda i: (int(times[i]), probes[i][1]))


# the fields of a record (see _RECORD_COLUMNS)
_PATH, _SID, _UPDATED, _NAMED, _PART, _WRITTEN = 0, 6, 7, 8, 9, 10


def _beats(record: list[Any], other: list[Any]) -> bool:
    """True when ``record``'s file wins over ``other``'s for one session id: the newer
    ``updated_at``, then the file named after the id, then the first path (as ``_merge``)."""
    return (-record[_UPDATED], not record[_NAMED], record[_PATH]) < (-other[_UPDATED], not other[_NAMED], other[_PATH])


class _Group:
    """The files a worker is writing now, one per table (and partition), rows in clustering
    order; a session id is in them once."""

    def __init__(self, task: PartTask, number: int) -> None:
        self.name = f"part-{task.run_id}-{task.index}-{number}"
        self.writers = {
            name: RollingWriter(Path(task.staging), name, self.name, task.partition_by, task.row_group_rows)
            for name in TABLE_NAMES
        }
        self.ids: set[str] = set()
        self.last: tuple[int, str] | None = None  # the clustering key of its last session
        self.sources = 0

    def takes(self, first: tuple[int, str], ids: list[str]) -> bool:
        """True when sessions from ``first`` on, with these ids, can follow in these files."""
        return (self.last is None or first >= self.last) and self.ids.isdisjoint(ids)

    def add(self, tables: SessionTables, order: dict[str, tuple[pa.Array, Any]], key: list[tuple[int, str]]) -> None:
        for name, table in tables.items():
            self.writers[name].add(table, order[name][1])
        self.ids.update(k[1] for k in key)
        self.last = key[-1]

    def close(self, result: PartResult) -> None:
        for name, writer in self.writers.items():
            result.written[name].extend(writer.close())
            result.row_groups[name] = result.row_groups.get(name, 0) + writer.row_groups


def export_part(task: PartTask) -> PartResult:
    """Worker: decode a share of a run's files and write their rows, one file per table (and
    partition) for every ``flush_bytes`` of source files (see ``FLUSH_BYTES``), at
    ``<table>/[<partition>/]part-<run>-<share>-<n>-<k>.parquet``, rows in clustering order.

    Each such unit of files is first ordered by the creation time of its sessions (a glance at
    each file's first and last bytes, see ``_probe``), then read and decoded in that order, so
    the rows come out in clustering order and go straight to the files, a row group at a time:
    nothing is sorted after, and memory holds one batch of files, whatever the unit's size.
    A duplicate session id (or, rarely, rows out of order) starts new files, so that a
    session id is once in a file."""
    result = PartResult(task.index, files=len(task.files))
    result.written = {name: [] for name in TABLE_NAMES}
    records: list[list[Any]] = []
    groups = [0]

    def unit(paths: list[str], probes: list[tuple[str | None, str, int]]) -> None:
        if not paths:
            return
        ordered = [paths[i] for i in _creation_order(probes)]
        group = _Group(task, groups[0])
        groups[0] += 1
        for start in range(0, len(ordered), FILES_PER_BATCH):
            batch_paths = ordered[start : start + FILES_PER_BATCH]
            decoded = _decode_batch(_read_files(batch_paths, task, result), task, result)
            report_progress(len(batch_paths))
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
            batch = [
                [stored_path(src, task.privacy), src, *_stat_tuple(st), sid, up, nm, None, True]
                for src, st, sid, up, nm in zip(sources, stats, ids, updated, named, strict=True)
            ]
            keep = _winners(batch)
            if len(keep) != len(batch):
                tables = take_sessions(tables, keep)
            order = cluster_order(dict(tables.items()))
            if any(not _is_identity(positions) for positions, _ in order.values()):  # not in order after all
                tables = SessionTables(**{name: table.take(order[name][0]) for name, table in tables.items()})
                order = cluster_order(dict(tables.items()))
            kept = [batch[i] for i in keep]
            key = [(int(t), r[_SID]) for t, r in zip(order["sessions"][1], kept, strict=True)]
            if key and not group.takes(key[0], [r[_SID] for r in kept]):
                group.close(result)
                group = _Group(task, groups[0])
                groups[0] += 1
            if key:
                group.add(tables, order, key)
            for record in batch:  # the ones set aside too: they were read now
                record[_PART] = group.name
            records.extend(batch)
        group.close(result)

    paths: list[str] = []
    probes: list[tuple[str | None, str, int]] = []
    size = 0
    for path in task.files:
        probe = _probe(path)
        paths.append(path)
        probes.append(probe)
        size += probe[2]
        if size >= task.flush_bytes or (task.files_per_part and len(paths) >= task.files_per_part):
            unit(paths, probes)
            paths, probes, size = [], [], 0
    unit(paths, probes)
    result.records = records_table(records)  # compact Arrow, not lists, for the main process to hold
    return result


def _winners(batch: list[list[Any]]) -> list[int]:
    """The positions of a batch's records to write: of several with one session id, the one
    that wins (the others are marked not written)."""
    best: dict[str, int] = {}
    for i, record in enumerate(batch):
        held = best.get(record[_SID])
        if held is None or _beats(record, batch[held]):
            if held is not None:
                batch[held][_WRITTEN] = False
            best[record[_SID]] = i
        else:
            record[_WRITTEN] = False
    return sorted(best.values())


def _is_identity(positions: pa.Array) -> bool:
    import numpy as np

    values = positions.to_numpy(zero_copy_only=False)
    return bool(np.array_equal(values, np.arange(len(values))))


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


def records_table(records: Sequence[Sequence[Any]]) -> pa.Table:
    """The good files read this run, one row each, from the workers' records."""
    return pa.table({name: pa.array([r[i] for r in records], kind) for i, (name, kind) in enumerate(_RECORD_COLUMNS)})
