"""The archive: incremental, atomic export of oxios session files into a dataset, and restore.

``export(SRC, OUT)`` is an upsert that loses nothing. Files unchanged since the last run are
recognised by their size, mtime, ctime and inode without being read. The others are read on
all cores: the sorted list is cut into parts, and each worker decodes its part and writes it
straight to its own Parquet file per table, in bounded row groups, so memory does not grow
with the number of sessions and the output does not depend on the number of workers. The
newest ``updated_at`` of a session wins (on a tie, the content read now); sessions whose
files oxios pruned are kept. A file that is not a session is copied, bytes unchanged, to
``OUT/quarantine/`` with a row in the ``errors`` table. The new version of the dataset is
staged beside the current one and published with one atomic rename (see ``storage``); on
``s3://bucket/prefix``, by a manifest created last with a conditional write (see ``_s3``).

Every file seen lands in exactly one bucket: ``exported``, ``unchanged``, ``quarantined``,
``vanished`` (deleted between listing and reading) or ``ignored`` (not a ``*.json`` session
file). A file whose session is older than the version the dataset already holds counts as
``unchanged``; of several files holding the same session id, all but the newest are
quarantined as duplicates.
"""

from sessionkit.archive._compact import CompactSummary, compact
from sessionkit.archive._export import export

# ``x as x``: the pool machinery, not documented; importable still for code that took it from
# ``__all__`` before it was cut to the documented names; free to change.
from sessionkit.archive._pool import WorkerPool as WorkerPool
from sessionkit.archive._pool import default_jobs as default_jobs
from sessionkit.archive._pool import ordered_map as ordered_map
from sessionkit.archive._restore import restore, restore_agents
from sessionkit.archive._state import errors, runs
from sessionkit.archive._summary import ExportSummary
from sessionkit.exceptions import ExportError

__all__ = [
    "CompactSummary",
    "ExportError",
    "ExportSummary",
    "compact",
    "errors",
    "export",
    "restore",
    "restore_agents",
    "runs",
]
