"""Versions of a dataset on disk: the one writer, staging, atomic publish, and what is kept.

::

    OUT/sessions -> .sessionkit/current/sessions        (likewise every table, and
    OUT/_sessionkit.json -> .sessionkit/current/manifest.json    the manifest)
    OUT/.sessionkit/current -> versions/000007           (switched atomically, last)
    OUT/.sessionkit/versions/000007/manifest.json        (the layout, every file and its stats)
    OUT/.sessionkit/versions/000007/_index -> ../../tables/_index/<run>   (what the archive
                                                          knows of its sources: files.parquet)
    OUT/.sessionkit/versions/000007/sessions -> ../../tables/sessions/<run>
    OUT/.sessionkit/tables/sessions/<run>/part-<run>-0-0.parquet

A table's folder is written once, by the run that changed it, and shared by every later
version until a run changes that table again; a run that changes nothing writes no table
file and links none. A writer builds the next version in ``.sessionkit/versions/staging-*``,
moves the folders of the tables it changed under ``tables/``, renames the staging folder
to the next version number and switches ``current`` with one atomic rename. The previous
version is kept until the next publish, for readers still in flight; table folders that
neither version uses are then removed. A writer killed at any point leaves the current
version untouched, and the next writer clears what it left.

Datasets made before table folders were shared hold real table folders inside their versions;
they are read the same way, and their next version takes their files over.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sessionkit.exceptions import DatasetExistsError, DatasetLockedError

STATE_DIR = ".sessionkit"
QUARANTINE_DIR = "quarantine"
#: The file in a dataset's folder that says what it is and how it was made.
MANIFEST_NAME = "_sessionkit.json"
VERSION_MANIFEST = "manifest.json"
DATASET_FORMAT = "sessionkit-dataset"
_STAGING = "staging-"


def failpoint(name: str) -> None:
    """A testing hook: with ``SESSIONKIT_FAILPOINT=<name>`` the process kills itself (SIGKILL)
    right here, so tests can prove that a crash at every step leaves a readable dataset."""
    if os.environ.get("SESSIONKIT_FAILPOINT") == name:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


def current_version(out: Path) -> Path | None:
    """The folder of the dataset's current version, or None for a dataset not versioned."""
    pointer = out / STATE_DIR / "current"
    return pointer.resolve() if pointer.is_symlink() and pointer.exists() else None


def read_version_manifest(version: Path) -> dict[str, Any]:
    """The manifest of one version (empty for a version that has none)."""
    try:
        return json.loads((version / VERSION_MANIFEST).read_text())
    except FileNotFoundError:
        return {}


def check_writable(out: Path) -> None:
    """``out`` must be absent, empty, or a versioned sessionkit dataset."""
    if not out.exists():
        return
    if not out.is_dir():
        msg = f"{out}: exists and is not a folder. Hint: choose a folder for the dataset"
        raise DatasetExistsError(msg)
    if (out / STATE_DIR).is_dir() or not any(out.iterdir()):
        return
    msg = (
        f"{out}: the folder holds files that are not a sessionkit dataset. "
        "Hint: export into a new or empty folder, or into a dataset that sessionkit export made"
    )
    raise DatasetExistsError(msg)


@contextmanager
def writer_lock(out: Path) -> Iterator[None]:
    """Hold the dataset's one-writer lock; a second writer fails at once with a clear message.

    The lock is an advisory ``flock`` on ``.sessionkit/lock``: the kernel drops it when the
    holder dies, even by SIGKILL, so a crash never leaves a stale lock behind.
    """
    state = out / STATE_DIR
    state.mkdir(parents=True, exist_ok=True)
    fd = os.open(state / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            msg = f"{out}: another sessionkit process is writing this dataset ({holder}). Hint: wait for it to finish, then run again"
            raise DatasetLockedError(msg) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing drops the flock


def recover(out: Path) -> None:
    """Clear what a killed writer left: staging folders, a half-made pointer, unpublished
    versions, table folders no version uses. Call with the writer lock held."""
    state = out / STATE_DIR
    if not state.is_dir():
        return
    current = current_version(out)
    for entry in state.iterdir():
        if entry.name.startswith((_STAGING, "current.tmp-")):  # staging folders of older sessionkits
            _remove(entry)
    versions = state / "versions"
    if versions.is_dir():
        published = sorted(
            e.name for e in versions.iterdir() if current is not None and e.name.isdigit() and e.name <= current.name
        )
        keep = set(published[-2:])  # the current version and the one before, for readers in flight
        for entry in versions.iterdir():
            if entry.name not in keep:
                _remove(entry)
    _collect_tables(state)


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def new_staging(out: Path, run_id: str, tables: tuple[str, ...] = ()) -> Path:
    """An empty folder for the next version, with a folder for each of ``tables``."""
    staging = out / STATE_DIR / "versions" / f"{_STAGING}{run_id}"
    staging.mkdir(parents=True, exist_ok=True)
    for name in tables:
        (staging / name).mkdir(parents=True, exist_ok=True)
    return staging


def _fsync(path: Path, *, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_tree(folder: Path) -> None:
    """Make every file and folder under ``folder`` durable, one ``fsync`` each: a version's new
    files are few (a ``syncfs`` would also wait for every other writer's data on the disk)."""
    for parent, _, names in os.walk(folder):
        for name in names:
            _fsync(Path(parent) / name)
        _fsync(Path(parent), directory=True)


def table_folder(version: Path, table: str) -> Path:
    """Where a version keeps a table's files (a shared table folder, or one of its own)."""
    return (version / table).resolve()


def is_shared(out: Path, folder: Path) -> bool:
    """True for a table folder under ``.sessionkit/tables/``, which versions share."""
    return folder.parent.parent == (out / STATE_DIR / "tables").resolve()


def publish(
    out: Path,
    staging: Path,
    *,
    reuse: Mapping[str, Path] | None = None,
    keep: Mapping[str, list[tuple[Path, str]]] | None = None,
    durable: bool = True,
) -> Path:
    """Make ``staging`` the dataset's current version; returns its folder.

    ``staging`` holds the version's manifest and index, and a folder for each table this run
    wrote, with its new files. ``keep`` lists, per such table, files of the previous version
    it keeps (source path, path below the table folder): they are hard-linked in. ``reuse``
    maps each table this run left as it was to the previous version's folder of it, shared
    as it is when it is a shared table folder (else its files are linked into a new one).

    The new table folders move under ``tables/``, the staging folder is renamed to the next
    version, and the ``current`` pointer switched with one atomic rename; then versions older
    than the previous one, and table folders no kept version uses, are removed. With
    ``durable`` the new files are fsynced first, so a power cut cannot publish a version whose
    data is not on disk. Call with the writer lock held.
    """
    state = out / STATE_DIR
    versions, tables = state / "versions", state / "tables"
    versions.mkdir(parents=True, exist_ok=True)
    keep = {name: list(files) for name, files in (keep or {}).items()}
    shared: dict[str, Path] = {}
    for name, folder in (reuse or {}).items():
        folder = folder.resolve()
        if is_shared(out, folder):
            shared[name] = folder
        else:  # a table folder of an older layout, inside its version: take its files over
            keep[name] = [(p, p.relative_to(folder).as_posix()) for p in sorted(folder.rglob("*.parquet"))]
            (staging / name).mkdir(parents=True, exist_ok=True)
    for name, files in keep.items():
        for source, relative in files:
            target = staging / name / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            link_or_copy(source, target)
    if durable:
        _sync_tree(staging)
    gen = staging.name[len(_STAGING) :] if staging.name.startswith(_STAGING) else staging.name
    for entry in sorted(staging.iterdir()):
        if entry.is_dir() and not entry.is_symlink():
            if entry.name in shared:  # a table left as it was: what a run wrote there and took back
                if any(entry.rglob("*.parquet")):
                    msg = f"{entry}: files of a table the run says it left as it was"
                    raise RuntimeError(msg)
                shutil.rmtree(entry)
                continue
            home = tables / entry.name / gen
            home.parent.mkdir(parents=True, exist_ok=True)
            os.rename(entry, home)
            shared[entry.name] = home
    for name, folder in shared.items():
        os.symlink(os.path.relpath(folder, staging), staging / name, target_is_directory=True)
    previous = current_version(out)
    number = 1 + max((int(p.name) for p in versions.iterdir() if p.name.isdigit()), default=0)
    final = versions / f"{number:06d}"
    if durable:
        _fsync(staging, directory=True)
        _fsync(tables, directory=True)
    failpoint("before-rename")
    os.rename(staging, final)
    failpoint("after-rename")
    pointer_tmp = state / f"current.tmp-{os.getpid()}"
    pointer_tmp.unlink(missing_ok=True)
    os.symlink(f"versions/{final.name}", pointer_tmp)
    if durable:
        _fsync(versions, directory=True)
    failpoint("before-switch")
    os.replace(pointer_tmp, state / "current")  # the moment of publication
    failpoint("after-switch")
    if durable:
        _fsync(state, directory=True)
    for name in (*(n for n in shared if not n.startswith("_")), MANIFEST_NAME):  # _index: not a table
        link = out / name
        if not link.is_symlink():
            pointer = f"{STATE_DIR}/current/{VERSION_MANIFEST if name == MANIFEST_NAME else name}"
            os.symlink(pointer, link, target_is_directory=name != MANIFEST_NAME)
    for entry in versions.iterdir():
        if entry != final and (previous is None or entry != previous):
            _remove(entry)
    _collect_tables(state)
    failpoint("after-cleanup")
    return final


def _collect_tables(state: Path) -> None:
    """Remove the table folders under ``tables/`` that no remaining version uses."""
    tables = state / "tables"
    if not tables.is_dir():
        return
    used: set[Path] = set()
    versions = state / "versions"
    for version in versions.iterdir() if versions.is_dir() else ():
        if version.name.isdigit():
            used.update(entry.resolve() for entry in version.iterdir() if entry.is_symlink())
    for table in tables.iterdir():
        for folder in table.iterdir():
            if folder.resolve() not in used:
                _remove(folder)


def link_or_copy(source: Path, target: Path) -> None:
    """Hard-link a file into the next version (a copy where links are refused)."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def dataset_manifest(info: Mapping[str, Any]) -> dict[str, Any]:
    """A dataset's manifest, on disk and on S3: format, schema version, table globs, and ``info``."""
    from sessionkit._version import __version__
    from sessionkit.tables import SCHEMA_VERSION, TABLE_NAMES

    return {
        "format": DATASET_FORMAT,
        "schema_version": SCHEMA_VERSION,
        "sessionkit_version": __version__,
        "tables": {table: f"{table}/**/*.parquet" for table in TABLE_NAMES},
        **info,
    }


def write_manifest(folder: Path, info: Mapping[str, Any], *, name: str = MANIFEST_NAME) -> None:
    """Describe a dataset (or one version of it) in ``folder/name`` (see ``dataset_manifest``)."""
    (folder / name).write_text(json.dumps(dataset_manifest(info), indent=2) + "\n")
