"""``restore``: a dataset back to oxios files, in parallel."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sessionkit._progress import Progress
from sessionkit._progress import resolve as resolve_progress
from sessionkit.archive._pool import _no_gc, default_jobs, ordered_map
from sessionkit.exceptions import DatasetError
from sessionkit.oxios import session_filename
from sessionkit.storage import Snapshot, open_dataset
from sessionkit.tables import (
    CLUSTERING,
    SCHEMAS,
    TABLE_NAMES,
    SessionTables,
    iter_session_json,
)

# -- restore ---------------------------------------------------------------------------------------
#: Sessions restored by one task.
SESSIONS_PER_TASK = 4096


@dataclass
class _RestoreTask:
    tables: SessionTables  # some sessions with all their rows
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
    """Worker: some sessions back to oxios files."""
    return _restore_tables(task.tables, task.folder, task.overwrite)


def _chunks(snapshot: Snapshot, jobs: int) -> Iterator[SessionTables]:
    """The dataset's sessions in chunks of ``SESSIONS_PER_TASK``, each with all its rows.

    Every table is read in the order of its owners' keys (DuckDB sorts, spilling to disk when
    it must), so each chunk takes the rows of its sessions from the head of every stream,
    whichever files they are in.
    """
    import duckdb

    con = duckdb.connect(config={"threads": max(1, jobs)})
    streams: dict[str, _Stream] = {}
    try:
        for name in TABLE_NAMES:
            how = CLUSTERING[name]
            cursor = con.cursor()
            cursor.register("source", snapshot.dataset(name))
            order = ", ".join([how.key, *how.within])
            columns = ", ".join(f.name for f in SCHEMAS[name])
            reader = cursor.sql(f"SELECT {columns} FROM source ORDER BY {order}").to_arrow_reader(SESSIONS_PER_TASK * 4)
            streams[name] = _Stream(reader, SCHEMAS[name], how.key)
        owners = streams.pop("sessions")
        while True:
            sessions = owners.take_rows(SESSIONS_PER_TASK)
            if sessions.num_rows == 0:
                break
            last = sessions["session_id"][-1].as_py()
            tables = {"sessions": sessions, **{name: stream.take_through(last) for name, stream in streams.items()}}
            yield SessionTables(**tables)
        orphans = {name: stream.take_through(None) for name, stream in streams.items()}
        if any(t.num_rows for t in orphans.values()):
            yield SessionTables(sessions=owners.take_rows(0), **orphans)  # restoring them names the problem
    finally:
        con.close()


class _Stream:
    """A table's rows, sorted by owner key, taken from the head a piece at a time."""

    def __init__(self, reader: Any, schema: Any, key: str) -> None:
        self.reader, self.schema, self.key = reader, schema, key
        self.pending: list[Any] = []
        self.done = False

    def _more(self) -> bool:
        if self.done:
            return False
        try:
            batch = self.reader.read_next_batch()
        except StopIteration:
            self.done = True
            return False
        self.pending.append(batch)
        return True

    def _take(self, rows: int) -> Any:
        import pyarrow as pa

        table = pa.Table.from_batches(self.pending, schema=self.reader.schema)
        head, tail = table.slice(0, rows), table.slice(rows)
        self.pending = tail.to_batches()
        return head.cast(self.schema)

    def take_rows(self, rows: int) -> Any:
        """The next ``rows`` rows (fewer at the end)."""
        while sum(b.num_rows for b in self.pending) < rows and self._more():
            pass
        return self._take(min(rows, sum(b.num_rows for b in self.pending)))

    def take_through(self, last: str | None) -> Any:
        """The rows whose owner key is at most ``last`` (None: all that are left)."""
        import pyarrow.compute as pc

        while True:
            if last is None:
                if not self._more():
                    return self._take(sum(b.num_rows for b in self.pending))
                continue
            if self.pending:
                tail = self.pending[-1]
                if tail.num_rows and tail[self.key][-1].as_py() > last:
                    break
            if not self._more():
                break
        count = sum(int(pc.sum(pc.less_equal(b[self.key], last)).as_py() or 0) for b in self.pending)
        return self._take(count)


def restore(
    dataset: str | os.PathLike[str] | SessionTables,
    dest: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    jobs: int | None = None,
    progress: Progress = None,
) -> int:
    """Write the sessions of a dataset (a folder, ``s3://bucket/prefix``, or tables) back as
    oxios files, ``dest/sessions/<id>.json``, on all cores.

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
    snapshot = open_dataset(dataset)
    total = snapshot.rows("sessions")
    update, done = resolve_progress(progress, "restore", unit="session", total=total)
    jobs = default_jobs() if jobs is None else max(1, int(jobs))
    tasks = (_RestoreTask(tables, str(folder), overwrite) for tables in _chunks(snapshot, jobs))
    count = 0
    try:
        for written in ordered_map(_restore_part, tasks, min(jobs, -(-total // SESSIONS_PER_TASK) or 1)):
            count += written
            if update is not None:
                update(count, total)
    finally:
        done()
    return count


def dataset_sessions(dataset: str | os.PathLike[str]) -> int:
    """The number of sessions in a dataset, from the Parquet footers (nothing else is read)."""
    return open_dataset(dataset).rows("sessions")
