"""The version a run publishes, the same for export and compaction, on disk and on S3: per
table, the previous version's files it keeps as they are and its new files; and the commit
step on disk (the one on S3 is ``_s3export.publish``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sessionkit._layout import DataFile, Layout, files_record
from sessionkit._versions import VERSION_MANIFEST, link_or_copy, publish, write_manifest
from sessionkit.archive._state import _INDEX, Previous
from sessionkit.storage import ALL_TABLES


@dataclass
class NextVersion:
    """The next version of a dataset while a run builds it.

    Attributes:
        previous: the version it follows (None for a new dataset).
        staging: the local folder holding its new files, at their keys.
        layout: the layout it records (None: a dataset of the 0.1 layout, which records none).
        kept: per table, files of ``previous`` it keeps as they are.
        new: per table, its new files (in ``staging``).
        index_changed: False when it keeps the previous version's file index.
        info: what its manifest records besides the layout and the files (run id, counts, ...).
    """

    previous: Previous | None
    staging: Path
    layout: Layout | None
    kept: dict[str, list[DataFile]] = field(default_factory=dict)
    new: dict[str, list[DataFile]] = field(default_factory=dict)
    index_changed: bool = True
    info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def keeping_all(cls, previous: Previous, staging: Path, layout: Layout | None) -> NextVersion:
        """A version that starts as a copy of ``previous`` (as compaction does)."""
        kept = {name: list(previous.files.get(name, [])) for name in ALL_TABLES}
        return cls(previous, staging, layout, kept, {name: [] for name in ALL_TABLES}, index_changed=False)

    def files(self) -> dict[str, list[DataFile]]:
        """Every table's files in this version."""
        return {name: self.kept.get(name, []) + self.new.get(name, []) for name in ALL_TABLES}

    def replace(self, table: str, removed: list[DataFile], added: list[DataFile]) -> None:
        """Take ``removed`` out of the table (kept files, or new ones, deleted from staging) and
        add ``added`` (new files in staging)."""
        gone = {f.key for f in removed}
        for file in self.new.get(table, []):
            if file.key in gone:
                (self.staging / file.key).unlink(missing_ok=True)
        self.kept[table] = [f for f in self.kept.get(table, []) if f.key not in gone]
        self.new[table] = [f for f in self.new.get(table, []) if f.key not in gone] + list(added)

    def changed(self, name: str) -> bool:
        """True when this version's files of a table are not the previous version's."""
        before = self.previous.files.get(name, []) if self.previous is not None else []
        return bool(self.new.get(name)) or len(self.kept.get(name, [])) != len(before)

    def manifest(self) -> dict[str, Any]:
        """What its manifest records besides format and versions."""
        info = dict(self.info)
        if self.layout is not None:
            info["layout"] = self.layout.record()
        return {**info, **files_record(self.files())}

    def reuse(self) -> dict[str, Path]:
        """On disk: the previous version's folders of the tables left as they were (and of the
        file index, when it is kept)."""
        if self.previous is None or self.previous.folder is None:
            return {}
        folders = {name: self.previous.folder / name for name in ALL_TABLES if not self.changed(name)}
        if not self.index_changed and self.previous.index is not None:
            index = Path(self.previous.index)
            if index.parent.name == Path(_INDEX).parent.name:
                folders[index.parent.name] = self.previous.folder / index.parent.name
            else:  # an index of a 0.1 version, beside its tables: this version's own copy
                keep = self.staging / _INDEX
                keep.parent.mkdir(parents=True, exist_ok=True)
                link_or_copy(index, keep)
        return folders

    def keep(self) -> dict[str, list[tuple[Path, str]]]:
        """On disk: per table changed, the previous version's files it keeps (path, relative path)."""
        if self.previous is None:
            return {}
        return {
            name: [(Path(self.previous.path(f.key)), f.relative) for f in self.kept.get(name, [])]
            for name in ALL_TABLES
            if self.changed(name)
        }


def commit_local(out: Path, next_version: NextVersion) -> Path:
    """Publish ``next_version`` as the current version of the dataset on disk at ``out``."""
    write_manifest(next_version.staging, next_version.manifest(), name=VERSION_MANIFEST)
    return publish(out, next_version.staging, reuse=next_version.reuse(), keep=next_version.keep())
