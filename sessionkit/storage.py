"""The Parquet dataset on disk: export from oxios files, write, read, scan, and restore.

A dataset is a folder ``OUT/`` with one folder per table, each holding ``.parquet`` files
(zstd), so that ``read_parquet('OUT/messages/**/*.parquet')`` in DuckDB, polars or Spark
reads a table, plus ``OUT/_sessionkit.json`` describing how it was made.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from sessionkit.exceptions import (
    DatasetError,
    DatasetExistsError,
    SessionFormatError,
    SessionkitError,
    SourceNotFoundError,
)
from sessionkit.model import check_session, decode_json
from sessionkit.oxios import list_session_files, session_filename, write_session
from sessionkit.tables import SCHEMA_VERSION, SCHEMAS, TABLE_NAMES, SessionTables, TableBuilder, iter_sessions

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "MANIFEST_NAME",
    "ExportError",
    "ExportSummary",
    "export",
    "is_dataset",
    "read_parquet",
    "restore",
    "scan_parquet",
    "table_glob",
    "write_parquet",
]

#: The file in a dataset's folder that says what it is and how it was made.
MANIFEST_NAME = "_sessionkit.json"
DATASET_FORMAT = "sessionkit-dataset"
_COMPRESSION = "zstd"
_ROW_GROUP_ROWS = 128 * 1024
_ROW_GROUP_BYTES = 64 * 1024 * 1024


def _version() -> str:
    from sessionkit import __version__

    return __version__


class ExportError(SessionkitError, ValueError):
    """Some source files could not be read as sessions; nothing was written.

    Attributes:
        errors: one ``SessionFormatError`` (or other ``SessionkitError``) per bad file.
    """

    def __init__(self, errors: Sequence[SessionkitError], total: int) -> None:
        self.errors = list(errors)
        shown = "\n".join(f"  {err}" for err in self.errors[:10])
        more = f"\n  ... and {len(self.errors) - 10} more" if len(self.errors) > 10 else ""
        super().__init__(
            f"{len(self.errors)} of {total} files are not valid oxios sessions; nothing was written:\n"
            f"{shown}{more}\nHint: fix or move the files named above, then export again"
        )

    def __reduce__(self):
        return (ExportError, (self.errors, 0))


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
    row_groups: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        """A one-line human summary."""
        mb = self.bytes_read / 1e6
        rate = mb / self.seconds if self.seconds else 0.0
        return (
            f"exported {self.sessions} sessions ({self.messages} messages, {self.responses} responses, "
            f"{self.exchanges} exchanges, {self.metadata} metadata entries) from {self.files} files, "
            f"{mb:.1f} MB in {self.seconds:.2f} s ({rate:.0f} MB/s) to {self.out}"
        )


# -- paths ---------------------------------------------------------------------------------------
def table_glob(dataset: str | os.PathLike[str], table: str) -> str:
    """The glob that reads one table with any engine: ``OUT/<table>/**/*.parquet``."""
    return str(Path(dataset) / table / "**" / "*.parquet")


def is_dataset(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a folder holding a sessionkit dataset."""
    path = Path(path)
    return path.is_dir() and all((path / name).is_dir() for name in TABLE_NAMES)


def _check_dataset(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    if not path.exists():
        msg = f"{path}: no such dataset folder. Hint: create one with `sessionkit export SRC {path}`"
        raise SourceNotFoundError(msg)
    missing = [name for name in TABLE_NAMES if not (path / name).is_dir()]
    if missing:
        msg = f"{path}: not a sessionkit dataset (no {', '.join(n + '/' for n in missing)} folder). Hint: point at the OUT folder of `sessionkit export`"
        raise DatasetError(msg)
    return path


def _table_files(dataset: Path, table: str) -> list[str]:
    return sorted(str(p) for p in (dataset / table).rglob("*.parquet") if not p.name.startswith((".", "_")))


def _prepare_out(out: Path) -> None:
    if out.exists():
        if not out.is_dir():
            msg = f"{out}: exists and is not a folder. Hint: choose a new folder for the dataset"
            raise DatasetExistsError(msg)
        if any(out.iterdir()):
            msg = f"{out}: the folder already holds files. Hint: export into a new or empty folder (incremental export into an existing dataset is not supported yet)"
            raise DatasetExistsError(msg)


def _staging_dir(out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.staging-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    for name in TABLE_NAMES:
        (staging / name).mkdir(parents=True)
    return staging


def _publish(staging: Path, out: Path) -> None:
    """Move the finished dataset into place in one rename (``out`` is absent or empty)."""
    if out.exists():
        out.rmdir()
    os.replace(staging, out)


def _write_manifest(folder: Path, info: dict[str, Any]) -> None:
    manifest = {
        "format": DATASET_FORMAT,
        "schema_version": SCHEMA_VERSION,
        "sessionkit_version": _version(),
        "tables": {name: f"{name}/**/*.parquet" for name in TABLE_NAMES},
        **info,
    }
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")


class _TableWriter:
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
def write_parquet(tables: SessionTables, out: str | os.PathLike[str], *, row_group_rows: int = _ROW_GROUP_ROWS) -> Path:
    """Write tables as a Parquet dataset folder ``out`` (which must be new or empty).

    Example:
        >>> import sessionkit as sk
        >>> tables = sk.to_tables(sk.read_sessions("data/oxios-sample"))  # doctest: +SKIP
        >>> sk.write_parquet(tables, "build/sample-dataset")  # doctest: +SKIP
    """
    out = Path(out)
    _prepare_out(out)
    staging = _staging_dir(out)
    try:
        for name, table in tables.items():
            writer = _TableWriter(staging / name / "part-00000.parquet", SCHEMAS[name], row_group_rows)
            writer.add(table.cast(SCHEMAS[name]))
            writer.close()
        _write_manifest(staging, {"counts": {name: t.num_rows for name, t in tables.items()}})
        _publish(staging, out)
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
    folder = _check_dataset(dataset)
    tables = {}
    for name in TABLE_NAMES:
        schema = SCHEMAS[name]
        files = _table_files(folder, name)
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

    folder = _check_dataset(dataset)
    frames: dict[str, pl.LazyFrame] = {}
    for name in TABLE_NAMES:
        files = _table_files(folder, name)
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


# -- export: oxios files -> dataset ---------------------------------------------------------------
@dataclass
class _Batch:
    """What a worker sends back for a batch of files."""

    files: int
    tables: SessionTables | None
    sources: list[str]
    errors: list[SessionkitError]
    nbytes: int


def _decode_files(paths: Sequence[str]) -> _Batch:
    """Worker: read, decode and check a batch of files into tables; bad files become errors."""
    builder = TableBuilder()
    raws: list[tuple[dict, str]] = []
    errors: list[SessionkitError] = []
    nbytes = 0
    for path in paths:
        try:
            with open(path, "rb") as handle:
                data = handle.read()
            nbytes += len(data)
            obj = decode_json(data, source=path)
            check_session(obj, path)
        except SessionkitError as err:
            errors.append(err)
            continue
        except FileNotFoundError:
            errors.append(
                SourceNotFoundError(f"{path}: the file disappeared before it could be read (oxios may have pruned it)")
            )
            continue
        except OSError as err:
            errors.append(SourceNotFoundError(f"{path}: cannot be read ({err.strerror or err})"))
            continue
        raws.append((obj, path))
        builder.add_raw(obj, path)
    try:
        tables = builder.finish() if raws else None
    except SessionFormatError:
        # A timestamp is bad somewhere: sort out which files, one by one.
        builder = TableBuilder()
        for obj, path in raws:
            single = TableBuilder()
            single.add_raw(obj, path)
            try:
                single.finish()
            except SessionFormatError as err:
                errors.append(err)
                continue
            builder.add_raw(obj, path)
        tables = builder.finish() if len(builder) else None
    return _Batch(len(paths), tables, builder.sources, errors, nbytes)


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _pool_context() -> multiprocessing.context.BaseContext:
    method = "forkserver" if sys.platform.startswith("linux") else "spawn"
    return multiprocessing.get_context(method)


def _ordered_map(func: Callable[[Sequence[str]], Any], tasks: Iterable[Sequence[str]], jobs: int) -> Iterator[Any]:
    """``map(func, tasks)`` over ``jobs`` worker processes, in order, with few tasks in flight."""
    if jobs <= 1:
        yield from map(func, tasks)
        return
    context = _pool_context()
    if hasattr(context, "set_forkserver_preload"):
        context.set_forkserver_preload(["sessionkit.storage"])
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        window: deque[Future] = deque()
        iterator = iter(tasks)
        for task in iterator:
            window.append(pool.submit(func, task))
            if len(window) >= 2 * jobs:
                break
        while window:
            result = window.popleft().result()
            task = next(iterator, None)
            if task is not None:
                window.append(pool.submit(func, task))
            yield result


def default_jobs() -> int:
    """All the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def export(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    jobs: int | None = None,
    files_per_task: int = 256,
    row_group_rows: int = _ROW_GROUP_ROWS,
    progress: Callable[[int], None] | None = None,
) -> ExportSummary:
    """Export oxios session files to a new Parquet dataset folder, streaming in bounded batches.

    Files are decoded in ``jobs`` worker processes (default: all cores), ``files_per_task`` at
    a time, and written as row groups of at most ``row_group_rows`` rows, so memory does not
    grow with the number of sessions. The output is the same whatever ``jobs`` is. Nothing
    is published unless every file is a valid session.

    Args:
        source: an oxios state directory, a ``sessions/`` folder, or one ``.json`` file.
        out: the dataset folder to create; it must not exist or be empty.
        jobs: worker processes; 1 decodes in this process.
        files_per_task: files per batch handed to a worker.
        row_group_rows: the most rows in one Parquet row group.
        progress: called with the number of files done after each batch.

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
    _prepare_out(out)
    jobs = default_jobs() if jobs is None else max(1, int(jobs))
    if len(files) <= files_per_task:
        jobs = 1  # not worth starting workers
    summary = ExportSummary(source=str(source), out=str(out), files=len(files), jobs=jobs)
    staging = _staging_dir(out)
    try:
        writers = {
            name: _TableWriter(staging / name / "part-00000.parquet", SCHEMAS[name], row_group_rows)
            for name in TABLE_NAMES
        }
        errors: list[SessionkitError] = []
        misnamed: dict[str, str] = {}  # session id -> file, for files not named <id>.json
        done = 0
        for batch in _ordered_map(_decode_files, _chunks(files, files_per_task), jobs):
            done += batch.files
            summary.bytes_read += batch.nbytes
            errors.extend(batch.errors)
            if batch.tables is not None:
                _note_misnamed(batch.tables, batch.sources, misnamed, errors)
                if not errors:
                    for name, table in batch.tables.items():
                        writers[name].add(table)
                    summary.exchanges += _sum(batch.tables.sessions, "exchange_count")
            if progress is not None:
                progress(done)
        for writer in writers.values():
            writer.close()
        _check_misnamed(misnamed, files, errors)
        if errors:
            raise ExportError(errors, len(files))
        summary.sessions = writers["sessions"].rows
        summary.messages = writers["messages"].rows
        summary.responses = writers["responses"].rows
        summary.metadata = writers["metadata"].rows
        summary.row_groups = {name: w.row_groups for name, w in writers.items()}
        summary.seconds = time.perf_counter() - started
        _write_manifest(staging, {"source": str(Path(source).resolve()), "export": asdict(summary)})
        _publish(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    summary.seconds = time.perf_counter() - started
    return summary


def _sum(table: pa.Table, column: str) -> int:
    import pyarrow.compute as pc

    total = pc.sum(table[column]).as_py()
    return int(total or 0)


def _duplicate(source: str, sid: str, other: str) -> DatasetError:
    return DatasetError(
        f"{source}: session id {sid!r} is also the id of {other}. "
        "Hint: oxios names each file after its session id; remove the stray copy"
    )


def _note_misnamed(
    tables: SessionTables, sources: list[str], misnamed: dict[str, str], errors: list[SessionkitError]
) -> None:
    """Remember the sessions whose file is not named ``<id>.json``: only they can repeat an id.

    Files named after their ids cannot share one, so memory grows with the odd files only.
    """
    for sid, source in zip(tables.sessions["session_id"].to_pylist(), sources, strict=True):
        if os.path.basename(source) != f"{sid}.json":
            if sid in misnamed:
                errors.append(_duplicate(source, sid, misnamed[sid]))
            else:
                misnamed[sid] = source


def _check_misnamed(misnamed: dict[str, str], files: list[str], errors: list[SessionkitError]) -> None:
    """A misnamed file repeats an id when the file named after that id holds that id."""
    if not misnamed:
        return
    by_stem = {os.path.basename(path)[: -len(".json")]: path for path in files}
    odd_files = set(misnamed.values())
    bad_files = {getattr(err, "source", None) for err in errors}
    for sid, source in misnamed.items():
        other = by_stem.get(sid)
        if other is not None and other not in odd_files and other not in bad_files:
            errors.append(_duplicate(source, sid, other))


# -- restore: dataset -> oxios files ----------------------------------------------------------------
def restore(
    dataset: str | os.PathLike[str] | SessionTables,
    dest: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write the sessions of a dataset back as oxios files, ``dest/sessions/<id>.json``.

    For a dataset exported from oxios files, every file comes back byte for byte.
    Returns the number of files written.

    Example:
        >>> import sessionkit as sk
        >>> sk.restore("build/sample-dataset", "build/restored")  # doctest: +SKIP
        300
    """
    tables = dataset if isinstance(dataset, SessionTables) else read_parquet(dataset)
    folder = Path(dest) / "sessions"
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    for session in iter_sessions(tables):
        try:
            session_filename(session.id)
            write_session(session, folder, overwrite=overwrite)
        except FileExistsError:
            msg = f"{folder / session_filename(session.id)} already exists. Hint: restore into an empty folder, or pass --overwrite"
            raise FileExistsError(msg) from None
        except ValueError as err:
            raise DatasetError(f"cannot restore session {session.id!r}: {err}") from None
        count += 1
        if progress is not None and count % 1000 == 0:
            progress(count)
    if progress is not None:
        progress(count)
    return count
