"""Reading and writing oxios state directories, byte for byte as oxios does.

oxios keeps each session as ``<state>/sessions/<id>.json``. While it writes, it may leave
``*.tmp`` files; only ``*.json`` names are sessions.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

from sessionkit._progress import Progress
from sessionkit._progress import resolve as resolve_progress
from sessionkit.exceptions import SourceNotFoundError, TargetExistsError
from sessionkit.model import Session, encode_session

__all__ = [
    "file_name_problem",
    "find_sessions_dir",
    "inside",
    "list_session_files",
    "read_session",
    "read_sessions",
    "scan_session_files",
    "session_filename",
    "write_session",
    "write_sessions",
]


def find_sessions_dir(path: str | os.PathLike[str]) -> Path:
    """The folder holding the session files for ``path``.

    ``path`` may be an oxios state directory (holding ``sessions/``) or a ``sessions/``
    directory itself. A single file is its own source (its parent is returned). A state
    directory holding only ``agents/``, or an ``agents/`` folder itself, has no sessions: the
    ``sessions/`` folder returned does not exist.

    Raises:
        SourceNotFoundError: ``path`` does not exist, or is a folder that holds neither a
            ``sessions/`` folder nor any ``*.json`` file.
    """
    path = Path(path)
    if path.is_file():
        return path.parent
    if not path.is_dir():
        msg = f"{path}: no such file or directory. Hint: pass an oxios state directory (the one holding sessions/), a sessions/ directory, or one .json session file"
        raise SourceNotFoundError(msg)
    nested = path / "sessions"
    if nested.is_dir() or (path / "agents").is_dir() or path.name == "agents":
        return nested
    if path.name == "sessions" or any(_is_session_name(e.name) for e in os.scandir(path)):
        return path
    msg = f"{path}: holds no sessions/ folder and no .json files. Hint: pass the oxios state directory (the one holding sessions/)"
    raise SourceNotFoundError(msg)


def _is_session_name(name: str) -> bool:
    return name.endswith(".json")


def inside(target: str, root: str) -> bool:
    """Whether the resolved path ``target`` lies in the folder ``root`` (resolved too) or below it."""
    return os.path.dirname(target) == root or target.startswith(root + os.sep)


def scan_session_files(folder: str | os.PathLike[str]) -> Iterator[tuple[str, os.stat_result | None]]:
    """Each entry of ``folder``, in the order the folder lists them: ``(name, stat)`` for a
    session file, ``(name, None)`` for anything else (which callers count as ignored).

    A session file is a regular file named ``*.json``, or a symlink named so that resolves to
    a regular file inside ``folder``: a link out of the folder could make any file of the
    machine look like a session. Sockets, FIFOs, folders, ``*.tmp`` files, dangling links and
    link loops are not. A file that vanishes while the folder is listed (pruned by oxios) is
    left out. This is the one rule of what a session file is: ``list_session_files``,
    ``read_sessions`` and ``export`` all go by it.
    """
    root = os.path.realpath(folder)
    with os.scandir(folder) as scan:
        for entry in scan:
            if not _is_session_name(entry.name):
                yield entry.name, None
                continue
            try:
                if entry.is_symlink() and not inside(os.path.realpath(entry.path), root):
                    yield entry.name, None
                    continue
                st = entry.stat()
            except FileNotFoundError:  # pruned while we listed (never seen as a file), or a dangling link
                if os.path.islink(entry.path):
                    yield entry.name, None
                continue
            except OSError:  # a link loop (ELOOP), a name too long: nothing that can be read
                yield entry.name, None
                continue
            yield entry.name, st if stat.S_ISREG(st.st_mode) else None


def list_session_files(path: str | os.PathLike[str]) -> list[Path]:
    """The session files under ``path`` (see ``find_sessions_dir``), sorted by name.

    What counts as a session file is ``scan_session_files``' rule: regular ``*.json`` files,
    and links to such files inside the folder; ``*.tmp`` files and folders are left out.
    """
    path = Path(path)
    if path.is_file():
        return [path]
    folder = find_sessions_dir(path)
    if not folder.is_dir():  # a state directory of agent records only
        return []
    return sorted(folder / name for name, st in scan_session_files(folder) if st is not None)


def _read_bytes(file: Path) -> bytes:
    try:
        return file.read_bytes()
    except FileNotFoundError:
        msg = f"{file}: the file disappeared before it could be read (oxios may have pruned it)"
        raise SourceNotFoundError(msg) from None


def read_session(file: str | os.PathLike[str]) -> Session:
    """Read one oxios session file.

    Raises:
        SessionFormatError: the file is not a valid session; the message names the file and
            the JSON path of the problem.
    """
    source = str(file)
    return Session.from_json(_read_bytes(Path(file)), source=source)


def read_sessions(path: str | os.PathLike[str], *, progress: Progress = None) -> list[Session]:
    """Read every session under ``path``: a state directory, a ``sessions/`` folder, or one file.

    ``progress``: a bar (None: in a notebook or on a terminal, for 1,000 files or more; True;
    False) or a callable ``progress(done, total)``. For more sessions than memory holds, use
    ``sessionkit.export`` and read the dataset lazily (``scan_parquet``, ``connect``).

    Example:
        >>> import sessionkit as sk
        >>> sessions = sk.read_sessions("data/oxios-sample")  # doctest: +SKIP
        >>> sessions[0].exchange_count()  # doctest: +SKIP
        7
    """
    files = list_session_files(path)
    update, done = resolve_progress(progress, "read", total=len(files))
    sessions = []
    try:
        for i, file in enumerate(files, 1):
            sessions.append(read_session(file))
            if update is not None and (i % 200 == 0 or i == len(files)):
                update(i, len(files))
    finally:
        done()
    return sessions


_UNSAFE = ("/", "\\", "..", "\x00")
#: The longest file name most file systems take (ext4, XFS, APFS, NTFS: 255 bytes or units).
NAME_MAX = 255


def file_name_problem(session_id: str) -> str | None:
    """Why ``<session_id>.json`` cannot be a session's file name, or None when it can.

    Example:
        >>> file_name_problem("a/b"), file_name_problem("s-1")
        ("it holds a slash, a backslash, '..' or a NUL byte", None)
    """
    if any(part in session_id for part in _UNSAFE):
        return "it holds a slash, a backslash, '..' or a NUL byte"
    size = len(session_id.encode("utf-8", "surrogatepass")) + len(".json")
    if size > NAME_MAX:
        return f"<id>.json would be {size} bytes, over the {NAME_MAX} a file name may have"
    return None


def session_filename(session_id: str) -> str:
    """The file name oxios gives a session, ``<id>.json``.

    Raises:
        ValueError: the id holds ``/``, ``\\``, ``..`` or a NUL byte, which oxios refuses
            because the file would land outside ``sessions/``, or the name would be longer
            than ``NAME_MAX`` bytes, which no file system takes.
    """
    problem = file_name_problem(session_id)
    if problem is not None:
        shown = session_id if len(session_id) <= 80 else session_id[:77] + "..."
        msg = f"session id {shown!r} cannot be a file name ({problem}); oxios cannot write such a session either"
        raise ValueError(msg)
    return f"{session_id}.json"


def write_session(session: Session, folder: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write one session as ``folder/<id>.json``, exactly as oxios writes it."""
    target = Path(folder) / session_filename(session.id)
    data = encode_session(session)
    with open(target, "wb" if overwrite else "xb") as handle:
        handle.write(data)
    return target


def write_sessions(sessions: Iterable[Session], state_dir: str | os.PathLike[str], *, overwrite: bool = False) -> int:
    """Write sessions into an oxios state directory, ``state_dir/sessions/<id>.json``.

    Returns the number of files written. An existing file is an error unless ``overwrite``.
    """
    folder = Path(state_dir) / "sessions"
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    for session in sessions:
        try:
            write_session(session, folder, overwrite=overwrite)
        except FileExistsError:
            msg = f"{folder / session_filename(session.id)} already exists"
            hint = "restore into an empty folder, or pass overwrite=True (--overwrite)"
            raise TargetExistsError(msg, hint=hint) from None
        count += 1
    return count
