"""Where a dataset lives, behind one interface: a folder on disk or ``s3://bucket/prefix``.

A ``Store`` gives a run what it needs, the same on both: the one writer's lock (what a killed
writer left cleared), the current version as a ``Snapshot`` (its manifest and files, read
through pyarrow's file system), a local staging folder for the next version's new files,
where copies of bad files go, and the commit. Only the lock and the commit differ per
backend: on disk a ``flock`` and a symlink switched by an atomic rename
(``sessionkit._versions``); on S3 a lease and a manifest created by a conditional put
(``sessionkit._s3``; boto3 only for those puts). Readers take one ``Snapshot`` and read
exactly its files, so they see one version even while the next is published.

The commit protocol is sessionkit's own (a manifest written last, as Delta Lake's
``_delta_log`` and Iceberg's metadata files do) because the tables keep nanoseconds, which
Delta Lake cannot store. obstore would give conditional puts and retries without boto3, but
pyarrow's S3 file system still reads the Parquet files, so it would add a library, not
remove one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from sessionkit import _s3
from sessionkit._layout import DataFile, Layout, files_from_record, files_record, schema_of
from sessionkit._versions import (
    QUARANTINE_DIR,
    VERSION_MANIFEST,
    check_writable,
    current_version,
    dataset_manifest,
    failpoint,
    link_or_copy,
    new_staging,
    publish,
    read_version_manifest,
    recover,
    write_manifest,
    writer_lock,
)
from sessionkit.exceptions import DatasetError, DatasetLockedError, SessionkitWarning, SourceNotFoundError
from sessionkit.tables import AGENT_TABLE_NAMES, ARCHIVE_SCHEMAS, LATER_TABLES, TABLE_NAMES, empty_table

#: Every table folder of a dataset that export writes: the session tables, the agent tables,
#: runs, errors.
ALL_TABLES = (*TABLE_NAMES, *AGENT_TABLE_NAMES, *ARCHIVE_SCHEMAS)
#: Where a version keeps the file index: in a folder of its own, shared by the versions of runs
#: that read nothing (``_index/files.parquet``; versions of sessionkit 0.1: ``files.parquet``).
INDEX_KEY = "_index/files.parquet"
_OLD_INDEX_KEY = "files.parquet"
#: Requests to S3 in flight at once, for the many small files of a partitioned dataset.
_THREADS = 16


def new_run_id() -> str:
    """A run's id: when it started (UTC) and a random suffix, so no two runs share one."""
    return f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}"


@dataclass
class Snapshot:
    """One published version of a dataset, on disk or on S3: its manifest, the files of every
    table with their stats, and how to read them (pyarrow's file system ``fs``).

    Attributes:
        location: the dataset as named (a folder, or ``s3://bucket/prefix``).
        manifest: the version's manifest (empty for a dataset made before versions had one).
        files: every table's files (runs and errors included).
        fs: the pyarrow file system the paths belong to.
        root: the version's place on ``fs`` (a version folder, or ``bucket/prefix``).
        index: the path of the archive's file index on ``fs`` (None: there is none).
        version: the version's number (None: a folder written before datasets had versions).
        folder: on disk, the version's folder (None on S3).
    """

    location: str
    manifest: dict[str, Any]
    files: dict[str, list[DataFile]]
    fs: Any
    root: str
    index: str | None = None
    version: int | None = None
    folder: Path | None = None
    homes: dict[str, str] = field(default_factory=dict, repr=False)  # on disk: each table's real folder
    _cache: dict[tuple[str, tuple[str, ...] | None], pa.Table] = field(default_factory=dict, repr=False)

    @classmethod
    def of_folder(cls, location: str, folder: Path, version: int | None) -> Snapshot:
        """The version in ``folder`` (a version of a dataset on disk, or an unversioned one)."""
        from pyarrow import fs as pafs

        manifest = read_version_manifest(folder)
        homes = {name: str((folder / name).resolve()) for name in ALL_TABLES}
        files = files_from_record(manifest)
        if files is None:  # made before versions listed their files: list its folders
            files = {}
            for name in ALL_TABLES:
                home = Path(homes[name])
                found = sorted(p for p in home.rglob("*.parquet") if not p.name.startswith((".", "_")))
                files[name] = [
                    DataFile.legacy(f"{name}/{p.relative_to(home).as_posix()}", p.stat().st_size) for p in found
                ]
        index = next((folder / key for key in (INDEX_KEY, _OLD_INDEX_KEY) if (folder / key).exists()), None)
        return cls(
            location, manifest, _every_table(files), pafs.LocalFileSystem(), str(folder),
            str(index) if index is not None else None, version, folder, homes,
        )  # fmt: skip

    @classmethod
    def of_manifest(cls, location: _s3.S3Location, fs: Any, version: int, manifest: dict[str, Any]) -> Snapshot:
        """The version a manifest on S3 describes."""
        files = _every_table(files_from_record(manifest) or {})
        index = location.path(manifest["index"]) if manifest.get("index") else None
        return cls(location.uri, manifest, files, fs, location.path(""), index, version)

    @property
    def remote(self) -> bool:
        """True on S3 (read through pyarrow's S3 file system)."""
        return self.folder is None

    @property
    def layout(self) -> Layout | None:
        """The layout the version records (None: made before layouts were recorded)."""
        return Layout.from_record(self.manifest.get("layout"))

    def path(self, key: str) -> str:
        """Where a file of this version is, on ``fs`` (on disk: by its real path, since a table
        folder may be shared with other versions)."""
        table, _, rest = key.partition("/")
        home = self.homes.get(table)
        return f"{home}/{rest}" if home is not None else f"{self.root}/{key}"

    def paths(self, table: str) -> list[str]:
        """The paths of one table's files."""
        return [self.path(f.key) for f in self.files.get(table, [])]

    def dataset(self, table: str) -> Any:
        """A ``pyarrow.dataset.Dataset`` of one table with its declared schema (nothing read yet)."""
        import pyarrow.dataset as ds  # here, not at the top: it imports pandas when installed

        files, schema = self.files.get(table, []), schema_of(table)
        if not self.remote or not files or any(f.size < 0 for f in files):
            return ds.dataset(self.paths(table), schema=schema, format="parquet", filesystem=self.fs)
        # sizes known: no request per file to learn them (on S3, one round trip fewer each)
        form = ds.ParquetFileFormat()
        fragments = [form.make_fragment(self.path(f.key), filesystem=self.fs, file_size=f.size) for f in files]
        return ds.FileSystemDataset(fragments, schema, form, self.fs)

    def read(self, table: str, columns: list[str] | None = None) -> pa.Table:
        """One table (or some of its columns), read whole into memory; read once, then remembered."""
        key = (table, tuple(columns) if columns is not None else None)
        if key not in self._cache:
            try:
                self._cache[key] = self.dataset(table).to_table(columns=columns).combine_chunks()
            except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as err:
                msg = f"{self.location}/{table}: cannot be read as the {table} table ({err}). Hint: the dataset may be damaged, from another tool, or changed by an export while it was read; read it again or re-export it"
                raise DatasetError(msg) from err
        return self._cache[key]

    def read_file(self, file: DataFile, schema: pa.Schema) -> pa.Table:
        """One file, its columns cast to ``schema`` (and only those)."""
        import pyarrow.parquet as pq

        try:
            with self.fs.open_input_file(self.path(file.key)) as source:
                return pq.ParquetFile(source).read(columns=schema.names).cast(schema)
        except (OSError, pa.ArrowInvalid) as err:
            msg = f"{self.path(file.key)}: cannot be read ({err}). Hint: the dataset may be damaged; export it again into a new folder"
            raise DatasetError(msg) from err

    def file_rows(self, file: DataFile) -> int:
        """The rows of one file (from its footer when the manifest does not say)."""
        import pyarrow.parquet as pq

        return (
            file.rows if file.rows is not None else pq.read_metadata(self.path(file.key), filesystem=self.fs).num_rows
        )

    def rows(self, table: str) -> int:
        """The rows of one table, from the manifest or the Parquet footers (nothing else read)."""
        return sum(self.file_rows(f) for f in self.files.get(table, []))


def _every_table(files: dict[str, list[DataFile]]) -> dict[str, list[DataFile]]:
    for name in ALL_TABLES:
        files.setdefault(name, [])
    return files


@dataclass
class NextVersion:
    """The next version of a dataset while a run (export or compaction) builds it.

    Attributes:
        previous: the version it follows (None for a new dataset).
        staging: the local folder holding its new files, at their keys.
        layout: the layout it records (None: a dataset of the 0.1 layout, which records none).
        kept: per table, files of ``previous`` it keeps as they are.
        new: per table, its new files (in ``staging``).
        index_changed: False when it keeps the previous version's file index.
        info: what its manifest records besides the layout and the files (run id, counts, ...).
    """

    previous: Snapshot | None
    staging: Path
    layout: Layout | None
    kept: dict[str, list[DataFile]] = field(default_factory=dict)
    new: dict[str, list[DataFile]] = field(default_factory=dict)
    index_changed: bool = True
    info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def keeping_all(cls, previous: Snapshot, staging: Path, layout: Layout | None) -> NextVersion:
        """A version that starts as a copy of ``previous`` (as compaction does)."""
        kept = {name: list(previous.files.get(name, [])) for name in ALL_TABLES}
        return cls(previous, staging, layout, kept, {name: [] for name in ALL_TABLES}, index_changed=False)

    def files(self) -> dict[str, list[DataFile]]:
        """Every table's files in this version."""
        return {name: self.kept.get(name, []) + self.new.get(name, []) for name in ALL_TABLES}

    def replace(self, table: str, removed: list[DataFile], added: list[DataFile]) -> None:
        """Take ``removed`` out of the table (kept files, or new ones, deleted from staging) and
        add ``added`` (new files in staging)."""
        gone = {f.key for f in removed}
        for file in self.new.get(table, []):
            if file.key in gone:
                (self.staging / file.key).unlink(missing_ok=True)
        self.kept[table] = [f for f in self.kept.get(table, []) if f.key not in gone]
        self.new[table] = [f for f in self.new.get(table, []) if f.key not in gone] + list(added)

    def changed(self, name: str) -> bool:
        """True when this version's files of a table are not the previous version's."""
        before = self.previous.files.get(name, []) if self.previous is not None else []
        return bool(self.new.get(name)) or len(self.kept.get(name, [])) != len(before)

    def where(self, file: DataFile) -> tuple[str, Any]:
        """Where a file of this version is: its path, and the pyarrow file system (None: local)."""
        if any(f.key == file.key for f in self.new.get(file.table, [])):
            return str(self.staging / file.key), None
        assert self.previous is not None
        return self.previous.path(file.key), self.previous.fs

    def manifest(self) -> dict[str, Any]:
        """What its manifest records besides format and versions."""
        info = dict(self.info)
        if self.layout is not None:
            info["layout"] = self.layout.record()
        return {**info, **files_record(self.files())}


class LocalStore:
    """A dataset in a folder on disk (see ``sessionkit._versions`` for its layout)."""

    def __init__(self, out: str | os.PathLike[str]) -> None:
        self.out = Path(out)
        self.uri = str(self.out)

    def current(self) -> Snapshot | None:
        """The current version, for a writer: None when nothing was published."""
        version = current_version(self.out)
        return Snapshot.of_folder(self.uri, version, int(version.name)) if version is not None else None

    def open(self) -> Snapshot:
        """The current version, for a reader, checked (one lookup of the ``current`` pointer)."""
        folder, version = check_folder(self.out)
        return Snapshot.of_folder(self.uri, folder, version)

    def check_writable(self) -> None:
        check_writable(self.out)

    @contextmanager
    def writing(self, run_id: str, *, break_lock: bool = False) -> Iterator[Path]:
        """Hold the writer's lock, clear what killed writers left, and give a staging folder
        (removed at the end unless published). ``break_lock`` has no effect on disk: the
        kernel drops the lock of a dead writer."""
        with writer_lock(self.out):
            recover(self.out)
            staging = new_staging(self.out, run_id)
            try:
                yield staging
            finally:
                shutil.rmtree(staging, ignore_errors=True)

    def quarantine(self, privacy: bool) -> str:
        """Where copies of bad files go: ``OUT/quarantine``; with privacy settings
        ``OUT.quarantine`` beside the dataset, which may then be shared without them."""
        return str(self.out.parent / f"{self.out.name}.quarantine" if privacy else self.out / QUARANTINE_DIR)

    def publish(self, next_version: NextVersion, run_id: str, *, quarantine: tuple[Path, str] | None = None) -> None:
        """Make ``next_version`` current: its manifest into staging, then the atomic switch."""
        write_manifest(next_version.staging, next_version.manifest(), name=VERSION_MANIFEST)
        publish(self.out, next_version.staging, reuse=self._reuse(next_version), keep=self._keep(next_version))

    def tidy(self, snapshot: Snapshot) -> None:
        """Nothing to do: ``recover`` cleared what killed writers left, under the lock."""

    @staticmethod
    def _reuse(next_version: NextVersion) -> dict[str, Path]:
        """The previous version's folders of the tables left as they were (and of the file
        index, when it is kept)."""
        previous = next_version.previous
        if previous is None or previous.folder is None:
            return {}
        folders = {name: previous.folder / name for name in ALL_TABLES if not next_version.changed(name)}
        if not next_version.index_changed and previous.index is not None:
            index = Path(previous.index)
            if index.parent.name == Path(INDEX_KEY).parent.name:
                folders[index.parent.name] = previous.folder / index.parent.name
            else:  # an index of a 0.1 version, beside its tables: this version's own copy
                keep = next_version.staging / INDEX_KEY
                keep.parent.mkdir(parents=True, exist_ok=True)
                link_or_copy(index, keep)
        return folders

    @staticmethod
    def _keep(next_version: NextVersion) -> dict[str, list[tuple[Path, str]]]:
        """Per table changed, the previous version's files it keeps (path, relative path)."""
        previous = next_version.previous
        if previous is None:
            return {}
        return {
            name: [(Path(previous.path(f.key)), f.relative) for f in next_version.kept.get(name, [])]
            for name in ALL_TABLES
            if next_version.changed(name)
        }


class S3Store:
    """A dataset at ``s3://bucket/prefix`` (see ``sessionkit._s3`` for its layout and lock)."""

    def __init__(self, uri: str) -> None:
        self.location = _s3.S3Location.parse(uri)
        self.uri = self.location.uri
        self.s3: Any = None  # boto3's client, while writing

    @property
    def fs(self) -> Any:
        return _s3.filesystem()

    def current(self) -> Snapshot | None:
        latest = _s3.latest_manifest(self.fs, self.location)
        return Snapshot.of_manifest(self.location, self.fs, *latest) if latest is not None else None

    def open(self) -> Snapshot:
        snapshot = self.current()
        if snapshot is None:
            msg = f"{self.uri}: no sessionkit dataset there (no {_s3.MANIFESTS}/). Hint: create one with `sessionkit export SRC {self.uri}`"
            raise SourceNotFoundError(msg)
        return snapshot

    def check_writable(self) -> None:
        """Any prefix will do: a dataset there is what its manifests list."""

    @contextmanager
    def writing(self, run_id: str, *, break_lock: bool = False) -> Iterator[Path]:
        """Hold the dataset's lease (see ``S3Lock``) and give a local scratch folder for the
        next version's new files. What killed writers uploaded goes at the next publish."""
        self.s3 = _s3.client()
        with (
            tempfile.TemporaryDirectory(prefix="sessionkit-s3-") as scratch,
            _s3.S3Lock(self.location, self.s3, run_id=run_id, break_lock=break_lock),
        ):
            staging = Path(scratch) / "staging"
            staging.mkdir()
            yield staging

    def quarantine(self, privacy: bool) -> str:
        """``PREFIX/quarantine``, or with privacy settings ``PREFIX.quarantine`` beside the dataset."""
        if not privacy:
            return f"{self.uri}/{QUARANTINE_DIR}"
        return f"{self.uri}.quarantine" if self.location.prefix else f"{self.uri}/sessionkit.quarantine"

    def publish(self, next_version: NextVersion, run_id: str, *, quarantine: tuple[Path, str] | None = None) -> None:
        """Upload the quarantine copies (``quarantine``: local folder, target URI) and the new
        files, create manifest ``version + 1`` if no one else did, then delete what the new
        version no longer lists."""

        location, staging, previous = self.location, next_version.staging, next_version.previous
        if quarantine is not None and _s3.is_s3(quarantine[1]):
            self._upload_quarantine(next_version, *quarantine)
        uploads = [(staging / f.key, location.path(f.key)) for files in next_version.new.values() for f in files]
        if next_version.index_changed or previous is None:
            index_key = f"{_s3.STATE}/state/files-{run_id}.parquet"
            uploads.append((staging / INDEX_KEY, location.path(index_key)))
        else:
            index_key = previous.manifest["index"]
        self._upload(uploads)
        failpoint("s3-uploaded")
        version = 1 + ((previous.version or 0) if previous is not None else 0)
        manifest = dataset_manifest(
            {
                "version": version,
                "published_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                **next_version.manifest(),
                "index": index_key,
            }
        )
        body = (json.dumps(manifest, indent=2) + "\n").encode()
        try:
            self.s3.put_object(
                Bucket=location.bucket, Key=location.key(_s3.manifest_name(version)), Body=body, IfNoneMatch="*"
            )
        except Exception as err:
            if _s3.is_precondition_failure(err):
                msg = f"{self.uri}: another writer published version {version} while this one ran; nothing of this run was published. Hint: run it again"
                raise DatasetLockedError(msg) from None
            raise
        failpoint("s3-published")
        with self.fs.open_output_stream(location.path("_sessionkit.json")) as stream:  # for people browsing
            stream.write(body)
        self.tidy(manifest)

    def tidy(self, snapshot: Snapshot | dict[str, Any]) -> None:
        """Delete every table file and index the version does not list: the previous version's
        replaced files, and what killed runs uploaded but never published. Call while writing."""
        from pyarrow import fs as pafs

        manifest = snapshot.manifest if isinstance(snapshot, Snapshot) else snapshot
        location = self.location
        listed = {location.path(key) for keys in manifest["files"].values() for key in keys}
        listed.add(location.path(manifest["index"]))
        stale = []
        for folder in (*ALL_TABLES, f"{_s3.STATE}/state"):
            selector = pafs.FileSelector(location.path(folder), recursive=True, allow_not_found=True)
            stale += [
                info.path
                for info in self.fs.get_file_info(selector)
                if info.type == pafs.FileType.File and info.path.endswith(".parquet") and info.path not in listed
            ]
        keys = [path.partition("/")[2] for path in stale]  # pyarrow's paths are bucket/key
        failed: list[dict[str, Any]] = []
        for start in range(0, len(keys), 1000):  # a DeleteObjects request takes up to 1,000 keys
            batch = [{"Key": key} for key in keys[start : start + 1000]]
            answer = self.s3.delete_objects(Bucket=location.bucket, Delete={"Objects": batch, "Quiet": True})
            failed += answer.get("Errors", [])
        if failed:  # still unlisted, so the next tidy tries again; readers never see them
            first = failed[0]
            warnings.warn(
                f"{self.uri}: {len(failed)} files the dataset no longer lists could not be deleted "
                f"({first.get('Code')} on {first.get('Key')}: {first.get('Message')}); the next write "
                "tries again. Hint: the credentials need s3:DeleteObject on the bucket",
                SessionkitWarning,
                stacklevel=2,
            )

    def _upload(self, pairs: list[tuple[Path, str]]) -> None:
        """Store local files as ``bucket/key`` objects through pyarrow, many at once."""
        fs = self.fs

        def one(pair: tuple[Path, str]) -> None:
            with fs.open_output_stream(pair[1]) as stream:
                stream.write(pair[0].read_bytes())

        _parallel(one, pairs)

    def _upload_quarantine(self, next_version: NextVersion, folder: Path, uri: str) -> None:
        """Upload the copies of bad files, and name them in the errors table by where they went."""
        import re

        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        if folder.is_dir():
            base = _s3.S3Location.parse(uri)
            self._upload([(path, base.path(path.name)) for path in sorted(folder.iterdir()) if path.is_file()])
        moved = []
        for file in next_version.new.get("errors", []):
            path = next_version.staging / file.key
            table = pq.read_table(path, schema=schema_of("errors"))
            column = pc.replace_substring_regex(
                table["quarantined_as"], pattern=f"^{re.escape(str(folder))}/", replacement=f"{uri}/"
            )
            table = table.set_column(table.schema.get_field_index("quarantined_as"), "quarantined_as", column)
            pq.write_table(table, path, compression="zstd")
            moved.append(DataFile(file.key, path.stat().st_size, file.rows))
        next_version.new["errors"] = moved


def _parallel(action: Callable[[Any], None], items: list[Any]) -> None:
    """``action`` on every item, ``_THREADS`` at a time (S3 requests wait on the network)."""
    from concurrent.futures import ThreadPoolExecutor

    if items:
        with ThreadPoolExecutor(min(_THREADS, len(items))) as threads:
            list(threads.map(action, items))


Store = LocalStore | S3Store


def open_store(location: str | os.PathLike[str]) -> Store:
    """The store of a dataset: ``s3://bucket/prefix``, or a folder on disk."""
    return S3Store(str(location)) if _s3.is_s3(location) else LocalStore(location)


def check_folder(path: str | os.PathLike[str]) -> tuple[Path, int | None]:
    """The folder to read a dataset on disk from (its current version, resolved once) and the
    version's number (None for a folder written before datasets had versions).

    Raises:
        SourceNotFoundError: there is no such folder.
        DatasetError: the folder holds no sessionkit dataset, or ``path`` is on S3.
    """
    if _s3.is_s3(path):
        msg = f"{path}: an s3:// dataset has no folder to check. Hint: use sessionkit.storage.open_dataset, which reads its manifest"
        raise DatasetError(msg)
    path = Path(path)
    if not path.exists():
        msg = f"{path}: no such dataset folder. Hint: create one with `sessionkit export SRC {path}`"
        raise SourceNotFoundError(msg)
    version = current_version(path)
    folder = version if version is not None else path
    missing = [name for name in TABLE_NAMES if name not in LATER_TABLES and not (folder / name).is_dir()]
    if missing:
        msg = f"{path}: not a sessionkit dataset (no {', '.join(n + '/' for n in missing)} folder). Hint: point at the OUT folder of `sessionkit export`"
        raise DatasetError(msg)
    return folder, int(version.name) if version is not None else None


def read_table(snapshot: Snapshot | None, name: str) -> pa.Table:
    """A table of a version, or an empty one when there is no version."""
    return snapshot.read(name) if snapshot is not None else empty_table(schema_of(name))
