"""``export``: the incremental, atomic upsert of oxios files into a dataset."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from sessionkit._progress import Progress
from sessionkit._progress import resolve as resolve_progress
from sessionkit._s3 import is_s3
from sessionkit.archive._listing import _Listing, list_source, stored_path
from sessionkit.archive._parts import _export_part, _PartTask, _read, _records_table, quarantine, sweep_quarantine
from sessionkit.archive._pool import WorkerPool, default_jobs
from sessionkit.archive._state import (
    _INDEX,
    FILES_SCHEMA,
    _classify,
    _count,
    _Decisions,
    _existing_sessions,
    _filter_part,
    _merge,
    _read_table,
    _write_errors,
    _write_index,
    _write_run,
    errors,
    part_keys,
)
from sessionkit.archive._summary import ExportError, ExportSummary
from sessionkit.privacy import Privacy, PrivacyCounts, check_same_privacy
from sessionkit.storage import (
    QUARANTINE_DIR,
    ROW_GROUP_ROWS,
    TableWriter,
    check_writable,
    current_version,
    failpoint,
    link_or_copy,
    new_staging,
    publish,
    recover,
    writer_lock,
)
from sessionkit.tables import (
    RUNS_SCHEMA,
    SCHEMAS,
    TABLE_NAMES,
)

#: Files per part: each part is one Parquet file per table, written by one worker.
FILES_PER_PART = 2048


def export(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    jobs: int | None = None,
    strict: bool = False,
    privacy: Privacy | None = None,
    quarantine_dir: str | os.PathLike[str] | None = None,
    files_per_part: int = FILES_PER_PART,
    row_group_rows: int = ROW_GROUP_ROWS,
    progress: Progress = None,
    break_lock: bool = False,
) -> ExportSummary:
    """Export oxios session files into a dataset: a new one, or an update of an existing one.

    Re-running into the same ``out`` adds new sessions, replaces the ones whose files changed
    (the newest ``updated_at`` wins; on a tie, the content read now), and keeps the ones whose
    files are gone. Unchanged files are recognised without being read. Files that are not
    sessions are quarantined, never dropped silently. Readers see the old dataset or the new
    one, never a mix; a second export into the same ``out`` fails at once.

    Args:
        source: an oxios state directory, a ``sessions/`` folder, or one ``.json`` file.
        out: the dataset folder (absent, empty, or made by an earlier export), or
            ``s3://bucket/prefix`` (see ``sessionkit._s3`` for the layout and settings).
        jobs: worker processes (default: all cores); 1 works in this process.
        strict: raise ``ExportError`` after publishing when any file was quarantined.
        files_per_part: files per part (per Parquet file of each table).
        row_group_rows: the most rows in one Parquet row group.
        privacy: pseudonyms and redaction applied before anything is written (see
            ``sessionkit.privacy.Privacy``); every run into one dataset must use the same.
        quarantine_dir: where copies of bad files go (default: ``OUT/quarantine``; with
            privacy settings, ``OUT.quarantine`` beside the dataset, which may then be shared).
        progress: a progress bar (None: when in a notebook or on a terminal; True; False) or a
            callable ``progress(files_read, files_to_read)`` called after each part.
        break_lock: on S3, take over the writer's lock even if it is not stale yet, for a
            writer known to be dead (a lock left by a killed writer goes stale by itself after
            two minutes). On disk the lock is dropped by the kernel and this has no effect.

    Raises:
        ExportError: with ``strict``, when files were quarantined.
        DatasetExistsError: ``out`` holds files that are not a dataset.
        DatasetLockedError: another export is writing ``out``.
        PrivacyError: the privacy settings differ from those of the dataset's earlier runs.

    Example:
        >>> import sessionkit as sk
        >>> sk.export("data/oxios-sample", "build/sample-dataset").exported  # doctest: +SKIP
        300
    """
    started_ns = time.time_ns()
    started = time.perf_counter()
    jobs = default_jobs() if jobs is None else max(1, int(jobs))
    if is_s3(out):
        from sessionkit.archive._s3export import export_s3

        with WorkerPool(jobs) as pool:
            summary, listing = export_s3(
                source,
                str(out),
                pool,
                strict=strict,
                privacy=privacy,
                quarantine_dir=quarantine_dir,
                files_per_part=files_per_part,
                row_group_rows=row_group_rows,
                progress=progress,
                started=started,
                started_ns=started_ns,
                break_lock=break_lock,
            )
        return _finish(summary, listing, privacy, str(out), strict)
    out = Path(out)
    with WorkerPool(jobs) as pool:
        return _export(
            source,
            out,
            pool,
            strict,
            privacy,
            quarantine_dir,
            files_per_part,
            row_group_rows,
            progress,
            started,
            started_ns,
        )


def _export(
    source: str | os.PathLike[str],
    out: Path,
    pool: WorkerPool,
    strict: bool,
    privacy: Privacy | None,
    quarantine_dir: str | os.PathLike[str] | None,
    files_per_part: int,
    row_group_rows: int,
    progress: Progress,
    started: float,
    started_ns: int,
) -> ExportSummary:
    listing = list_source(source)
    check_writable(out)
    if privacy is not None and privacy.is_noop:
        privacy = None
    run_id = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}"
    summary = ExportSummary(
        source=str(source),
        out=str(out),
        run_id=run_id,
        seen=len(listing) + listing.ignored,
        ignored=listing.ignored,
    )
    if quarantine_dir is None:
        quarantine_dir = out.parent / f"{out.name}.quarantine" if privacy is not None else out / QUARANTINE_DIR
    with writer_lock(out):
        recover(out)
        previous = current_version(out)
        _check_privacy(previous, privacy, out)
        index = _read_table(previous, _INDEX, FILES_SCHEMA)
        to_read, unchanged_ok, unchanged_bad, elsewhere = _classify(listing, privacy, index)
        files_per_part = max(1, int(files_per_part))
        chunks = [to_read[i : i + files_per_part] for i in range(0, len(to_read), files_per_part)]
        summary.jobs = min(pool.jobs, max(1, len(chunks)))
        staging = new_staging(out, run_id)
        failpoint("staging")
        update, done = resolve_progress(progress, "export", total=len(to_read))
        run = _Run(summary, previous, staging, Path(quarantine_dir), privacy, row_group_rows, update, pool)
        try:
            run.read_and_merge(chunks, unchanged_ok, unchanged_bad, elsewhere)
            failpoint("merged")
            summary.seconds = time.perf_counter() - started
            _write_run(summary, previous, staging, started_ns, run.privacy_record())
            failpoint("before-publish")
            publish(out, staging)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        finally:
            done()
    summary.seconds = time.perf_counter() - started
    return _finish(summary, listing, privacy, out, strict)


def _finish(
    summary: ExportSummary, listing: _Listing, privacy: Privacy | None, out: Path | str, strict: bool
) -> ExportSummary:
    """Check the buckets add up; with ``strict``, raise for the files quarantined."""
    summary.check()
    if privacy is not None and privacy.is_noop:
        privacy = None
    if strict and summary.quarantined:
        listed = pa.array([stored_path(p, privacy) for p in listing.paths], pa.string())
        table = errors(out)
        current = table.filter(pc.is_in(table["file"], value_set=listed)).to_pylist()
        err = ExportError(current, summary.files)
        err.summary = summary
        raise err
    return summary


def _check_privacy(previous: Path | None, privacy: Privacy | None, out: Path | str) -> None:
    """One dataset, one set of privacy settings (see ``check_same_privacy``)."""
    if previous is None:
        return
    import json

    last = _read_table(previous, "runs", RUNS_SCHEMA)
    if last.num_rows == 0:
        if privacy is not None and _read_table(previous, "sessions", SCHEMAS["sessions"]).num_rows:
            check_same_privacy(None, privacy, dataset=str(out))
        return
    record = last["privacy"][last.num_rows - 1].as_py()
    check_same_privacy(json.loads(record) if record else None, privacy, dataset=str(out))


@dataclass
class _Run:
    """One export run in the main process: the parts the workers wrote, merged into ``staging``."""

    summary: ExportSummary
    previous: Path | None
    staging: Path
    quarantine: Path
    privacy: Privacy | None
    row_group_rows: int
    progress: Callable[[int, int], None] | None
    pool: WorkerPool
    counts: PrivacyCounts | None = None
    #: where the previous version lives only in part locally (S3): fetch a key's files before
    #: filtering them, and leave unchanged files where they are, listing their keys in ``kept``
    fetch: Callable[[str], None] | None = None
    kept: list[str] | None = None

    def privacy_record(self) -> dict[str, Any] | None:
        if self.privacy is None:
            return None
        return self.privacy.run_record(self.counts or PrivacyCounts())

    def read_and_merge(
        self, chunks: list[list[str]], unchanged_ok: pa.Table, unchanged_bad: pa.Table, elsewhere: pa.Table
    ) -> None:
        """Read the changed files into new parts, then merge them with the previous version."""
        summary, staging, run_id = self.summary, self.staging, self.summary.run_id
        sweep_quarantine(self.quarantine)  # half copies left by runs that were killed
        tasks = (
            _PartTask(
                i,
                chunk,
                str(staging),
                str(self.quarantine),
                f"part-{run_id}-{i:05d}.parquet",
                run_id,
                self.row_group_rows,
                self.privacy,
            )
            for i, chunk in enumerate(chunks)
        )
        total = sum(len(c) for c in chunks)
        records: list[pa.Table] = []
        bad_stats: list[tuple] = []
        new_errors: list[dict[str, Any]] = []
        new_parts: list[str] = []
        done = 0
        row_groups = dict.fromkeys(TABLE_NAMES, 0)
        parts = self.pool.map(_export_part, tasks, summary.jobs)
        first = next(parts, None)  # the workers are busy now; meanwhile, warm up what the merge needs:
        warm = threading.Thread(target=pa.array, args=([0],), daemon=True)  # pyarrow imports pandas here
        warm.start()
        for part in () if first is None else itertools.chain([first], parts):
            done += part.files
            summary.bytes_read += part.nbytes
            summary.vanished += part.vanished
            if part.records is not None and part.records.num_rows:
                records.append(part.records)
            bad_stats.extend(part.bad_stats)
            new_errors.extend(part.errors)
            if part.privacy is not None:
                self.counts = part.privacy if self.counts is None else self.counts + part.privacy
            new_parts.extend(part.keys)
            for name in TABLE_NAMES:
                row_groups[name] += part.row_groups.get(name, 0)
            if self.progress is not None:
                self.progress(done, total)
            failpoint("part-written")
        new = pa.concat_tables(records) if records else _records_table([])
        del records
        decisions = _merge(new, unchanged_ok, _existing_sessions(self.previous))
        pa.default_memory_pool().release_unused()  # hand back what the merge's scratch buffers held
        # duplicates: quarantined, with the bytes as they are now
        duplicate_paths = set()
        for path, real, sid, winner, _ in decisions.duplicates:
            try:
                data, _ = _read(real)
            except OSError:
                data = b""
            reason = f"session id {sid!r} is also held by {winner}, which is newer or named after the id; this copy was set aside"
            new_errors.append(quarantine(str(self.quarantine), real, data, reason, run_id, self.privacy))
            duplicate_paths.add(path)
        self._assemble(new_parts, decisions)
        # buckets
        read_dups = sum(1 for _, _, _, _, read_now in decisions.duplicates if read_now)
        summary.exported = new.num_rows - len(decisions.stale) - read_dups
        unchanged_dups = len(decisions.duplicates) - read_dups
        summary.unchanged = unchanged_ok.num_rows - unchanged_dups + len(decisions.stale)
        summary.quarantined = len(bad_stats) + unchanged_bad.num_rows + len(duplicate_paths)
        summary.errors = new_errors
        summary.row_groups = row_groups
        _write_index(staging, new, decisions, unchanged_ok, unchanged_bad, bad_stats, duplicate_paths, elsewhere)
        good = (
            new["path"]
            if not duplicate_paths
            else new["path"].filter(
                pc.invert(pc.is_in(new["path"], value_set=pa.array(sorted(duplicate_paths), pa.string())))
            )
        )
        _write_errors(staging, self.previous, new_errors, good)
        _count(summary, staging, None if self.kept is None else (self.previous, self.kept))

    def _assemble(self, new_parts: list[str], decisions: _Decisions) -> None:
        """The new version's files: new ones (filtered where they hold losers), old ones linked or filtered.

        A file is named by its key, ``created_date=YYYY-MM-DD/<part name>``, the same in every table.
        """
        summary, staging, previous, rows = self.summary, self.staging, self.previous, self.row_group_rows
        summary.parts_written = len(new_parts)
        for key in new_parts:
            drop = decisions.drop_ordinals.get(key)
            if drop:
                scratch = staging / ".rewrite"
                kept = _filter_part(staging, scratch, key, ordinals=drop, row_group_rows=rows)
                for table in TABLE_NAMES:
                    os.remove(staging / table / key)
                    if kept:
                        os.replace(scratch / table / key, staging / table / key)
                    elif "/" in key:  # its date folder, if this part was all it held
                        with contextlib.suppress(OSError):
                            (staging / table / key).parent.rmdir()
                if kept:  # a part that held only losers (stale or duplicate) wrote no scratch
                    shutil.rmtree(scratch)
                else:
                    summary.parts_written -= 1
        if previous is not None:
            for key in part_keys(previous):
                drop = decisions.drop_ids.get(key)
                if drop:
                    summary.parts_rewritten += 1
                    if self.fetch is not None:
                        self.fetch(key)
                    folder, _, name = key.rpartition("/")
                    new_key = f"{folder}/{Path(name).stem.split('~')[0]}~{summary.run_id}.parquet".lstrip("/")
                    kept = _filter_part(previous, staging, key, ids=drop, row_group_rows=rows)
                    if kept:
                        for table in TABLE_NAMES:
                            os.replace(staging / table / key, staging / table / new_key)
                elif self.kept is not None:
                    summary.parts_kept += 1
                    self.kept.append(key)
                else:
                    summary.parts_kept += 1
                    for table in TABLE_NAMES:
                        target = staging / table / key
                        target.parent.mkdir(parents=True, exist_ok=True)
                        link_or_copy(previous / table / key, target)
        if not part_keys(staging) and not self.kept:  # one (empty) file per table, for every engine's glob
            for table in TABLE_NAMES:
                TableWriter(staging / table / f"part-{summary.run_id}-empty.parquet", SCHEMAS[table], rows).close()
