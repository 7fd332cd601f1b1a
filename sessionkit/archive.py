"""Export oxios session files to a dataset, and restore a dataset to oxios files, on all cores.

Export streams: the sorted file list is cut into parts of ``files_per_part`` files; each part
is decoded by a worker process, a few hundred files at a time, and written straight to its
own Parquet file per table in bounded row groups. The main process only keeps counts, so
memory does not grow with the number of sessions, and the output is the same whatever the
number of workers (each part depends only on its files). Restore reads the parts back in
parallel and writes one file per session.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import shutil
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sessionkit.exceptions import DatasetError, SessionFormatError, SessionkitError, SourceNotFoundError
from sessionkit.model import decode_json
from sessionkit.oxios import list_session_files, session_filename
from sessionkit.storage import (
    ROW_GROUP_ROWS,
    TableWriter,
    check_dataset,
    prepare_out,
    publish,
    staging_dir,
    table_files,
    write_manifest,
)
from sessionkit.tables import SCHEMAS, TABLE_NAMES, SessionTables, TableBuilder, iter_session_json

__all__ = ["ExportError", "ExportSummary", "default_jobs", "export", "restore"]

#: Files per part: each part is one Parquet file per table, written by one worker.
FILES_PER_PART = 2048
#: Files decoded together before their rows join the part's row-group buffer.
FILES_PER_BATCH = 256

T = TypeVar("T")
R = TypeVar("R")


class ExportError(SessionkitError, ValueError):
    """Some source files could not be read as sessions; nothing was written.

    Attributes:
        errors: one ``SessionFormatError`` (or other ``SessionkitError``) per bad file.
    """

    def __init__(self, errors: Sequence[SessionkitError], total: int) -> None:
        self.errors = list(errors)
        self.total = total
        shown = "\n".join(f"  {err}" for err in self.errors[:10])
        more = f"\n  ... and {len(self.errors) - 10} more" if len(self.errors) > 10 else ""
        super().__init__(
            f"{len(self.errors)} of {total} files are not valid oxios sessions; nothing was written:\n"
            f"{shown}{more}\nHint: fix or move the files named above, then export again"
        )

    def __reduce__(self):
        return (ExportError, (self.errors, self.total))


@dataclass
class ExportSummary:
    """What an export did: counts, bytes read, time taken, and where the dataset is."""

    source: str
    out: str
    files: int = 0
    sessions: int = 0
    messages: int = 0
    responses: int = 0
    metadata: int = 0
    exchanges: int = 0
    bytes_read: int = 0
    seconds: float = 0.0
    jobs: int = 1
    parts: int = 0
    row_groups: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        """A one-line human summary."""
        mb = self.bytes_read / 1e6
        rate = mb / self.seconds if self.seconds else 0.0
        return (
            f"exported {self.sessions} sessions ({self.messages} messages, {self.responses} responses, "
            f"{self.exchanges} exchanges, {self.metadata} metadata entries) from {self.files} files, "
            f"{mb:.1f} MB in {self.seconds:.2f} s ({rate:.0f} MB/s, {self.jobs} jobs) to {self.out}"
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
    method = "forkserver" if sys.platform.startswith("linux") else "spawn"
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload(["sessionkit.archive"])
    return context


def ordered_map(func: Callable[[T], R], tasks: Iterable[T], jobs: int) -> Iterator[R]:
    """``map(func, tasks)`` over ``jobs`` worker processes, results in order, few tasks in flight."""
    if jobs <= 1:
        with _no_gc():
            yield from map(func, tasks)
        return
    with ProcessPoolExecutor(max_workers=jobs, mp_context=_pool_context(), initializer=gc.disable) as pool:
        window: deque[Future[R]] = deque()
        pending = iter(tasks)
        for task in pending:
            window.append(pool.submit(func, task))
            if len(window) >= 2 * jobs:
                break
        while window:
            result = window.popleft().result()
            task = next(pending, None)
            if task is not None:
                window.append(pool.submit(func, task))
            yield result


# -- export ----------------------------------------------------------------------------------------
@dataclass
class _PartTask:
    index: int
    files: Sequence[str]
    folder: str
    name: str
    row_group_rows: int


@dataclass
class _PartResult:
    index: int
    files: int = 0
    nbytes: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    row_groups: dict[str, int] = field(default_factory=dict)
    exchanges: int = 0
    errors: list[SessionkitError] = field(default_factory=list)
    misnamed: list[tuple[str, str]] = field(default_factory=list)


def _read(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        data = os.read(fd, size + 1)
        if len(data) > size:  # growing while we read: take all of it
            chunks = [data]
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
            data = b"".join(chunks)
        return data
    finally:
        os.close(fd)


def _decode_batch(paths: Sequence[str], result: _PartResult) -> tuple[SessionTables, list[str]] | None:
    """Read, decode and check files into tables; a bad file becomes an error, never a crash."""
    builder = TableBuilder()
    good: list[tuple[Any, str]] = []
    for path in paths:
        try:
            data = _read(path)
            result.nbytes += len(data)
            obj = decode_json(data, source=path)
            builder.add_raw(obj, path)
        except SessionkitError as err:
            result.errors.append(err)
            continue
        except FileNotFoundError:
            msg = f"{path}: the file disappeared before it could be read (oxios may have pruned it)"
            result.errors.append(SourceNotFoundError(msg))
            continue
        except OSError as err:
            result.errors.append(SourceNotFoundError(f"{path}: cannot be read ({err.strerror or err})"))
            continue
        good.append((obj, path))
    if not good:
        return None
    try:
        return builder.finish(), builder.sources
    except SessionFormatError:
        # a timestamp is bad somewhere: sort out which files, one by one
        builder = TableBuilder()
        for obj, path in good:
            single = TableBuilder()
            single.add_raw(obj, path)
            try:
                single.finish()
            except SessionFormatError as err:
                result.errors.append(err)
                continue
            builder.add_raw(obj, path)
        return (builder.finish(), builder.sources) if len(builder) else None


def _export_part(task: _PartTask) -> _PartResult:
    """Worker: one part, i.e. one Parquet file per table for ``task.files``."""
    result = _PartResult(task.index, files=len(task.files))
    writers: dict[str, TableWriter] = {}
    try:
        for start in range(0, len(task.files), FILES_PER_BATCH):
            decoded = _decode_batch(task.files[start : start + FILES_PER_BATCH], result)
            if decoded is None:
                continue
            tables, sources = decoded
            if not writers:
                writers = {
                    name: TableWriter(Path(task.folder) / name / task.name, SCHEMAS[name], task.row_group_rows)
                    for name in TABLE_NAMES
                }
            for name, table in tables.items():
                writers[name].add(table)
            result.exchanges += _column_sum(tables.sessions, "exchange_count")
            for sid, source in zip(tables.sessions["session_id"].to_pylist(), sources, strict=True):
                if os.path.basename(source) != f"{sid}.json":
                    result.misnamed.append((sid, source))
    finally:
        for name, writer in writers.items():
            writer.close()
            result.rows[name] = writer.rows
            result.row_groups[name] = writer.row_groups
    return result


def _column_sum(table: Any, column: str) -> int:
    import pyarrow.compute as pc

    return int(pc.sum(table[column]).as_py() or 0)


def _duplicate(source: str, sid: str, other: str) -> DatasetError:
    return DatasetError(
        f"{source}: session id {sid!r} is also the id of {other}. "
        "Hint: oxios names each file after its session id; remove the stray copy"
    )


def _check_misnamed(misnamed: list[tuple[str, str]], files: list[str], errors: list[SessionkitError]) -> None:
    """Only a file not named ``<id>.json`` can repeat an id: of another misnamed file, or of
    the file named after that id (when that file does hold that id)."""
    if not misnamed:
        return
    by_stem = {os.path.basename(path)[: -len(".json")]: path for path in files}
    odd_files = {source for _, source in misnamed}
    bad_files = {getattr(err, "source", None) for err in errors}
    first: dict[str, str] = {}
    for sid, source in misnamed:
        other = by_stem.get(sid)
        if sid in first:
            errors.append(_duplicate(source, sid, first[sid]))
        elif other is not None and other not in odd_files and other not in bad_files:
            errors.append(_duplicate(source, sid, other))
        first.setdefault(sid, source)


def export(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    jobs: int | None = None,
    files_per_part: int = FILES_PER_PART,
    row_group_rows: int = ROW_GROUP_ROWS,
    progress: Callable[[int], None] | None = None,
) -> ExportSummary:
    """Export oxios session files to a new Parquet dataset folder, on all cores, in bounded memory.

    The sorted file list is cut into parts of ``files_per_part`` files; a worker turns each
    part into one Parquet file per table, in row groups of at most ``row_group_rows`` rows.
    The dataset is the same whatever ``jobs`` is, and nothing is published unless every
    file is a valid session.

    Args:
        source: an oxios state directory, a ``sessions/`` folder, or one ``.json`` file.
        out: the dataset folder to create; it must not exist or be empty.
        jobs: worker processes (default: all cores); 1 works in this process.
        files_per_part: files per part (per Parquet file of each table).
        row_group_rows: the most rows in one Parquet row group.
        progress: called with the number of files done, after each part.

    Raises:
        ExportError: some files are not valid sessions (all of them are listed).
        DatasetExistsError: ``out`` already holds files.

    Example:
        >>> import sessionkit as sk
        >>> sk.export("data/oxios-sample", "build/sample-dataset").sessions  # doctest: +SKIP
        300
    """
    started = time.perf_counter()
    out = Path(out)
    files = [str(path) for path in list_session_files(source)]
    prepare_out(out)
    jobs = default_jobs() if jobs is None else max(1, int(jobs))
    files_per_part = max(1, int(files_per_part))
    chunks = [files[i : i + files_per_part] for i in range(0, len(files), files_per_part)]
    jobs = min(jobs, max(1, len(chunks)))
    summary = ExportSummary(source=str(source), out=str(out), files=len(files), jobs=jobs, parts=len(chunks))
    run = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}"
    staging = staging_dir(out)
    try:
        tasks = (
            _PartTask(i, chunk, str(staging), f"part-{run}-{i:05d}.parquet", row_group_rows)
            for i, chunk in enumerate(chunks)
        )
        errors: list[SessionkitError] = []
        misnamed: list[tuple[str, str]] = []
        row_groups = dict.fromkeys(TABLE_NAMES, 0)
        done = 0
        for part in ordered_map(_export_part, tasks, jobs):
            done += part.files
            summary.bytes_read += part.nbytes
            summary.exchanges += part.exchanges
            errors.extend(part.errors)
            misnamed.extend(part.misnamed)
            for name in TABLE_NAMES:
                row_groups[name] += part.row_groups.get(name, 0)
            summary.sessions += part.rows.get("sessions", 0)
            summary.messages += part.rows.get("messages", 0)
            summary.responses += part.rows.get("responses", 0)
            summary.metadata += part.rows.get("metadata", 0)
            if progress is not None:
                progress(done)
        _check_misnamed(misnamed, files, errors)
        if errors:
            raise ExportError(errors, len(files))
        if summary.sessions == 0:  # still one (empty) file per table, so every engine's glob works
            for name in TABLE_NAMES:
                TableWriter(staging / name / f"part-{run}-00000.parquet", SCHEMAS[name], row_group_rows).close()
        summary.row_groups = row_groups
        summary.seconds = time.perf_counter() - started
        write_manifest(staging, {"source": str(Path(source).resolve()), "export": asdict(summary)})
        publish(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    summary.seconds = time.perf_counter() - started
    return summary


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
        name: ds.dataset(paths, schema=SCHEMAS[name], format="parquet").to_table()
        for name, paths in task.files.items()
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
    progress: Callable[[int], None] | None = None,
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
            count = _restore_tables(dataset, str(folder), overwrite)
        if progress is not None:
            progress(count)
        return count
    tasks = _restore_tasks(check_dataset(dataset), str(folder), overwrite)
    jobs = default_jobs() if jobs is None else max(1, int(jobs))
    count = 0
    for written in ordered_map(_restore_part, tasks, min(jobs, len(tasks))):
        count += written
        if progress is not None:
            progress(count)
    return count


def dataset_sessions(dataset: str | os.PathLike[str]) -> int:
    """The number of sessions in a dataset, from the Parquet footers (nothing else is read)."""
    import pyarrow.parquet as pq

    folder = check_dataset(dataset)
    return sum(pq.ParquetFile(path).metadata.num_rows for path in table_files(folder, "sessions"))
