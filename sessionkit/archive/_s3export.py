"""``export`` into ``s3://bucket/prefix``: the same upsert as on disk, published by manifest.

The run works in a local scratch folder: the previous version's small tables (file index,
runs, errors) and its sessions files are downloaded (the merge needs every session id), the
other files only where a part must be rewritten. New and rewritten files get run-unique
names and are uploaded first; unchanged ones stay where they are. Then the next manifest is
created with a conditional write, and the files the new version no longer lists are deleted.
See ``sessionkit._s3`` for the layout and the lock.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

from sessionkit import _s3
from sessionkit._progress import Progress
from sessionkit._progress import resolve as resolve_progress
from sessionkit.archive._listing import list_source
from sessionkit.archive._pool import WorkerPool
from sessionkit.archive._state import _INDEX, FILES_SCHEMA, _classify, _read_table, _write_run
from sessionkit.archive._summary import ExportSummary
from sessionkit.exceptions import DatasetLockedError
from sessionkit.privacy import Privacy
from sessionkit.storage import ALL_TABLES, DATASET_FORMAT, QUARANTINE_DIR, failpoint
from sessionkit.tables import ERRORS_SCHEMA, SCHEMA_VERSION, TABLE_NAMES

#: Requests to S3 in flight at once, for the many small files of a partitioned dataset.
_THREADS = 16


def export_s3(
    source: str | os.PathLike[str],
    uri: str,
    pool: WorkerPool,
    *,
    strict: bool,
    privacy: Privacy | None,
    quarantine_dir: str | os.PathLike[str] | None,
    files_per_part: int,
    row_group_rows: int,
    progress: Progress,
    started: float,
    started_ns: int,
    break_lock: bool,
) -> tuple[ExportSummary, Any]:
    """Export ``source`` into the dataset at ``uri``; returns the summary and the listing."""
    from sessionkit.archive._export import _check_privacy, _Run

    location = _s3.S3Location.parse(uri)
    fs, s3 = _s3.filesystem(), _s3.client()
    listing = list_source(source)
    if privacy is not None and privacy.is_noop:
        privacy = None
    run_id = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}"
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
        previous = None
        if manifest is not None:
            previous = work / "previous"
            _download(s3, _mirror_pairs(location, manifest, previous))
        _check_privacy(previous, privacy, location.uri)
        index = _read_table(previous, _INDEX, FILES_SCHEMA)
        to_read, unchanged_ok, unchanged_bad, elsewhere = _classify(listing, privacy, index)
        files_per_part = max(1, int(files_per_part))
        chunks = [to_read[i : i + files_per_part] for i in range(0, len(to_read), files_per_part)]
        summary.jobs = min(pool.jobs, max(1, len(chunks)))
        staging = work / "staging"
        for name in ALL_TABLES:
            (staging / name).mkdir(parents=True)
        local_quarantine = Path(quarantine_dir) if quarantine_dir is not None else work / "quarantine"
        update, done = resolve_progress(progress, "export", total=len(to_read))

        def fetch(key: str) -> None:
            assert previous is not None
            _download(s3, [(location.path(f"{t}/{key}"), previous / t / key) for t in TABLE_NAMES if t != "sessions"])

        run = _Run(
            summary, previous, staging, local_quarantine, privacy, row_group_rows, update, pool, fetch=fetch, kept=[]
        )
        try:
            run.read_and_merge(chunks, unchanged_ok, unchanged_bad, elsewhere)
            summary.seconds = time.perf_counter() - started
            _write_run(summary, previous, staging, started_ns, run.privacy_record())
        finally:
            done()
        if quarantine_dir is None:
            target = _quarantine_uri(location, privacy)
            _upload_quarantine(s3, local_quarantine, target)
            _point_errors_at(staging, str(local_quarantine), target)
        _publish(fs, s3, location, staging, version, run_id, run.kept or [], manifest)
    summary.seconds = time.perf_counter() - started
    return summary, listing


def _quarantine_uri(location: _s3.S3Location, privacy: Privacy | None) -> str:
    """``PREFIX/quarantine``, or with privacy settings ``PREFIX.quarantine`` beside the dataset,
    so the dataset's prefix can be shared without the raw bytes of bad files."""
    if privacy is None:
        return f"{location.uri}/{QUARANTINE_DIR}"
    return f"{location.uri}.quarantine" if location.prefix else f"{location.uri}/sessionkit.quarantine"


def _mirror_pairs(location: _s3.S3Location, manifest: dict[str, Any], folder: Path) -> list[tuple[str, Path]]:
    """What the merge reads of the previous version: its sessions files, runs, errors and index."""
    files = manifest["files"]
    pairs = [(location.path(key), folder / key) for key in files["sessions"]]
    for name in ("runs", "errors"):
        pairs += [(location.path(key), folder / name / f"{name}-{i}.parquet") for i, key in enumerate(files[name])]
    if manifest.get("index"):
        pairs.append((location.path(manifest["index"]), folder / _INDEX))
    return pairs


def _parallel(action: Callable[[Any], None], items: Iterable[Any]) -> None:
    items = list(items)
    if not items:
        return
    with ThreadPoolExecutor(min(_THREADS, len(items))) as threads:
        for _ in threads.map(action, items):
            pass


def _download(s3: Any, pairs: list[tuple[str, Path]]) -> None:
    """Fetch ``bucket/key`` objects into local files, many at once (one GET each)."""

    def one(pair: tuple[str, Path]) -> None:
        source, target = pair
        bucket, _, key = source.partition("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())

    _parallel(one, pairs)


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


def _point_errors_at(staging: Path, local: str, uri: str) -> None:
    """The errors table names the quarantine copies by where they were uploaded."""
    path = staging / "errors" / "errors.parquet"
    table = pq.read_table(path, schema=ERRORS_SCHEMA)
    column = table["quarantined_as"]
    moved = pc.replace_substring_regex(column, pattern=f"^{_regex_escape(local)}/", replacement=f"{uri}/")
    table = table.set_column(table.schema.get_field_index("quarantined_as"), "quarantined_as", moved)
    pq.write_table(table, path, compression="zstd")


def _regex_escape(text: str) -> str:
    import re

    return re.escape(text)


def _publish(
    fs: Any,
    s3: Any,
    location: _s3.S3Location,
    staging: Path,
    version: int,
    run_id: str,
    kept: list[str],
    previous: dict[str, Any] | None,
) -> None:
    """Upload the new files, create manifest ``version + 1`` if no one else did, then delete
    what the new version no longer lists."""
    uploads: list[tuple[Path, str]] = []
    files: dict[str, list[str]] = {}
    for name in TABLE_NAMES:
        new = part_keys_of(staging, name)  # <table>/created_date=.../<part>
        uploads += [(staging / key, location.path(key)) for key in new]
        files[name] = sorted(new + [f"{name}/{key}" for key in kept])
    for name in ("runs", "errors"):
        key = f"{name}/{name}-{run_id}.parquet"
        uploads.append((staging / name / f"{name}.parquet", location.path(key)))
        files[name] = [key]
    index = f"{_s3.STATE}/state/files-{run_id}.parquet"
    uploads.append((staging / _INDEX, location.path(index)))
    # every file's size, so readers need no request to learn it before reading the footer
    old_sizes = previous.get("sizes", {}) if previous is not None else {}
    sizes = {key: old_sizes[key] for name in TABLE_NAMES for key in files[name] if key in old_sizes}
    sizes |= {path.partition("/")[2][len(location.key("")) :]: source.stat().st_size for source, path in uploads}
    _upload(s3, uploads)
    failpoint("s3-uploaded")
    local = json.loads((staging / "manifest.json").read_text())
    manifest = {
        "format": DATASET_FORMAT,
        "schema_version": SCHEMA_VERSION,
        "sessionkit_version": local.get("sessionkit_version"),
        "version": version + 1,
        "run_id": run_id,
        "published_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "counts": local.get("counts"),
        "source": local.get("source"),
        "tables": {name: f"{name}/**/*.parquet" for name in TABLE_NAMES},
        "index": index,
        "files": files,
        "sizes": sizes,
    }
    body = (json.dumps(manifest, indent=2) + "\n").encode()
    try:
        s3.put_object(
            Bucket=location.bucket, Key=location.key(_s3.manifest_name(version + 1)), Body=body, IfNoneMatch="*"
        )
    except Exception as err:
        if _s3.is_precondition_failure(err):
            msg = (
                f"{location.uri}: another export published version {version + 1} while this one ran; "
                "nothing of this run was published. Hint: run the export again"
            )
            raise DatasetLockedError(msg) from None
        raise
    failpoint("s3-published")
    s3.put_object(Bucket=location.bucket, Key=location.key("_sessionkit.json"), Body=body)
    _collect_garbage(fs, s3, location, manifest)


def part_keys_of(staging: Path, table: str) -> list[str]:
    """The files of one table in the staging folder, relative to that folder: ``<table>/...``."""
    folder = staging / table
    return sorted(p.relative_to(staging).as_posix() for p in folder.rglob("*.parquet"))


def _collect_garbage(fs: Any, s3: Any, location: _s3.S3Location, manifest: dict[str, Any]) -> None:
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
