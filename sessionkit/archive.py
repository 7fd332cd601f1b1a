"""The archive: incremental, atomic export of oxios session files into a dataset, and restore.

``export(SRC, OUT)`` is an upsert that loses nothing. Files unchanged since the last run are
recognised by their size, mtime, ctime and inode without being read. The others are read on
all cores: the sorted list is cut into parts, and each worker decodes its part and writes it
straight to its own Parquet file per table, in bounded row groups, so memory does not grow
with the number of sessions and the output does not depend on the number of workers. The
newest ``updated_at`` of a session wins (on a tie, the content read now); sessions whose
files oxios pruned are kept. A file that is not a session is copied, bytes unchanged, to
``OUT/quarantine/`` with a row in the ``errors`` table. The new version of the dataset is
staged beside the current one and published with one atomic rename (see ``storage``).

Every file seen lands in exactly one bucket: ``exported``, ``unchanged``, ``quarantined``,
``vanished`` (deleted between listing and reading) or ``ignored`` (not a ``*.json`` session
file). A file whose session is older than the version the dataset already holds counts as
``unchanged``; of several files holding the same session id, all but the newest are
quarantined as duplicates.
"""

from __future__ import annotations

import gc
import hashlib
import itertools
import multiprocessing
import os
import shutil
import stat
import sys
import threading
import time
import uuid
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sessionkit._fastjson import fast_tables
from sessionkit._progress import Progress
from sessionkit._progress import resolve as resolve_progress
from sessionkit.exceptions import DatasetError, SessionFormatError, SessionkitError, SourceNotFoundError
from sessionkit.model import decode_json
from sessionkit.oxios import find_sessions_dir, session_filename
from sessionkit.privacy import Privacy, PrivacyCounts, check_same_privacy, mask_text, pseudonym
from sessionkit.storage import (
    QUARANTINE_DIR,
    ROW_GROUP_ROWS,
    TableWriter,
    check_dataset,
    check_writable,
    current_version,
    failpoint,
    link_or_copy,
    new_staging,
    publish,
    recover,
    table_files,
    write_manifest,
    writer_lock,
)
from sessionkit.tables import (
    ERRORS_SCHEMA,
    RUNS_SCHEMA,
    SCHEMAS,
    TABLE_NAMES,
    SessionTables,
    TableBuilder,
    empty_table,
    iter_session_json,
    take_sessions,
)

__all__ = ["ExportError", "ExportSummary", "default_jobs", "errors", "export", "restore", "runs"]

#: Files per part: each part is one Parquet file per table, written by one worker.
FILES_PER_PART = 2048
#: Files decoded together before their rows join the part's row-group buffer.
FILES_PER_BATCH = 256
_TS = pa.timestamp("ns", tz="UTC")

#: What the archive remembers of each source file, to skip it next time if it is unchanged.
FILES_SCHEMA = pa.schema(
    [
        pa.field("path", pa.string(), nullable=False),
        pa.field("size", pa.int64(), nullable=False),
        pa.field("mtime_ns", pa.int64(), nullable=False),
        pa.field("ctime_ns", pa.int64(), nullable=False),
        pa.field("inode", pa.int64(), nullable=False),
        pa.field("outcome", pa.string(), nullable=False),  # exported, stale or quarantined
        pa.field("session_id", pa.string()),
        pa.field("updated_at_ns", pa.int64()),
        pa.field("named", pa.bool_()),  # the file is named after its session id (<id>.json)
    ]
)
_INDEX = "files.parquet"

T = TypeVar("T")
R = TypeVar("R")


class ExportError(SessionkitError, ValueError):
    """Some source files could not be read as sessions (raised by ``strict`` exports).

    Attributes:
        errors: one row per bad file, as in the ``errors`` table.
    """

    summary: ExportSummary | None = None

    def __init__(self, errors: Sequence[dict[str, Any]], total: int, *, published: bool = True) -> None:
        self.errors = list(errors)
        self.total = total
        shown = "\n".join(f"  {err['file']}: {err['message']}" for err in self.errors[:10])
        more = f"\n  ... and {len(self.errors) - 10} more" if len(self.errors) > 10 else ""
        done = "the good files were exported and the bad ones quarantined" if published else "nothing was written"
        super().__init__(
            f"{len(self.errors)} of {total} files are not valid oxios sessions; {done}:\n{shown}{more}\n"
            "Hint: `sessionkit errors OUT` lists them; fix or remove them, then export again"
        )

    def __reduce__(self):
        return (ExportError, (self.errors, self.total))


@dataclass
class ExportSummary:
    """What an export did: every file's bucket, the dataset's size, bytes read, time taken."""

    source: str
    out: str
    run_id: str = ""
    seen: int = 0
    exported: int = 0
    unchanged: int = 0
    quarantined: int = 0
    vanished: int = 0
    ignored: int = 0
    sessions: int = 0
    messages: int = 0
    responses: int = 0
    metadata: int = 0
    exchanges: int = 0
    bytes_read: int = 0
    seconds: float = 0.0
    jobs: int = 1
    parts_written: int = 0
    parts_rewritten: int = 0
    parts_kept: int = 0
    row_groups: dict[str, int] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list, repr=False)

    @property
    def files(self) -> int:
        """Session files seen (everything but the ignored entries)."""
        return self.seen - self.ignored

    def check(self) -> None:
        """Every file seen is in exactly one bucket."""
        total = self.exported + self.unchanged + self.quarantined + self.vanished + self.ignored
        if total != self.seen:
            msg = f"export accounting is off: {self.seen} seen but {total} in buckets"
            raise AssertionError(msg)

    def line(self) -> str:
        """A one-line human summary."""
        mb = self.bytes_read / 1e6
        rate = mb / self.seconds if self.seconds else 0.0
        return (
            f"{self.seen} seen: {self.exported} exported, {self.unchanged} unchanged, "
            f"{self.quarantined} quarantined, {self.vanished} vanished, {self.ignored} ignored; "
            f"dataset {self.out}: {self.sessions} sessions ({self.messages} messages, {self.responses} responses, "
            f"{self.exchanges} exchanges); read {mb:.1f} MB in {self.seconds:.2f} s ({rate:.0f} MB/s, {self.jobs} jobs)"
        )


# -- parallel machinery --------------------------------------------------------------------------
def default_jobs() -> int:
    """All the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@contextmanager
def _no_gc() -> Iterator[None]:
    """Decoding makes millions of short-lived containers that reference counting frees;
    the cyclic collector would only walk them over and over."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _pool_context() -> multiprocessing.context.BaseContext:
    """``fork`` when this process runs no other thread (the workers then start at once and share
    what is already imported), else a fork server (safe beside threads, as in a notebook)."""
    if sys.platform.startswith("linux") and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    method = "forkserver" if sys.platform.startswith("linux") else "spawn"
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload(["sessionkit._worker"])
    return context


def _warm() -> None:
    """In a new worker: the one-time costs (pyarrow imports pandas on its first conversion)."""
    pa.array([0])


class WorkerPool:
    """``jobs`` worker processes, started ahead of need (their start overlaps the caller's work),
    or none for ``jobs`` = 1, where ``map`` runs in this process."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self.pool: ProcessPoolExecutor | None = None
        if jobs > 1:
            context = _pool_context()
            self.pool = ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=gc.disable)
            # start the workers now, warming them up while the caller lists files; a fork server
            # takes a while to come up, so from a thread, not to hold up the caller
            submit = lambda: [self.pool.submit(_warm) for _ in range(jobs)]  # noqa: E731
            if context.get_start_method() == "fork":
                submit()
                self._warming = None
            else:
                self._warming = threading.Thread(target=submit, daemon=True)
                self._warming.start()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            if self._warming is not None:
                self._warming.join()
            self.pool.shutdown(wait=True, cancel_futures=True)

    def map(self, func: Callable[[T], R], tasks: Iterable[T], jobs: int | None = None) -> Iterator[R]:
        """``map(func, tasks)``, results in order, at most twice ``jobs`` tasks in flight."""
        jobs = self.jobs if jobs is None else min(jobs, self.jobs)
        if self.pool is None or jobs <= 1:
            with _no_gc():
                yield from map(func, tasks)
            return
        window: deque[Future[R]] = deque()
        pending = iter(tasks)
        for task in pending:
            window.append(self.pool.submit(func, task))
            if len(window) >= 2 * jobs:
                break
        while window:
            result = window.popleft().result()
            task = next(pending, None)
            if task is not None:
                window.append(self.pool.submit(func, task))
            yield result


def ordered_map(func: Callable[[T], R], tasks: Iterable[T], jobs: int) -> Iterator[R]:
    """``map(func, tasks)`` over ``jobs`` worker processes, results in order, few tasks in flight."""
    with WorkerPool(jobs) as pool:
        yield from pool.map(func, tasks)


# -- listing the source ----------------------------------------------------------------------------
class _Listing:
    """The session files of a source, sorted by name, with their stat, and the ignored count.

    Kept compact (names, and the numbers in typed arrays) since a source may hold millions.
    """

    def __init__(self, folder: str = "") -> None:
        self.folder = folder
        self.names: list[str] = []
        self.size = array("q")
        self.mtime_ns = array("q")
        self.ctime_ns = array("q")
        self.inode = array("q")
        self.ignored = 0

    def __len__(self) -> int:
        return len(self.names)

    def _numbers(self) -> tuple[array, array, array, array]:
        return self.size, self.mtime_ns, self.ctime_ns, self.inode

    @property
    def paths(self) -> list[str]:
        """The files' paths."""
        join, folder = os.path.join, self.folder
        return [join(folder, name) for name in self.names]

    def table(self, privacy: Privacy | None = None) -> pa.Table:
        """The files as a table: ``path`` as the archive records it, ``real`` as it is on disk."""
        paths = self.paths
        stored = paths if privacy is None else [stored_path(p, privacy) for p in paths]
        import numpy as np

        return pa.table(
            {
                "path": pa.array(stored, pa.string()),
                "real": pa.array(paths, pa.string()),
                "size": pa.array(np.frombuffer(self.size, dtype=np.int64)),
                "mtime_ns": pa.array(np.frombuffer(self.mtime_ns, dtype=np.int64)),
                "ctime_ns": pa.array(np.frombuffer(self.ctime_ns, dtype=np.int64)),
                "inode": pa.array(np.frombuffer(self.inode, dtype=np.int64)),
            }
        )


def list_source(source: str | os.PathLike[str]) -> _Listing:
    """The ``*.json`` regular files of a source, sorted; everything else there is counted as ignored.

    A symlink counts as a session file only when it resolves to a regular file inside the
    source folder; sockets, FIFOs, folders, ``*.tmp`` files and the like are ignored.
    """
    path = Path(source)
    if path.is_file():
        listing = _Listing(str(path.parent))
        st = path.stat()
        listing.names.append(path.name)
        for column, value in zip(
            listing._numbers(), (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino), strict=True
        ):
            column.append(value)
        return listing
    folder = find_sessions_dir(path)
    listing = _Listing(str(folder))
    root = os.path.realpath(folder)
    names, size, mtime, ctime, inode = listing.names, array("q"), array("q"), array("q"), array("q")
    with os.scandir(folder) as scan:
        for entry in scan:
            if not entry.name.endswith(".json"):
                listing.ignored += 1
                continue
            try:
                if entry.is_symlink():
                    target = os.path.realpath(entry.path)
                    if os.path.dirname(target) != root and not target.startswith(root + os.sep):
                        listing.ignored += 1
                        continue
                st = entry.stat()
            except FileNotFoundError:  # pruned while we listed; never seen as a file
                continue
            if not stat.S_ISREG(st.st_mode):
                listing.ignored += 1
                continue
            names.append(entry.name)
            size.append(st.st_size)
            mtime.append(st.st_mtime_ns)
            ctime.append(st.st_ctime_ns)
            inode.append(st.st_ino)
    order = sorted(range(len(names)), key=names.__getitem__)
    listing.names = [names[i] for i in order]
    for target, values in zip(listing._numbers(), (size, mtime, ctime, inode), strict=True):
        target.extend(values[i] for i in order)
    return listing


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


def stored_path(path: str, privacy: Privacy | None) -> str:
    """How the archive records a source path: as it is, or, when session ids are pseudonymised
    (file names are session ids), with the file name replaced by its keyed pseudonym."""
    if privacy is None or not privacy.pseudonymize_sessions or privacy.key is None:
        return path
    folder, name = os.path.split(path)
    stem = name[: -len(".json")] if name.endswith(".json") else name
    return os.path.join(folder, pseudonym(stem, key=privacy.key, kind="session") + ".json")


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
    """Worker: one part, i.e. one Parquet file per table for ``task.files``."""
    result = _PartResult(task.index, task.name, files=len(task.files))
    writers: dict[str, TableWriter] = {}
    ordinal = 0
    records: list[tuple] = []
    try:
        for start in range(0, len(task.files), FILES_PER_BATCH):
            decoded = _decode_batch(task.files[start : start + FILES_PER_BATCH], task, result)
            if decoded is None:
                continue
            tables, sources, stats = decoded
            named = [
                os.path.basename(src) == f"{sid}.json"
                for sid, src in zip(tables.sessions["session_id"].to_pylist(), sources, strict=True)
            ]
            if task.privacy is not None and not task.privacy.is_noop:
                tables, counts = task.privacy.apply(tables)
                result.privacy = counts if result.privacy is None else result.privacy + counts
            if not writers:
                writers = {
                    name: TableWriter(Path(task.staging) / name / task.name, SCHEMAS[name], task.row_group_rows)
                    for name in TABLE_NAMES
                }
            for name, table in tables.items():
                writers[name].add(table)
            ids = tables.sessions["session_id"].to_pylist()
            updated = tables.sessions["updated_at"].cast(pa.int64()).to_pylist()
            for sid, ns, source, st, is_named in zip(ids, updated, sources, stats, named, strict=True):
                records.append(
                    (stored_path(source, task.privacy), source, *_stat_tuple(st), sid, ns, ordinal, is_named, task.name)
                )
                ordinal += 1
    finally:
        for name, writer in writers.items():
            writer.close()
            result.rows[name] = writer.rows
            result.row_groups[name] = writer.row_groups
    result.records = _records_table(records)  # compact Arrow, not tuples, for the main process to hold
    return result


# -- the main process: classify, merge, publish ------------------------------------------------------
def _read_table(folder: Path | None, name: str, schema: pa.Schema) -> pa.Table:
    """A table of the previous version (every file of its folder, or the one file), or an empty one."""
    if folder is None:
        return empty_table(schema)
    target = folder / name
    paths = (
        sorted(str(p) for p in target.glob("*.parquet"))
        if target.is_dir()
        else ([str(target)] if target.exists() else [])
    )
    if not paths:
        return empty_table(schema)
    return pa.concat_tables([pq.read_table(p, schema=schema) for p in paths]).combine_chunks()


_KNOWN_FILES_SCHEMA = FILES_SCHEMA.append(pa.field("real", pa.string(), nullable=False))


def _classify(listing: _Listing, privacy: Privacy | None, index: pa.Table) -> tuple[list[str], pa.Table, pa.Table]:
    """Split the listing into files to read, unchanged good files, and unchanged bad files.

    A file is unchanged when its path, size, mtime, ctime and inode all equal the ones the
    last run recorded; its bytes are not read.
    """
    if index.num_rows == 0:  # a first export: read everything (and leave pyarrow cold till later)
        none = empty_table(_KNOWN_FILES_SCHEMA)
        return listing.paths, none, none
    listing = listing.table(privacy)
    # a lookup with compute kernels, not Table.join: that goes through Acero, which imports pandas
    position = pc.index_in(listing["path"], value_set=index["path"])
    previous = index.take(position)
    joined = listing
    for name in index.column_names:
        if name != "path":
            joined = joined.append_column(f"prev_{name}", previous[name])
    same = pc.fill_null(
        pc.and_(
            pc.and_(
                pc.equal(joined["size"], joined["prev_size"]), pc.equal(joined["mtime_ns"], joined["prev_mtime_ns"])
            ),
            pc.and_(
                pc.equal(joined["ctime_ns"], joined["prev_ctime_ns"]), pc.equal(joined["inode"], joined["prev_inode"])
            ),
        ),
        False,
    )
    to_read = joined.filter(pc.invert(same))["real"].to_pylist()
    unchanged = joined.filter(same)
    keep = unchanged.select(
        [
            "path",
            "size",
            "mtime_ns",
            "ctime_ns",
            "inode",
            "prev_outcome",
            "prev_session_id",
            "prev_updated_at_ns",
            "prev_named",
            "real",
        ]
    )
    keep = keep.rename_columns([*FILES_SCHEMA.names, "real"])
    bad = pc.equal(keep["outcome"], "quarantined")
    return to_read, keep.filter(pc.invert(bad)), keep.filter(bad)


def _existing_sessions(previous: Path | None) -> pa.Table:
    """session_id, updated_at_ns and part of every session of the previous version."""
    schema = pa.schema([("session_id", pa.string()), ("updated_at_ns", pa.int64()), ("part", pa.string())])
    if previous is None:
        return empty_table(schema)
    pieces = []
    for path in sorted((previous / "sessions").glob("*.parquet")):
        table = pq.read_table(path, columns=["session_id", "updated_at"])
        pieces.append(
            pa.table(
                {
                    "session_id": table["session_id"],
                    "updated_at_ns": table["updated_at"].cast(pa.int64()),
                    "part": pa.array([path.name] * table.num_rows, pa.string()),
                }
            )
        )
    return pa.concat_tables(pieces).combine_chunks() if pieces else empty_table(schema)


@dataclass
class _Decisions:
    """What the merge decided: rows to drop from parts, files to quarantine, outcomes."""

    drop_ids: dict[str, set[str]] = field(default_factory=dict)  # old part -> session ids replaced
    drop_ordinals: dict[str, set[int]] = field(default_factory=dict)  # new part -> rows not kept
    duplicates: list[tuple[str, str, str, str]] = field(default_factory=list)  # loser path, its real path, id, winner
    stale: set[str] = field(default_factory=set)  # paths read whose session the dataset holds newer


def _merge(new: pa.Table, unchanged_ok: pa.Table, existing: pa.Table) -> _Decisions:
    """Decide, for every session id read this run, which version the dataset keeps.

    Of several present files with one id, the newest ``updated_at`` wins (then the file named
    ``<id>.json``, then the first path); the others are duplicates. The winner read now
    replaces the dataset's version unless that one is newer (on a tie, the content read now).
    """
    decisions = _Decisions()
    columns = ["path", "real", "session_id", "updated_at_ns", "named", "part", "ordinal"]
    if unchanged_ok.num_rows == 0:
        present = new.select(columns)
    else:
        present = pa.concat_tables(
            [
                new.select(columns),
                pa.table(
                    {
                        "path": unchanged_ok["path"],
                        "real": unchanged_ok["real"],
                        "session_id": unchanged_ok["session_id"],
                        "updated_at_ns": unchanged_ok["updated_at_ns"],
                        "named": pc.fill_null(unchanged_ok["named"], False),
                        "part": pa.nulls(unchanged_ok.num_rows, pa.string()),
                        "ordinal": pa.nulls(unchanged_ok.num_rows, pa.int64()),
                    }
                ),
            ]
        )
    counts = pc.value_counts(present["session_id"])
    dup_ids = counts.field("values").filter(pc.greater(counts.field("counts"), 1))
    losers: set[str] = set()
    if len(dup_ids):
        rows = present.filter(pc.is_in(present["session_id"], value_set=dup_ids)).to_pylist()
        by_id: dict[str, list[dict]] = {}
        for row in rows:
            by_id.setdefault(row["session_id"], []).append(row)
        for sid, group in sorted(by_id.items()):
            group.sort(key=lambda r: (-r["updated_at_ns"], not r["named"], r["path"]))
            for row in group[1:]:
                decisions.duplicates.append((row["path"], row["real"], sid, group[0]["path"]))
                losers.add(row["path"])
                if row["part"] is not None:
                    decisions.drop_ordinals.setdefault(row["part"], set()).add(row["ordinal"])
    winners = new.filter(pc.invert(pc.is_in(new["path"], value_set=pa.array(sorted(losers), pa.string()))))
    found = pc.index_in(winners["session_id"], value_set=existing["session_id"])
    hit = pc.is_valid(found)
    old = existing.take(found.filter(hit))
    matched = (
        winners.filter(hit)
        .append_column("updated_at_ns_old", old["updated_at_ns"])
        .append_column("part_old", old["part"])
    )
    for row in matched.select(
        ["path", "session_id", "updated_at_ns", "updated_at_ns_old", "part", "part_old", "ordinal"]
    ).to_pylist():
        if row["updated_at_ns"] >= row["updated_at_ns_old"]:
            decisions.drop_ids.setdefault(row["part_old"], set()).add(row["session_id"])
        else:
            decisions.stale.add(row["path"])
            decisions.drop_ordinals.setdefault(row["part"], set()).add(row["ordinal"])
    return decisions


def _filter_part(
    source: Path,
    target: Path,
    name: str,
    *,
    ids: set[str] | None = None,
    ordinals: set[int] | None = None,
    row_group_rows: int = ROW_GROUP_ROWS,
) -> int:
    """Write part ``name`` from the version at ``source`` to ``target`` without some sessions
    (by id, or by row position); returns the sessions kept (0: nothing written)."""
    import numpy as np

    sessions = pq.read_table(source / "sessions" / name, schema=SCHEMAS["sessions"])
    if ids is not None:
        drop = pc.is_in(sessions["session_id"], value_set=pa.array(sorted(ids), pa.string())).to_numpy(
            zero_copy_only=False
        )
    else:
        drop = np.zeros(sessions.num_rows, dtype=bool)
        drop[sorted(ordinals or ())] = True
    keep = ~drop
    if not keep.any():
        return 0
    counts = {
        "sessions": np.ones(sessions.num_rows, dtype=np.int64),
        "messages": sessions["n_user_messages"].to_numpy(),
        "responses": sessions["n_agent_responses"].to_numpy(),
        "metadata": sessions["n_metadata"].to_numpy(),
    }
    for table_name in TABLE_NAMES:
        table = (
            sessions
            if table_name == "sessions"
            else pq.read_table(source / table_name / name, schema=SCHEMAS[table_name])
        )
        mask = np.repeat(keep, counts[table_name])
        if len(mask) != table.num_rows:
            msg = f"{source / table_name / name}: its rows do not follow the sessions of the part. Hint: the dataset is damaged; export it again into a new folder"
            raise DatasetError(msg)
        writer = TableWriter(target / table_name / name, SCHEMAS[table_name], row_group_rows)
        writer.add(table.filter(pa.array(mask)))
        writer.close()
    return int(keep.sum())


def export(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    jobs: int | None = None,
    strict: bool = False,
    privacy: Privacy | None = None,
    quarantine_dir: str | os.PathLike[str] | None = None,
    files_per_part: int = FILES_PER_PART,
    row_group_rows: int = ROW_GROUP_ROWS,
    progress: Progress = None,
) -> ExportSummary:
    """Export oxios session files into a dataset folder: a new one, or an update of an existing one.

    Re-running into the same ``out`` adds new sessions, replaces the ones whose files changed
    (the newest ``updated_at`` wins; on a tie, the content read now), and keeps the ones whose
    files are gone. Unchanged files are recognised without being read. Files that are not
    sessions are quarantined, never dropped silently. Readers see the old dataset or the new
    one, never a mix; a second export into the same ``out`` fails at once.

    Args:
        source: an oxios state directory, a ``sessions/`` folder, or one ``.json`` file.
        out: the dataset folder (absent, empty, or made by an earlier export).
        jobs: worker processes (default: all cores); 1 works in this process.
        strict: raise ``ExportError`` after publishing when any file was quarantined.
        files_per_part: files per part (per Parquet file of each table).
        row_group_rows: the most rows in one Parquet row group.
        privacy: pseudonyms and redaction applied before anything is written (see
            ``sessionkit.privacy.Privacy``); every run into one dataset must use the same.
        quarantine_dir: where copies of bad files go (default: ``OUT/quarantine``; with
            privacy settings, ``OUT.quarantine`` beside the dataset, which may then be shared).
        progress: a progress bar (None: when in a notebook or on a terminal; True; False) or a
            callable ``progress(files_read, files_to_read)`` called after each part.

    Raises:
        ExportError: with ``strict``, when files were quarantined.
        DatasetExistsError: ``out`` holds files that are not a dataset.
        DatasetLockedError: another export is writing ``out``.
        PrivacyError: the privacy settings differ from those of the dataset's earlier runs.

    Example:
        >>> import sessionkit as sk
        >>> sk.export("data/oxios-sample", "build/sample-dataset").exported  # doctest: +SKIP
        300
    """
    started_ns = time.time_ns()
    started = time.perf_counter()
    out = Path(out)
    jobs = default_jobs() if jobs is None else max(1, int(jobs))
    with WorkerPool(jobs) as pool:
        return _export(
            source,
            out,
            pool,
            strict,
            privacy,
            quarantine_dir,
            files_per_part,
            row_group_rows,
            progress,
            started,
            started_ns,
        )


def _export(
    source: str | os.PathLike[str],
    out: Path,
    pool: WorkerPool,
    strict: bool,
    privacy: Privacy | None,
    quarantine_dir: str | os.PathLike[str] | None,
    files_per_part: int,
    row_group_rows: int,
    progress: Progress,
    started: float,
    started_ns: int,
) -> ExportSummary:
    listing = list_source(source)
    check_writable(out)
    if privacy is not None and privacy.is_noop:
        privacy = None
    run_id = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}"
    summary = ExportSummary(
        source=str(source),
        out=str(out),
        run_id=run_id,
        seen=len(listing) + listing.ignored,
        ignored=listing.ignored,
    )
    if quarantine_dir is None:
        quarantine_dir = out.parent / f"{out.name}.quarantine" if privacy is not None else out / QUARANTINE_DIR
    with writer_lock(out):
        recover(out)
        previous = current_version(out)
        _check_privacy(previous, privacy, out)
        index = _read_table(previous, _INDEX, FILES_SCHEMA)
        to_read, unchanged_ok, unchanged_bad = _classify(listing, privacy, index)
        files_per_part = max(1, int(files_per_part))
        chunks = [to_read[i : i + files_per_part] for i in range(0, len(to_read), files_per_part)]
        summary.jobs = min(pool.jobs, max(1, len(chunks)))
        staging = new_staging(out, run_id)
        failpoint("staging")
        update, done = resolve_progress(progress, "export", total=len(to_read))
        run = _Run(summary, previous, staging, Path(quarantine_dir), privacy, row_group_rows, update, pool)
        try:
            run.read_and_merge(chunks, unchanged_ok, unchanged_bad)
            failpoint("merged")
            summary.seconds = time.perf_counter() - started
            _write_run(summary, previous, staging, started_ns, run.privacy_record())
            failpoint("before-publish")
            publish(out, staging)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        finally:
            done()
    summary.seconds = time.perf_counter() - started
    summary.check()
    if strict and summary.quarantined:
        listed = pa.array([stored_path(p, privacy) for p in listing.paths], pa.string())
        table = errors(out)
        current = table.filter(pc.is_in(table["file"], value_set=listed)).to_pylist()
        err = ExportError(current, summary.files)
        err.summary = summary
        raise err
    return summary


def _check_privacy(previous: Path | None, privacy: Privacy | None, out: Path) -> None:
    """One dataset, one set of privacy settings (see ``check_same_privacy``)."""
    if previous is None:
        return
    import json

    last = _read_table(previous, "runs", RUNS_SCHEMA)
    if last.num_rows == 0:
        if privacy is not None and _read_table(previous, "sessions", SCHEMAS["sessions"]).num_rows:
            check_same_privacy(None, privacy, dataset=str(out))
        return
    record = last["privacy"][last.num_rows - 1].as_py()
    check_same_privacy(json.loads(record) if record else None, privacy, dataset=str(out))


@dataclass
class _Run:
    """One export run in the main process: the parts the workers wrote, merged into ``staging``."""

    summary: ExportSummary
    previous: Path | None
    staging: Path
    quarantine: Path
    privacy: Privacy | None
    row_group_rows: int
    progress: Callable[[int, int], None] | None
    pool: WorkerPool
    counts: PrivacyCounts | None = None

    def privacy_record(self) -> dict[str, Any] | None:
        if self.privacy is None:
            return None
        return self.privacy.run_record(self.counts or PrivacyCounts())

    def read_and_merge(self, chunks: list[list[str]], unchanged_ok: pa.Table, unchanged_bad: pa.Table) -> None:
        """Read the changed files into new parts, then merge them with the previous version."""
        summary, staging, run_id = self.summary, self.staging, self.summary.run_id
        tasks = (
            _PartTask(
                i,
                chunk,
                str(staging),
                str(self.quarantine),
                f"part-{run_id}-{i:05d}.parquet",
                run_id,
                self.row_group_rows,
                self.privacy,
            )
            for i, chunk in enumerate(chunks)
        )
        total = sum(len(c) for c in chunks)
        records: list[pa.Table] = []
        bad_stats: list[tuple] = []
        new_errors: list[dict[str, Any]] = []
        new_parts: list[str] = []
        done = 0
        row_groups = dict.fromkeys(TABLE_NAMES, 0)
        parts = self.pool.map(_export_part, tasks, summary.jobs)
        first = next(parts, None)  # the workers are busy now; meanwhile, warm up what the merge needs:
        warm = threading.Thread(target=pa.array, args=([0],), daemon=True)  # pyarrow imports pandas here
        warm.start()
        for part in () if first is None else itertools.chain([first], parts):
            done += part.files
            summary.bytes_read += part.nbytes
            summary.vanished += part.vanished
            if part.records is not None and part.records.num_rows:
                records.append(part.records)
            bad_stats.extend(part.bad_stats)
            new_errors.extend(part.errors)
            if part.privacy is not None:
                self.counts = part.privacy if self.counts is None else self.counts + part.privacy
            if part.rows:
                new_parts.append(part.name)
            for name in TABLE_NAMES:
                row_groups[name] += part.row_groups.get(name, 0)
            if self.progress is not None:
                self.progress(done, total)
            failpoint("part-written")
        new = pa.concat_tables(records) if records else _records_table([])
        decisions = _merge(new, unchanged_ok, _existing_sessions(self.previous))
        # duplicates: quarantined, with the bytes as they are now
        duplicate_paths = set()
        for path, real, sid, winner in decisions.duplicates:
            try:
                data, _ = _read(real)
            except OSError:
                data = b""
            reason = f"session id {sid!r} is also held by {winner}, which is newer or named after the id; this copy was set aside"
            new_errors.append(quarantine(str(self.quarantine), real, data, reason, run_id, self.privacy))
            duplicate_paths.add(path)
        self._assemble(new_parts, decisions)
        # buckets
        read_ok = set(new["path"].to_pylist())
        unchanged_dups = duplicate_paths - read_ok
        summary.exported = len(read_ok) - len(decisions.stale) - len(duplicate_paths & read_ok)
        summary.unchanged = unchanged_ok.num_rows - len(unchanged_dups) + len(decisions.stale)
        summary.quarantined = len(bad_stats) + unchanged_bad.num_rows + len(duplicate_paths)
        summary.errors = new_errors
        summary.row_groups = row_groups
        _write_index(staging, new, decisions, unchanged_ok, unchanged_bad, bad_stats, duplicate_paths)
        _write_errors(staging, self.previous, new_errors, read_ok - duplicate_paths)
        _count(summary, staging)

    def _assemble(self, new_parts: list[str], decisions: _Decisions) -> None:
        """The new version's parts: new ones (filtered where they hold losers), old ones linked or filtered."""
        summary, staging, previous, rows = self.summary, self.staging, self.previous, self.row_group_rows
        summary.parts_written = len(new_parts)
        for name in new_parts:
            drop = decisions.drop_ordinals.get(name)
            if drop:
                scratch = staging / ".rewrite"
                for table in TABLE_NAMES:
                    (scratch / table).mkdir(parents=True, exist_ok=True)
                kept = _filter_part(staging, scratch, name, ordinals=drop, row_group_rows=rows)
                for table in TABLE_NAMES:
                    os.remove(staging / table / name)
                    if kept:
                        os.replace(scratch / table / name, staging / table / name)
                shutil.rmtree(scratch)
                if not kept:
                    summary.parts_written -= 1
        if previous is not None:
            for path in sorted((previous / "sessions").glob("*.parquet")):
                name = path.name
                drop = decisions.drop_ids.get(name)
                if drop:
                    summary.parts_rewritten += 1
                    new_name = f"{Path(name).stem.split('~')[0]}~{summary.run_id}.parquet"
                    kept = _filter_part(previous, staging, name, ids=drop, row_group_rows=rows)
                    if kept:
                        for table in TABLE_NAMES:
                            os.replace(staging / table / name, staging / table / new_name)
                else:
                    summary.parts_kept += 1
                    for table in TABLE_NAMES:
                        link_or_copy(previous / table / name, staging / table / name)
        if not any((staging / "sessions").glob("*.parquet")):  # one (empty) file per table, for every engine's glob
            for table in TABLE_NAMES:
                TableWriter(staging / table / f"part-{summary.run_id}-empty.parquet", SCHEMAS[table], rows).close()


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


def _write_index(
    staging: Path,
    new: pa.Table,
    decisions: _Decisions,
    unchanged_ok: pa.Table,
    unchanged_bad: pa.Table,
    bad_stats: list[tuple],
    duplicate_paths: set[str],
) -> None:
    """Remember every listed file's stat and outcome, so the next run can skip the unchanged ones."""
    outcome = [
        "quarantined" if path in duplicate_paths else "stale" if path in decisions.stale else "exported"
        for path in new["path"].to_pylist()
    ]
    read = pa.table(
        {
            "path": new["path"],
            "size": new["size"],
            "mtime_ns": new["mtime_ns"],
            "ctime_ns": new["ctime_ns"],
            "inode": new["inode"],
            "outcome": pa.array(outcome, pa.string()),
            "session_id": new["session_id"],
            "updated_at_ns": new["updated_at_ns"],
            "named": new["named"],
        },
        schema=FILES_SCHEMA,
    )
    ok = unchanged_ok.select(FILES_SCHEMA.names)
    if duplicate_paths:
        flag = pc.is_in(ok["path"], value_set=pa.array(sorted(duplicate_paths), pa.string()))
        ok = ok.set_column(
            ok.schema.get_field_index("outcome"), "outcome", pc.if_else(flag, "quarantined", ok["outcome"])
        )
    bad = pa.table(
        {
            "path": pa.array([b[0] for b in bad_stats], pa.string()),
            "size": pa.array([b[1] for b in bad_stats], pa.int64()),
            "mtime_ns": pa.array([b[2] for b in bad_stats], pa.int64()),
            "ctime_ns": pa.array([b[3] for b in bad_stats], pa.int64()),
            "inode": pa.array([b[4] for b in bad_stats], pa.int64()),
            "outcome": pa.array(["quarantined"] * len(bad_stats), pa.string()),
            "session_id": pa.nulls(len(bad_stats), pa.string()),
            "updated_at_ns": pa.nulls(len(bad_stats), pa.int64()),
            "named": pa.nulls(len(bad_stats), pa.bool_()),
        },
        schema=FILES_SCHEMA,
    )
    index = pa.concat_tables(
        [read, ok.cast(FILES_SCHEMA), unchanged_bad.select(FILES_SCHEMA.names).cast(FILES_SCHEMA), bad]
    )
    pq.write_table(index, staging / _INDEX, compression="zstd")


def _write_errors(staging: Path, previous: Path | None, new_errors: list[dict[str, Any]], fixed: set[str]) -> None:
    """The errors table: this run's bad files, plus earlier ones not read again (still bad, or gone)."""
    old = _read_table(previous, "errors", ERRORS_SCHEMA)
    redone = fixed | {e["file"] for e in new_errors}
    if old.num_rows and redone:
        old = old.filter(pc.invert(pc.is_in(old["file"], value_set=pa.array(sorted(redone), pa.string()))))
    rows = (
        pa.Table.from_pylist(
            new_errors, schema=pa.schema([f.with_type(pa.int64()) if f.name == "seen_at" else f for f in ERRORS_SCHEMA])
        )
        if new_errors
        else None
    )
    current = pa.concat_tables([old, rows.cast(ERRORS_SCHEMA)]) if rows is not None else old
    writer = TableWriter(staging / "errors" / "errors.parquet", ERRORS_SCHEMA, ROW_GROUP_ROWS)
    writer.add(current.sort_by("file"))
    writer.close()


def _count(summary: ExportSummary, staging: Path) -> None:
    """The dataset's totals, from the Parquet footers of the new version."""
    for table in TABLE_NAMES:
        rows = sum(pq.ParquetFile(p).metadata.num_rows for p in (staging / table).glob("*.parquet"))
        setattr(summary, table, rows)
    summary.exchanges = sum(
        int(pc.sum(pq.read_table(p, columns=["exchange_count"])["exchange_count"]).as_py() or 0)
        for p in (staging / "sessions").glob("*.parquet")
    )


def _write_run(
    summary: ExportSummary, previous: Path | None, staging: Path, started_ns: int, privacy: dict | None = None
) -> None:
    """Append this run to the runs table and describe the new version in its manifest."""
    import json

    from sessionkit import __version__

    runs_table = _read_table(previous, "runs", RUNS_SCHEMA)
    row = {
        "run_id": summary.run_id,
        "started_at": started_ns // 1000,
        "finished_at": time.time_ns() // 1000,
        "duration_s": summary.seconds,
        "source": _source_record(summary.source, privacy),
        "seen": summary.seen,
        "exported": summary.exported,
        "unchanged": summary.unchanged,
        "quarantined": summary.quarantined,
        "vanished": summary.vanished,
        "ignored": summary.ignored,
        "sessions": summary.sessions,
        "jobs": summary.jobs,
        "sessionkit_version": __version__,
        "privacy": json.dumps(privacy) if privacy else None,
    }
    plain = pa.schema([f.with_type(pa.int64()) if pa.types.is_timestamp(f.type) else f for f in RUNS_SCHEMA])
    runs_table = pa.concat_tables([runs_table, pa.Table.from_pylist([row], schema=plain).cast(RUNS_SCHEMA)])
    writer = TableWriter(staging / "runs" / "runs.parquet", RUNS_SCHEMA, ROW_GROUP_ROWS)
    writer.add(runs_table)
    writer.close()
    counts = {name: getattr(summary, name) for name in TABLE_NAMES}
    write_manifest(staging, {"run_id": summary.run_id, "counts": counts, "source": row["source"]}, name="manifest.json")


def _source_record(source: str, privacy: dict | None) -> str:
    """The source folder as the runs table records it; withheld under privacy settings, since
    a path may hold a person's name."""
    return "(withheld: privacy settings)" if privacy else str(Path(source).resolve())


def errors(dataset: str | os.PathLike[str]) -> pa.Table:
    """The ``errors`` table of a dataset: the files that could not be read as sessions.

    Columns: ``file``, ``size``, ``sha256``, ``error_class``, ``json_path``, ``byte_offset``,
    ``message``, ``quarantined_as`` (a copy of the bytes, under the dataset folder),
    ``run_id`` and ``seen_at``.
    """
    folder = check_dataset(dataset)
    return _read_table(folder, "errors", ERRORS_SCHEMA) if (folder / "errors").is_dir() else empty_table(ERRORS_SCHEMA)


def runs(dataset: str | os.PathLike[str]) -> pa.Table:
    """The ``runs`` table of a dataset: one row per export, with the count of every bucket."""
    folder = check_dataset(dataset)
    return _read_table(folder, "runs", RUNS_SCHEMA) if (folder / "runs").is_dir() else empty_table(RUNS_SCHEMA)


# -- restore ---------------------------------------------------------------------------------------
@dataclass
class _RestoreTask:
    files: dict[str, list[str]]  # table -> its Parquet files
    folder: str
    overwrite: bool


def _write_file(path: str, data: bytes, overwrite: bool) -> None:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o644)
    except FileExistsError:
        msg = f"{path} already exists. Hint: restore into an empty folder, or pass --overwrite"
        raise FileExistsError(msg) from None
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _restore_tables(tables: SessionTables, folder: str, overwrite: bool) -> int:
    count = 0
    for sid, data in iter_session_json(tables):
        try:
            name = session_filename(sid)
        except ValueError as err:
            raise DatasetError(f"cannot restore session {sid!r}: {err}") from None
        _write_file(os.path.join(folder, name), data, overwrite)
        count += 1
    return count


def _restore_part(task: _RestoreTask) -> int:
    """Worker: the sessions of one part back to oxios files."""
    import pyarrow.dataset as ds

    tables = {
        name: ds.dataset(paths, schema=SCHEMAS[name], format="parquet").to_table() for name, paths in task.files.items()
    }
    return _restore_tables(SessionTables(**tables), task.folder, task.overwrite)


def _restore_tasks(dataset: Path, folder: str, overwrite: bool) -> list[_RestoreTask]:
    """One task per part when every table has the same part files (as export writes them),
    else one task for the whole dataset."""
    files = {name: table_files(dataset, name) for name in TABLE_NAMES}
    names = {name: [os.path.basename(p) for p in paths] for name, paths in files.items()}
    if all(names[name] == names["sessions"] for name in TABLE_NAMES):
        return [
            _RestoreTask({name: [files[name][i]] for name in TABLE_NAMES}, folder, overwrite)
            for i in range(len(files["sessions"]))
        ]
    return [_RestoreTask(files, folder, overwrite)]


def restore(
    dataset: str | os.PathLike[str] | SessionTables,
    dest: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    jobs: int | None = None,
    progress: Progress = None,
) -> int:
    """Write the sessions of a dataset back as oxios files, ``dest/sessions/<id>.json``, on all cores.

    For a dataset exported from oxios files, every file comes back byte for byte. Returns
    the number of files written. An existing file is an error unless ``overwrite``.

    Example:
        >>> import sessionkit as sk
        >>> sk.restore("build/sample-dataset", "build/restored")  # doctest: +SKIP
        300
    """
    folder = Path(dest) / "sessions"
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(dataset, SessionTables):
        with _no_gc():
            return _restore_tables(dataset, str(folder), overwrite)
    total = dataset_sessions(dataset)
    update, done = resolve_progress(progress, "restore", unit="session", total=total)
    tasks = _restore_tasks(check_dataset(dataset), str(folder), overwrite)
    jobs = default_jobs() if jobs is None else max(1, int(jobs))
    count = 0
    try:
        for written in ordered_map(_restore_part, tasks, min(jobs, len(tasks))):
            count += written
            if update is not None:
                update(count, total)
    finally:
        done()
    return count


def dataset_sessions(dataset: str | os.PathLike[str]) -> int:
    """The number of sessions in a dataset, from the Parquet footers (nothing else is read)."""
    import pyarrow.parquet as pq

    folder = check_dataset(dataset)
    return sum(pq.ParquetFile(path).metadata.num_rows for path in table_files(folder, "sessions"))
