"""What the archive keeps between runs: the file index, the merge of new rows into the
previous version, and the runs and errors tables."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sessionkit.archive._listing import _Listing
from sessionkit.archive._summary import ExportSummary
from sessionkit.exceptions import DatasetError
from sessionkit.privacy import Privacy
from sessionkit.storage import (
    ROW_GROUP_ROWS,
    TableWriter,
    open_dataset,
    write_manifest,
)
from sessionkit.tables import (
    ERRORS_SCHEMA,
    RUNS_SCHEMA,
    SCHEMAS,
    TABLE_NAMES,
    empty_table,
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
_INDEX = "files.parquet"


# -- the main process: classify, merge, publish ------------------------------------------------------
def _read_table(folder: Path | None, name: str, schema: pa.Schema) -> pa.Table:
    """A table of the previous version (every file of its folder, or the one file), or an empty one."""
    if folder is None:
        return empty_table(schema)
    target = folder / name
    paths = (
        sorted(str(p) for p in target.glob("*.parquet"))
        if target.is_dir()
        else ([str(target)] if target.exists() else [])
    )
    if not paths:
        return empty_table(schema)
    return pa.concat_tables([pq.read_table(p, schema=schema) for p in paths]).combine_chunks()


_KNOWN_FILES_SCHEMA = FILES_SCHEMA.append(pa.field("real", pa.string(), nullable=False))


def _classify(
    listing: _Listing, privacy: Privacy | None, index: pa.Table
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
    listing = listing.table(privacy)
    # files the last run knew that are not listed now: pruned by oxios, or another node's
    # (nodes exporting into one dataset take turns): remembered, so that node's next run
    # skips them again
    index_elsewhere = index.filter(pc.invert(pc.is_in(index["path"], value_set=listing["path"])))
    # a lookup with compute kernels, not Table.join: that goes through Acero, which imports pandas
    position = pc.index_in(listing["path"], value_set=index["path"])
    previous = index.take(position)
    joined = listing
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


def part_keys(version: Path) -> list[str]:
    """The keys of a version's files, ``created_date=YYYY-MM-DD/<part>.parquet``, sorted; each
    names one file in every table folder."""
    folder = version / "sessions"
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.parquet"))


def _existing_sessions(previous: Path | None) -> pa.Table:
    """session_id, updated_at_ns and part (its key) of every session of the previous version."""
    schema = pa.schema([("session_id", pa.string()), ("updated_at_ns", pa.int64()), ("part", pa.string())])
    if previous is None:
        return empty_table(schema)
    pieces = []
    for key in part_keys(previous):
        table = pq.read_table(previous / "sessions" / key, columns=["session_id", "updated_at"])
        pieces.append(
            pa.table(
                {
                    "session_id": table["session_id"],
                    "updated_at_ns": table["updated_at"].cast(pa.int64()),
                    "part": pa.array([key] * table.num_rows, pa.string()),
                }
            )
        )
    return pa.concat_tables(pieces).combine_chunks() if pieces else empty_table(schema)


@dataclass
class _Decisions:
    """What the merge decided: rows to drop from parts, files to quarantine, outcomes."""

    drop_ids: dict[str, set[str]] = field(default_factory=dict)  # old part -> session ids replaced
    drop_ordinals: dict[str, set[int]] = field(default_factory=dict)  # new part -> rows not kept
    # loser path, its real path, session id, winner path, whether the loser was read this run
    duplicates: list[tuple[str, str, str, str, bool]] = field(default_factory=list)
    stale: set[str] = field(default_factory=set)  # paths read whose session the dataset holds newer


def _merge(new: pa.Table, unchanged_ok: pa.Table, existing: pa.Table) -> _Decisions:
    """Decide, for every session id read this run, which version the dataset keeps.

    Of several present files with one id, the newest ``updated_at`` wins (then the file named
    ``<id>.json``, then the first path); the others are duplicates. The winner read now
    replaces the dataset's version unless that one is newer (on a tie, the content read now).
    """
    decisions = _Decisions()
    columns = ["path", "real", "session_id", "updated_at_ns", "named", "part", "ordinal"]
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
                        "ordinal": pa.nulls(unchanged_ok.num_rows, pa.int64()),
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
                if row["part"] is not None:
                    decisions.drop_ordinals.setdefault(row["part"], set()).add(row["ordinal"])
    if existing.num_rows == 0:  # a first export: nothing to replace
        return decisions
    if losers:
        new = new.filter(pc.invert(pc.is_in(new["path"], value_set=pa.array(sorted(losers), pa.string()))))
    winners = new.select(["path", "session_id", "updated_at_ns", "part", "ordinal"])
    found = pc.index_in(winners["session_id"], value_set=existing["session_id"])
    hit = pc.is_valid(found)
    old = existing.take(found.filter(hit))
    matched = (
        winners.filter(hit)
        .append_column("updated_at_ns_old", old["updated_at_ns"])
        .append_column("part_old", old["part"])
    )
    for row in matched.select(
        ["path", "session_id", "updated_at_ns", "updated_at_ns_old", "part", "part_old", "ordinal"]
    ).to_pylist():
        if row["updated_at_ns"] >= row["updated_at_ns_old"]:
            decisions.drop_ids.setdefault(row["part_old"], set()).add(row["session_id"])
        else:
            decisions.stale.add(row["path"])
            decisions.drop_ordinals.setdefault(row["part"], set()).add(row["ordinal"])
    return decisions


def _filter_part(
    source: Path,
    target: Path,
    name: str,
    *,
    ids: set[str] | None = None,
    ordinals: set[int] | None = None,
    row_group_rows: int = ROW_GROUP_ROWS,
) -> int:
    """Write part ``name`` from the version at ``source`` to ``target`` without some sessions
    (by id, or by row position); returns the sessions kept (0: nothing written)."""
    import numpy as np

    sessions = pq.read_table(source / "sessions" / name, schema=SCHEMAS["sessions"])
    if ids is not None:
        drop = pc.is_in(sessions["session_id"], value_set=pa.array(sorted(ids), pa.string())).to_numpy(
            zero_copy_only=False
        )
    else:
        drop = np.zeros(sessions.num_rows, dtype=bool)
        drop[sorted(ordinals or ())] = True
    keep = ~drop
    if not keep.any():
        return 0
    counts = {
        "sessions": np.ones(sessions.num_rows, dtype=np.int64),
        "messages": sessions["n_user_messages"].to_numpy(),
        "responses": sessions["n_agent_responses"].to_numpy(),
        "metadata": sessions["n_metadata"].to_numpy(),
    }
    for table_name in TABLE_NAMES:
        table = (
            sessions
            if table_name == "sessions"
            else pq.read_table(source / table_name / name, schema=SCHEMAS[table_name])
        )
        mask = np.repeat(keep, counts[table_name])
        if len(mask) != table.num_rows:
            msg = f"{source / table_name / name}: its rows do not follow the sessions of the part. Hint: the dataset is damaged; export it again into a new folder"
            raise DatasetError(msg)
        (target / table_name / name).parent.mkdir(parents=True, exist_ok=True)
        writer = TableWriter(target / table_name / name, SCHEMAS[table_name], row_group_rows)
        writer.add(table.filter(pa.array(mask)))
        writer.close()
    return int(keep.sum())


def _write_index(
    staging: Path,
    new: pa.Table,
    decisions: _Decisions,
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
    pq.write_table(index, staging / _INDEX, compression="zstd")


def _write_errors(staging: Path, previous: Path | None, new_errors: list[dict[str, Any]], fixed: pa.Array) -> None:
    """The errors table: this run's bad files, plus earlier ones not read again (still bad, or gone).

    ``fixed``: the paths read as good sessions this run, whose earlier errors are gone.
    """
    old = _read_table(previous, "errors", ERRORS_SCHEMA)
    if old.num_rows:
        old = old.filter(pc.invert(pc.is_in(old["file"], value_set=fixed)))
    if old.num_rows and new_errors:
        again = pa.array(sorted({e["file"] for e in new_errors}), pa.string())
        old = old.filter(pc.invert(pc.is_in(old["file"], value_set=again)))
    rows = (
        pa.Table.from_pylist(
            new_errors, schema=pa.schema([f.with_type(pa.int64()) if f.name == "seen_at" else f for f in ERRORS_SCHEMA])
        )
        if new_errors
        else None
    )
    current = pa.concat_tables([old, rows.cast(ERRORS_SCHEMA)]) if rows is not None else old
    writer = TableWriter(staging / "errors" / "errors.parquet", ERRORS_SCHEMA, ROW_GROUP_ROWS)
    writer.add(current.sort_by("file"))
    writer.close()


def _count(summary: ExportSummary, staging: Path, kept: tuple[Path, list[str]] | None = None) -> None:
    """The dataset's totals, from the sessions files of the new version (each session counts
    its messages, responses and metadata entries); ``kept``: files left in the previous version
    (a folder and the keys of its sessions files there), for a dataset on S3."""
    paths = sorted((staging / "sessions").rglob("*.parquet"))
    if kept is not None:
        paths += [kept[0] / "sessions" / key for key in kept[1]]
    columns = {"messages": "n_user_messages", "responses": "n_agent_responses", "metadata": "n_metadata"}
    totals = dict.fromkeys([*TABLE_NAMES, "exchanges"], 0)
    for path in paths:
        table = pq.read_table(path, columns=[*columns.values(), "exchange_count"])
        totals["sessions"] += table.num_rows
        for name, column in (*columns.items(), ("exchanges", "exchange_count")):
            totals[name] += int(pc.sum(table[column]).as_py() or 0)
    for name, total in totals.items():
        setattr(summary, name, total)


def _write_run(
    summary: ExportSummary, previous: Path | None, staging: Path, started_ns: int, privacy: dict | None = None
) -> None:
    """Append this run to the runs table and describe the new version in its manifest."""
    import json

    from sessionkit import __version__

    runs_table = _read_table(previous, "runs", RUNS_SCHEMA)
    row = {
        "run_id": summary.run_id,
        "started_at": started_ns // 1000,
        "finished_at": time.time_ns() // 1000,
        "duration_s": summary.seconds,
        "source": _source_record(summary.source, privacy),
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
    plain = pa.schema([f.with_type(pa.int64()) if pa.types.is_timestamp(f.type) else f for f in RUNS_SCHEMA])
    runs_table = pa.concat_tables([runs_table, pa.Table.from_pylist([row], schema=plain).cast(RUNS_SCHEMA)])
    writer = TableWriter(staging / "runs" / "runs.parquet", RUNS_SCHEMA, ROW_GROUP_ROWS)
    writer.add(runs_table)
    writer.close()
    counts = {name: getattr(summary, name) for name in TABLE_NAMES}
    write_manifest(staging, {"run_id": summary.run_id, "counts": counts, "source": row["source"]}, name="manifest.json")


def _source_record(source: str, privacy: dict | None) -> str:
    """The source folder as the runs table records it; withheld under privacy settings, since
    a path may hold a person's name."""
    return "(withheld: privacy settings)" if privacy else str(Path(source).resolve())


def errors(dataset: str | os.PathLike[str]) -> pa.Table:
    """The ``errors`` table of a dataset: the files that could not be read as sessions.

    Columns: ``file``, ``size``, ``sha256``, ``error_class``, ``json_path``, ``byte_offset``,
    ``message``, ``quarantined_as`` (a copy of the bytes, under the dataset folder),
    ``run_id`` and ``seen_at``.
    """
    return open_dataset(dataset).read("errors")


def runs(dataset: str | os.PathLike[str]) -> pa.Table:
    """The ``runs`` table of a dataset: one row per export, with the count of every bucket."""
    return open_dataset(dataset).read("runs")
