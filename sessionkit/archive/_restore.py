"""``restore``: a dataset back to oxios files, in parallel."""

from __future__ import annotations

import errno
import json
import os
import stat
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sessionkit._progress import Progress
from sessionkit._progress import resolve as resolve_progress
from sessionkit._store import Snapshot, open_store
from sessionkit.archive._pool import default_jobs, no_gc, ordered_map
from sessionkit.exceptions import SessionkitWarning, TargetExistsError
from sessionkit.oxios import NAME_MAX, file_name_problem
from sessionkit.tables import (
    CLUSTERING,
    SCHEMAS,
    TABLE_NAMES,
    SessionTables,
    iter_session_json,
)

# -- restore ---------------------------------------------------------------------------------------
#: Sessions restored by one task.
SESSIONS_PER_TASK = 4096


@dataclass
class _RestoreTask:
    tables: SessionTables  # some sessions with all their rows
    folder: str
    overwrite: bool


_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_REPLACE = (
    os.O_WRONLY
    | os.O_CREAT
    | os.O_TRUNC
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)  # a FIFO at the name: fail at once (ENXIO) rather than wait
    | getattr(os, "O_CLOEXEC", 0)
)


def _write_file(path: str, data: bytes, overwrite: bool) -> None:
    """Write ``path``; with ``overwrite``, replace what is there, but never write through a
    link (a link at ``path`` is replaced by the file) nor into anything but a regular file."""
    try:
        fd = os.open(path, _REPLACE if overwrite else _NEW, 0o644)
    except FileExistsError:
        msg = f"{path} already exists"
        raise TargetExistsError(msg, hint="restore into an empty folder, or pass --overwrite") from None
    except OSError as err:
        if not overwrite or err.errno not in (errno.ELOOP, errno.EMLINK, errno.ENXIO):
            raise
        if err.errno == errno.ENXIO:  # a FIFO nobody reads
            raise _not_a_file(path) from None
        os.remove(path)  # ELOOP (EMLINK on FreeBSD): a link; remove the link itself, not its target
        fd = os.open(path, _NEW, 0o644)
    try:
        if overwrite and not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _not_a_file(path)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _not_a_file(path: str) -> TargetExistsError:
    msg = f"{path} is not a regular file; restore does not write into it"
    return TargetExistsError(msg, hint="remove it, then restore again")


def _restore_tables(tables: SessionTables, folder: str, overwrite: bool) -> tuple[int, list[str]]:
    """Write the sessions of ``tables``; returns the count written and the ids skipped
    because they cannot be file names."""
    count, skipped = 0, []
    for sid, data in iter_session_json(tables):
        if file_name_problem(sid) is not None:
            skipped.append(sid)
            continue
        _write_file(os.path.join(folder, f"{sid}.json"), data, overwrite)
        count += 1
    return count, skipped


def _restore_part(task: _RestoreTask) -> tuple[int, list[str]]:
    """Worker: some sessions back to oxios files; returns the count written and the ids skipped."""
    return _restore_tables(task.tables, task.folder, task.overwrite)


def _chunks(snapshot: Snapshot, jobs: int) -> Iterator[SessionTables]:
    """The dataset's sessions in chunks of ``SESSIONS_PER_TASK``, each with all its rows.

    Every table is read in the order of its owners' keys (DuckDB sorts, spilling to disk when
    it must), so each chunk takes the rows of its sessions from the head of every stream,
    whichever files they are in.
    """
    import duckdb

    con = duckdb.connect(config={"threads": max(1, jobs)})
    streams: dict[str, _Stream] = {}
    try:
        for name in TABLE_NAMES:
            how = CLUSTERING[name]
            cursor = con.cursor()
            cursor.register("source", snapshot.dataset(name))
            order = ", ".join([how.key, *how.within])
            columns = ", ".join(f.name for f in SCHEMAS[name])
            reader = cursor.sql(f"SELECT {columns} FROM source ORDER BY {order}").to_arrow_reader(SESSIONS_PER_TASK * 4)
            streams[name] = _Stream(reader, SCHEMAS[name], how.key)
        owners = streams.pop("sessions")
        while True:
            sessions = owners.take_rows(SESSIONS_PER_TASK)
            if sessions.num_rows == 0:
                break
            last = sessions["session_id"][-1].as_py()
            tables = {"sessions": sessions, **{name: stream.take_through(last) for name, stream in streams.items()}}
            yield SessionTables(**tables)
        orphans = {name: stream.take_through(None) for name, stream in streams.items()}
        if any(t.num_rows for t in orphans.values()):
            yield SessionTables(sessions=owners.take_rows(0), **orphans)  # restoring them names the problem
    finally:
        con.close()


class _Stream:
    """A table's rows, sorted by owner key, taken from the head a piece at a time."""

    def __init__(self, reader: Any, schema: Any, key: str) -> None:
        self.reader, self.schema, self.key = reader, schema, key
        self.pending: list[Any] = []
        self.done = False

    def _more(self) -> bool:
        if self.done:
            return False
        try:
            batch = self.reader.read_next_batch()
        except StopIteration:
            self.done = True
            return False
        self.pending.append(batch)
        return True

    def _take(self, rows: int) -> Any:
        import pyarrow as pa

        table = pa.Table.from_batches(self.pending, schema=self.reader.schema)
        head, tail = table.slice(0, rows), table.slice(rows)
        self.pending = tail.to_batches()
        return head.cast(self.schema)

    def take_rows(self, rows: int) -> Any:
        """The next ``rows`` rows (fewer at the end)."""
        while sum(b.num_rows for b in self.pending) < rows and self._more():
            pass
        return self._take(min(rows, sum(b.num_rows for b in self.pending)))

    def take_through(self, last: str | None) -> Any:
        """The rows whose owner key is at most ``last`` (None: all that are left)."""
        import pyarrow.compute as pc

        while True:
            if last is None:
                if not self._more():
                    return self._take(sum(b.num_rows for b in self.pending))
                continue
            if self.pending:
                tail = self.pending[-1]
                if tail.num_rows and tail[self.key][-1].as_py() > last:
                    break
            if not self._more():
                break
        count = sum(int(pc.sum(pc.less_equal(b[self.key], last)).as_py() or 0) for b in self.pending)
        return self._take(count)


def restore(
    dataset: str | os.PathLike[str] | SessionTables,
    dest: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    jobs: int | None = None,
    progress: Progress = None,
    agents: bool = True,
) -> int:
    """Write the sessions of a dataset (a folder, ``s3://bucket/prefix``, or tables) back as
    oxios files, ``dest/sessions/<id>.json``, on all cores; and with ``agents``, its agent-run
    records as ``dest/agents/<id>.json`` (see ``restore_agents``).

    For a dataset exported from oxios files, every file comes back byte for byte. Returns
    the number of files written. An existing file is an error unless ``overwrite``, which
    replaces files (and links, never writing through them) but nothing else.

    Warns (``SessionkitWarning``) when sessions were skipped because their ids cannot be
    file names (a dataset written by an older sessionkit may hold some), and when the dataset
    was exported with privacy settings: its files are then not the original sessions.

    Example:
        >>> import sessionkit as sk
        >>> sk.restore("build/sample-dataset", "build/restored")  # doctest: +SKIP
        300
    """
    folder = Path(dest) / "sessions"
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(dataset, SessionTables):
        with no_gc():
            count, skipped = _restore_tables(dataset, str(folder), overwrite)
        _warn_skipped(skipped)
        return count
    snapshot = open_store(dataset).open()
    _warn_privacy(snapshot, dataset)
    total = snapshot.rows("sessions")
    update, done = resolve_progress(progress, "restore", unit="session", total=total)
    jobs = default_jobs() if jobs is None else max(1, int(jobs))
    tasks = (_RestoreTask(tables, str(folder), overwrite) for tables in _chunks(snapshot, jobs))
    count, skipped = 0, []
    try:
        for written, refused in ordered_map(_restore_part, tasks, min(jobs, -(-total // SESSIONS_PER_TASK) or 1)):
            count += written
            skipped += refused
            if update is not None:
                update(count + len(skipped), total)
    finally:
        done()
    _warn_skipped(skipped)
    if agents:
        restore_agents(snapshot, dest, overwrite=overwrite)
    return count


def restore_agents(
    dataset: str | os.PathLike[str] | Snapshot, dest: str | os.PathLike[str], *, overwrite: bool = False
) -> int:
    """Write the agent-run records of a dataset back as oxios files, ``dest/agents/<id>.json``;
    returns how many. For records exported from oxios files, every file comes back byte for
    byte. A dataset without agent records writes nothing (not even the folder).

    Example:
        >>> import sessionkit as sk
        >>> sk.restore_agents("build/modern-dataset", "build/restored")  # doctest: +SKIP
        1191
    """
    from sessionkit.tables import agent_json

    snapshot = dataset if isinstance(dataset, Snapshot) else open_store(dataset).open()
    if not snapshot.files.get("agents") or snapshot.rows("agents") == 0:
        return 0
    agents, calls = snapshot.read("agents"), snapshot.read("agent_tool_calls")
    folder = Path(dest) / "agents"
    folder.mkdir(parents=True, exist_ok=True)
    count, skipped = 0, []
    for aid, data in agent_json(agents, calls):
        if file_name_problem(aid) is not None:
            skipped.append(aid)
            continue
        _write_file(os.path.join(folder, f"{aid}.json"), data, overwrite)
        count += 1
    if skipped:
        warnings.warn(
            f"{len(skipped)} agent records were not restored: their ids cannot be file names. "
            "Hint: read them from the agents table",
            SessionkitWarning,
            stacklevel=2,
        )
    return count


def _warn_skipped(skipped: list[str]) -> None:
    if not skipped:
        return
    shown = ", ".join(repr(sid if len(sid) <= 40 else sid[:37] + "...") for sid in skipped[:5])
    more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
    warnings.warn(
        f"{len(skipped)} sessions were not restored: their ids cannot be file names (a slash, a backslash, "
        f"'..', a NUL byte, or over {NAME_MAX - len('.json')} bytes): {shown}{more}. "
        "Hint: oxios cannot have written them; read them with sk.read_parquet if you need them",
        SessionkitWarning,
        stacklevel=3,
    )


def _warn_privacy(snapshot: Snapshot, dataset: object) -> None:
    """Warn when the dataset's last export applied privacy settings."""
    runs = snapshot.read("runs") if snapshot.files.get("runs") else None
    if runs is None or runs.num_rows == 0:
        return
    record = runs["privacy"][runs.num_rows - 1].as_py()
    if not record:
        return
    settings = json.loads(record)
    done = [
        what
        for what, on in (
            ("user ids are pseudonyms", settings.get("pseudonymize_users")),
            ("session ids are pseudonyms", settings.get("pseudonymize_sessions")),
            (f"message text was redacted ({settings.get('redact')})", settings.get("redact", "none") != "none"),
            ("strings in metadata and extra were masked", settings.get("mask_extra")),
            (
                "metadata keys were left out",
                settings.get("keep_metadata_keys") is not None or settings.get("drop_metadata_keys"),
            ),
        )
        if on
    ]
    warnings.warn(
        f"{dataset} was exported with privacy settings ({'; '.join(done) or 'see its runs table'}): "
        "the files restored are valid oxios sessions, not the original ones",
        SessionkitWarning,
        stacklevel=3,
    )
