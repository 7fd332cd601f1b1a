"""The agent-run records of a state directory (``SRC/agents/*.json``) in an export run.

They are few and small beside the sessions (oxios keeps 30 days or 10,000 runs), so the main
process reads the changed ones itself and writes the two agent tables whole, once per run that
changes them. The guarantees are the sessions': files unchanged since the last run are
recognised by their stat and not read; a record read now replaces the dataset's (unless the
dataset's is further along: completed, or started, later); records oxios pruned are kept; a file
that is not an agent record is quarantined with a row in ``errors``; of several files holding
one agent id, the one named ``<id>.json`` wins (then the furthest along) and the others are
quarantined as duplicates. The file index keeps the agent files beside the session files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from sessionkit._layout import DataFile, write_clustered, write_empty
from sessionkit._store import Snapshot
from sessionkit.archive._listing import Listing, list_folder, stored_path
from sessionkit.archive._state import FILES_SCHEMA, classify
from sessionkit.exceptions import SessionFormatError, SessionkitError, SourceNotFoundError
from sessionkit.tables import AGENT_TABLE_NAMES, SCHEMAS, empty_table, int_times

if TYPE_CHECKING:
    from sessionkit.privacy import Privacy, PrivacyCounts

#: The folder of a state directory that holds the agent-run records.
AGENTS_DIR = "agents"


def agents_folder(source: str | os.PathLike[str]) -> Path | None:
    """The folder of agent records of a source: ``SRC/agents`` of a state directory, or ``SRC``
    itself when it is a folder named ``agents``; None when there is none."""
    path = Path(source)
    if not path.is_dir():
        return None
    if (path / AGENTS_DIR).is_dir():
        return path / AGENTS_DIR
    if path.name == AGENTS_DIR:
        return path
    return None


def list_agents(folder: Path) -> Listing:
    """The ``*.json`` files of an agents folder, as ``list_source`` lists session files."""
    return list_folder(folder)


@dataclass
class AgentRun:
    """What the agent pass of one export run did."""

    folder: Path | None = None
    prefix: str = ""  # how the file index begins the paths of this folder's files
    read: int = 0  # files read (not recognised as unchanged)
    seen: int = 0
    exported: int = 0
    unchanged: int = 0
    quarantined: int = 0
    vanished: int = 0
    ignored: int = 0
    index: pa.Table | None = None  # this run's index rows of the agent files (None: not listed)
    errors: list[dict[str, Any]] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)  # stored paths read as good records now
    changed: bool = False  # the agent tables change
    privacy: PrivacyCounts | None = None

    def check(self) -> None:
        """Every agent file seen is in exactly one bucket."""
        total = self.exported + self.unchanged + self.quarantined + self.vanished + self.ignored
        if total != self.seen:
            msg = f"export accounting of agent files is off: {self.seen} seen but {total} in buckets"
            raise AssertionError(msg)


def _rank(created: int | None, started: int | None, completed: int | None) -> int:
    """How far along a record is: its latest time (a run is rewritten as it starts and completes)."""
    return max(t for t in (created, started, completed) if t is not None)


def _stat_tuple(st: os.stat_result) -> tuple[int, int, int, int]:
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


def read_agents(
    folder: Path,
    previous: Snapshot | None,
    index: pa.Table,
    quarantine_dir: Path,
    run_id: str,
    privacy: Privacy | None,
) -> tuple[AgentRun, dict[str, pa.Table], set[str]]:
    """Read the changed agent files of ``folder``; returns what happened, the new rows (privacy
    applied) and the ids whose rows in the dataset they replace."""
    from sessionkit.archive._parts import FileTooLargeError, NotAFileError, quarantine, read_source
    from sessionkit.model import check_agent, check_agent_duplicate_keys, count_keys, decode_json
    from sessionkit.oxios import file_name_problem
    from sessionkit.tables import agent_rows

    run = AgentRun(folder=folder)
    listing = list_agents(folder)
    run.seen, run.ignored = len(listing) + listing.ignored, listing.ignored
    prefix = stored_path(os.path.join(str(folder), "x.json"), privacy)[: -len("x.json")]
    mine = index.filter(pc.starts_with(index["path"], prefix)) if index.num_rows else index
    to_read, unchanged_ok, unchanged_bad, gone = classify(listing, privacy, mine)
    run.prefix, run.read = prefix, len(to_read)
    bad_stats: list[tuple] = []
    good: list[dict[str, Any]] = []

    def bad(path: str, data: bytes, err: SessionkitError | str, stats: tuple) -> None:
        run.errors.append(quarantine(str(quarantine_dir), path, data, err, run_id, privacy))
        bad_stats.append((stored_path(path, privacy), *stats))

    for path in to_read:
        try:
            data, st = read_source(path)
        except (FileNotFoundError, NotAFileError):
            run.vanished += 1
            continue
        except FileTooLargeError as err:
            bad(
                path,
                b"",
                SessionFormatError(f"the file is too large to be an agent record ({err.strerror})", source=path),
                (0, 0, 0, 0),
            )
            continue
        except OSError as err:
            bad(path, b"", SourceNotFoundError(f"cannot be read ({err.strerror or err})"), (0, 0, 0, 0))
            continue
        try:
            obj = decode_json(data, source=path)
            check_agent(obj, path)
            check_agent_duplicate_keys(data, count_keys(obj), path)
            problem = file_name_problem(obj["id"])
            if problem is not None:
                raise SessionFormatError(
                    f"the agent id cannot be a file name: {problem}",
                    source=path,
                    path="$.id",
                    hint="oxios names an agent record's file after its id; this file was not written by oxios",
                )
            row, calls = agent_rows(obj, path)
        except SessionkitError as err:
            bad(path, data, err, _stat_tuple(st))
            continue
        good.append(
            {
                "path": stored_path(path, privacy),
                "real": path,
                "stat": _stat_tuple(st),
                "id": row["agent_id"],
                "rank": _rank(row["created_at"], row["started_at"], row["completed_at"]),
                "named": os.path.basename(path) == f"{row['agent_id']}.json",
                "row": row,
                "calls": calls,
            }
        )
    # one file per agent id: of the files present, the one named after the id, then the furthest along
    present: list[tuple[Any, ...]] = [(g["id"], g["rank"], g["named"], g["path"], g["real"], g) for g in good]
    for ok in unchanged_ok.to_pylist():
        present.append((ok["session_id"], ok["updated_at_ns"], bool(ok["named"]), ok["path"], ok["real"], None))
    by_id: dict[str, list[tuple]] = {}
    for item in present:
        by_id.setdefault(item[0], []).append(item)
    losers: set[str] = set()
    unchanged_losers = 0
    for aid, group in by_id.items():
        if len(group) < 2:
            continue
        group.sort(key=lambda g: (not g[2], -g[1], g[3]))
        for _, _, _, path, real, read_now in group[1:]:
            try:
                data, _ = read_source(real)
            except OSError:
                data = b""
            reason = f"agent id {aid!r} is also held by {group[0][3]}, which is named after the id or further along; this copy was set aside"
            run.errors.append(quarantine(str(quarantine_dir), real, data, reason, run_id, privacy))
            losers.add(path)
            unchanged_losers += read_now is None
    winners = [g for g in good if g["path"] not in losers]
    # against the dataset: a record read now replaces the stored one unless that is further along
    stored = _stored_ranks(previous)
    stale = {g["path"] for g in winners if g["id"] in stored and stored[g["id"]] > g["rank"]}
    taken = [g for g in winners if g["path"] not in stale]
    new = {
        "agents": pa.Table.from_pylist([g["row"] for g in taken], schema=int_times(SCHEMAS["agents"])).cast(
            SCHEMAS["agents"]
        ),
        "agent_tool_calls": pa.Table.from_pylist(
            [c for g in taken for c in g["calls"]], schema=int_times(SCHEMAS["agent_tool_calls"])
        ).cast(SCHEMAS["agent_tool_calls"]),
    }
    if privacy is not None and taken:
        new, run.privacy = privacy.apply_agents(new)
    run.exported = len(taken)
    run.unchanged = unchanged_ok.num_rows - unchanged_losers + len(stale)
    run.quarantined = len(bad_stats) + unchanged_bad.num_rows + len(losers)
    run.fixed = [g["path"] for g in winners]
    run.changed = bool(taken)
    run.index = _index_rows(good, losers, stale, unchanged_ok, unchanged_bad, bad_stats, gone)
    run.check()
    return run, new, {g["id"] for g in taken}


def _stored_ranks(previous: Snapshot | None) -> dict[str, int]:
    if previous is None or not previous.files.get("agents"):
        return {}
    table = previous.read("agents", ["agent_id", "created_at", "started_at", "completed_at"])
    times = [table[name].cast(pa.int64()).to_pylist() for name in ("created_at", "started_at", "completed_at")]
    return {aid: _rank(*t) for aid, *t in zip(table["agent_id"].to_pylist(), *times, strict=True)}


def _index_rows(
    good: list[dict[str, Any]],
    losers: set[str],
    stale: set[str],
    unchanged_ok: pa.Table,
    unchanged_bad: pa.Table,
    bad_stats: list[tuple],
    gone: pa.Table,
) -> pa.Table:
    """The file index rows of the agent files: ``session_id`` holds the agent id and
    ``updated_at_ns`` how far along its record is."""
    rows = []
    for g in good:
        outcome = "quarantined" if g["path"] in losers else "stale" if g["path"] in stale else "exported"
        size, mtime, ctime, inode = g["stat"]
        rows.append(
            {
                "path": g["path"],
                "size": size,
                "mtime_ns": mtime,
                "ctime_ns": ctime,
                "inode": inode,
                "outcome": outcome,
                "session_id": g["id"],
                "updated_at_ns": g["rank"],
                "named": g["named"],
            }
        )
    for path, size, mtime, ctime, inode in bad_stats:
        rows.append(
            {
                "path": path,
                "size": size,
                "mtime_ns": mtime,
                "ctime_ns": ctime,
                "inode": inode,
                "outcome": "quarantined",
                "session_id": None,
                "updated_at_ns": None,
                "named": None,
            }
        )
    ok = unchanged_ok.select(FILES_SCHEMA.names).cast(FILES_SCHEMA)
    if losers:
        flag = pc.is_in(ok["path"], value_set=pa.array(sorted(losers), pa.string()))
        at = ok.schema.get_field_index("outcome")
        ok = ok.set_column(at, FILES_SCHEMA.field(at), pc.if_else(flag, "quarantined", ok["outcome"]))
    return pa.concat_tables(
        [
            pa.Table.from_pylist(rows, schema=FILES_SCHEMA),
            ok,
            unchanged_bad.select(FILES_SCHEMA.names).cast(FILES_SCHEMA),
            gone.select(FILES_SCHEMA.names).cast(FILES_SCHEMA),
        ]
    )


def merged_agents(previous: Snapshot | None, new: dict[str, pa.Table], replaced: set[str]) -> dict[str, pa.Table]:
    """The agent tables of the next version: the dataset's rows without the ids replaced, and the new rows."""
    out = {}
    ids = pa.array(sorted(replaced), pa.string())
    for name in AGENT_TABLE_NAMES:
        old = previous.read(name) if previous is not None and previous.files.get(name) else empty_table(SCHEMAS[name])
        if len(ids) and old.num_rows:
            old = old.filter(pc.invert(pc.is_in(old["agent_id"], value_set=ids)))
        out[name] = pa.concat_tables([old, new[name]]) if new[name].num_rows else old
    return out


def write_agents(
    tables: dict[str, pa.Table], staging: Path, run_id: str, partition_by: str, row_group_rows: int
) -> dict[str, list[DataFile]]:
    """Write the agent tables whole into ``staging`` (an empty file for a table with no rows)."""
    written = write_clustered(
        tables, staging, f"part-{run_id}.parquet", partition_by=partition_by, row_group_rows=row_group_rows
    )
    for name in tables:
        if not written.get(name):
            written[name] = [write_empty(staging, name, f"part-{run_id}-empty.parquet")]
    return written


def link_agents(agents: pa.Table, tables: dict[str, list[tuple[Any, str]]], privacy: Privacy | None) -> pa.Table:
    """``agents`` with ``linked_session_id`` and ``linked_seq`` set by the link rule (see
    ``sessionkit.tables._link``), over the session tables of the version being built.

    ``tables`` gives, per session table, its files as (pyarrow file system, path) pairs.
    """
    import duckdb
    import pyarrow.dataset as ds

    from sessionkit.tables import link_sql

    if agents.num_rows == 0:
        return agents
    con = duckdb.connect(config={"threads": 2})
    try:
        for name in ("sessions", "messages", "responses"):
            schema = SCHEMAS[name]
            by_fs: dict[int, tuple[Any, list[str]]] = {}
            for fs, path in tables.get(name, []):
                by_fs.setdefault(id(fs), (fs, []))[1].append(path)
            parts = [ds.dataset(paths, schema=schema, format="parquet", filesystem=fs) for fs, paths in by_fs.values()]
            source: Any = empty_table(schema) if not parts else parts[0] if len(parts) == 1 else ds.dataset(parts)
            con.register(name, source)
        con.register("agents", agents)
        text_match = privacy is None or privacy.redact != "drop"  # dropped texts are all "": no match means anything
        found = con.sql(link_sql(SCHEMAS["sessions"].names, text_match=text_match)).to_arrow_table()
        found = found.rename_columns(["agent_id", "link_candidates", "linked_session_id", "linked_seq"])
    finally:
        con.close()
    at = pc.index_in(agents["agent_id"], value_set=found["agent_id"])
    for column in ("linked_session_id", "linked_seq", "link_candidates"):
        i = agents.schema.get_field_index(column)
        agents = agents.set_column(i, agents.schema.field(i), found[column].take(at).cast(agents.schema.field(i).type))
    return agents
