"""``export`` into ``s3://bucket/prefix``: the same run as on disk, published by manifest.

The run reads the previous version through pyarrow's S3 file system (the columns it needs of
the sessions table, the file index, the runs and errors tables, and the files it must rewrite)
and writes its new files in a local scratch folder. They get run-unique names and are uploaded
first; unchanged files stay where they are. Then the next manifest is created with a
conditional write, and the files the new version no longer lists are deleted. See
``sessionkit._s3`` for the layout and the lock.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

from sessionkit import _s3
from sessionkit._layout import DataFile, files_from_record
from sessionkit._progress import resolve as resolve_progress
from sessionkit.archive._listing import list_source
from sessionkit.archive._next import NextVersion
from sessionkit.archive._pool import WorkerPool
from sessionkit.archive._state import _INDEX, FILES_SCHEMA, Previous, _classify
from sessionkit.archive._summary import ExportSummary
from sessionkit.exceptions import DatasetLockedError
from sessionkit.privacy import Privacy
from sessionkit.storage import ALL_TABLES, DATASET_FORMAT, QUARANTINE_DIR, failpoint
from sessionkit.tables import ERRORS_SCHEMA, SCHEMA_VERSION, TABLE_NAMES, empty_table

#: Requests to S3 in flight at once, for the many small files of a partitioned dataset.
_THREADS = 16


def export_s3(
    source: str | os.PathLike[str],
    uri: str,
    pool: WorkerPool,
    options: Any,
    *,
    strict: bool,
    quarantine_dir: str | os.PathLike[str] | None,
    break_lock: bool,
) -> tuple[ExportSummary, Any]:
    """Export ``source`` into the dataset at ``uri``; returns the summary and the listing."""
    from sessionkit.archive._export import _check_privacy, _Run, layout_of, new_run_id, warn_changed_numbers

    location = _s3.S3Location.parse(uri)
    fs, s3 = _s3.filesystem(), _s3.client()
    listing = list_source(source)
    privacy = options.privacy
    if privacy is not None and privacy.is_noop:
        privacy = None
    run_id = new_run_id()
    summary = ExportSummary(
        source=str(source),
        out=location.uri,
        run_id=run_id,
        seen=len(listing) + listing.ignored,
        ignored=listing.ignored,
    )
    with (
        tempfile.TemporaryDirectory(prefix="sessionkit-s3-") as scratch,
        _s3.S3Lock(location, s3, run_id=run_id, break_lock=break_lock),
    ):
        work = Path(scratch)
        latest = _s3.latest_manifest(fs, location)
        version, manifest = latest if latest is not None else (0, None)
        previous = previous_on_s3(fs, location, manifest) if manifest is not None else None
        _check_privacy(previous, privacy, location.uri)
        layout = layout_of(previous, options.partition_by, location.uri)
        index = previous.read_index() if previous is not None else empty_table(FILES_SCHEMA)
        to_read, unchanged_ok, unchanged_bad, elsewhere = _classify(listing, privacy, index)
        staging = work / "staging"
        staging.mkdir()
        local_quarantine = Path(quarantine_dir) if quarantine_dir is not None else work / "quarantine"
        update, done = resolve_progress(options.progress, "export", total=len(to_read))
        run = _Run(summary, previous, staging, local_quarantine, privacy, layout, options, update, pool)
        try:
            run.read_and_merge(to_read, unchanged_ok, unchanged_bad, elsewhere)
            summary.seconds = time.perf_counter() - options.started
            run.record()
        finally:
            done()
        if quarantine_dir is None:
            target = _quarantine_uri(location, privacy)
            _upload_quarantine(s3, local_quarantine, target)
            run.next.new["errors"] = [
                DataFile(f.key, _point_errors_at(staging / f.key, str(local_quarantine), target), f.rows)
                for f in run.next.new["errors"]
            ]
        publish(fs, s3, location, version, run.next, run_id)
        warn_changed_numbers(run.changed_numbers)
    summary.seconds = time.perf_counter() - options.started
    return summary, listing


def previous_on_s3(fs: Any, location: _s3.S3Location, manifest: dict[str, Any]) -> Previous:
    """The version a manifest describes, read through pyarrow's S3 file system."""
    files = files_from_record(manifest) or {}
    for name in ALL_TABLES:
        files.setdefault(name, [])
    index = location.path(manifest["index"]) if manifest.get("index") else None
    return Previous(manifest, files, fs, location.path(""), index)


def _quarantine_uri(location: _s3.S3Location, privacy: Privacy | None) -> str:
    """``PREFIX/quarantine``, or with privacy settings ``PREFIX.quarantine`` beside the dataset,
    so the dataset's prefix can be shared without the raw bytes of bad files."""
    if privacy is None:
        return f"{location.uri}/{QUARANTINE_DIR}"
    return f"{location.uri}.quarantine" if location.prefix else f"{location.uri}/sessionkit.quarantine"


def _parallel(action: Callable[[Any], None], items: Iterable[Any]) -> None:
    items = list(items)
    if not items:
        return
    with ThreadPoolExecutor(min(_THREADS, len(items))) as threads:
        for _ in threads.map(action, items):
            pass


def _upload(s3: Any, pairs: list[tuple[Path, str]]) -> None:
    """Store local files as ``bucket/key`` objects, many at once (one PUT each: they are small)."""

    def one(pair: tuple[Path, str]) -> None:
        source, target = pair
        bucket, _, key = target.partition("/")
        s3.put_object(Bucket=bucket, Key=key, Body=source.read_bytes())

    _parallel(one, pairs)


def _upload_quarantine(s3: Any, folder: Path, uri: str) -> None:
    if folder.is_dir():
        base = _s3.S3Location.parse(uri)
        _upload(s3, [(path, base.path(path.name)) for path in sorted(folder.iterdir()) if path.is_file()])


def _point_errors_at(path: Path, local: str, uri: str) -> int:
    """The errors table names the quarantine copies by where they were uploaded; returns the
    file's new size."""
    table = pq.read_table(path, schema=ERRORS_SCHEMA)
    column = table["quarantined_as"]
    moved = pc.replace_substring_regex(column, pattern=f"^{_regex_escape(local)}/", replacement=f"{uri}/")
    table = table.set_column(table.schema.get_field_index("quarantined_as"), "quarantined_as", moved)
    pq.write_table(table, path, compression="zstd")
    return path.stat().st_size


def _regex_escape(text: str) -> str:
    import re

    return re.escape(text)


def publish(fs: Any, s3: Any, location: _s3.S3Location, version: int, next_version: NextVersion, run_id: str) -> None:
    """Upload the new files (and the file index, when it changed), create manifest
    ``version + 1`` if no one else did, then delete what the new version no longer lists."""
    from sessionkit._version import __version__

    staging = next_version.staging
    uploads = [(staging / f.key, location.path(f.key)) for files in next_version.new.values() for f in files]
    if next_version.index_changed or next_version.previous is None:
        index_key = f"{_s3.STATE}/state/files-{run_id}.parquet"
        uploads.append((staging / _INDEX, location.path(index_key)))
    else:
        index_key = next_version.previous.manifest["index"]
    _upload(s3, uploads)
    failpoint("s3-uploaded")
    manifest = {
        "format": DATASET_FORMAT,
        "schema_version": SCHEMA_VERSION,
        "sessionkit_version": __version__,
        "version": version + 1,
        "published_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "tables": {name: f"{name}/**/*.parquet" for name in TABLE_NAMES},
        **next_version.manifest(),
        "index": index_key,
    }
    body = (json.dumps(manifest, indent=2) + "\n").encode()
    try:
        s3.put_object(
            Bucket=location.bucket, Key=location.key(_s3.manifest_name(version + 1)), Body=body, IfNoneMatch="*"
        )
    except Exception as err:
        if _s3.is_precondition_failure(err):
            msg = (
                f"{location.uri}: another writer published version {version + 1} while this one ran; "
                "nothing of this run was published. Hint: run it again"
            )
            raise DatasetLockedError(msg) from None
        raise
    failpoint("s3-published")
    s3.put_object(Bucket=location.bucket, Key=location.key("_sessionkit.json"), Body=body)
    collect_garbage(fs, s3, location, manifest)


def collect_garbage(fs: Any, s3: Any, location: _s3.S3Location, manifest: dict[str, Any]) -> None:
    """Delete every table file and index the manifest does not list: the previous version's
    replaced files, and what killed runs uploaded but never published. Call with the lock held."""
    from pyarrow import fs as pafs

    listed = {location.path(key) for keys in manifest["files"].values() for key in keys}
    listed.add(location.path(manifest["index"]))
    stale = []
    for folder in (*ALL_TABLES, f"{_s3.STATE}/state"):
        selector = pafs.FileSelector(location.path(folder), recursive=True, allow_not_found=True)
        stale += [
            info.path
            for info in fs.get_file_info(selector)
            if info.type == pafs.FileType.File and info.path.endswith(".parquet") and info.path not in listed
        ]
    keys = [path.partition("/")[2] for path in stale]
    for start in range(0, len(keys), 1000):  # a DeleteObjects request takes up to 1,000 keys
        batch = [{"Key": key} for key in keys[start : start + 1000]]
        s3.delete_objects(Bucket=location.bucket, Delete={"Objects": batch, "Quiet": True})
