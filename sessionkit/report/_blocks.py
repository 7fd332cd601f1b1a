"""The pieces of the report page: its style, charts as embedded SVG, tables, ranked tables.

Every piece of content is escaped with ``sessionkit._html.escape_text``; the only markup is
the page's own.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING, Any

from sessionkit._html import escape_text
from sessionkit.report._period import datetime_ns, fmt_ns

if TYPE_CHECKING:
    import polars as pl
    from matplotlib.axes import Axes

PAGE_STYLE = """<style>
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:20px auto;max-width:1180px;
  padding:0 16px;color:#222;line-height:1.4}
h1{font-size:24px;margin:0 0 2px}h2{font-size:18px;margin:26px 0 8px;border-bottom:1px solid #ddd}
h3{font-size:14px;margin:10px 0 2px}
a{color:#2b5797}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(540px,1fr));gap:12px}
.tables{display:grid;grid-template-columns:repeat(auto-fit,minmax(360px,1fr));gap:4px 20px;align-items:start}
figure{margin:0}figure img{width:100%;height:auto;border:1px solid #eee}
figure.wide{grid-column:1/-1}
figcaption{font-size:12px;color:#555}
table.t{border-collapse:collapse;font-size:12px;margin:4px 0}
table.t th,table.t td{border:1px solid #ddd;padding:1px 7px;vertical-align:top}
table.t th{background:#f6f6f6;text-align:left;font-weight:600}
table.t td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.t td.d{white-space:nowrap;font-variant-numeric:tabular-nums}
td .sk-text,td{unicode-bidi:isolate;overflow-wrap:anywhere}
.note{color:#555;font-size:12px;margin:2px 0}
.null{color:#999}
details.full{margin:4px 0 8px}details.full>summary{font-size:12px;color:#2b5797;cursor:pointer}
.headline{border:1px solid #ddd;border-radius:6px;padding:10px 14px;background:#fbfbfb;margin-top:10px}
.headline .period{margin:0 0 8px;font-size:14px}
.cards{display:flex;flex-wrap:wrap;gap:8px}
.card{border:1px solid #e2e2e2;border-radius:5px;background:#fff;padding:6px 12px;min-width:128px}
.card .v{font-size:22px;font-weight:600;font-variant-numeric:tabular-nums}
.card .k{font-size:12px;color:#555}
.card .c{font-size:12px;font-variant-numeric:tabular-nums;color:#333}
.card .c.good{color:#1d6b2f}.card .c.bad{color:#a3262c}
ol.movers{margin:4px 0 0;padding-left:22px;font-size:13px}
nav.toc{margin:12px 0 0;font-size:13px}
nav.toc ol{display:flex;flex-wrap:wrap;gap:2px 18px;margin:4px 0 0;padding-left:0;list-style-position:inside}
details.sample{margin:6px 0;border:1px solid #e6e6e6;border-radius:5px;padding:4px 10px}
details.sample>summary{cursor:pointer;font-size:13px}
</style>"""


def svg(draw: Callable[[Axes], Any], size: tuple[float, float] = (7.0, 4.2)) -> str:
    """Draw on a fresh figure (no pyplot, so no GUI backend) and return an ``<img>`` of its SVG."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    ax = fig.add_subplot()
    draw(ax)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    title = " ".join(ax.get_title().split())  # one line, however the chart wrapped it
    return f'<img alt="{escape(title)}" src="data:image/svg+xml;base64,{data}">'


def figure(img: str, caption: str, *, wide: bool = False) -> str:
    """A chart with its caption; ``wide`` spans the whole grid row."""
    css = ' class="wide"' if wide else ""
    return f"<figure{css}>{img}<figcaption>{escape(caption)}</figcaption></figure>"


# -- cells -------------------------------------------------------------------------------------------
#: Typography: an en dash between the ends of a range, a minus sign before a negative change.
EN_DASH, MINUS = "\u2013", "\u2212"


def signed(text: str) -> str:
    """``text`` with its hyphen-minus signs as minus signs."""
    return text.replace("-", MINUS)


def count(value: int | None) -> str:
    """An integer with thousands separators."""
    return "—" if value is None else f"{int(value):,}"


def percent(value: float | None, digits: int = 0) -> str:
    """A fraction as a percentage."""
    return "—" if value is None or math.isnan(value) else f"{100 * value:.{digits}f}%"


def rate(value: float | None, low: float | None, high: float | None) -> str:
    """A rate with its 95% interval: ``49% (35 to 63%)``, the two ends joined by an en dash."""
    if value is None:
        return "—"
    return f"{100 * value:.0f}% ({100 * (low or 0):.0f}{EN_DASH}{100 * (high or 0):.0f}%)"


def seconds(value: float | None) -> str:
    """Seconds, with a precision that suits their size."""
    if value is None:
        return "—"
    if abs(value) >= 100:
        return f"{value:,.0f} s"
    return f"{value:.1f} s" if abs(value) >= 1 else f"{value:.2f} s"


def stamp(value: Any) -> str:
    """A timestamp (a ``datetime``; one without a zone is UTC) to the second, in UTC:
    ``2026-10-28 10:47:42Z`` (the data keeps the nanoseconds)."""
    return "—" if value is None else fmt_ns(datetime_ns(value))


@dataclass(frozen=True)
class Column:
    """A column of a report table: its heading, how to show a row's value, and how to align it."""

    heading: str
    show: Callable[[dict[str, Any]], str]
    numeric: bool = True


def col(heading: str, key: str, fmt: Callable[[Any], str] = count, *, numeric: bool = True) -> Column:
    """A column showing ``fmt(row[key])``."""
    return Column(heading, lambda row: fmt(row[key]), numeric)


def group_col(heading: str, key: str, none: str) -> Column:
    """The column naming a row's group; null shows as ``none``."""
    return Column(heading, lambda row: none if row[key] is None else str(row[key]), numeric=False)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[Column], *, ident: str | None = None) -> str:
    """Rows as an HTML table, every cell escaped."""
    head = "".join(f"<th>{escape(c.heading)}</th>" for c in columns)
    body = []
    for row in rows:
        cells = []
        for c in columns:
            text = c.show(row)
            css = ' class="n"' if c.numeric else ""
            if text == "—" or (not c.numeric and text.startswith("(no ")):
                css = ' class="null"' if not c.numeric else ' class="n null"'
            cells.append(f"<td{css}>{escape_text(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    ident_attr = f' id="{escape(ident)}"' if ident else ""
    return f'<table class="t"{ident_attr}><tr>{head}</tr>{"".join(body)}</table>'


def ranked(
    frame: pl.DataFrame,
    columns: Sequence[Column],
    *,
    title: str,
    noun: str,
    order: str,
    limit: int,
    ident: str,
    total: int | None = None,
) -> str:
    """The first ``limit`` rows of ``frame`` (already sorted), saying which they are of how many."""
    rows = frame.head(limit).to_dicts()
    total = frame.height if total is None else total
    shown = f"all {total:,} {noun}" if len(rows) >= total else f"{len(rows):,} of {total:,} {noun}"
    return (
        f'<div><h3>{escape(title)}</h3><p class="note">{escape(shown)}, {escape(order)}.</p>'
        f"{table(rows, columns, ident=ident)}</div>"
    )


def full(frame: pl.DataFrame, columns: Sequence[Column], *, noun: str, order: str, ident: str) -> str:
    """Every row, folded: a ``<details>`` to open for the whole table."""
    return (
        f'<details class="full"><summary>All {frame.height:,} {escape(noun)} (full table, {escape(order)})'
        f"</summary>{table(frame.to_dicts(), columns, ident=ident)}</details>"
    )


def change(now: float | None, before: float | None, *, points: bool = False, unit: str = "") -> tuple[str, str]:
    """How ``now`` compares with ``before``: its text and a CSS class (``up``, ``down`` or none)."""
    if now is None or before is None:
        return "—", ""
    if points:
        delta = 100 * (now - before)
        return (f"{delta:+.1f} pts", "up" if delta > 0 else "down" if delta < 0 else "")
    if before == 0:
        return ("new" if now else "no change"), ("up" if now else "")
    delta = now - before
    relative = 100 * delta / before
    if isinstance(now, int) and isinstance(before, int):
        text = f"{relative:+.0f}% ({delta:+,})"
    else:
        text = f"{relative:+.0f}% ({delta:+,.1f}{unit})"
    return signed(text), ("up" if delta > 0 else "down" if delta < 0 else "")
