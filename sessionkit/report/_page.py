"""The report page: the headline, the table of contents, and a section for each kind of data."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sessionkit._html import STYLE, escape_text, session_html
from sessionkit.report import _blocks as b
from sessionkit.report._cost import cost_and_models
from sessionkit.report._period import NS_PER_DAY, Period, PeriodSource, Since, Until, choose_period, fmt_ns, length_text

if TYPE_CHECKING:
    import duckdb
    import polars as pl

    from sessionkit.query import Data

__all__ = ["CSP", "report_html", "write_report"]

#: Nothing may be fetched or run: images only from data: URLs, styles only inline.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

#: Rows of a ranked table; the rest are in its folded full table.
ROWS = 10


@dataclass
class _Section:
    ident: str
    title: str
    body: str


@dataclass
class _Has:
    """What the period's data holds, which decides the sections."""

    sessions: int = 0
    seeds: int = 0
    personas: int = 0
    phases: list[str | None] = field(default_factory=list)
    phased: int = 0
    responses: int = 0
    evaluations: int = 0
    metadata: int = 0
    exchanges: int = 0


def _has(src: PeriodSource) -> _Has:
    row = src.rows(
        """
        SELECT
            (SELECT count(*) FROM sessions),
            (SELECT count(*) FROM sessions WHERE active_seed_id IS NOT NULL)
                + (SELECT count(*) FROM responses WHERE seed_id IS NOT NULL),
            (SELECT count(*) FROM sessions WHERE active_persona_id IS NOT NULL),
            (SELECT list(DISTINCT phase_reached ORDER BY phase_reached) FROM responses WHERE phase_reached IS NOT NULL),
            (SELECT count(*) FROM responses WHERE phase_reached IS NOT NULL),
            (SELECT count(*) FROM responses),
            (SELECT count(*) FROM responses WHERE evaluation_passed IS NOT NULL),
            (SELECT count(*) FROM metadata),
            (SELECT count(*) FROM exchanges)
        """
    )[0]
    return _Has(row[0], row[1], row[2], list(row[3] or []), *row[4:])


# -- the headline ------------------------------------------------------------------------------------
@dataclass
class _Figures:
    sessions: int
    users: int
    exchanges: int
    passed: int
    failed: int
    p90_s: float | None

    @property
    def pass_rate(self) -> float | None:
        return self.passed / (self.passed + self.failed) if self.passed + self.failed else None


def _figures(src: PeriodSource) -> _Figures:
    from sessionkit.analytics import turn_latency

    row = src.rows(
        """
        SELECT
            (SELECT count(*) FROM sessions),
            (SELECT count(DISTINCT user_id) FROM sessions),
            (SELECT coalesce(sum(exchange_count), 0) FROM sessions)::BIGINT,
            (SELECT count(*) FROM responses WHERE evaluation_passed),
            (SELECT count(*) FROM responses WHERE NOT evaluation_passed)
        """
    )[0]
    return _Figures(*row, p90_s=turn_latency(src)["p90_s"][0])


def _card(metric: str, label: str, now: Any, before: Any, shown: str, delta: tuple[str, str]) -> str:
    text, css = delta
    arrow = {"up": "▲ ", "down": "▼ "}.get(css, "")
    data = f' data-metric="{escape(metric)}" data-now="{escape(str(now))}" data-before="{escape(str(before))}"'
    return (
        f'<div class="card"{data}><div class="v">{escape(shown)}</div><div class="k">{escape(label)}</div>'
        f'<div class="c {css}">{arrow}{escape(text)}</div></div>'
    )


_DIMENSIONS = (
    # (kind, label of a null, SQL of (group, count), what is counted)
    ("seed", "(no seed)", "SELECT active_seed_id, count(*) FROM sessions GROUP BY ALL", "sessions"),
    ("persona", "(no persona)", "SELECT active_persona_id, count(*) FROM sessions GROUP BY ALL", "sessions"),
)


def _movers(now: PeriodSource, before: PeriodSource, has: _Has) -> list[str]:
    """The three groups whose share of their kind moved most between the two periods."""
    moved = []
    for kind, none, sql, unit in _DIMENSIONS:
        if (kind == "seed" and not has.seeds) or (kind == "persona" and not has.personas):
            continue
        counts_now, counts_before = dict(now.rows(sql)), dict(before.rows(sql))
        total_now, total_before = sum(counts_now.values()), sum(counts_before.values())
        if not total_now or not total_before or len(counts_now.keys() | counts_before.keys()) < 2:
            continue
        for group in counts_now.keys() | counts_before.keys():
            n, m = counts_now.get(group, 0), counts_before.get(group, 0)
            share_now, share_before = n / total_now, m / total_before
            moved.append(
                (abs(share_now - share_before), abs(n - m), kind, none, group, unit, n, m, share_now, share_before)
            )
    moved.sort(key=lambda x: (-x[0], -x[1], x[2], x[4] is None, str(x[4])))
    items = []
    for delta, _, kind, none, group, unit, n, m, share_now, share_before in moved[:3]:
        if delta == 0:
            break
        name = none if group is None else str(group)
        points = 100 * (share_now - share_before)
        items.append(
            f'<li data-kind="{kind}" data-group="{escape(name)}"><b>{escape_text(name)}</b> ({kind}): '
            f"{m:,} → {n:,} {unit}, {b.percent(share_before)} → {b.percent(share_now)} of all {unit} "
            f"({b.signed(f'{points:+.0f}')} pts)</li>"
        )
    return items


def _covered(con: duckdb.DuckDBPyConnection, period: Period) -> bool:
    """Whether the data has sessions created before the period, to compare it with."""
    first = con.sql("SELECT min(epoch_ns(created_at)) FROM sessions").fetchall()[0][0]
    return first is not None and first < period.since


def _headline(
    con: duckdb.DuckDBPyConnection, period: Period, now: PeriodSource, before: PeriodSource, has: _Has
) -> str:
    first = con.sql("SELECT min(epoch_ns(created_at)) FROM sessions").fetchall()[0][0]
    previous = period.previous()
    f_now, f_before = _figures(now), _figures(before)
    covered = first is not None and first < period.since
    note = ""
    if not covered:
        note = " The data holds nothing before this period, so there is nothing to compare with."
    elif first > previous.since:
        note = (
            f" The data starts at {fmt_ns(first)}, inside that earlier period: its figures cover "
            f"{length_text(period.since - first)} of {length_text(previous.length)}."
        )
    cards = []

    def add(metric: str, label: str, a: Any, z: Any, shown: str, **kw: Any) -> None:
        delta = b.change(a, z if covered else None, **kw)
        cards.append(_card(metric, label, a, z if covered else "", shown, delta))

    add("sessions", "sessions", f_now.sessions, f_before.sessions, b.count(f_now.sessions))
    add("users", "users", f_now.users, f_before.users, b.count(f_now.users))
    add("exchanges", "exchanges", f_now.exchanges, f_before.exchanges, b.count(f_now.exchanges))
    if has.evaluations or f_before.passed + f_before.failed:
        add(
            "pass_rate",
            "evaluations passed",
            f_now.pass_rate,
            f_before.pass_rate,
            b.percent(f_now.pass_rate, 1),
            points=True,
        )
    if f_now.p90_s is not None:
        add("p90_latency_s", "p90 turn latency", f_now.p90_s, f_before.p90_s, b.seconds(f_now.p90_s), unit=" s")
    movers = _movers(now, before, has) if covered else []
    movers_html = (
        f'<h3>Biggest movers</h3><ol class="movers">{"".join(movers)}</ol>'
        if movers
        else '<p class="note">No movers: there is no earlier period to compare with.</p>'
        if not covered
        else ""
    )
    return (
        '<section class="headline" id="headline">'
        f'<p class="period" data-since="{period.since}" data-until="{period.until}">Sessions created from '
        f"<b>{escape(fmt_ns(period.since))}</b> to <b>{escape(fmt_ns(period.until))}</b> "
        f"({escape(length_text(period.length))}), against the {escape(length_text(previous.length))} before "
        f"({escape(fmt_ns(previous.since))} to {escape(fmt_ns(previous.until))}).{escape(note)}</p>"
        f'<div class="cards">{"".join(cards)}</div>{movers_html}</section>'
    )


# -- sections ----------------------------------------------------------------------------------------
_STEP_NAMES = {"1d": "day", "1w": "week", "1mo": "month"}


def activity_step(days: float) -> str:
    """Days for up to about three months, weeks up to two years, months beyond."""
    return "1d" if days <= 92 else "1w" if days <= 730 else "1mo"


def _activity(con: duckdb.DuckDBPyConnection, period: Period, covered: bool) -> _Section:
    from sessionkit import analytics as a
    from sessionkit import plot as p
    from sessionkit.analytics._common import partial_periods, span

    shown = Period(period.previous().since, period.until) if covered else period
    every = activity_step(shown.length / NS_PER_DAY)
    unit = _STEP_NAMES[every]
    frame = a.activity(PeriodSource(con, shown), every=every)
    first, last = span(con)
    if first is not None and last is not None:  # partial: cut by the window or by the data's ends
        frame = frame.with_columns(
            partial_periods(frame["period"], unit, max(shown.since, first), min(shown.until - 1, last))
        )

    def draw(ax: Any) -> None:
        top = p.plot_activity(frame, ax=ax)
        if covered:
            start, end = (datetime.fromtimestamp(ns / 1e9, UTC) for ns in (shown.since, period.since))
            for panel in top.figure.axes:
                panel.axvspan(start, end, color="#000000", alpha=0.05, linewidth=0)

    img = b.svg(draw, (11.0, 4.2))
    caption = f"Activity per {unit} (UTC) of the sessions created in the period"
    if covered:
        caption += f", and in the {length_text(period.length)} before it (shaded)"
    caption += "; a hollow mark is a period the data or the report's period covers only in part."
    return _Section("activity", "Activity", f'<div class="grid">{b.figure(img, caption, wide=True)}</div>')


def _latency_columns() -> list[b.Column]:
    return [
        b.col("turns", "count"),
        b.col("p50", "p50_s", b.seconds),
        b.col("p90", "p90_s", b.seconds),
        b.col("p99", "p99_s", b.seconds),
        b.col("max", "max_s", b.seconds),
    ]


def _conversations(src: PeriodSource, has: _Has) -> _Section:
    from sessionkit import analytics as a
    from sessionkit import plot as p

    histogram = a.exchange_histogram(src)
    latency = a.turn_latency(src)
    by = "phase" if len(has.phases) > 1 else None
    figures = [
        b.figure(b.svg(lambda ax: p.plot_exchange_histogram(histogram, ax=ax)), "Exchanges per session."),
        b.figure(
            b.svg(lambda ax: p.plot_turn_latency(src, by=by, ax=ax)),
            "Turn latency: the share of turns answered within x seconds" + (", per phase." if by else "."),
        ),
    ]
    columns = [*_latency_columns(), b.col("stamped backwards", "negative"), b.col("unanswered", "missing")]
    notes = []
    if len(has.phases) == 1:
        notes.append(
            f"Every response that records a phase is at <b>{escape_text(has.phases[0])}</b> "
            f"({has.phased:,} of {has.responses:,} responses), so the phase funnel is left out."
        )
    if not has.evaluations and has.responses:
        notes.append("No response in this period was evaluated, so there are no pass rates.")
    body = (
        f'<div class="grid">{"".join(figures)}</div><h3>Turn latency</h3>'
        f"{b.table(latency.to_dicts(), columns, ident='latency')}" + "".join(f'<p class="note">{n}</p>' for n in notes)
    )
    return _Section("conversations", "Conversations", body)


def _group_frame(src: PeriodSource, by: str, usage: pl.DataFrame, key: str, has: _Has) -> pl.DataFrame:
    """``usage`` joined with the pass rates and turn latency of each group."""
    from sessionkit import analytics as a

    frame = usage
    if has.evaluations:
        rates = a.evaluation_rates(src, by=by).rename({"responses": "rated_responses"})
        frame = frame.join(rates, on=key, how="left", nulls_equal=True)
    latency = a.turn_latency(src, by=by).select(key, "count", "p50_s", "p90_s", "p99_s", "max_s")
    return frame.join(latency, on=key, how="left", nulls_equal=True)


def _rankings(
    frame: pl.DataFrame,
    *,
    kind: str,
    plural: str,
    key: str,
    none: str,
    volume: list[tuple[str, str]],
    has: _Has,
) -> str:
    """The ranked tables of one kind of group: most used, worst pass rate, slowest p90; and all of them."""
    import polars as pl

    name = b.group_col(kind, key, none)
    first = volume[0][1]
    usage_cols = [name, *(b.col(h, k) for h, k in volume)]
    blocks = [
        b.ranked(
            frame.sort([first, key], descending=[True, False], nulls_last=True),
            usage_cols,
            title="Most used",
            noun=plural,
            order=f"most {volume[0][0]} first",
            limit=ROWS,
            ident=f"{kind}-most-used",
        )
    ]
    rate_col = b.Column(
        "pass rate (95% interval)", lambda r: b.rate(r["pass_rate"], r["pass_rate_low"], r["pass_rate_high"])
    )
    if has.evaluations:
        rated = frame.filter((pl.col("passed") + pl.col("failed")) > 0).with_columns(
            evaluated=pl.col("passed") + pl.col("failed")
        )
        blocks.append(
            b.ranked(
                rated.sort(["pass_rate_high", "pass_rate", "evaluated", key], descending=[False, False, True, False]),
                [name, b.col("evaluated", "evaluated"), rate_col],
                title="Worst pass rate",
                noun=f"{plural} with evaluations",
                order="the surely worst first: by the upper end of the 95% interval of the pass rate, lowest first",
                limit=ROWS,
                ident=f"{kind}-worst",
            )
        )
    timed = frame.filter(pl.col("count") > 0)
    blocks.append(
        b.ranked(
            timed.sort(["p90_s", "count", key], descending=[True, True, False], nulls_last=True),
            [name, b.col("turns", "count"), b.col("p50", "p50_s", b.seconds), b.col("p90", "p90_s", b.seconds)],
            title="Slowest",
            noun=f"{plural} with answered turns",
            order="by p90 turn latency, slowest first",
            limit=ROWS,
            ident=f"{kind}-slowest",
        )
    )
    all_cols = [*usage_cols]
    if has.evaluations:
        all_cols += [b.col("passed", "passed"), b.col("failed", "failed"), b.col("not evaluated", "unknown"), rate_col]
    all_cols += _latency_columns()
    everything = _full(
        frame.sort([first, key], descending=[True, False], nulls_last=True), all_cols, plural, volume, kind
    )
    return f'<div class="tables">{"".join(blocks)}</div>{everything}'


def _full(frame: pl.DataFrame, columns: list[b.Column], plural: str, volume: list[tuple[str, str]], kind: str) -> str:
    return b.full(frame, columns, noun=plural, order=f"most {volume[0][0]} first", ident=f"{kind}-all")


def _seeds(src: PeriodSource, has: _Has, top: int) -> _Section:
    from sessionkit import analytics as a
    from sessionkit import plot as p

    usage = a.seed_usage(src)
    frame = _group_frame(src, "seed", usage, "seed_id", has)
    figures = [b.figure(b.svg(lambda ax: p.plot_seed_usage(usage, top=top, ax=ax)), "Sessions per active seed.")]
    if has.evaluations:
        figures.append(
            b.figure(
                b.svg(lambda ax: p.plot_evaluation_rates(src, by="seed", top=top, ax=ax), (7.0, 5.5)),
                "Pass rate of the most evaluated seeds, with 95% Wilson intervals.",
            )
        )
    tables = _rankings(
        frame,
        kind="seed",
        plural="seeds",
        key="seed_id",
        none="(no seed)",
        volume=[("sessions", "sessions"), ("responses", "responses"), ("users", "users")],
        has=has,
    )
    note = (
        '<p class="note">Sessions and users count the sessions whose active seed it is; responses, pass rates '
        "and latency count the responses that ran under it.</p>"
    )
    return _Section("seeds", "Seeds", f'<div class="grid">{"".join(figures)}</div>{note}{tables}')


def _personas(src: PeriodSource, has: _Has, top: int) -> _Section:
    from sessionkit import analytics as a
    from sessionkit import plot as p

    usage = a.persona_usage(src)
    frame = _group_frame(src, "persona", usage, "persona_id", has)
    figures = [b.figure(b.svg(lambda ax: p.plot_persona_usage(usage, top=top, ax=ax)), "Sessions per active persona.")]
    if has.evaluations:
        figures.append(
            b.figure(
                b.svg(lambda ax: p.plot_evaluation_rates(src, by="persona", top=top, ax=ax)),
                "Pass rate per persona, with 95% Wilson intervals.",
            )
        )
    tables = _rankings(
        frame,
        kind="persona",
        plural="personas",
        key="persona_id",
        none="(no persona)",
        volume=[("sessions", "sessions"), ("users", "users"), ("exchanges", "exchanges")],
        has=has,
    )
    return _Section("personas", "Personas", f'<div class="grid">{"".join(figures)}</div>{tables}')


def _phases(src: PeriodSource, has: _Has) -> _Section:
    from sessionkit import analytics as a
    from sessionkit import plot as p

    funnel = a.phase_funnel(src)
    frame = _group_frame(src, "phase", funnel, "phase", has)
    figures = [
        b.figure(b.svg(lambda ax: p.plot_phase_funnel(funnel, ax=ax)), "Sessions by the furthest phase reached.")
    ]
    if has.evaluations:
        figures.append(
            b.figure(
                b.svg(lambda ax: p.plot_evaluation_rates(src, by="phase", ax=ax)),
                "Pass rate per phase, with 95% Wilson intervals.",
            )
        )
    columns = [
        b.group_col("phase", "phase", "(no phase)"),
        b.col("responses", "responses"),
        b.col("reached (responses)", "responses_reached"),
        b.col("sessions (furthest)", "sessions"),
        b.col("reached (sessions)", "sessions_reached"),
    ]
    if has.evaluations:
        columns.append(
            b.Column(
                "pass rate (95% interval)", lambda r: b.rate(r["pass_rate"], r["pass_rate_low"], r["pass_rate_high"])
            )
        )
    columns += [b.col("p50", "p50_s", b.seconds), b.col("p90", "p90_s", b.seconds)]
    body = (
        f'<div class="grid">{"".join(figures)}</div><p class="note">All phases, in the order oxios goes through '
        f"them; a phase is reached by a response at it or a later one.</p>{b.table(frame.to_dicts(), columns, ident='phases')}"
    )
    return _Section("phases", "Phases", body)


def _evaluations(src: PeriodSource, period: Period) -> _Section:
    from sessionkit import plot as p

    by = "day" if period.length <= 14 * NS_PER_DAY else "week"  # a handful of points at least, not noise
    img = b.svg(lambda ax: p.plot_evaluation_rates(src, by=by, ax=ax), (11.0, 3.6))
    return _Section(
        "evaluations",
        "Evaluations over time",
        f'<div class="grid">{b.figure(img, f"Pass rate per {by} (UTC) with 95% Wilson intervals.", wide=True)}</div>',
    )


def _users(src: PeriodSource, has: _Has) -> _Section:
    from sessionkit import analytics as a

    frame = a.user_summary(src)
    columns = [
        b.group_col("user", "user_id", "(none)"),
        b.col("sessions", "sessions"),
        b.col("exchanges", "exchanges"),
        b.col("messages", "messages"),
        b.Column("first seen", lambda r: b.stamp(r["first_seen"]), numeric=False),
        b.Column("last seen", lambda r: b.stamp(r["last_seen"]), numeric=False),
    ]
    if has.seeds:
        columns.append(b.group_col("favourite seed", "favourite_seed", "—"))
    if has.personas:
        columns.append(b.group_col("favourite persona", "favourite_persona", "—"))
    body = (
        '<div class="tables">'
        + b.ranked(
            frame, columns, title="Most active", noun="users", order="most sessions first", limit=ROWS, ident="users"
        )
        + "</div>"
        + b.full(frame, columns, noun="users", order="most sessions first", ident="users-all")
    )
    return _Section("users", "Users", body)


def _metadata(src: PeriodSource) -> _Section:
    from sessionkit import analytics as a

    frame = a.metadata_keys(src)
    columns = [
        b.group_col("key", "key", '""'),
        b.col("sessions", "sessions"),
        b.col("share", "share", lambda v: b.percent(v, 1)),
        b.Column("JSON types", lambda r: ", ".join(r["types"]), numeric=False),
        b.Column("first created", lambda r: b.stamp(r["first_created"]), numeric=False),
        b.Column("last created", lambda r: b.stamp(r["last_created"]), numeric=False),
    ]
    body = (
        '<p class="note">The metadata keys sessions carry, the JSON types seen for each, and when they were '
        "first and last seen: the drift report of an open-ended field.</p>"
        + b.ranked(
            frame,
            columns,
            title="Most common keys",
            noun="keys",
            order="most sessions first",
            limit=ROWS,
            ident="metadata",
        )
        + b.full(frame, columns, noun="keys", order="most sessions first", ident="metadata-all")
    )
    return _Section("metadata", "Metadata", body)


def _samples(src: PeriodSource, count: int, chosen: Sequence[str] | None) -> list[str]:
    """Session ids to show: ``chosen``, or ``count`` spread over the range of conversation length."""
    if chosen is not None:
        return list(chosen)
    if count <= 0:
        return []
    ids = [
        r[0]
        for r in src.rows(
            "SELECT session_id FROM sessions WHERE exchange_count > 0 ORDER BY exchange_count, session_id"
        )
    ]
    if len(ids) <= count:
        return ids
    if count == 1:
        return [ids[len(ids) // 2]]
    picks = [round(i * (len(ids) - 1) / (count - 1)) for i in range(count)]
    return [ids[i] for i in dict.fromkeys(picks)]


def _transcripts(con: duckdb.DuckDBPyConnection, ids: list[str]) -> _Section:
    from sessionkit.analytics._census import get_session

    items = []
    for sid in ids:
        s = get_session(con, sid)
        facts = [f"{s.exchange_count():,} exchanges", f"user {s.user_id}", f"created {fmt_ns(s.created_at.ns)}"]
        if s.active_seed_id is not None:
            facts.append(f"seed {s.active_seed_id}")
        summary = f"Session {escape_text(s.id)} <span class='note'>· {escape_text(' · '.join(facts))}</span>"
        items.append(f'<details class="sample"><summary>{summary}</summary>{session_html(s, style=False)}</details>')
    body = (
        '<p class="note">Open a session to read it; long conversations show their first exchanges, then “show all”.</p>'
        + "".join(items)
        if items
        else '<p class="note">no sessions with exchanges</p>'
    )
    return _Section("transcripts", "Sample transcripts", body)


# -- the page ----------------------------------------------------------------------------------------
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
    from sessionkit.analytics._common import connection

    name = title or "sessionkit report"
    source = str(data) if isinstance(data, str | os.PathLike) else type(data).__name__
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    with connection(data, own_sql=True) as con:
        period = choose_period(con, since, until)
        if period is None:
            headline = (
                '<section class="headline" id="headline"><p class="period">No sessions in this dataset.</p></section>'
            )
            sections = [_transcripts(con, list(sessions or []))]
        else:
            now = PeriodSource(con, period)
            before = PeriodSource(con, period.previous())
            has = _has(now)
            headline = _headline(con, period, now, before, has)
            sections = [_activity(con, period, covered=_covered(con, period))]
            if has.sessions:
                sections.append(_conversations(now, has))
                if has.seeds:
                    sections.append(_seeds(now, has, top))
                if has.personas:
                    sections.append(_personas(now, has, top))
                if len(has.phases) > 1:
                    sections.append(_phases(now, has))
                if has.evaluations:
                    sections.append(_evaluations(now, period))
                sections.extend(cost_and_models(now, period))  # agent runs: only when the data has them
                sections.append(_users(now, has))
                if has.metadata:
                    sections.append(_metadata(now))
            chosen = _samples(now, samples, sessions)
            sections.append(_transcripts(con, chosen))
    toc = "".join(f'<li><a href="#{s.ident}">{escape(s.title)}</a></li>' for s in sections)
    parts = [
        f"<h1>{escape_text(name)}</h1>",
        f'<p class="note">source {escape_text(source)} · generated {escape(generated)} by sessionkit</p>',
        headline,
        f'<nav class="toc"><b>Contents</b><ol>{toc}</ol></nav>',
        *(f'<section id="{s.ident}"><h2>{escape(s.title)}</h2>{s.body}</section>' for s in sections),
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
