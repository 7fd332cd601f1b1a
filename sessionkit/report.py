"""One self-contained HTML page about a dataset, meant to be mailed around.

The page holds the totals, the charts (SVG, embedded as ``data:`` images), the tables of the
helpers, the metadata census and a few sample transcripts. It loads nothing from anywhere:
no script at all, no external CSS, fonts or images, and a Content-Security-Policy that
forbids them, so it opens the same offline, in a mail client or in a browser.
"""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sessionkit._html import STYLE, escape_text, session_html

if TYPE_CHECKING:
    import polars as pl
    from matplotlib.axes import Axes

    from sessionkit.query import Data

__all__ = ["report_html", "write_report"]

#: Nothing may be fetched or run: images only from data: URLs, styles only inline.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

_PAGE_STYLE = """<style>
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;max-width:1180px;
  padding:0 16px;color:#222;line-height:1.45}
h1{font-size:24px;margin-bottom:4px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd}
h3{font-size:15px;margin-bottom:4px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(540px,1fr));gap:16px}
figure{margin:0}figure img{width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:12px;color:#555}
table.t{border-collapse:collapse;font-size:12px;margin:6px 0}
table.t th,table.t td{border:1px solid #ddd;padding:2px 8px;vertical-align:top}
table.t th{background:#f6f6f6;text-align:left}
table.t td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.t td.d{white-space:nowrap}
td .sk-text,td{unicode-bidi:isolate;overflow-wrap:anywhere}
.note{color:#555;font-size:12px}
.null{color:#999}
.totals td{font-size:14px}
</style>"""


def _svg(draw: Callable[[Axes], Any], size: tuple[float, float] = (7.0, 4.2)) -> str:
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


def _cell(value: object) -> str:
    import datetime as dt

    if value is None:
        return '<td class="null">null</td>'
    if isinstance(value, bool):
        return f"<td>{'true' if value else 'false'}</td>"
    if isinstance(value, int):
        return f'<td class="n">{value:,}</td>'
    if isinstance(value, float):
        return (
            f'<td class="n">{value:,.4g}</td>'
            if abs(value) >= 1e-3 or value == 0
            else f'<td class="n">{value:.3g}</td>'
        )
    if isinstance(value, dt.datetime | dt.date):
        return f'<td class="d">{escape(value.isoformat())}</td>'
    if isinstance(value, list):
        return f"<td>{escape_text(', '.join(str(v) for v in value))}</td>"
    return f"<td>{escape_text(str(value))}</td>"


def _table(frame: pl.DataFrame, *, limit: int = 50, cls: str = "t") -> str:
    """A polars frame as an HTML table, every cell escaped; at most ``limit`` rows, with a note."""
    head = "".join(f"<th>{escape_text(name)}</th>" for name in frame.columns)
    rows = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in frame.head(limit).iter_rows())
    more = ""
    if frame.height > limit:
        more = f'<p class="note">the first {limit} of {frame.height:,} rows</p>'
    return f'<table class="{cls}"><tr>{head}</tr>{rows}</table>{more}'


def _stamps_as_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Timestamps as RFC 3339 text with their nanoseconds (Python datetimes would lose them)."""
    import polars as pl

    stamps = [name for name, kind in frame.schema.items() if isinstance(kind, pl.Datetime)]
    if not stamps:
        return frame
    return frame.with_columns(pl.col(stamps).dt.strftime("%Y-%m-%dT%H:%M:%S%.9fZ"))


def _samples(con: Any, count: int, chosen: Sequence[str] | None) -> list[str]:
    """Session ids to show: ``chosen``, or ``count`` spread over the range of conversation length."""
    if chosen is not None:
        return list(chosen)
    if count <= 0:
        return []
    ids = [
        r[0]
        for r in con.sql(
            "SELECT session_id FROM sessions WHERE exchange_count > 0 ORDER BY exchange_count, session_id"
        ).fetchall()
    ]
    if len(ids) <= count:
        return ids
    if count == 1:
        return [ids[len(ids) // 2]]
    picks = [round(i * (len(ids) - 1) / (count - 1)) for i in range(count)]
    return [ids[i] for i in dict.fromkeys(picks)]


def report_html(
    data: Data,
    *,
    title: str | None = None,
    samples: int = 3,
    sessions: Sequence[str] | None = None,
    top: int = 15,
) -> str:
    """The report of ``data`` as the text of one self-contained HTML page.

    ``samples`` transcripts are shown, spread from short to long conversations, unless
    ``sessions`` names the ids to show. Charts keep the ``top`` largest seeds and personas.

    Example:
        >>> import sessionkit as sk
        >>> from sessionkit.report import report_html
        >>> page = report_html("build/sample-dataset", samples=2)  # doctest: +SKIP
    """
    from sessionkit import analytics as a
    from sessionkit import plot as p
    from sessionkit.analytics._census import get_session
    from sessionkit.analytics._common import connection

    with connection(data, own_sql=True) as con:
        totals = a.stats(con)
        histogram = a.exchange_histogram(con)
        seeds = a.seed_usage(con)
        personas = a.persona_usage(con)
        funnel = a.phase_funnel(con)
        by_seed = a.evaluation_rates(con, by="seed")
        by_phase = a.evaluation_rates(con, by="phase")
        latency = a.turn_latency(con)
        latency_phase = a.turn_latency(con, by="phase")
        every = _activity_step(con)
        active = a.activity(con, every=every)
        users = a.user_summary(con)
        census = a.metadata_keys(con)
        picked = [get_session(con, sid) for sid in _samples(con, samples, sessions)]
        charts = [
            (_svg(lambda ax: p.plot_activity(active, ax=ax)), f"Activity per {_STEP_NAMES[every]} (UTC)."),
            (_svg(lambda ax: p.plot_exchange_histogram(histogram, ax=ax)), "Exchanges per session."),
            (_svg(lambda ax: p.plot_seed_usage(seeds, top=top, ax=ax)), "Sessions per active seed."),
            (_svg(lambda ax: p.plot_persona_usage(personas, top=top, ax=ax)), "Sessions per active persona."),
            (_svg(lambda ax: p.plot_phase_funnel(funnel, ax=ax)), "Sessions by the furthest phase reached."),
            (
                _svg(lambda ax: p.plot_evaluation_rates(by_seed, top=top, ax=ax), (7.0, 5.5)),
                "Pass rate per seed with 95% Wilson intervals.",
            ),
            (_svg(lambda ax: p.plot_evaluation_rates(by_phase, ax=ax)), "Pass rate per phase."),
            (_svg(lambda ax: p.plot_turn_latency(con, ax=ax)), "Turn latency, cumulative."),
        ]
    row = totals.row(0, named=True)
    name = title or "sessionkit report"
    source = str(data) if isinstance(data, str | os.PathLike) else type(data).__name__
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    totals_html = _table(_stamps_as_text(totals), cls="t totals")
    figures = "".join(f"<figure>{img}<figcaption>{escape(caption)}</figcaption></figure>" for img, caption in charts)
    transcripts = "".join(f"<h3>Session {escape_text(s.id)}</h3>{session_html(s, style=False)}" for s in picked)
    sections = [
        f"<h1>{escape_text(name)}</h1>",
        f'<p class="note">{row["sessions"]:,} sessions of {row["users"]:,} users · source '
        f"{escape_text(source)} · generated {escape(generated)} by sessionkit</p>",
        f"<h2>Totals</h2>{totals_html}",
        f'<h2>Charts</h2><div class="grid">{figures}</div>',
        f"<h2>Seeds</h2>{_table(seeds, limit=top)}",
        f"<h2>Personas</h2>{_table(personas, limit=top)}",
        f"<h2>Phases</h2>{_table(funnel)}",
        f"<h2>Evaluations by phase</h2>{_table(by_phase)}",
        f"<h2>Evaluations by seed</h2>{_table(by_seed, limit=top)}",
        f"<h2>Turn latency</h2>{_table(latency)}{_table(latency_phase)}",
        f"<h2>Conversation length</h2>{_table(histogram)}",
        f"<h2>Users</h2>{_table(_stamps_as_text(users), limit=top)}",
        "<h2>Metadata census</h2><p class='note'>Sessions carrying each metadata key, the JSON types seen for"
        f" it, and when it was first and last seen.</p>{_table(_stamps_as_text(census), limit=100)}",
        f"<h2>Sample transcripts</h2>{transcripts or '<p class=note>no sessions with exchanges</p>'}",
    ]
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>{escape_text(name)}</title>{_PAGE_STYLE}{STYLE}</head><body>"
        + "\n".join(sections)
        + "</body></html>\n"
    )


_STEP_NAMES = {"1d": "day", "1w": "week", "1mo": "month"}


def _activity_step(con: Any) -> str:
    """Days for up to about three months of data, weeks up to two years, months beyond."""
    first, last = con.sql("SELECT min(epoch_ns(created_at)), max(epoch_ns(created_at)) FROM sessions").fetchall()[0]
    if first is None:
        return "1d"
    days = (last - first) / 86_400e9
    return "1d" if days <= 92 else "1w" if days <= 730 else "1mo"


def write_report(
    data: Data,
    out: str | os.PathLike[str],
    *,
    title: str | None = None,
    samples: int = 3,
    sessions: Sequence[str] | None = None,
    top: int = 15,
) -> Path:
    """Write the report of ``data`` to ``out`` as one self-contained HTML file; returns its path.

    See ``report_html`` for the options.

    Example:
        >>> import sessionkit as sk
        >>> sk.write_report("build/sample-dataset", "build/report.html")  # doctest: +SKIP
    """
    page = report_html(data, title=title, samples=samples, sessions=sessions, top=top)
    path = Path(out)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True)
    path.write_text(page, encoding="utf-8")
    return path
