"""``restore``: a dataset back to oxios files, in parallel."""

from __future__ import annotations

import errno
import json
import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sessionkit._progress import Progress
from sessionkit._progress import resolve as resolve_progress
from sessionkit.archive._pool import _no_gc, default_jobs, ordered_map
from sessionkit.exceptions import SessionkitWarning
from sessionkit.oxios import NAME_MAX, file_name_problem
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


_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_REPLACE = (
    os.O_WRONLY
    | os.O_CREAT
    | os.O_TRUNC
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)  # a FIFO at the name: fail at once (ENXIO) rather than wait
    | getattr(os, "O_CLOEXEC", 0)
)


def _write_file(path: str, data: bytes, overwrite: bool) -> None:
    """Write ``path``; with ``overwrite``, replace what is there, but never write through a
    link (a link at ``path`` is replaced by the file) nor into anything but a regular file."""
    try:
        fd = os.open(path, _REPLACE if overwrite else _NEW, 0o644)
    except FileExistsError:
        msg = f"{path} already exists. Hint: restore into an empty folder, or pass --overwrite"
        raise FileExistsError(msg) from None
    except OSError as err:
        if not overwrite or err.errno not in (errno.ELOOP, errno.EMLINK, errno.ENXIO):
            raise
        if err.errno == errno.ENXIO:  # a FIFO nobody reads
            raise _not_a_file(path) from None
        os.remove(path)  # ELOOP (EMLINK on FreeBSD): a link; remove the link itself, not its target
        fd = os.open(path, _NEW, 0o644)
    try:
        if overwrite and not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _not_a_file(path)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _not_a_file(path: str) -> FileExistsError:
    msg = f"{path} is not a regular file; restore does not write into it. Hint: remove it, then restore again"
    return FileExistsError(msg)


def _restore_tables(tables: SessionTables, folder: str, overwrite: bool) -> tuple[int, list[str]]:
    """Write the sessions of ``tables``; returns the count written and the ids skipped
    because they cannot be file names."""
    count, skipped = 0, []
    for sid, data in iter_session_json(tables):
        if file_name_problem(sid) is not None:
            skipped.append(sid)
            continue
        _write_file(os.path.join(folder, f"{sid}.json"), data, overwrite)
        count += 1
    return count, skipped


def _restore_part(task: _RestoreTask) -> tuple[int, list[str]]:
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
    the number of files written. An existing file is an error unless ``overwrite``, which
    replaces files (and links, never writing through them) but nothing else.

    Warns (``SessionkitWarning``) when sessions were skipped because their ids cannot be
    file names (a dataset written by an older sessionkit may hold some), and when the dataset
    was exported with privacy settings: its files are then not the original sessions.

    Example:
        >>> import sessionkit as sk
        >>> sk.restore("build/sample-dataset", "build/restored")  # doctest: +SKIP
        300
    """
    folder = Path(dest) / "sessions"
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(dataset, SessionTables):
        with _no_gc():
            count, skipped = _restore_tables(dataset, str(folder), overwrite)
        _warn_skipped(skipped)
        return count
    snapshot = open_dataset(dataset)
    _warn_privacy(snapshot, dataset)
    total = snapshot.rows("sessions")
    update, done = resolve_progress(progress, "restore", unit="session", total=total)
    tasks = _restore_tasks(snapshot, str(folder), overwrite)
    jobs = default_jobs() if jobs is None else max(1, int(jobs))
    count, skipped = 0, []
    try:
        for written, refused in ordered_map(_restore_part, tasks, min(jobs, len(tasks))):
            count += written
            skipped += refused
            if update is not None:
                update(count + len(skipped), total)
    finally:
        done()
    _warn_skipped(skipped)
    return count


def _warn_skipped(skipped: list[str]) -> None:
    if not skipped:
        return
    shown = ", ".join(repr(sid if len(sid) <= 40 else sid[:37] + "...") for sid in skipped[:5])
    more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
    warnings.warn(
        f"{len(skipped)} sessions were not restored: their ids cannot be file names (a slash, a backslash, "
        f"'..', a NUL byte, or over {NAME_MAX - len('.json')} bytes): {shown}{more}. "
        "Hint: oxios cannot have written them; read them with sk.read_parquet if you need them",
        SessionkitWarning,
        stacklevel=3,
    )


def _warn_privacy(snapshot: Snapshot, dataset: object) -> None:
    """Warn when the dataset's last export applied privacy settings."""
    runs = snapshot.read("runs") if snapshot.files.get("runs") else None
    if runs is None or runs.num_rows == 0:
        return
    record = runs["privacy"][runs.num_rows - 1].as_py()
    if not record:
        return
    settings = json.loads(record)
    done = [
        what
        for what, on in (
            ("user ids are pseudonyms", settings.get("pseudonymize_users")),
            ("session ids are pseudonyms", settings.get("pseudonymize_sessions")),
            (f"message text was redacted ({settings.get('redact')})", settings.get("redact", "none") != "none"),
            ("strings in metadata and extra were masked", settings.get("mask_extra")),
            (
                "metadata keys were left out",
                settings.get("keep_metadata_keys") is not None or settings.get("drop_metadata_keys"),
            ),
        )
        if on
    ]
    warnings.warn(
        f"{dataset} was exported with privacy settings ({'; '.join(done) or 'see its runs table'}): "
        "the files restored are valid oxios sessions, not the original ones",
        SessionkitWarning,
        stacklevel=3,
    )


def dataset_sessions(dataset: str | os.PathLike[str]) -> int:
    """The number of sessions in a dataset, from the Parquet footers (nothing else is read)."""
    return open_dataset(dataset).rows("sessions")
