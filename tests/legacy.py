"""Datasets as sessionkit 0.1 wrote them, before its layout of few large files: one folder per
creation day in every table, a part file per 2,048 source files in each, real table folders
inside the version, a manifest without layout or file list. Made here the way 0.1's export
made them (checked against that code's output), so that tests can read, update and compact them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from sessionkit.archive._listing import list_source
from sessionkit.archive._state import FILES_SCHEMA
from sessionkit.oxios import read_session
from sessionkit.storage import TableWriter, by_created_date
from sessionkit.tables import ERRORS_SCHEMA, RUNS_SCHEMA, SCHEMAS, take_sessions, to_tables

RUN = "20260101T000000-0a1b2c3d"
#: 0.1's tables, and their schemas then: no tool_calls or reasoning, no project or parent ids.
TABLE_NAMES = ("sessions", "messages", "responses", "metadata")
_LATER_COLUMNS = ("project_id", "parent_session_id")
LEGACY_SCHEMAS = {
    name: pa.schema([f for f in SCHEMAS[name] if f.name not in _LATER_COLUMNS], metadata=SCHEMAS[name].metadata)
    for name in TABLE_NAMES
}


def legacy_export(source: Path, out: Path, *, files_per_part: int = 2048) -> None:
    """Export ``source`` (a folder of oxios files) into a new dataset of the 0.1 layout."""
    listing = list_source(source)
    paths = listing.paths
    version = out / ".sessionkit" / "versions" / "000001"
    counts = dict.fromkeys(TABLE_NAMES, 0)
    index = []
    for part, start in enumerate(range(0, len(paths), files_per_part)):
        chunk = paths[start : start + files_per_part]
        sessions = [read_session(p) for p in chunk]
        tables = to_tables(sessions)
        for key, rows in by_created_date(tables.sessions, f"part-{RUN}-{part:05d}.parquet"):
            piece = take_sessions(tables, rows)
            for name in TABLE_NAMES:
                (version / name / key).parent.mkdir(parents=True, exist_ok=True)
                schema = LEGACY_SCHEMAS[name]
                writer = pq.ParquetWriter(version / name / key, schema, compression="zstd")
                if piece[name].num_rows:
                    writer.write_table(piece[name].select(schema.names).cast(schema))
                writer.close()
                counts[name] += piece[name].num_rows
        for i, (path, session) in enumerate(zip(chunk, sessions, strict=True), start=start):
            named = os.path.basename(path) == f"{session.id}.json"
            stat = (listing.size[i], listing.mtime_ns[i], listing.ctime_ns[i], listing.inode[i])
            index.append((path, *stat, "exported", session.id, session.updated_at.ns, named))
    table = pa.table({f.name: [row[i] for row in index] for i, f in enumerate(FILES_SCHEMA)}, schema=FILES_SCHEMA)
    pq.write_table(table, version / "files.parquet", compression="zstd")
    for name, schema in (("runs", RUNS_SCHEMA), ("errors", ERRORS_SCHEMA)):
        (version / name).mkdir(parents=True)
        writer = TableWriter(version / name / f"{name}.parquet", schema)
        if name == "runs":
            row = {
                "run_id": RUN,
                "started_at": 1_767_225_600_000_000,
                "finished_at": 1_767_225_601_000_000,
                "duration_s": 1.0,
                "source": str(source),
                "seen": len(paths),
                "exported": len(paths),
                "unchanged": 0,
                "quarantined": 0,
                "vanished": 0,
                "ignored": listing.ignored,
                "sessions": counts["sessions"],
                "jobs": 1,
                "sessionkit_version": "0.1.0",
                "privacy": None,
            }
            plain = pa.schema([f.with_type(pa.int64()) if pa.types.is_timestamp(f.type) else f for f in schema])
            writer.add(pa.Table.from_pylist([row], schema=plain).cast(schema))
        writer.close()
    manifest = {
        "format": "sessionkit-dataset",
        "schema_version": "1",
        "sessionkit_version": "0.1.0",
        "tables": {name: f"{name}/**/*.parquet" for name in TABLE_NAMES},
        "run_id": RUN,
        "counts": counts,
        "source": str(source),
    }
    (version / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    os.symlink("versions/000001", out / ".sessionkit" / "current")
    for name in (*TABLE_NAMES, "runs", "errors"):
        os.symlink(f".sessionkit/current/{name}", out / name, target_is_directory=True)
    os.symlink(".sessionkit/current/manifest.json", out / "_sessionkit.json")
