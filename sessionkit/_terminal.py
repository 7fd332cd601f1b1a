"""Rows for people at a terminal: one line per row, fitted to the width, and nothing that acts.

``render`` draws an Arrow table as aligned columns: one line per row, long text cut with "…",
columns left out in the middle when they do not all fit (the footer says which), the first and
last rows when there are too many. Numbers, booleans and times are never cut, so a timestamp
keeps its nine digits and a count is never shortened: such a column is shown whole or not at
all (unless it alone is wider than the terminal). ``markdown`` gives every value whole, as a
GitHub-flavoured Markdown table.

Both show text through ``visible``: control characters (escape sequences included), bidi
overrides and isolates, other invisible format characters and line separators become visible
escapes such as ``\\n`` and ``\\u202e``, so data and file names cannot move the cursor, recolour
or retitle the terminal, or reorder what is shown (Trojan Source). ``json_visible`` writes
the same characters in JSON text as ``\\uXXXX`` escapes, which parse back to the very same
values; CSV does not come through here and stays byte-exact.
"""

from __future__ import annotations

import math
import unicodedata
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["display_width", "json_visible", "markdown", "printable", "render", "visible"]

ELLIPSIS = "…"
_GAP = "  "
#: Text columns no wider than this (ids, names, phases) are shown whole or left out, never cut.
SHORT = 40
#: A wider text column is cut to no fewer characters than this before columns are left out.
TEXT_FLOOR = 24
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_HIDDEN = frozenset(("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"))


def _hidden(ch: str) -> bool:
    """True for characters that act without being seen; the zero-width joiner of emoji is harmless."""
    return unicodedata.category(ch) in _HIDDEN and ch != "\u200d"


def visible(text: str) -> str:
    r"""``text`` with controls, bidi and other invisible characters as visible escapes.

    Example:
        >>> print(visible("red \x1b[31m!\n\u202eevil"))
        red \u001b[31m!\n\u202eevil
    """
    if text.isprintable():  # no control, format or separator character: the common case
        return text
    out = []
    for ch in text:
        if not _hidden(ch):
            out.append(ch)
        elif ch in _NAMED:
            out.append(_NAMED[ch])
        else:
            code = ord(ch)
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
    return "".join(out)


def json_visible(text: str) -> str:
    r"""JSON text with the characters ``visible`` escapes written as ``\uXXXX`` escapes: the same
    values once parsed, but nothing in it acts on a terminal. Such characters can only stand
    inside JSON strings, where an escape means the very same character.

    Example:
        >>> print(json_visible('["\u202eevil"]'))
        ["\u202eevil"]
    """
    if text.isprintable():  # no control, format or separator character: the common case
        return text
    out = []
    for ch in text:
        if ch == "\n" or not _hidden(ch):  # a newline outside strings is JSON whitespace
            out.append(ch)
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            high, low = divmod(ord(ch) - 0x10000, 0x400)
            out.append(f"\\u{0xD800 + high:04x}\\u{0xDC00 + low:04x}")
    return "".join(out)


def _char_width(ch: str) -> int:
    if unicodedata.combining(ch) or ch == "\u200d":
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def display_width(text: str) -> int:
    """The number of terminal cells ``text`` takes (wide East Asian characters and emoji take two).

    Example:
        >>> display_width("한국어"), display_width("abc")
        (6, 3)
    """
    if text.isascii():
        return len(text)
    return sum(_char_width(ch) for ch in text)


def _cut(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells, ending in "…" when it was cut."""
    if display_width(text) <= width:
        return text
    out, used = [], 0
    for ch in text:
        w = _char_width(ch)
        if used + w > width - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + ELLIPSIS


def _pad(text: str, width: int, right: bool) -> str:
    space = " " * (width - display_width(text))
    return space + text if right else text + space


def _cell(value: Any, *, thousands: bool) -> str:
    """One value as terminal text: null, true/false, numbers as Python writes them, the rest escaped."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value:,}" if thousands else str(value)
    if isinstance(value, float | str):
        return visible(str(value))
    if isinstance(value, bytes):
        return visible(repr(value))
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return visible(str(value))


def printable(table: pa.Table) -> pa.Table:
    """Timestamps as RFC 3339 text with all their digits; nested values as compact JSON text.

    The values every output format prints: a Python ``datetime`` would drop the nanoseconds.
    Times with a zone are written in UTC, whatever zone the column is labelled with.
    """
    import pyarrow as pa

    from sessionkit._timestamp import time_texts
    from sessionkit.model import encode_compact

    columns = []
    for column in table.columns:
        kind = column.type
        if pa.types.is_timestamp(kind):
            # DuckDB labels TIMESTAMPTZ results with the session's time zone (the machine's);
            # the instant is the same in UTC, which is what the "Z" says (none without a zone).
            column = time_texts(column, fraction="all")
        elif pa.types.is_nested(kind):
            column = pa.array([None if v is None else encode_compact(v) for v in column.to_pylist()], pa.string())
        columns.append(column)
    return pa.table(columns, names=table.column_names)


def _fixed(kind: pa.DataType) -> bool:
    """Columns of this type are never cut: numbers, booleans, dates and times."""
    import pyarrow as pa

    return (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_decimal(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_temporal(kind)
    )


def _numeric(kind: pa.DataType) -> bool:
    import pyarrow as pa

    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)


def _shown_rows(num_rows: int, max_rows: int | None) -> tuple[list[int], int]:
    """The row numbers to show (the first half and the last half), and where the gap is."""
    if max_rows is None or num_rows <= max_rows:
        return list(range(num_rows)), -1
    head = math.ceil(max_rows / 2)
    tail = max_rows - head
    return [*range(head), *range(num_rows - tail, num_rows)], head


def _columns_that_fit(floors: list[int], max_width: int) -> list[int]:
    """The columns to keep, taken from both ends in turn (the first one always), so that their
    narrowest widths, the gaps and the "…" column of the ones left out fit in ``max_width``."""
    n = len(floors)
    if sum(floors) + len(_GAP) * (n - 1) <= max_width:
        return list(range(n))
    order = [i for pair in zip(range(n), reversed(range(n)), strict=True) for i in pair][:n]
    order = list(dict.fromkeys(order))
    kept: list[int] = []
    used = 1 + len(_GAP)  # the "…" column and its gap
    for i in order:
        cost = floors[i] + len(_GAP)
        if kept and used + cost > max_width:
            break
        kept.append(i)
        used += cost
    return sorted(kept)


def _widths(naturals: list[int], floors: list[int], room: int) -> list[int]:
    """Widths from the floors, widening the cut columns one cell at a time, in turn, into ``room``."""
    widths = list(floors)
    spare = room - sum(widths)
    while spare > 0:
        growing = [i for i, w in enumerate(widths) if w < naturals[i]]
        if not growing:
            break
        for i in growing:
            if spare == 0:
                break
            widths[i] += 1
            spare -= 1
    return widths


def render(
    table: pa.Table,
    *,
    max_width: int | None = 80,
    max_rows: int | None = 40,
    thousands: bool = False,
    counts: bool = True,
    hint: str = "",
) -> str:
    """``table`` as aligned text lines, fitted to ``max_width`` cells (None: no limit).

    At most ``max_rows`` rows are shown (None: all), the first and the last ones. Below them a
    line counts the rows (unless ``counts`` is false and all are shown), another names the
    columns left out, and ``hint`` follows when anything was cut or left out. ``thousands``
    writes integers with thousands separators.

    Example:
        >>> import pyarrow as pa
        >>> print(render(pa.table({"id": ["a-1", "b-22"], "n": [3, 1200]}), thousands=True))
        id        n
        ────  ─────
        a-1       3
        b-22  1,200
        2 rows
    """
    rows, gap_at = _shown_rows(table.num_rows, max_rows)
    subset = printable(table.take(rows) if len(rows) < table.num_rows else table)
    names = [visible(name) for name in table.column_names]
    kinds = [field.type for field in table.schema]
    cells = [[_cell(v, thousands=thousands) for v in column.to_pylist()] for column in subset.columns]
    naturals = [max([display_width(names[i]), *(display_width(c) for c in cells[i])]) for i in range(len(names))]
    floors = [n if _fixed(kinds[i]) or n <= SHORT else TEXT_FLOOR for i, n in enumerate(naturals)]
    keep = list(range(len(names))) if max_width is None else _columns_that_fit(floors, max_width)
    left_out = [i for i in range(len(names)) if i not in keep]
    if max_width is None:
        widths = [naturals[i] for i in keep]
    else:
        room = max_width - len(_GAP) * (len(keep) - 1) - (1 + len(_GAP) if left_out else 0)
        widths = _widths([naturals[i] for i in keep], [floors[i] for i in keep], room)
        if sum(widths) > room:  # one column wider than the terminal: cut it, fixed or not
            widths = [max(1, room)]
    cut = any(widths[j] < naturals[i] for j, i in enumerate(keep))
    elision = max(i for i in keep if i < left_out[0]) if left_out else -1  # the "…" column follows it

    def line(values: list[str], fill: str | None = None) -> str:
        parts = []
        for j, i in enumerate(keep):
            right = _numeric(kinds[i])
            parts.append(_pad(_cut(values[i], widths[j]), widths[j], right))
            if i == elision:
                parts.append(fill or ELLIPSIS)
        return _GAP.join(parts).rstrip()

    lines = [line(names), line(["─" * widths[keep.index(i)] if i in keep else "" for i in range(len(names))], " ")]
    for r in range(len(rows)):
        if r == gap_at:
            lines.append(line([ELLIPSIS] * len(names)))
        lines.append(line([cells[i][r] for i in range(len(names))]))
    count = f"{table.num_rows:,} row{'' if table.num_rows == 1 else 's'}"
    if len(rows) < table.num_rows:
        count += f" ({len(rows)} shown: the first {gap_at} and the last {len(rows) - gap_at})"
    footer = [count] if counts or len(rows) < table.num_rows else []
    if left_out:
        missing = ", ".join(names[i] for i in left_out)
        footer.append(f"{len(left_out)} of {len(names)} columns not shown: {missing}")
    if hint and (cut or left_out or len(rows) < table.num_rows):
        footer.append(hint)
    width = max_width if max_width is not None else max(map(display_width, footer), default=0)
    lines.extend(_cut(text, width) for text in footer)
    return "\n".join(lines)


def markdown(table: pa.Table, *, thousands: bool = False) -> str:
    """``table`` as a GitHub-flavoured Markdown table of whole values: ``|`` escaped, controls
    visible (a newline as ``\\n``), numbers right-aligned; Markdown in the values is kept.

    Example:
        >>> import pyarrow as pa
        >>> print(markdown(pa.table({"id": ["a|b"], "n": [3]})))
        | id | n |
        | --- | ---: |
        | a\\|b | 3 |
    """

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    kinds = [field.type for field in table.schema]
    head = "| " + " | ".join(cell(visible(name)) for name in table.column_names) + " |"
    rule = "| " + " | ".join("---:" if _numeric(k) else "---" for k in kinds) + " |"
    columns = [[cell(_cell(v, thousands=thousands)) for v in column.to_pylist()] for column in printable(table).columns]
    body = ["| " + " | ".join(values) + " |" for values in zip(*columns, strict=True)]
    return "\n".join([head, rule, *body])
