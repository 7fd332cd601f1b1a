"""``export``: the incremental, atomic upsert of oxios files into a dataset."""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sessionkit._layout import ROW_GROUP_ROWS, DataFile, Layout, check_partition_by, write_empty
from sessionkit._progress import Progress
from sessionkit._progress import resolve as resolve_progress
from sessionkit._s3 import is_s3
from sessionkit._store import NextVersion, Snapshot, Store, new_run_id, open_store
from sessionkit._versions import failpoint
from sessionkit.archive._compact import compact_version
from sessionkit.archive._listing import Listing, list_source, stored_path
from sessionkit.archive._pool import WorkerPool, default_jobs
from sessionkit.archive._state import (
    FILES_SCHEMA,
    Decisions,
    classify,
    errors,
    existing_sessions,
    filter_file,
    merge_sessions,
    read_index,
    source_record,
    write_errors,
    write_index,
    write_run,
)
from sessionkit.archive._summary import ExportSummary
from sessionkit.exceptions import DatasetError, ExportError
from sessionkit.privacy import Privacy, PrivacyCounts, check_same_privacy
from sessionkit.tables import AGENT_TABLE_NAMES, CLUSTERING, SCHEMAS, TABLE_NAMES, empty_table

if TYPE_CHECKING:
    from sessionkit.archive._agents import AgentRun


def _no_agents() -> dict[str, pa.Table]:
    return {name: empty_table(SCHEMAS[name]) for name in AGENT_TABLE_NAMES}


#: A share of a run read by one worker has at least this many files (fewer workers for a
#: small run: each worker's share makes one file per table).
MIN_FILES_PER_SHARE = 512


def export(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    jobs: int | None = None,
    strict: bool = False,
    privacy: Privacy | None = None,
    quarantine_dir: str | os.PathLike[str] | None = None,
    partition_by: str | None = None,
    files_per_part: int | None = None,
    row_group_rows: int = ROW_GROUP_ROWS,
    progress: Progress = None,
    break_lock: bool = False,
    agents: bool = True,
) -> ExportSummary:
    """Export oxios session files into a dataset: a new one, or an update of an existing one.

    Re-running into the same ``out`` adds new sessions, replaces the ones whose files changed
    (the newest ``updated_at`` wins; on a tie, the content read now), and keeps the ones whose
    files are gone. Unchanged files are recognised without being read. Files that are not
    sessions are quarantined, never dropped silently. Readers see the old dataset or the new
    one, never a mix; a second export into the same ``out`` fails at once.

    Each worker writes its share of the run into one file per table, rows ordered by the
    sessions' creation time; a run rewrites only the files that held sessions it replaces,
    and a run that finds nothing changed writes no table file at all.

    Args:
        source: an oxios state directory, a ``sessions/`` folder, or one ``.json`` file.
        out: the dataset folder (absent, empty, or made by an earlier export), or
            ``s3://bucket/prefix`` (see ``sessionkit._s3`` for the layout and settings).
        jobs: worker processes (default: all cores); 1 works in this process.
        strict: raise ``ExportError`` after publishing when any file was quarantined.
        privacy: pseudonyms and redaction applied before anything is written (see
            ``sessionkit.privacy.Privacy``); every run into one dataset must use the same.
        quarantine_dir: where copies of bad files go (default: ``OUT/quarantine``; with
            privacy settings, ``OUT.quarantine`` beside the dataset, which may then be shared).
        partition_by: for a new dataset, ``"none"`` (the default), ``"month"`` or ``"day"`` of
            the sessions' creation (Hive-style folders); an existing dataset keeps its own.
        files_per_part: at most this many source files' rows in one file per table (default:
            a worker's whole share, up to about 128 MB of decoded tables per file).
        row_group_rows: the most rows in one Parquet row group.
        progress: a progress bar (None: when in a notebook or on a terminal; True; False) or a
            callable ``progress(files_read, files_to_read)``.
        break_lock: on S3, take over the writer's lock even if it is not stale yet, for a
            writer known to be dead (a lock left by a killed writer goes stale by itself after
            two minutes). On disk the lock is dropped by the kernel and this has no effect.
        agents: also take the agent-run records of a state directory (``SRC/agents/*.json``)
            into the ``agents`` and ``agent_tool_calls`` tables (``--no-agents``: False).

    Raises:
        ExportError: with ``strict``, when files were quarantined.
        DatasetExistsError: ``out`` holds files that are not a dataset.
        DatasetLockedError: another export (or compaction) is writing ``out``.
        DatasetError: ``partition_by`` differs from the existing dataset's.
        PrivacyError: the privacy settings differ from those of the dataset's earlier runs.

    Example:
        >>> import sessionkit as sk
        >>> sk.export("data/oxios-sample", "build/sample-dataset").exported  # doctest: +SKIP
        300
    """
    started_ns = time.time_ns()
    started = time.perf_counter()
    jobs = default_jobs() if jobs is None else max(1, int(jobs))
    if partition_by is not None:
        check_partition_by(partition_by)
    options = _Options(privacy, partition_by, files_per_part, row_group_rows, progress, started, started_ns, agents)
    with WorkerPool(jobs, start=False) as pool:  # workers start when the files to read are many
        return _export(source, open_store(out), pool, options, strict, quarantine_dir, break_lock)


@dataclass
class _Options:
    """What a run was asked to do, beside its source and dataset."""

    privacy: Privacy | None
    partition_by: str | None
    files_per_part: int | None
    row_group_rows: int
    progress: Progress
    started: float
    started_ns: int
    agents: bool = True


def _export(
    source: str | os.PathLike[str],
    store: Store,
    pool: WorkerPool,
    options: _Options,
    strict: bool,
    quarantine_dir: str | os.PathLike[str] | None,
    break_lock: bool,
) -> ExportSummary:
    """One export run, the same on disk and on S3: only ``store`` knows where the dataset is."""
    listing = list_source(source)
    store.check_writable()
    privacy = options.privacy
    if privacy is not None and privacy.is_noop:
        privacy = None
    run_id = new_run_id()
    summary = ExportSummary(
        source=str(source), out=store.uri, run_id=run_id, seen=len(listing) + listing.ignored, ignored=listing.ignored
    )
    with store.writing(run_id, break_lock=break_lock) as staging:
        previous = store.current()
        _check_privacy(previous, privacy, store.uri)
        layout = layout_of(previous, options.partition_by, store.uri)
        index = read_index(previous)
        to_read, unchanged_ok, unchanged_bad, elsewhere = classify(listing, privacy, index)
        failpoint("staging")
        # copies of bad files go straight to their folder; on S3, to scratch, uploaded at publish
        target = str(quarantine_dir) if quarantine_dir is not None else store.quarantine(privacy is not None)
        quarantine = staging.with_name("quarantine") if is_s3(target) else Path(target)
        update, done = resolve_progress(options.progress, "export", total=len(to_read))
        run = _Run(summary, previous, index, staging, quarantine, privacy, layout, options, update, pool)
        try:
            run.read_and_merge(to_read, unchanged_ok, unchanged_bad, elsewhere)
            failpoint("merged")
            summary.seconds = time.perf_counter() - options.started
            run.record()
        finally:
            done()
        failpoint("before-publish")
        store.publish(run.next, run_id, quarantine=(quarantine, target))
        warn_changed_numbers(run.changed_numbers)
    summary.seconds = time.perf_counter() - options.started
    return _finish(summary, listing, privacy, store.uri, strict)


def layout_of(previous: Snapshot | None, partition_by: str | None, out: str) -> Layout | None:
    """The layout a run writes: the dataset's own, or for a new dataset ``partition_by``
    (default none); None for a dataset made before layouts were recorded (one folder per day)."""
    if previous is None:
        return Layout(partition_by or "none")
    layout = previous.layout
    have = layout.partition_by if layout is not None else "day"
    if partition_by is not None and partition_by != have:
        msg = f"{out}: the dataset is partitioned by {have}, not {partition_by}. Hint: leave out --partition-by to keep its layout, or change it with `sessionkit compact {out} --partition-by {partition_by}`"
        raise DatasetError(msg)
    return layout


def warn_changed_numbers(files: list[tuple[str, list[str]]]) -> None:
    """Warn that some files hold numbers restore will spell otherwise (``1E2`` as ``100.0``)."""
    if not files:
        return
    import warnings

    from sessionkit.exceptions import SessionkitWarning

    shown = "; ".join(f"{name} ({', '.join(numbers)})" if numbers else name for name, numbers in sorted(files)[:3])
    more = f" and {len(files) - 3} more" if len(files) > 3 else ""
    warnings.warn(
        f"{len(files)} files hold numbers written in a form restore does not keep: {shown}{more}. "
        "Their values are exported; restore writes them as oxios would (-0 as 0, 1E2 as 100.0, "
        "1e+308 as 1e308, 1.50 as 1.5), so these files restore to other bytes. "
        "Hint: oxios (serde_json) writes no such numbers; the files were written or edited by something else",
        SessionkitWarning,
        stacklevel=4,
    )


def _finish(summary: ExportSummary, listing: Listing, privacy: Privacy | None, out: str, strict: bool) -> ExportSummary:
    """Check the buckets add up; with ``strict``, raise for the files quarantined."""
    summary.check()
    if privacy is not None and privacy.is_noop:
        privacy = None
    if strict and (summary.quarantined or summary.agents_quarantined):
        paths = list(listing.paths)
        if summary.agents_quarantined:  # the agent records' folder counts as much as the sessions'
            from sessionkit.archive._agents import agents_folder, list_agents

            folder = agents_folder(summary.source)
            paths += list(list_agents(folder).paths) if folder is not None else []
        listed = pa.array([stored_path(p, privacy) for p in paths], pa.string())
        table = errors(out)
        current = table.filter(pc.is_in(table["file"], value_set=listed)).to_pylist()
        err = ExportError(current, summary.files + summary.agents_seen - summary.agents_ignored)
        err.summary = summary
        raise err
    return summary


def _check_privacy(previous: Snapshot | None, privacy: Privacy | None, out: str) -> None:
    """One dataset, one set of privacy settings (see ``check_same_privacy``)."""
    if previous is None:
        return
    import json

    last = previous.read("runs")
    if last.num_rows == 0:
        if privacy is not None and any(previous.file_rows(f) for f in previous.files.get("sessions", [])):
            check_same_privacy(None, privacy, dataset=str(out))
        return
    record = last["privacy"][last.num_rows - 1].as_py()
    check_same_privacy(json.loads(record) if record else None, privacy, dataset=str(out))


@dataclass
class _Run:
    """One export run in the main process: the workers' files, merged with the previous version
    into the next one, whose new files are in ``staging`` (on disk and on S3 alike)."""

    summary: ExportSummary
    previous: Snapshot | None
    index: pa.Table  # the previous version's file index (read_index), read once per run
    staging: Path
    quarantine: Path
    privacy: Privacy | None
    layout: Layout | None  # None: a dataset of the old layout, one folder per creation day
    options: _Options
    progress: Callable[[int, int], None] | None
    pool: WorkerPool
    counts: PrivacyCounts | None = None
    changed_numbers: list[tuple[str, list[str]]] = field(default_factory=list)
    next: NextVersion = field(init=False)

    def __post_init__(self) -> None:
        self.next = NextVersion(self.previous, self.staging, self.layout)

    def privacy_record(self) -> dict[str, Any] | None:
        if self.privacy is None:
            return None
        return self.privacy.run_record(self.counts or PrivacyCounts())

    @property
    def partition_by(self) -> str:
        return self.layout.partition_by if self.layout is not None else "day"

    def _shares(self, to_read: list[str]) -> list[list[str]]:
        """The files each worker reads: interleaved, so that shares are alike in size."""
        least = min(MIN_FILES_PER_SHARE, self.options.files_per_part or MIN_FILES_PER_SHARE)
        count = min(self.pool.jobs, max(1, -(-len(to_read) // least)))
        return [to_read[i::count] for i in range(count)] if to_read else []

    def read_and_merge(
        self, to_read: list[str], unchanged_ok: pa.Table, unchanged_bad: pa.Table, elsewhere: pa.Table
    ) -> None:
        """Read the changed files into new files, then merge them with the previous version."""
        # the decoding machinery, only now: a run that reads nothing starts without it
        from sessionkit.archive._parts import (
            PartTask,
            export_part,
            quarantine,
            read_source,
            records_table,
            sweep_quarantine,
        )

        summary, staging, run_id, options = self.summary, self.staging, self.summary.run_id, self.options
        sweep_quarantine(self.quarantine)  # half copies left by runs that were killed
        shares = self._shares(to_read)
        summary.jobs = max(1, len(shares))
        tasks = [
            PartTask(
                i,
                share,
                str(staging),
                str(self.quarantine),
                run_id,
                options.row_group_rows,
                self.privacy,
                self.partition_by,
                options.files_per_part,
            )
            for i, share in enumerate(shares)
        ]
        total = len(to_read)
        records: list[pa.Table] = []
        bad_stats: list[tuple] = []
        new_errors: list[dict[str, Any]] = []
        written: dict[str, list[DataFile]] = {name: [] for name in TABLE_NAMES}
        row_groups = dict.fromkeys(TABLE_NAMES, 0)
        shown = [0]

        def show(done: int) -> None:
            shown[0] = done
            if self.progress is not None:
                self.progress(done, total)

        parts = self.pool.map(export_part, tasks, summary.jobs, progress=show)
        first = next(parts, None)  # the workers are busy now; meanwhile, warm up what the merge needs:
        warm = threading.Thread(target=pa.array, args=([0],), daemon=True)  # pyarrow imports pandas here
        warm.start()
        for part in () if first is None else itertools.chain([first], parts):
            summary.bytes_read += part.nbytes
            summary.vanished += part.vanished
            self.changed_numbers.extend(part.changed_numbers)
            if part.records is not None and part.records.num_rows:
                records.append(part.records)
            bad_stats.extend(part.bad_stats)
            new_errors.extend(part.errors)
            if part.privacy is not None:
                self.counts = part.privacy if self.counts is None else self.counts + part.privacy
            for name in TABLE_NAMES:
                written[name].extend(part.written.get(name, []))
                row_groups[name] += part.row_groups.get(name, 0)
            failpoint("part-written")
        if self.progress is not None and total and shown[0] != total:
            self.progress(total, total)
        new = pa.concat_tables(records) if records else records_table([])
        del records
        decisions = merge_sessions(new, unchanged_ok, existing_sessions(self.previous if new.num_rows else None))
        pa.default_memory_pool().release_unused()  # hand back what the merge's scratch buffers held
        # duplicates: quarantined, with the bytes as they are now
        duplicate_paths = set()
        for path, real, sid, winner, _ in decisions.duplicates:
            try:
                data, _ = read_source(real)
            except OSError:
                data = b""
            reason = f"session id {sid!r} is also held by {winner}, which is newer or named after the id; this copy was set aside"
            new_errors.append(quarantine(str(self.quarantine), real, data, reason, run_id, self.privacy))
            duplicate_paths.add(path)
        self._assemble(written, decisions)
        # buckets
        read_dups = sum(1 for _, _, _, _, read_now in decisions.duplicates if read_now)
        summary.exported = new.num_rows - len(decisions.stale) - read_dups
        unchanged_dups = len(decisions.duplicates) - read_dups
        summary.unchanged = unchanged_ok.num_rows - unchanged_dups + len(decisions.stale)
        summary.quarantined = len(bad_stats) + unchanged_bad.num_rows + len(duplicate_paths)
        summary.errors = new_errors
        summary.row_groups = row_groups
        self.next.index_changed = bool(
            to_read or duplicate_paths or self.previous is None or self.previous.index is None
        )
        agent_run = self._agents()
        if agent_run is not None:
            new_errors.extend(agent_run.errors)  # the same list as summary.errors
            self.next.index_changed = self.next.index_changed or bool(agent_run.read)
            if len(elsewhere):  # the agent files' rows come from the agent pass now
                elsewhere = elsewhere.filter(pc.invert(pc.starts_with(elsewhere["path"], agent_run.prefix)))
            elsewhere = pa.concat_tables([elsewhere.select(FILES_SCHEMA.names).cast(FILES_SCHEMA), agent_run.index])
        if self.next.index_changed:
            write_index(staging, new, decisions, unchanged_ok, unchanged_bad, bad_stats, duplicate_paths, elsewhere)
        good = (
            new["path"]
            if not duplicate_paths
            else new["path"].filter(
                pc.invert(pc.is_in(new["path"], value_set=pa.array(sorted(duplicate_paths), pa.string())))
            )
        )
        if agent_run is not None and agent_run.fixed:
            good = pa.chunked_array([*good.chunks, pa.array(agent_run.fixed, pa.string())], pa.string())
        fresh = write_errors(staging, self.previous, new_errors, good, run_id)
        self.next.kept["errors"] = [] if fresh is not None else list(self.previous.files.get("errors", []))  # type: ignore[union-attr]
        self.next.new["errors"] = [fresh] if fresh is not None else []
        if self.layout is not None:  # compact a little when small files pile up (not a 0.1 layout's day folders)
            done = compact_version(self.next, False, run_id, self.pool.jobs, self.options.row_group_rows, auto=True)
            summary.compacted, summary.compacted_into = done.merged, done.written
            failpoint("auto-compacted")
        summary.files_kept = sum(len(self.next.kept.get(name, [])) for name in TABLE_NAMES)
        self._count()

    def _agents(self) -> AgentRun | None:
        """The agent tables of the next version: the agent files of the source read and merged
        (see ``archive._agents``), or the previous version's kept; None when none were listed."""
        from sessionkit.archive._agents import agents_folder, link_agents, merged_agents, read_agents

        summary, previous, run_id = self.summary, self.previous, self.summary.run_id
        folder = agents_folder(summary.source) if self.options.agents else None
        had = previous is not None and all(previous.files.get(name) for name in AGENT_TABLE_NAMES)
        run = None
        if folder is not None:
            run, new, replaced = read_agents(folder, previous, self.index, self.quarantine, run_id, self.privacy)
            if run.privacy is not None:
                self.counts = run.privacy if self.counts is None else self.counts + run.privacy
            for name in ("seen", "exported", "unchanged", "quarantined", "vanished", "ignored"):
                setattr(summary, f"agents_{name}", getattr(run, name))
        linking = tuple(self._link_sources())
        if (run is not None and run.changed) or not had:
            tables = merged_agents(
                previous, new if run is not None else _no_agents(), replaced if run is not None else set()
            )
            tables["agents"] = link_agents(tables["agents"], dict(linking), self.privacy)
            self._write_agents(tables)
            return run
        for name in AGENT_TABLE_NAMES:  # as they were, unless the sessions changed the links
            self.next.new[name], self.next.kept[name] = [], list(previous.files.get(name, []))  # type: ignore[union-attr]
        if any(self.next.changed(name) for name in ("sessions", "messages", "responses")):
            assert previous is not None
            agents = previous.read("agents")
            linked = link_agents(agents, dict(linking), self.privacy)
            if not linked.equals(agents):
                self._write_agents({"agents": linked})
        return run

    def _link_sources(self) -> Iterator[tuple[str, list[tuple[Any, str]]]]:
        """The session tables' files of the version being built, as (file system, path) pairs."""
        from pyarrow import fs as pafs

        local = pafs.LocalFileSystem()
        for name in ("sessions", "messages", "responses"):
            files = (
                [(self.previous.fs, self.previous.path(f.key)) for f in self.next.kept.get(name, [])]
                if self.previous is not None
                else []
            )
            files += [(local, str(self.staging / f.key)) for f in self.next.new.get(name, [])]
            yield name, files

    def _write_agents(self, tables: dict[str, pa.Table]) -> None:
        """Write these agent tables whole into staging, in place of the previous version's files."""
        from sessionkit.archive._agents import write_agents

        written = write_agents(
            tables, self.staging, self.summary.run_id, self.partition_by, self.options.row_group_rows
        )
        for name in tables:
            self.next.new[name], self.next.kept[name] = written[name], []

    def _assemble(self, written: dict[str, list[DataFile]], decisions: Decisions) -> None:
        """The next version's files: the new ones (without the sessions set aside), and the previous
        version's, kept as they are or, where they hold sessions replaced now, rewritten without them."""
        import numpy as np

        summary, staging, previous, rows = self.summary, self.staging, self.previous, self.options.row_group_rows
        run_id = summary.run_id
        for name in TABLE_NAMES:
            self.next.new[name], self.next.kept[name] = [], []
            key = CLUSTERING[name].key
            for file in written.get(name, []):
                drop = decisions.drop_new.get(os.path.basename(file.key).rsplit("-", 1)[0])  # its group's name
                if (
                    drop
                    and pc.any(
                        pc.is_in(
                            pq.read_table(staging / file.key, columns=[key])[key],
                            value_set=pa.array(sorted(drop), pa.string()),
                        )
                    ).as_py()
                ):
                    target = staging / f"{file.key}.tmp"
                    kept = filter_file(str(staging / file.key), None, target, name, drop, rows)
                    if kept is None:
                        os.remove(staging / file.key)
                        continue
                    os.replace(target, staging / file.key)
                    file = DataFile(file.key, kept.size, kept.rows, file.first, file.last)
                self.next.new[name].append(file)
            summary.files_written += len(self.next.new[name])
        times = np.array(sorted(decisions.drop_old.values()), dtype=np.int64)
        ids = pa.array(sorted(decisions.drop_old), pa.string())
        for name in TABLE_NAMES:
            old = previous.files.get(name, []) if previous is not None else []
            how = CLUSTERING[name]
            for file in old:
                if not len(ids) or how.owner != "sessions" or not file.may_hold(times):
                    self.next.kept[name].append(file)
                    continue
                assert previous is not None
                keys = pq.read_table(previous.path(file.key), columns=[how.key], filesystem=previous.fs)[how.key]
                hit = pc.is_in(keys, value_set=ids)
                if not pc.any(hit).as_py():
                    self.next.kept[name].append(file)
                    continue
                summary.files_rewritten += 1
                folder, _, stem = file.key.rpartition("/")
                key = f"{folder}/{stem.removesuffix('.parquet').split('~')[0]}~{run_id}.parquet"
                kept = filter_file(
                    previous.path(file.key), previous.fs, staging / key, name, set(decisions.drop_old), rows
                )
                if kept is not None:
                    self.next.new[name].append(DataFile(key, kept.size, kept.rows, file.first, file.last))
            if (
                not self.next.kept[name] and not self.next.new[name]
            ):  # an empty table still has a file, for every engine's glob
                self.next.new[name].append(write_empty(staging, name, f"part-{run_id}-empty.parquet"))

    def _count(self) -> None:
        """The dataset's totals: the rows of every table, and the sessions' exchanges (from the
        previous version's count, less the files it no longer keeps, plus the new ones)."""
        summary, previous = self.summary, self.previous
        for name in (*TABLE_NAMES, *AGENT_TABLE_NAMES):
            total = sum(f.rows or 0 for f in self.next.new[name])
            total += sum(previous.file_rows(f) for f in self.next.kept[name]) if previous is not None else 0
            setattr(summary, name, total)
        column = pa.schema([pa.field("exchange_count", pa.int32())])

        def old(files: list[DataFile]) -> int:
            assert previous is not None
            return sum(int(pc.sum(previous.read_file(f, column)["exchange_count"]).as_py() or 0) for f in files)

        exchanges = 0
        if previous is not None:
            counted = previous.manifest.get("counts", {}).get("exchanges")
            if counted is None:  # not recorded by the version: count what is kept
                exchanges = old(self.next.kept["sessions"])
            else:
                kept = {f.key for f in self.next.kept["sessions"]}
                exchanges = counted - old([f for f in previous.files.get("sessions", []) if f.key not in kept])
        for f in self.next.new["sessions"]:
            if f.rows:
                exchanges += int(
                    pc.sum(pq.read_table(self.staging / f.key, columns=["exchange_count"])[0]).as_py() or 0
                )
        summary.exchanges = exchanges

    def record(self) -> None:
        """Add this run to the runs table, and say in the next version's manifest what it holds."""
        summary = self.summary
        runs_file = write_run(summary, self.previous, self.staging, self.options.started_ns, self.privacy_record())
        self.next.kept["runs"], self.next.new["runs"] = [], [runs_file]
        counts = {name: getattr(summary, name) for name in (*TABLE_NAMES, *AGENT_TABLE_NAMES)}
        counts["exchanges"] = summary.exchanges
        source = source_record(summary.source, self.privacy_record())
        self.next.info = {"run_id": summary.run_id, "counts": counts, "source": source}
