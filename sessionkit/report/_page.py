"""The report page: the headline, the table of contents, and a section for each kind of data."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

from sessionkit._html import STYLE, escape_text
from sessionkit.report import _blocks as b
from sessionkit.report import _sections as s
from sessionkit.report._common import has
from sessionkit.report._cost import cost_and_models
from sessionkit.report._headline import covered, headline
from sessionkit.report._period import PeriodSource, Since, Until, choose_period

if TYPE_CHECKING:
    from sessionkit.query import Data

__all__ = ["CSP", "report_html", "write_report"]

#: Nothing may be fetched or run: images only from data: URLs, styles only inline.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


def report_html(
    data: Data,
    *,
    title: str | None = None,
    since: Since = None,
    until: Until = None,
    samples: int = 3,
    sessions: Sequence[str] | None = None,
    top: int = 15,
) -> str:
    """The report of ``data`` as the text of one self-contained HTML page.

    The report covers the sessions created from ``since`` up to (not including) ``until``, and
    compares them with the period of the same length before. ``until`` defaults to just after
    the data's last activity; ``since`` to 28 days before ``until``. Each takes a date
    (midnight UTC), a date-time (naive means UTC) or its text; ``since`` also a length back from
    ``until`` (``"7d"``, ``"4w"``, ``"12h"`` or a ``timedelta``) or ``"all"``.

    ``samples`` transcripts are shown, spread from short to long conversations, unless
    ``sessions`` names the ids to show. Charts keep the ``top`` largest seeds and personas.

    Raises:
        ValueError: a bound the report does not understand, or ``since`` after ``until``.
        KeyError: a session of ``sessions`` is not in the data.

    Example:
        >>> import sessionkit as sk
        >>> from sessionkit.report import report_html
        >>> page = report_html("build/sample-dataset", since="all", samples=2)  # doctest: +SKIP
    """
    from sessionkit.query import connection

    name = title or "sessionkit report"
    source = str(data) if isinstance(data, str | os.PathLike) else type(data).__name__
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    with connection(data, read_only=False) as con:
        period = choose_period(con, since, until)
        if period is None:
            top_block = (
                '<section class="headline" id="headline"><p class="period">No sessions in this dataset.</p></section>'
            )
            sections = [s.transcripts(con, list(sessions or []))]
        else:
            now = PeriodSource(con, period)
            before = PeriodSource(con, period.previous())
            holds = has(now)
            top_block = headline(con, period, now, before, holds)
            sections = [s.activity(con, period, covered=covered(con, period))]
            if holds.sessions:
                sections.append(s.conversations(now, holds))
                if holds.seeds:
                    sections.append(s.seeds(now, holds, top))
                if holds.personas:
                    sections.append(s.personas(now, holds, top))
                if len(holds.phases) > 1:
                    sections.append(s.phases(now, holds))
                if holds.evaluations:
                    sections.append(s.evaluations(now, period))
                if holds.tool_calls:
                    sections.append(s.tools(now, holds, top))
                if holds.projects:
                    sections.append(s.projects(now, top))
                if holds.threads:
                    sections.append(s.threads(now))
                sections.extend(cost_and_models(now, period))  # agent runs: only when the data has them
                sections.append(s.users(now, holds))
                if holds.metadata:
                    sections.append(s.metadata(now))
            sections.append(s.transcripts(con, s.samples(now, samples, sessions)))
    toc = "".join(f'<li><a href="#{x.ident}">{escape(x.title)}</a></li>' for x in sections)
    parts = [
        f"<h1>{escape_text(name)}</h1>",
        f'<p class="note">source {escape_text(source)} · generated {escape(generated)} by sessionkit</p>',
        top_block,
        f'<nav class="toc"><b>Contents</b><ol>{toc}</ol></nav>',
        *(f'<section id="{x.ident}"><h2>{escape(x.title)}</h2>{x.body}</section>' for x in sections),
    ]
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>{escape_text(name)}</title>{b.PAGE_STYLE}{STYLE}</head><body>" + "\n".join(parts) + "</body></html>\n"
    )


def write_report(
    data: Data,
    out: str | os.PathLike[str],
    *,
    title: str | None = None,
    since: Since = None,
    until: Until = None,
    samples: int = 3,
    sessions: Sequence[str] | None = None,
    top: int = 15,
) -> Path:
    """Write the report of ``data`` to ``out`` as one self-contained HTML file; returns its path.

    See ``report_html`` for the options.

    Example:
        >>> import sessionkit as sk
        >>> sk.write_report("build/sample-dataset", "build/report.html", since="all")  # doctest: +SKIP
    """
    page = report_html(data, title=title, since=since, until=until, samples=samples, sessions=sessions, top=top)
    path = Path(out)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True)
    path.write_text(page, encoding="utf-8")
    return path
