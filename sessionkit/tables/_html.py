"""A ``SessionTables`` as HTML for notebooks (``SessionTables._repr_html_``): its row counts,
time span and top seeds and personas."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from sessionkit._html import STYLE, escape_text
from sessionkit._timestamp import Timestamp
from sessionkit.tables._schemas import LATER_TABLES

if TYPE_CHECKING:
    from sessionkit.tables._session_tables import SessionTables

_TOP = 5


def _top_counts(column: Any, none: str) -> str:
    """The most frequent values of an Arrow column (nulls as ``none``) as 'value (count)' items."""
    counts = pc.value_counts(column.combine_chunks() if hasattr(column, "combine_chunks") else column)
    pairs = [(item["values"], item["counts"]) for item in counts.to_pylist()]
    pairs.sort(key=lambda p: (-p[1], p[0] is None, p[0] or ""))
    items = [
        f"<li>{escape_text(none) if v is None else escape_text(v)} <span class='sk-meta'>({c:,})</span></li>"
        for v, c in pairs[:_TOP]
    ]
    more = f"<div class='sk-meta'>… and {len(pairs) - _TOP} more</div>" if len(pairs) > _TOP else ""
    return f"<ol>{''.join(items)}</ol>{more}"


def tables_html(tables: SessionTables) -> str:
    """Row counts of the tables, the time span of the sessions, and their top seeds and personas (if any)."""
    rows = "".join(
        f"<tr><th>{escape(name)}</th><td style='text-align:right'>{table.num_rows:,}</td></tr>"
        for name, table in tables.items()
        if table.num_rows or name not in LATER_TABLES  # today's oxios only: shown when present
    )
    span = ""
    tops = ""
    sessions = tables.sessions
    if sessions.num_rows:
        first = Timestamp(pc.min(sessions["created_at"].cast(pa.int64())).as_py())
        last = Timestamp(pc.max(sessions["updated_at"].cast(pa.int64())).as_py())
        users = pc.count_distinct(sessions["user_id"]).as_py()
        span = f"<div class='sk-meta'>{users:,} users · from {escape(str(first))} to {escape(str(last))}</div>"
        lists = [
            f"<div><b>top {what}</b> <span class='sk-meta'>(sessions)</span>{_top_counts(sessions[column], none)}</div>"
            for what, column, none in (
                ("seeds", "active_seed_id", "(no seed)"),
                ("personas", "active_persona_id", "(no persona)"),
            )
            if sessions[column].null_count < sessions.num_rows  # oxios 1.9 and later write no seeds: no list
        ]
        tops = f"<div style='display:flex;gap:24px'>{''.join(lists)}</div>" if lists else ""
    return (
        f'{STYLE}<div class="sk-session"><b>SessionTables</b>{span}'
        f'<table class="sk-kv"><tr><th>table</th><th>rows</th></tr>{rows}</table>{tops}</div>'
    )
