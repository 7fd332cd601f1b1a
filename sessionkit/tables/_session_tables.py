"""``SessionTables``: the tables of a set of sessions."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from sessionkit.exceptions import DatasetError
from sessionkit.model import Session
from sessionkit.tables._html import tables_html
from sessionkit.tables._rows import iter_sessions
from sessionkit.tables._schemas import LATER_TABLES, SCHEMAS, TABLE_NAMES, empty_table


@dataclass(frozen=True, repr=False)
class SessionTables:
    """The tables of a set of sessions, each a ``pyarrow.Table`` with its declared schema.

    Attributes:
        sessions: one row per session.
        messages: one row per user message (``session_id``, ``seq``).
        responses: one row per agent response (``session_id``, ``seq``).
        metadata: one row per metadata key (``session_id``, ``ord``).
        tool_calls: one row per tool call, oxios' trajectory steps (``session_id``, ``step``);
            empty when not given.
        reasoning: one row per reasoning record (``session_id``, ``ord``); empty when not given.

    Example:
        >>> import sessionkit as sk
        >>> tables = sk.to_tables([sk.Session.with_id("user-1", "s-1")])
        >>> tables.sessions.num_rows, tables.messages.num_rows
        (1, 0)
    """

    sessions: pa.Table
    messages: pa.Table
    responses: pa.Table
    metadata: pa.Table
    tool_calls: pa.Table | None = None
    reasoning: pa.Table | None = None

    def __post_init__(self) -> None:
        for name in LATER_TABLES:
            if getattr(self, name) is None:
                object.__setattr__(self, name, empty_table(SCHEMAS[name]))
        for name in TABLE_NAMES:
            table = getattr(self, name)
            if not isinstance(table, pa.Table):
                msg = f"SessionTables.{name} must be a pyarrow.Table, got {type(table).__name__}"
                raise TypeError(msg)
            missing = [f.name for f in SCHEMAS[name] if f.name not in table.schema.names]
            if missing:
                msg = f"the {name} table lacks the columns {missing}. Hint: build tables with sk.to_tables or read them with sk.read_parquet"
                raise DatasetError(msg)

    def __getitem__(self, name: str) -> pa.Table:
        if name not in TABLE_NAMES:
            msg = f"no table {name!r}; the tables are {', '.join(TABLE_NAMES)}"
            raise KeyError(msg)
        return getattr(self, name)

    def items(self) -> Iterator[tuple[str, pa.Table]]:
        """(name, table) pairs in the order ``sessions, messages, responses, metadata, tool_calls, reasoning``."""
        return ((name, getattr(self, name)) for name in TABLE_NAMES)

    def __len__(self) -> int:
        return self.sessions.num_rows

    def __repr__(self) -> str:
        counts = ", ".join(
            f"{name}={table.num_rows}"
            for name, table in self.items()
            if table.num_rows or name not in LATER_TABLES  # today's oxios only: shown when present
        )
        return f"SessionTables({counts})"

    def _repr_html_(self) -> str:
        return tables_html(self)

    def to_sessions(self) -> list[Session]:
        """The sessions these tables hold, in the order of the ``sessions`` table."""
        return list(iter_sessions(self))

    def session(self, session_id: str) -> Session:
        """The one session with this id, e.g. to read its transcript in a notebook.

        Raises:
            KeyError: no session has this id.
        """
        picked = SessionTables(*(table.filter(pc.equal(table["session_id"], session_id)) for _, table in self.items()))
        found = picked.to_sessions()
        if not found:
            msg = f"no session with id {session_id!r} among {len(self)} sessions"
            raise KeyError(msg)
        return found[0]

    def thread(self, session_id: str) -> list[Session]:
        """The sessions of the thread ``session_id`` belongs to (see ``thread_roots``): its root,
        when these tables hold it, and every session continuing it, directly or not, in order of
        creation (then id).

        Raises:
            KeyError: no session has this id.
        """
        s = self.sessions
        ids = s["session_id"].to_pylist()
        if session_id not in set(ids):
            msg = f"no session with id {session_id!r} among {len(self)} sessions"
            raise KeyError(msg)
        roots = [root for root, _ in thread_roots(ids, s["parent_session_id"].to_pylist())]
        mine = roots[ids.index(session_id)]
        members = sorted({sid for sid, root in zip(ids, roots, strict=True) if root == mine})
        picked = SessionTables(
            *(t.filter(pc.is_in(t["session_id"], pa.array(members, pa.string()))) for _, t in self.items())
        )
        return sorted(picked.to_sessions(), key=lambda x: (x.created_at.ns, x.id))

    if not TYPE_CHECKING:  # at run time only: type checkers keep refusing unknown attributes

        def __getattr__(self, name: str) -> Any:
            if name in _MOVED:  # the tables do not reach up to the layers that write and query them
                msg = f"SessionTables.{name} is gone: call {_MOVED[name]}"
                raise AttributeError(msg)
            msg = f"{type(self).__name__!r} object has no attribute {name!r}"
            raise AttributeError(msg)


#: The shorthands SessionTables had, and what does their work.
_MOVED = {
    "write_parquet": "sk.write_parquet(tables, out) (sessionkit.storage)",
    "connect": "sk.connect(tables) (sessionkit.query)",
}


def thread_roots(ids: list[str], parents: list[str | None]) -> list[tuple[str, int]]:
    """For each session, (root, depth) of its thread through ``parent_session_id``.

    The root is the last ancestor reached: the first session of the thread, or the id of a
    parent not among ``ids`` (pruned by oxios), which then roots its children's thread. The
    depth counts the levels below the root within ``ids`` (a pruned root's children are at 0).
    A chain of parents that loops (not something oxios writes) is rooted at the smallest id of
    the loop, the same for every session in it.
    """
    parent = dict(zip(ids, parents, strict=True))
    found = []
    for sid in ids:
        chain, at = [sid], sid
        while (up := parent.get(at)) is not None and up not in chain:
            at = up
            chain.append(at)
        if up is not None:  # a loop
            chain.append(min(chain[chain.index(up) :]))
        root = chain[-1]
        found.append((root, len(chain) - 1 - (root not in parent)))
    return found
