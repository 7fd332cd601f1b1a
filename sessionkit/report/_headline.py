"""The report's headline: the period, its totals against the period before, the biggest movers."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING, Any

from sessionkit._html import escape_text
from sessionkit.report import _blocks as b
from sessionkit.report._common import Has
from sessionkit.report._period import Period, PeriodSource, fmt_ns, length_text

if TYPE_CHECKING:
    import duckdb


@dataclass
class _Figures:
    sessions: int
    users: int
    exchanges: int
    passed: int
    failed: int
    p90_s: float | None
    tool_calls: int | None = None
    tool_errors: int | None = None

    @property
    def pass_rate(self) -> float | None:
        return self.passed / (self.passed + self.failed) if self.passed + self.failed else None


def _figures(src: PeriodSource) -> _Figures:
    from sessionkit.analytics import turn_latency

    sessions, users, exchanges, passed, failed = src.rows(
        """
        SELECT
            (SELECT count(*) FROM sessions),
            (SELECT count(DISTINCT user_id) FROM sessions),
            (SELECT coalesce(sum(exchange_count), 0) FROM sessions)::BIGINT,
            (SELECT count(*) FROM responses WHERE evaluation_passed),
            (SELECT count(*) FROM responses WHERE NOT evaluation_passed)
        """
    )[0]
    figures = _Figures(sessions, users, exchanges, passed, failed, p90_s=turn_latency(src)["p90_s"][0])
    if "tool_calls" in src.columns:  # today's oxios: every tool call, and those flagged as errors
        figures.tool_calls, figures.tool_errors = src.rows(
            "SELECT count(*), count(*) FILTER (is_error) FROM tool_calls"
        )[0]
    return figures


def _card(
    metric: str, label: str, now: Any, before: Any, shown: str, delta: tuple[str, str], *, worse_up: bool = False
) -> str:
    """A headline figure: its value, what it is, and its change, the arrow its direction and the
    colour whether that is good news (green) or bad (red): more errors or a slower p90 is red."""
    text, way = delta
    arrow = {"up": "▲ ", "down": "▼ "}.get(way, "")
    tone = {"up": "bad" if worse_up else "good", "down": "good" if worse_up else "bad"}.get(way, "")
    data = f' data-metric="{escape(metric)}" data-now="{escape(str(now))}" data-before="{escape(str(before))}"'
    return (
        f'<div class="card"{data}><div class="v">{escape(shown)}</div><div class="k">{escape(label)}</div>'
        f'<div class="{" ".join(c for c in ("c", way, tone) if c)}">{arrow}{escape(text)}</div></div>'
    )


_DIMENSIONS = (
    # (kind, label of a null, SQL of (group, count), what is counted, the view or sessions column it needs)
    ("seed", "(no seed)", "SELECT active_seed_id, count(*) FROM sessions GROUP BY ALL", "sessions", "active_seed_id"),
    (
        "persona",
        "(no persona)",
        "SELECT active_persona_id, count(*) FROM sessions GROUP BY ALL",
        "sessions",
        "active_persona_id",
    ),
    ("tool", "(no tool)", "SELECT tool_name, count(*) FROM tool_calls GROUP BY ALL", "tool calls", "tool_calls"),
    ("project", "(no project)", "SELECT project_id, count(*) FROM sessions GROUP BY ALL", "sessions", "project_id"),
)


def _holds(has: Has, kind: str) -> bool:
    """Whether the period's data names any group of this kind."""
    held = {"seed": has.seeds, "persona": has.personas, "tool": has.tool_calls, "project": has.projects}[kind]
    return bool(held)


def _movers(now: PeriodSource, before: PeriodSource, has: Has) -> list[str]:
    """The three groups whose share of their kind moved most between the two periods."""
    moved = []
    for kind, none, sql, unit, _ in _DIMENSIONS:
        if not _holds(has, kind):
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


def covered(con: duckdb.DuckDBPyConnection, period: Period) -> bool:
    """Whether the data has sessions created before the period, to compare it with."""
    first = con.sql("SELECT min(epoch_ns(created_at)) FROM sessions").fetchall()[0][0]
    return first is not None and first < period.since


def headline(con: duckdb.DuckDBPyConnection, period: Period, now: PeriodSource, before: PeriodSource, has: Has) -> str:
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

    def add(metric: str, label: str, a: Any, z: Any, shown: str, *, worse_up: bool = False, **kw: Any) -> None:
        delta = b.change(a, z if covered else None, **kw)
        cards.append(_card(metric, label, a, z if covered else "", shown, delta, worse_up=worse_up))

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
    if f_now.tool_calls or f_before.tool_calls:  # data with tool calls: today's oxios, not the seeds era
        add("tool_calls", "tool calls", f_now.tool_calls, f_before.tool_calls, b.count(f_now.tool_calls))
        add(
            "tool_errors",
            "tool errors",
            f_now.tool_errors,
            f_before.tool_errors,
            b.count(f_now.tool_errors),
            worse_up=True,
        )
    if f_now.p90_s is not None:
        add(
            "p90_latency_s",
            "p90 turn latency",
            f_now.p90_s,
            f_before.p90_s,
            b.seconds(f_now.p90_s),
            unit=" s",
            worse_up=True,
        )
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
