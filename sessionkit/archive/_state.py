"""What the archive keeps between runs: the version a run builds on, the file index, the merge
of new rows into the previous version, and the runs and errors tables."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sessionkit._layout import DataFile, TableWriter, schema_of
from sessionkit._store import INDEX_KEY, Snapshot, open_store, read_table
from sessionkit.archive._listing import Listing
from sessionkit.archive._summary import ExportSummary
from sessionkit.privacy import Privacy
from sessionkit.tables import (
    CLUSTERING,
    ERRORS_SCHEMA,
    RUNS_SCHEMA,
    empty_table,
    int_times,
)

#: What the archive remembers of each source file, to skip it next time if it is unchanged.
FILES_SCHEMA = pa.schema(
    [
        pa.field("path", pa.string(), nullable=False),
        pa.field("size", pa.int64(), nullable=False),
        pa.field("mtime_ns", pa.int64(), nullable=False),
        pa.field("ctime_ns", pa.int64(), nullable=False),
        pa.field("inode", pa.int64(), nullable=False),
        pa.field("outcome", pa.string(), nullable=False),  # exported, stale or quarantined
        pa.field("session_id", pa.string()),
        pa.field("updated_at_ns", pa.int64()),
        pa.field("named", pa.bool_()),  # the file is named after its session id (<id>.json)
    ]
)


def read_index(previous: Snapshot | None) -> pa.Table:
    """What the runs before knew of the source files (see ``FILES_SCHEMA``); empty for none."""
    if previous is None or previous.index is None:
        return empty_table(FILES_SCHEMA)
    with previous.fs.open_input_file(previous.index) as source:
        return pq.ParquetFile(source).read().cast(FILES_SCHEMA)


_KNOWN_FILES_SCHEMA = FILES_SCHEMA.append(pa.field("real", pa.string(), nullable=False))


def classify(
    listing: Listing, privacy: Privacy | None, index: pa.Table
) -> tuple[list[str], pa.Table, pa.Table, pa.Table]:
    """Split the listing into files to read, unchanged good files, and unchanged bad files; and
    the index rows of files not listed now (kept in the next index).

    A file is unchanged when its path, size, mtime, ctime and inode all equal the ones the
    last run recorded; its bytes are not read.
    """
    if index.num_rows == 0:  # a first export: read everything (and leave pyarrow cold till later)
        none = empty_table(_KNOWN_FILES_SCHEMA)
        paths, mtimes = listing.paths, listing.mtime_ns
        order = sorted(range(len(paths)), key=lambda i: (mtimes[i], paths[i]))
        return [paths[i] for i in order], none, none, empty_table(FILES_SCHEMA)
    listed = listing.table(privacy)
    # files the last run knew that are not listed now: pruned by oxios, or another node's
    # (nodes exporting into one dataset take turns): remembered, so that node's next run
    # skips them again
    index_elsewhere = index.filter(pc.invert(pc.is_in(index["path"], value_set=listed["path"])))
    # a lookup with compute kernels, not Table.join: that goes through Acero, which imports pandas
    position = pc.index_in(listed["path"], value_set=index["path"])
    previous = index.take(position)
    joined = listed
    for name in index.column_names:
        if name != "path":
            joined = joined.append_column(f"prev_{name}", previous[name])
    same = pc.fill_null(
        pc.and_(
            pc.and_(
                pc.equal(joined["size"], joined["prev_size"]), pc.equal(joined["mtime_ns"], joined["prev_mtime_ns"])
            ),
            pc.and_(
                pc.equal(joined["ctime_ns"], joined["prev_ctime_ns"]), pc.equal(joined["inode"], joined["prev_inode"])
            ),
        ),
        False,
    )
    # in order of modification time: oxios writes a file when its session changes, so files
    # near in time hold sessions created near in time, and each part spans few date partitions
    to_read = joined.filter(pc.invert(same)).sort_by([("mtime_ns", "ascending"), ("real", "ascending")])
    to_read = to_read["real"].to_pylist()
    unchanged = joined.filter(same)
    keep = unchanged.select(
        [
            "path",
            "size",
            "mtime_ns",
            "ctime_ns",
            "inode",
            "prev_outcome",
            "prev_session_id",
            "prev_updated_at_ns",
            "prev_named",
            "real",
        ]
    )
    keep = keep.rename_columns([*FILES_SCHEMA.names, "real"])
    bad = pc.equal(keep["outcome"], "quarantined")
    return to_read, keep.filter(pc.invert(bad)), keep.filter(bad), index_elsewhere


def existing_sessions(previous: Snapshot | None) -> pa.Table:
    """``session_id``, ``created_at_ns``, ``updated_at_ns`` and ``key`` (its file) of every
    session of the previous version."""
    schema = pa.schema(
        [
            ("session_id", pa.string()),
            ("created_at_ns", pa.int64()),
            ("updated_at_ns", pa.int64()),
            ("key", pa.string()),
        ]
    )
    if previous is None:
        return empty_table(schema)
    declared = schema_of("sessions")
    columns = pa.schema([declared.field(name) for name in ("session_id", "created_at", "updated_at")])
    pieces = []
    for file in previous.files.get("sessions", []):
        table = previous.read_file(file, columns)
        pieces.append(
            pa.table(
                {
                    "session_id": table["session_id"],
                    "created_at_ns": table["created_at"].cast(pa.int64()),
                    "updated_at_ns": table["updated_at"].cast(pa.int64()),
                    "key": pa.array([file.key] * table.num_rows, pa.string()),
                },
                schema=schema,
            )
        )
    return pa.concat_tables(pieces).combine_chunks() if pieces else empty_table(schema)


@dataclass
class Decisions:
    """What the merge decided: sessions to take out of files, files to quarantine, outcomes."""

    # loser path, its real path, session id, winner path, whether the loser was read this run
    duplicates: list[tuple[str, str, str, str, bool]] = field(default_factory=list)
    stale: set[str] = field(default_factory=set)  # paths read whose session the dataset holds newer
    drop_new: dict[str, set[str]] = field(default_factory=dict)  # name of files written now -> ids not kept
    drop_old: dict[str, int] = field(default_factory=dict)  # id replaced -> its creation time in the dataset


def merge_sessions(new: pa.Table, unchanged_ok: pa.Table, existing: pa.Table) -> Decisions:
    """Decide, for every session id read this run, which version the dataset keeps.

    Of several present files with one id, the newest ``updated_at`` wins (then the file named
    ``<id>.json``, then the first path); the others are duplicates. The winner read now
    replaces the dataset's version unless that one is newer (on a tie, the content read now).
    """
    decisions = Decisions()
    columns = ["path", "real", "session_id", "updated_at_ns", "named", "part", "written"]
    if unchanged_ok.num_rows == 0:
        present = new.select(columns)
    else:
        present = pa.concat_tables(
            [
                new.select(columns),
                pa.table(
                    {
                        "path": unchanged_ok["path"],
                        "real": unchanged_ok["real"],
                        "session_id": unchanged_ok["session_id"],
                        "updated_at_ns": unchanged_ok["updated_at_ns"],
                        "named": pc.fill_null(unchanged_ok["named"], False),
                        "part": pa.nulls(unchanged_ok.num_rows, pa.string()),
                        "written": pa.nulls(unchanged_ok.num_rows, pa.bool_()),
                    }
                ),
            ]
        )
    counts = pc.value_counts(present["session_id"])
    dup_ids = counts.field("values").filter(pc.greater(counts.field("counts"), 1))
    losers: set[str] = set()
    if len(dup_ids):
        rows = present.filter(pc.is_in(present["session_id"], value_set=dup_ids)).to_pylist()
        by_id: dict[str, list[dict]] = {}
        for row in rows:
            by_id.setdefault(row["session_id"], []).append(row)
        for sid, group in sorted(by_id.items()):
            group.sort(key=lambda r: (-r["updated_at_ns"], not r["named"], r["path"]))
            for row in group[1:]:
                decisions.duplicates.append((row["path"], row["real"], sid, group[0]["path"], row["part"] is not None))
                losers.add(row["path"])
                if row["written"]:
                    decisions.drop_new.setdefault(row["part"], set()).add(sid)
    if existing.num_rows == 0:  # a first export: nothing to replace
        return decisions
    if losers:
        new = new.filter(pc.invert(pc.is_in(new["path"], value_set=pa.array(sorted(losers), pa.string()))))
    winners = new.select(["path", "session_id", "updated_at_ns", "part"])
    found = pc.index_in(winners["session_id"], value_set=existing["session_id"])
    hit = pc.is_valid(found)
    old = existing.take(found.filter(hit))
    matched = (
        winners.filter(hit)
        .append_column("updated_at_ns_old", old["updated_at_ns"])
        .append_column("created_at_ns_old", old["created_at_ns"])
    )
    for row in matched.to_pylist():
        if row["updated_at_ns"] >= row["updated_at_ns_old"]:
            decisions.drop_old[row["session_id"]] = row["created_at_ns_old"]
        else:
            decisions.stale.add(row["path"])
            decisions.drop_new.setdefault(row["part"], set()).add(row["session_id"])
    return decisions


def filter_file(source: str, fs: Any, target: Path, table: str, ids: set[str], row_group_rows: int) -> DataFile | None:
    """Write the file at ``source`` (on ``fs``) to ``target`` without the rows of the owners
    ``ids``; returns the file written (its key left empty), or None when no row is left."""
    schema = schema_of(table)
    rows = pq.read_table(source, schema=schema, filesystem=fs)
    key = CLUSTERING[table].key
    kept = rows.filter(pc.invert(pc.is_in(rows[key], value_set=pa.array(sorted(ids), pa.string()))))
    if kept.num_rows == 0:
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    writer = TableWriter(target, schema, row_group_rows)
    try:
        writer.add(kept)
    finally:
        writer.close()
    return DataFile("", os.path.getsize(target), kept.num_rows)


def write_index(
    staging: Path,
    new: pa.Table,
    decisions: Decisions,
    unchanged_ok: pa.Table,
    unchanged_bad: pa.Table,
    bad_stats: list[tuple],
    duplicate_paths: set[str],
    elsewhere: pa.Table | None = None,
) -> None:
    """Remember every listed file's stat and outcome, so the next run can skip the unchanged
    ones; and ``elsewhere``, what earlier runs knew of files not listed now."""
    outcome = pa.array(["exported"] * new.num_rows, pa.string())  # the usual case, without a Python loop
    for paths, label in ((decisions.stale, "stale"), (duplicate_paths, "quarantined")):
        if paths:
            flag = pc.is_in(new["path"], value_set=pa.array(sorted(paths), pa.string()))
            outcome = pc.if_else(flag, label, outcome)
    read = pa.table(
        {
            "path": new["path"],
            "size": new["size"],
            "mtime_ns": new["mtime_ns"],
            "ctime_ns": new["ctime_ns"],
            "inode": new["inode"],
            "outcome": outcome,
            "session_id": new["session_id"],
            "updated_at_ns": new["updated_at_ns"],
            "named": new["named"],
        },
        schema=FILES_SCHEMA,
    )
    ok = unchanged_ok.select(FILES_SCHEMA.names)
    if duplicate_paths:
        flag = pc.is_in(ok["path"], value_set=pa.array(sorted(duplicate_paths), pa.string()))
        ok = ok.set_column(
            ok.schema.get_field_index("outcome"), "outcome", pc.if_else(flag, "quarantined", ok["outcome"])
        )
    bad = pa.table(
        {
            "path": pa.array([b[0] for b in bad_stats], pa.string()),
            "size": pa.array([b[1] for b in bad_stats], pa.int64()),
            "mtime_ns": pa.array([b[2] for b in bad_stats], pa.int64()),
            "ctime_ns": pa.array([b[3] for b in bad_stats], pa.int64()),
            "inode": pa.array([b[4] for b in bad_stats], pa.int64()),
            "outcome": pa.array(["quarantined"] * len(bad_stats), pa.string()),
            "session_id": pa.nulls(len(bad_stats), pa.string()),
            "updated_at_ns": pa.nulls(len(bad_stats), pa.int64()),
            "named": pa.nulls(len(bad_stats), pa.bool_()),
        },
        schema=FILES_SCHEMA,
    )
    index = pa.concat_tables(
        [
            read,
            ok.cast(FILES_SCHEMA),
            unchanged_bad.select(FILES_SCHEMA.names).cast(FILES_SCHEMA),
            bad,
            *([] if elsewhere is None else [elsewhere.select(FILES_SCHEMA.names).cast(FILES_SCHEMA)]),
        ]
    )
    (staging / INDEX_KEY).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(index, staging / INDEX_KEY, compression="zstd")


def write_errors(
    staging: Path, previous: Snapshot | None, new_errors: list[dict[str, Any]], fixed: pa.Array, run_id: str
) -> DataFile | None:
    """The errors table: this run's bad files, plus earlier ones not read again (still bad, or
    gone); written to ``staging`` only when it changed (returns the file, or None).

    ``fixed``: the paths read as good sessions this run, whose earlier errors are gone.
    """
    if previous is not None and not new_errors and not len(fixed) and previous.files.get("errors"):
        return None  # nothing read: nothing to change
    old = read_table(previous, "errors")
    before = old.num_rows
    if old.num_rows:
        old = old.filter(pc.invert(pc.is_in(old["file"], value_set=fixed)))
    if old.num_rows and new_errors:
        again = pa.array(sorted({e["file"] for e in new_errors}), pa.string())
        old = old.filter(pc.invert(pc.is_in(old["file"], value_set=again)))
    if previous is not None and not new_errors and old.num_rows == before and previous.files.get("errors"):
        return None
    rows = pa.Table.from_pylist(new_errors, schema=int_times(ERRORS_SCHEMA)) if new_errors else None
    current = pa.concat_tables([old, rows.cast(ERRORS_SCHEMA)]) if rows is not None else old
    key = f"errors/errors-{run_id}.parquet"
    (staging / "errors").mkdir(parents=True, exist_ok=True)
    writer = TableWriter(staging / key, ERRORS_SCHEMA)
    writer.add(current.sort_by("file"))
    writer.close()
    return DataFile(key, os.path.getsize(staging / key), current.num_rows)


def write_run(
    summary: ExportSummary, previous: Snapshot | None, staging: Path, started_ns: int, privacy: dict | None = None
) -> DataFile:
    """The runs table with this run appended, written to ``staging``."""
    import json

    from sessionkit._version import __version__

    runs_table = read_table(previous, "runs")
    row = {
        "run_id": summary.run_id,
        "started_at": started_ns // 1000,
        "finished_at": time.time_ns() // 1000,
        "duration_s": summary.seconds,
        "source": source_record(summary.source, privacy),
        "seen": summary.seen,
        "exported": summary.exported,
        "unchanged": summary.unchanged,
        "quarantined": summary.quarantined,
        "vanished": summary.vanished,
        "ignored": summary.ignored,
        "sessions": summary.sessions,
        "jobs": summary.jobs,
        "sessionkit_version": __version__,
        "privacy": json.dumps(privacy) if privacy else None,
    }
    runs_table = pa.concat_tables(
        [runs_table, pa.Table.from_pylist([row], schema=int_times(RUNS_SCHEMA)).cast(RUNS_SCHEMA)]
    )
    key = f"runs/runs-{summary.run_id}.parquet"
    (staging / "runs").mkdir(parents=True, exist_ok=True)
    writer = TableWriter(staging / key, RUNS_SCHEMA)
    writer.add(runs_table)
    writer.close()
    return DataFile(key, os.path.getsize(staging / key), runs_table.num_rows)


def source_record(source: str, privacy: dict | None) -> str:
    """The source folder as the runs table records it; withheld under privacy settings, since
    a path may hold a person's name."""
    return "(withheld: privacy settings)" if privacy else str(Path(source).resolve())


def errors(dataset: str | os.PathLike[str]) -> pa.Table:
    """The ``errors`` table of a dataset: the files that could not be read as sessions.

    Columns: ``file``, ``size``, ``sha256``, ``error_class``, ``json_path``, ``byte_offset``,
    ``message``, ``quarantined_as`` (a copy of the bytes, under the dataset folder),
    ``run_id`` and ``seen_at``.
    """
    return open_store(dataset).open().read("errors")


def runs(dataset: str | os.PathLike[str]) -> pa.Table:
    """The ``runs`` table of a dataset: one row per export, with the count of every bucket."""
    return open_store(dataset).open().read("runs")
