"""Listing a source folder: its session files with their stat, and what it ignores."""

from __future__ import annotations

import os
from array import array
from pathlib import Path

import pyarrow as pa

from sessionkit.oxios import find_sessions_dir, scan_session_files
from sessionkit.privacy import Privacy, pseudonym


# -- listing the source ----------------------------------------------------------------------------
class Listing:
    """The session files of a source, sorted by name, with their stat, and the ignored count.

    Kept compact (names, and the numbers in typed arrays) since a source may hold millions.
    """

    def __init__(self, folder: str = "") -> None:
        self.folder = folder
        self.names: list[str] = []
        self.size = array("q")
        self.mtime_ns = array("q")
        self.ctime_ns = array("q")
        self.inode = array("q")
        self.ignored = 0

    def __len__(self) -> int:
        return len(self.names)

    def _numbers(self) -> tuple[array, array, array, array]:
        return self.size, self.mtime_ns, self.ctime_ns, self.inode

    @property
    def paths(self) -> list[str]:
        """The files' paths."""
        prefix = os.path.join(self.folder, "")  # what os.path.join puts before each name, once
        return [prefix + name for name in self.names]

    def table(self, privacy: Privacy | None = None) -> pa.Table:
        """The files as a table: ``path`` as the archive records it, ``real`` as it is on disk."""
        paths = self.paths
        stored = paths if privacy is None else [stored_path(p, privacy) for p in paths]
        import numpy as np

        return pa.table(
            {
                "path": pa.array(stored, pa.string()),
                "real": pa.array(paths, pa.string()),
                "size": pa.array(np.frombuffer(self.size, dtype=np.int64)),
                "mtime_ns": pa.array(np.frombuffer(self.mtime_ns, dtype=np.int64)),
                "ctime_ns": pa.array(np.frombuffer(self.ctime_ns, dtype=np.int64)),
                "inode": pa.array(np.frombuffer(self.inode, dtype=np.int64)),
            }
        )


def list_source(source: str | os.PathLike[str]) -> Listing:
    """The ``*.json`` regular files of a source, sorted; everything else there is counted as ignored.

    A symlink counts as a session file only when it resolves to a regular file inside the
    source folder; sockets, FIFOs, folders, ``*.tmp`` files, dangling links, link loops and
    the like are ignored. (A file named alone is taken where its links lead.)
    """
    path = Path(source)
    if path.is_file():
        if path.is_symlink():
            path = Path(os.path.realpath(path))
        listing = Listing(str(path.parent))
        st = path.stat()
        listing.names.append(path.name)
        for column, value in zip(
            listing._numbers(), (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino), strict=True
        ):
            column.append(value)
        return listing
    return list_folder(find_sessions_dir(path))


def list_folder(folder: Path) -> Listing:
    """The session files of one folder, sorted, with their stat (``oxios.scan_session_files``
    says which); a folder that does not exist (a state directory without ``sessions/``) lists nothing."""
    listing = Listing(str(folder))
    if not folder.is_dir():
        return listing
    names, size, mtime, ctime, inode = listing.names, array("q"), array("q"), array("q"), array("q")
    for name, st in scan_session_files(folder):
        if st is None:
            listing.ignored += 1
            continue
        names.append(name)
        size.append(st.st_size)
        mtime.append(st.st_mtime_ns)
        ctime.append(st.st_ctime_ns)
        inode.append(st.st_ino)
    order = sorted(range(len(names)), key=names.__getitem__)
    listing.names = [names[i] for i in order]
    for target, values in zip(listing._numbers(), (size, mtime, ctime, inode), strict=True):
        target.extend(values[i] for i in order)
    return listing


def stored_path(path: str, privacy: Privacy | None) -> str:
    """How the archive records a source path: as it is; under privacy settings, the file name
    alone (folders may name a person: ``/home/alice/...``), replaced by its keyed pseudonym when
    session ids are pseudonymised (file names are session ids)."""
    if privacy is None or privacy.is_noop:
        return path
    name = os.path.basename(path)
    if not privacy.pseudonymize_sessions or privacy.key is None:
        return name
    stem = name[: -len(".json")] if name.endswith(".json") else name
    return pseudonym(stem, key=privacy.key, kind="session") + ".json"
