"""``restore``: a dataset back to oxios files, in parallel."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from sessionkit._progress import Progress
from sessionkit._progress import resolve as resolve_progress
from sessionkit.archive._pool import _no_gc, default_jobs, ordered_map
from sessionkit.exceptions import DatasetError
from sessionkit.oxios import session_filename
from sessionkit.storage import (
    check_dataset,
    table_files,
)
from sessionkit.tables import (
    SCHEMAS,
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

    folder = check_dataset(dataset)
    return sum(pq.ParquetFile(path).metadata.num_rows for path in table_files(folder, "sessions"))
