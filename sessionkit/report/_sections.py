"""The report's sections, one per kind of data: charts, ranked tables, transcripts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sessionkit._html import escape_text
from sessionkit._periods import NS_PER_DAY
from sessionkit.model import session_html
from sessionkit.report import _blocks as b
from sessionkit.report._common import ROWS, SHORT, Has, Section
from sessionkit.report._period import Period, PeriodSource, fmt_ns, length_text

if TYPE_CHECKING:
    import duckdb
    import polars as pl


_STEP_NAMES = {"1d": "day", "1w": "week", "1mo": "month"}


def activity_step(days: float) -> str:
    """Days for up to about three months, weeks up to two years, months beyond."""
    return "1d" if days <= 92 else "1w" if days <= 730 else "1mo"


def activity(con: duckdb.DuckDBPyConnection, period: Period, covered: bool) -> Section:
    from sessionkit import analytics as a
    from sessionkit import plot as p
    from sessionkit._periods import SPAN_SQL, partial_periods

    shown = Period(period.previous().since, period.until) if covered else period
    every = activity_step(shown.length / NS_PER_DAY)
    unit = _STEP_NAMES[every]
    frame = a.activity(PeriodSource(con, shown), every=every)
    first, last = a.run_sql(con, SPAN_SQL).row(0)
    if first is not None and last is not None:  # partial: cut by the window or by the data's ends
        frame = frame.with_columns(
            partial_periods(frame["period"], unit, max(shown.since, first), min(shown.until - 1, last))
        )

    def draw(ax: Any) -> None:
        top = p.plot_activity(frame, ax=ax)
        if covered:
            start, end = (datetime.fromtimestamp(ns / 1e9, UTC) for ns in (shown.since, period.since))
            for panel in top.figure.axes:
                panel.axvspan(start, end, color="#000000", alpha=0.05, linewidth=0)  # type: ignore[arg-type]

    img = b.svg(draw, (11.0, 3.6))
    caption = f"Activity per {unit} (UTC) of the sessions created in the period"
    if covered:
        caption += f", and in the {length_text(period.length)} before it (shaded)"
    caption += "; a hollow mark is a period the data or the report's period covers only in part."
    return Section("activity", "Activity", f'<div class="grid">{b.figure(img, caption, wide=True)}</div>')


def _latency_columns() -> list[b.Column]:
    return [
        b.col("turns", "count"),
        b.col("p50", "p50_s", b.seconds),
        b.col("p90", "p90_s", b.seconds),
        b.col("p99", "p99_s", b.seconds),
        b.col("max", "max_s", b.seconds),
    ]


def conversations(src: PeriodSource, has: Has) -> Section:
    from sessionkit import analytics as a
    from sessionkit import plot as p

    histogram = a.exchange_histogram(src)
    latency = a.turn_latency(src)
    by = "phase" if len(has.phases) > 1 else None
    figures = [
        b.figure(b.svg(lambda ax: p.plot_exchange_histogram(histogram, ax=ax), (7.0, 3.8)), "Exchanges per session."),
        b.figure(
            b.svg(lambda ax: p.plot_turn_latency(src, by=by, ax=ax), (7.0, 3.8)),
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
    return Section("conversations", "Conversations", body)


def _group_frame(src: PeriodSource, by: str, usage: pl.DataFrame, key: str, has: Has) -> pl.DataFrame:
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
    has: Has,
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
                rated.sort(
                    ["pass_rate_high", "pass_rate", "evaluated", key],
                    descending=[False, False, True, False],
                    nulls_last=True,
                ),
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


def seeds(src: PeriodSource, has: Has, top: int) -> Section:
    from sessionkit import analytics as a
    from sessionkit import plot as p

    usage = a.seed_usage(src)
    frame = _group_frame(src, "seed", usage, "seed_id", has)
    figures = [b.figure(b.svg(lambda ax: p.plot_seed_usage(usage, top=top, ax=ax)), "Sessions per active seed.")]
    if has.evaluations:
        figures.append(
            b.figure(
                b.svg(lambda ax: p.plot_evaluation_rates(src, by="seed", top=top, ax=ax)),
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
    return Section("seeds", "Seeds", f'<div class="grid">{"".join(figures)}</div>{note}{tables}')


def personas(src: PeriodSource, has: Has, top: int) -> Section:
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
    return Section("personas", "Personas", f'<div class="grid">{"".join(figures)}</div>{tables}')


def phases(src: PeriodSource, has: Has) -> Section:
    from sessionkit import analytics as a
    from sessionkit import plot as p

    funnel = a.phase_funnel(src)
    frame = _group_frame(src, "phase", funnel, "phase", has)
    figures = [
        b.figure(
            b.svg(lambda ax: p.plot_phase_funnel(funnel, ax=ax), (7.0, 3.2)), "Sessions by the furthest phase reached."
        )
    ]
    if has.evaluations:
        figures.append(
            b.figure(
                b.svg(lambda ax: p.plot_evaluation_rates(src, by="phase", ax=ax), (7.0, 3.2)),
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
    return Section("phases", "Phases", body)


def evaluations(src: PeriodSource, period: Period) -> Section:
    from sessionkit import plot as p

    by = "day" if period.length <= 14 * NS_PER_DAY else "week"  # a handful of points at least, not noise
    img = b.svg(lambda ax: p.plot_evaluation_rates(src, by=by, ax=ax), (11.0, 2.6))
    return Section(
        "evaluations",
        "Evaluations over time",
        f'<div class="grid">{b.figure(img, f"Pass rate per {by} (UTC) with 95% Wilson intervals.", wide=True)}</div>',
    )


def users(src: PeriodSource, has: Has) -> Section:
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
            frame, columns, title="Most active", noun="users", order="most sessions first", limit=SHORT, ident="users"
        )
        + "</div>"
        + b.full(frame, columns, noun="users", order="most sessions first", ident="users-all")
    )
    return Section("users", "Users", body)


def metadata(src: PeriodSource) -> Section:
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
            limit=SHORT,
            ident="metadata",
        )
        + b.full(frame, columns, noun="keys", order="most sessions first", ident="metadata-all")
    )
    return Section("metadata", "Metadata", body)


def _millis(value: float | None) -> str:
    """A duration in milliseconds, as seconds or milliseconds, whichever reads better."""
    if value is None:
        return "—"
    return b.seconds(value / 1000) if value >= 1000 else f"{value:,.0f} ms"


def tools(src: PeriodSource, has: Has, top: int) -> Section:
    """Today's oxios: which tools the agent calls, which fail (surely worst first), which are slow."""
    import polars as pl

    from sessionkit import analytics as a
    from sessionkit import plot as p

    usage = a.tool_usage(src)
    durations = src.sql_frame("SELECT tool_name, duration_ms FROM tool_calls")
    figures = [
        b.figure(
            b.svg(lambda ax: p.plot_tool_usage(usage, top=top, ax=ax)),
            "Calls per tool, and the error rate of its calls with 95% Wilson intervals.",
        ),
        b.figure(
            b.svg(lambda ax: p.plot_tool_durations(durations, top=top, ax=ax)),
            "How long each tool takes (logarithmic); calls oxios did not time (0 ms) left out.",
        ),
    ]
    name = b.group_col("tool", "tool_name", "(no name)")
    error_col = b.Column(
        "error rate (95% interval)", lambda r: b.rate(r["error_rate"], r["error_rate_low"], r["error_rate_high"])
    )
    volume = [name, b.col("calls", "calls"), b.col("responses", "responses"), b.col("sessions", "sessions")]
    flagged = usage.filter(pl.col("error_rate").is_not_null())
    timed = usage.filter(pl.col("duration_p50_ms").is_not_null())
    blocks = [
        b.ranked(
            usage.sort(["calls", "tool_name"], descending=[True, False], nulls_last=True),
            volume,
            title="Most used",
            noun="tools",
            order="most calls first",
            limit=ROWS,
            ident="tool-most-used",
        ),
        b.ranked(
            flagged.sort(
                ["error_rate_low", "error_rate", "calls", "tool_name"],
                descending=[True, True, True, False],
                nulls_last=True,
            ),
            [name, b.col("calls", "calls"), b.col("errors", "errors"), error_col],
            title="Most errors",
            noun="tools with calls",
            order="the surely worst first: by the lower end of the 95% interval of the error rate, highest first",
            limit=ROWS,
            ident="tool-worst",
        ),
        b.ranked(
            timed.sort(["duration_p90_ms", "calls", "tool_name"], descending=[True, True, False], nulls_last=True),
            [
                name,
                b.Column("timed calls", lambda r: b.count(r["calls"] - r["zero_duration"])),
                b.col("p50", "duration_p50_ms", _millis),
                b.col("p90", "duration_p90_ms", _millis),
            ],
            title="Slowest",
            noun="tools with timed calls",
            order="by p90 duration, slowest first",
            limit=ROWS,
            ident="tool-slowest",
        ),
    ]
    columns = [
        *volume,
        b.col("errors", "errors"),
        error_col,
        b.col("untimed (0 ms)", "zero_duration"),
        b.col("p50", "duration_p50_ms", _millis),
        b.col("p90", "duration_p90_ms", _millis),
        b.col("p99", "duration_p99_ms", _millis),
        b.col("max", "duration_max_ms", _millis),
    ]
    everything = b.full(usage, columns, noun="tools", order="most calls first", ident="tool-all")
    sequences = a.tool_sequences(src, n=2, top=ROWS)
    pairs = b.table(
        sequences.to_dicts(),
        [
            b.group_col("tool, then tool", "sequence", "—"),
            b.col("times", "count"),
            b.col("responses", "responses"),
            b.col("sessions", "sessions"),
        ],
        ident="tool-pairs",
    )
    pairs = (
        f'<details class="full"><summary>The {sequences.height:,} most frequent pairs of calls in a turn '
        f"(one tool, then the next)</summary>{pairs}</details>"
    )
    zero = int(usage["zero_duration"].sum()) if usage.height else 0
    note = (
        f'<p class="note">{has.tool_calls:,} tool calls in the period; errors are the calls oxios flags '
        f"<code>is_error</code>; {zero:,} calls carry a duration of 0 ms (oxios did not time them) and are "
        "left out of the durations.</p>"
    )
    body = f'<div class="grid">{"".join(figures)}</div>{note}<div class="tables">{"".join(blocks)}</div>{everything}{pairs}'
    return Section("tools", "Tools", body)


def projects(src: PeriodSource, top: int) -> Section:
    """Today's oxios: the busiest projects and the ones whose tool calls fail most."""
    import polars as pl

    from sessionkit import analytics as a
    from sessionkit import plot as p

    usage = a.project_usage(src).with_columns(
        error_share=pl.when(pl.col("tool_calls") > 0).then(pl.col("tool_errors") / pl.col("tool_calls"))
    )
    figures = [
        b.figure(b.svg(lambda ax: p.plot_project_usage(usage, top=top, ax=ax), (7.0, 3.6)), "Sessions per project."),
        b.figure(
            b.svg(lambda ax: p.plot_project_usage(usage, measure="tool_calls", top=top, ax=ax), (7.0, 3.6)),
            "Tool calls per project.",
        ),
    ]
    name = b.group_col("project", "project_id", "(no project)")
    volume = [
        name,
        b.col("sessions", "sessions"),
        b.col("users", "users"),
        b.col("exchanges", "exchanges"),
        b.col("tool calls", "tool_calls"),
        b.col("tool errors", "tool_errors"),
    ]
    share = b.col("errors per call", "error_share", lambda v: b.percent(v, 1))
    blocks = [
        b.ranked(
            usage.sort(["sessions", "project_id"], descending=[True, False], nulls_last=True),
            volume[:4],
            title="Most used",
            noun="projects",
            order="most sessions first",
            limit=ROWS,
            ident="project-most-used",
        ),
        b.ranked(
            usage.filter(pl.col("tool_errors") > 0).sort(
                ["tool_errors", "tool_calls", "project_id"], descending=[True, False, False], nulls_last=True
            ),
            [name, b.col("tool calls", "tool_calls"), b.col("tool errors", "tool_errors"), share],
            title="Most tool errors",
            noun="projects with tool errors",
            order="most errors first",
            limit=ROWS,
            ident="project-errors",
        ),
    ]
    everything = b.full(
        usage.sort(["sessions", "project_id"], descending=[True, False], nulls_last=True),
        [*volume, share],
        noun="projects",
        order="most sessions first",
        ident="project-all",
    )
    body = f'<div class="grid">{"".join(figures)}</div><div class="tables">{"".join(blocks)}</div>{everything}'
    return Section("projects", "Projects", body)


def threads(src: PeriodSource) -> Section:
    """Today's oxios: conversations continued across sessions, the longest first."""
    from sessionkit import analytics as a

    frame = a.threads(src)
    pruned = int(frame["root_pruned"].sum()) if frame.height else 0
    within = int(frame["sessions"].sum()) if frame.height else 0
    columns = [
        b.group_col("root session", "root_session_id", "—"),
        b.Column("root", lambda r: "not in the period" if r["root_pruned"] else "here", numeric=False),
        b.col("sessions", "sessions"),
        b.col("depth", "depth"),
        b.col("exchanges", "exchanges"),
        b.Column("first created", lambda r: b.stamp(r["first_created"]), numeric=False),
        b.Column("last updated", lambda r: b.stamp(r["last_updated"]), numeric=False),
    ]
    note = (
        f'<p class="note">{frame.height:,} threads (a session and those continuing it through '
        f"<code>parent_session_id</code>) hold {within:,} sessions of the period; {pruned:,} start at a "
        "session that is not in the period (pruned by oxios, or created before it), so they are counted "
        "from its continuations.</p>"
    )
    body = (
        note
        + b.ranked(
            frame, columns, title="Longest", noun="threads", order="most sessions first", limit=SHORT, ident="threads"
        )
        + b.full(frame, columns, noun="threads", order="most sessions first", ident="threads-all")
    )
    return Section("threads", "Threads", body)


def samples(src: PeriodSource, count: int, chosen: Sequence[str] | None) -> list[str]:
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


def transcripts(con: duckdb.DuckDBPyConnection, ids: list[str]) -> Section:
    from sessionkit.analytics import get_session

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
    return Section("transcripts", "Sample transcripts", body)


# -- the page ----------------------------------------------------------------------------------------
