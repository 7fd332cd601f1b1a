"""``restore``: a dataset back to oxios files, in parallel."""

from __future__ import annotations

import os
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
    TABLE_NAMES,
    SessionTables,
    iter_session_json,
)


# -- restore ---------------------------------------------------------------------------------------
@dataclass
class _RestoreTask:
    files: dict[str, list[str]]  # table -> its Parquet files
    folder: str
    overwrite: bool
    filesystem: Any = None  # pyarrow's, for a dataset on S3
    sizes: dict[str, int] | None = None  # the files' sizes, where the manifest gives them


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
    part = Snapshot("", task.files, task.filesystem, None, task.sizes)
    tables = {name: part.read(name) for name in task.files}
    return _restore_tables(SessionTables(**tables), task.folder, task.overwrite)


def _restore_tasks(snapshot: Snapshot, folder: str, overwrite: bool) -> list[_RestoreTask]:
    """Tasks of about ``_FILES_PER_TASK`` part files each when every table has the same part
    files (as export writes them: ``created_date=.../<part>``), else one for the whole dataset."""
    files = {name: snapshot.files[name] for name in TABLE_NAMES}
    keys = {name: [_key(p, name) for p in paths] for name, paths in files.items()}
    fs = snapshot.filesystem
    if all(keys[name] == keys["sessions"] for name in TABLE_NAMES):
        tasks = []
        for i in range(0, len(files["sessions"]), _FILES_PER_TASK):
            chunk = {name: files[name][i : i + _FILES_PER_TASK] for name in TABLE_NAMES}
            sizes = _sizes_of(snapshot, chunk)
            tasks.append(_RestoreTask(chunk, folder, overwrite, fs, sizes))
        return tasks
    return [_RestoreTask(files, folder, overwrite, fs, _sizes_of(snapshot, files))]


def _sizes_of(snapshot: Snapshot, files: dict[str, list[str]]) -> dict[str, int] | None:
    if snapshot.sizes is None:
        return None
    return {p: snapshot.sizes[p] for paths in files.values() for p in paths if p in snapshot.sizes}


#: Part files restored by one task: a partitioned dataset has many small ones.
_FILES_PER_TASK = 16


def _key(path: str, table: str) -> str:
    """A file's path below its table folder: ``created_date=.../part-….parquet``."""
    return path.replace("\\", "/").rpartition(f"/{table}/")[2]


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
    tasks = _restore_tasks(snapshot, str(folder), overwrite)
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
    return open_dataset(dataset).rows("sessions")
