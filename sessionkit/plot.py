"""Charts of the helpers' results, drawn with matplotlib.

Each ``plot_<helper>`` takes the helper's frame (or any ``data`` the helper takes), draws on
``ax`` (a new figure when None), labels the axes with their units, and returns the ``Axes``;
it never calls ``plt.show()``. Charts of seeds and personas keep the ``top`` largest and put
the rest in one "other" bar, so they stay readable with many of them. Titles and axis labels
are fitted to the figure as it is when the chart is drawn: one that would stick out of it is
wrapped onto more lines (or, failing that, set smaller). Labels taken from the
data are shown literally: ``$`` does not start math, and characters the font lacks (or
invisible controls such as bidi overrides) are shown as ``\\uXXXX``.
"""

from __future__ import annotations

import functools
import itertools
import math
import textwrap
import unicodedata
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import polars as pl
    from matplotlib.axes import Axes

__all__ = [
    "fit_texts",
    "plot_activity",
    "plot_evaluation_rates",
    "plot_exchange_histogram",
    "plot_persona_usage",
    "plot_phase_funnel",
    "plot_seed_usage",
    "plot_turn_latency",
    "top_n",
]

_BLUE, _GREEN, _GREY, _RED = "#4C72B0", "#55A868", "#8C8C8C", "#C44E52"
_LABEL_MAX = 40
_Z_95 = 1.959963984540054


def _axes(ax: Axes | None, size: tuple[float, float] = (7.0, 4.5)) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=size, layout="constrained")
    return ax


_Plot = TypeVar("_Plot", bound=Callable[..., Any])
_MARGIN_PX = 2.0
_SMALLEST_FONT = 6.0


def _fitted(plot: _Plot) -> _Plot:
    """Decorate a ``plot_*`` function: fit the titles and labels of the figure it drew on."""

    @functools.wraps(plot)
    def fitted(*args: Any, **kwargs: Any) -> Axes:
        ax = plot(*args, **kwargs)
        fit_texts(ax.figure)
        return ax

    return fitted  # type: ignore[return-value]


def fit_texts(figure: Any) -> None:
    """Wrap the titles and axis labels of ``figure``'s axes that would stick out of it (see ``_wrap``).

    The figure is laid out first (its layout engine moves the axes to make room for tick
    labels), so each title and x label is fitted to the room on either side of its axes'
    centre, and each y label to the room above and below it.
    """
    figure.draw_without_rendering()
    frame = figure.bbox
    for ax in figure.axes:
        if not ax.get_visible():
            continue
        box = ax.get_window_extent()
        across = 2 * min((box.x0 + box.x1) / 2 - frame.x0, frame.x1 - (box.x0 + box.x1) / 2) - 2 * _MARGIN_PX
        down = 2 * min((box.y0 + box.y1) / 2 - frame.y0, frame.y1 - (box.y0 + box.y1) / 2) - 2 * _MARGIN_PX
        for text, room, along in ((ax.title, across, "width"), (ax.xaxis.label, across, "width")):
            _wrap(text, room, along)
        _wrap(ax.yaxis.label, down, "height")


def _wrap(text: Any, room: float, along: str) -> None:
    """Wrap ``text`` onto as few (and as even) lines as fit in ``room`` pixels, at most three;
    failing that, set it smaller, down to 6 points; failing that, cut it with "…"."""
    content = text.get_text()
    if not content or room <= 0 or not text.get_visible():
        return

    def size() -> float:
        return getattr(text.get_window_extent(), along)

    if size() <= room:
        return
    single = " ".join(content.split("\n"))
    fits: list[str] | None = None
    for width in range(len(single) - 1, 0, -1):
        lines = textwrap.wrap(single, width, break_long_words=False, break_on_hyphens=False)
        if len(lines) > (len(fits) if fits else 3):
            break  # the fewest lines found; narrower still, with as many lines, balances them
        text.set_text("\n".join(lines))
        if fits or size() <= room:
            fits = lines
    if fits:
        text.set_text("\n".join(fits))
        return
    while size() > room and text.get_fontsize() > _SMALLEST_FONT:
        text.set_fontsize(text.get_fontsize() - 0.5)
    while size() > room and len(text.get_text()) > 1:  # the last resort: cut it
        text.set_text(text.get_text()[:-2] + "…")


def _as_frame(data: Any, helper: Any, **options: Any) -> pl.DataFrame:
    import polars as pl

    return data if isinstance(data, pl.DataFrame) else helper(data, **options)


@cache
def _font_chars() -> frozenset[int]:
    import matplotlib
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    path = font_manager.findfont(font_manager.FontProperties(family=matplotlib.rcParams["font.family"]))
    return frozenset(FT2Font(path).get_charmap())


def label(value: object, *, none: str = "(none)", limit: int = _LABEL_MAX) -> str:
    """``value`` as literal text for a chart: null as ``none``, ``$`` escaped, unknown glyphs as ``\\uXXXX``."""
    if value is None:
        return none
    text = str(value)
    if text == "":
        return '""'
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    chars = _font_chars()
    out = []
    for ch in text:
        if ch == "$":
            out.append(r"\$")
        elif (unicodedata.category(ch)[0] in "CZ" and ch != " ") or ord(ch) not in chars:
            out.append(f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}")
        else:
            out.append(ch)
    return "".join(out)


def top_n(
    frame: pl.DataFrame, label_column: str, value: str, *, n: int, none_label: str
) -> tuple[list[str], list[int]]:
    """The ``n`` largest rows by ``value`` plus one "other" bar for the rest; nulls get ``none_label``."""
    frame = frame.sort([value, label_column], descending=[True, False], nulls_last=True)
    labels = [label(v, none=none_label) for v in frame[label_column].to_list()]
    values = [int(v) for v in frame[value].to_list()]
    if len(labels) > n:
        rest = sum(values[n:])
        labels, values = [*labels[:n], f"other ({len(labels) - n})"], [*values[:n], rest]
    return labels, values


def _barh(ax: Axes, labels: list[str], values: list[float], xlabel: str, title: str, colors: Any = _BLUE) -> Axes:
    positions = list(range(len(labels)))
    ax.barh(positions, values, color=colors)
    ax.set_yticks(positions, labels)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    for y, v in zip(positions, values, strict=True):
        ax.annotate(f"{v:,}", (v, y), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
    ax.margins(x=0.12)
    return ax


def _usage_frame(frame: pl.DataFrame, subject: str, by: str) -> pl.DataFrame:
    """A usage frame split with ``by=`` summed back to one row per subject (users do not add up)."""
    import polars as pl

    if frame.columns[0] == subject:
        return frame
    if by == "users":
        msg = "users do not add up across a split; chart the frame of the helper without by= to count users"
        raise ValueError(msg)
    return frame.group_by(subject).agg(pl.col(by).sum())


@_fitted
def plot_seed_usage(data: Any, *, by: str = "sessions", top: int = 15, ax: Axes | None = None) -> Axes:
    """Bar chart of the most used seeds (``by`` = ``"sessions"``, ``"responses"`` or ``"users"``).

    Takes ``seed_usage``'s frame (one split with ``by=`` is summed per seed) or ``data``.

    Example:
        >>> import sessionkit as sk
        >>> ax = sk.plot_seed_usage("build/sample-dataset")  # doctest: +SKIP
        >>> ax.figure.savefig("seeds.png")  # doctest: +SKIP
    """
    from sessionkit.analytics import seed_usage

    if by not in ("sessions", "responses", "users"):
        msg = f"plot_seed_usage: by must be 'sessions', 'responses' or 'users', not {by!r}"
        raise ValueError(msg)
    frame = _usage_frame(_as_frame(data, seed_usage), "seed_id", by)
    labels, values = top_n(frame, "seed_id", by, n=top, none_label="(no seed)")
    return _barh(_axes(ax), labels, values, f"{by} (count)", f"Seed usage: {by} per seed")


@_fitted
def plot_persona_usage(data: Any, *, by: str = "sessions", top: int = 15, ax: Axes | None = None) -> Axes:
    """Bar chart of persona use (``by`` = ``"sessions"``, ``"users"`` or ``"exchanges"``).

    Example:
        >>> import sessionkit as sk
        >>> ax = sk.plot_persona_usage("build/sample-dataset", by="exchanges")  # doctest: +SKIP
    """
    from sessionkit.analytics import persona_usage

    if by not in ("sessions", "users", "exchanges"):
        msg = f"plot_persona_usage: by must be 'sessions', 'users' or 'exchanges', not {by!r}"
        raise ValueError(msg)
    frame = _usage_frame(_as_frame(data, persona_usage), "persona_id", by)
    labels, values = top_n(frame, "persona_id", by, n=top, none_label="(no persona)")
    return _barh(_axes(ax), labels, values, f"{by} (count)", f"Persona usage: {by} per persona")


@_fitted
def plot_exchange_histogram(data: Any, *, ax: Axes | None = None) -> Axes:
    """Bar chart of conversation length: sessions per exchange count.

    Example:
        >>> import sessionkit as sk
        >>> ax = sk.plot_exchange_histogram("build/sample-dataset")  # doctest: +SKIP
    """
    from matplotlib.ticker import MaxNLocator

    from sessionkit.analytics import exchange_histogram

    frame = _as_frame(data, exchange_histogram)
    ax = _axes(ax)
    ax.bar(frame["exchange_count"].to_list(), frame["sessions"].to_list(), width=0.8, color=_BLUE)
    ax.set_xlabel("exchanges per session (count)")
    ax.set_ylabel("sessions (count)")
    total = int(frame["sessions"].sum()) if frame.height else 0
    ax.set_title(f"Conversation length ({total:,} sessions)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    return ax


def _one_group(frame: pl.DataFrame, first: str, plot: str) -> pl.DataFrame:
    """The frame of one group: a split frame must hold one group, whose column is dropped."""
    if frame.columns[0] == first:
        return frame
    group = frame.columns[0]
    if frame[group].n_unique() > 1:
        msg = (
            f"{plot} draws one group, but the frame holds {frame[group].n_unique()} values of {group}. "
            f"Hint: filter it first, e.g. frame.filter(pl.col({group!r}) == ...)"
        )
        raise ValueError(msg)
    return frame.drop(group)


@_fitted
def plot_phase_funnel(data: Any, *, measure: str = "sessions", ax: Axes | None = None) -> Axes:
    """Funnel of the oxios phases: how many sessions (or responses) got at least this far.

    Bars of the oxios phases show ``<measure>_reached``; any other phase value and "no
    phase" follow in grey with their own count. Takes ``phase_funnel``'s frame (of one group)
    or ``data``.

    Example:
        >>> import sessionkit as sk
        >>> ax = sk.plot_phase_funnel("build/sample-dataset", measure="responses")  # doctest: +SKIP
    """
    from sessionkit.analytics import phase_funnel
    from sessionkit.model import PHASES

    if measure not in ("sessions", "responses"):
        msg = f"plot_phase_funnel: measure must be 'sessions' or 'responses', not {measure!r}"
        raise ValueError(msg)
    frame = _one_group(_as_frame(data, phase_funnel), "phase", "plot_phase_funnel")
    labels, values, colors = [], [], []
    others = []
    for row in frame.iter_rows(named=True):
        if row["phase"] in PHASES:
            labels.append(row["phase"])
            values.append(int(row[f"{measure}_reached"]))
            colors.append(_BLUE)
        elif row[measure]:
            others.append(row)
    if len(others) > 6:
        rest = others[5:]
        others = others[:5]
        others.append({"phase": f"other values ({len(rest)})", measure: sum(r[measure] for r in rest), "_label": True})
    for row in others:
        name = row["phase"] if row.get("_label") else label(row["phase"], none="(no phase)")
        labels.append(name)
        values.append(int(row[measure]))
        colors.append(_GREY)
    ax = _barh(
        _axes(ax), labels, values, f"{measure} (count)", f"Phase funnel: {measure} that reached each phase", colors
    )
    return ax


def wilson(passed: int, failed: int) -> tuple[float, float, float] | None:
    """(rate, low, high): passed / (passed + failed) and its 95% Wilson interval; None when both are 0."""
    n = passed + failed
    if n == 0:
        return None
    p = passed / n
    z2 = _Z_95 * _Z_95
    center = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = _Z_95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    low = 0.0 if passed == 0 else max(0.0, center - half)
    high = 1.0 if failed == 0 else min(1.0, center + half)
    return p, low, high


@_fitted
def plot_evaluation_rates(data: Any, *, by: str = "seed", top: int = 20, ax: Axes | None = None) -> Axes:
    """Pass rates with their 95% Wilson intervals as error bars.

    Groups (seeds, personas, phases) are dots on a horizontal 0-100% scale, the ``top`` with
    most evaluated responses and one "other" for the rest; days and weeks are a line over
    time. Groups with no evaluated response are left out (the title says how many).
    Takes ``evaluation_rates``'s frame or ``data`` (then ``by`` is passed on).

    Example:
        >>> import sessionkit as sk
        >>> ax = sk.plot_evaluation_rates("build/sample-dataset", by="persona")  # doctest: +SKIP
    """
    import polars as pl

    from sessionkit.analytics import evaluation_rates

    frame = _as_frame(data, evaluation_rates, by=by)
    group = frame.columns[0]
    decided = frame.filter((pl.col("passed") + pl.col("failed")) > 0)
    skipped = frame.height - decided.height
    ax = _axes(ax)
    note = f"; {skipped} without evaluations not shown" if skipped else ""
    if isinstance(frame.schema[group], pl.Date):
        x = decided[group].to_list()
        rate = [100 * v for v in decided["pass_rate"].to_list()]
        low = [max(0.0, r - 100 * v) for r, v in zip(rate, decided["pass_rate_low"].to_list(), strict=True)]
        high = [max(0.0, 100 * v - r) for r, v in zip(rate, decided["pass_rate_high"].to_list(), strict=True)]
        ax.errorbar(x, rate, yerr=[low, high], fmt="o-", color=_BLUE, ecolor=_GREY, capsize=2, markersize=3)
        ax.set_ylim(0, 100)
        ax.set_ylabel("pass rate (% of evaluated responses)")
        ax.set_xlabel(f"{group} (UTC)")
        _date_axis(ax)
        ax.set_title(f"Evaluation pass rate per {group}, 95% interval{note}")
        return ax
    if group != "phase":  # phases keep the helper's oxios order; other groups: the largest first
        decided = decided.with_columns(_n=pl.col("passed") + pl.col("failed")).sort(
            ["_n", group], descending=[True, False], nulls_last=True
        )
    rows = [(r[group], int(r["passed"]), int(r["failed"])) for r in decided.iter_rows(named=True)]
    none = f"(no {group.removesuffix('_id')})"
    labels = [f"{label(g, none=none)} (n={p + f:,})" for g, p, f in rows[:top]]
    counts = [(p, f) for _, p, f in rows[:top]]
    if len(rows) > top:
        rest_p = sum(p for _, p, _ in rows[top:])
        rest_f = sum(f for _, _, f in rows[top:])
        labels.append(f"other ({len(rows) - top}) (n={rest_p + rest_f:,})")
        counts.append((rest_p, rest_f))
    if not labels:
        return _no_data(ax, f"Evaluation pass rate per {group.removesuffix('_id')}{note}")
    stats = [wilson(p, f) for p, f in counts]
    rate = [100 * s[0] for s in stats if s]
    xerr = [[max(0.0, 100 * (s[0] - s[1])) for s in stats if s], [max(0.0, 100 * (s[2] - s[0])) for s in stats if s]]
    positions = list(range(len(labels)))
    ax.errorbar(rate, positions, xerr=xerr, fmt="o", color=_BLUE, ecolor=_GREY, capsize=3)
    ax.set_yticks(positions, labels)
    ax.set_ylim(len(labels) - 0.5, -0.5)
    ax.set_xlim(0, 100)
    ax.set_xlabel("pass rate (% of evaluated responses, 95% Wilson interval)")
    ax.set_title(f"Evaluation pass rate per {group.removesuffix('_id')}{note}")
    return ax


def _no_data(ax: Axes, title: str) -> Axes:
    ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color=_GREY)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def _date_axis(ax: Axes) -> None:
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _latencies(data: Any, by: str | None) -> pl.DataFrame:
    from sessionkit.analytics._common import check_option, frame

    check_option("plot_turn_latency", "by", by, (None, "seed", "persona", "phase"))
    group = {None: "NULL", "seed": "x.seed_id", "persona": "s.active_persona_id", "phase": "x.phase_reached"}[by]
    return frame(
        data,
        f"""
        SELECT {group} AS g, x.latency_s
        FROM exchanges AS x LEFT JOIN sessions AS s ON s.session_id = x.session_id
        """,
    )


@_fitted
def plot_turn_latency(
    data: Any, *, kind: str = "cdf", by: str | None = None, top: int = 6, ax: Axes | None = None
) -> Axes:
    """How long answers take: the distribution of turn latency in seconds.

    With ``data`` (or a frame with a ``latency_s`` column, such as the ``exchanges`` view),
    ``kind="cdf"`` draws the share of turns answered within x seconds and ``kind="hist"``
    a histogram; ``by`` (``"seed"``, ``"persona"``, ``"phase"``) draws one curve for each of
    the ``top`` largest groups. The x axis turns logarithmic when latencies span more than
    three decades. Negative latencies (clock trouble) are left out and counted in the title.
    With ``turn_latency``'s frame it draws p50, p90 and p99 per group.

    Example:
        >>> import sessionkit as sk
        >>> ax = sk.plot_turn_latency("build/sample-dataset", by="phase")  # doctest: +SKIP
    """
    import polars as pl

    if kind not in ("cdf", "hist"):
        msg = f"plot_turn_latency: kind must be 'cdf' or 'hist', not {kind!r}"
        raise ValueError(msg)
    ax = _axes(ax)
    if isinstance(data, pl.DataFrame) and "p50_s" in data.columns:
        return _latency_summary(data, ax)
    if isinstance(data, pl.DataFrame):
        if "latency_s" not in data.columns:
            msg = "plot_turn_latency takes data, turn_latency's frame, or a frame with a latency_s column"
            raise ValueError(msg)
        frame = data.select(pl.lit(None).alias("g"), pl.col("latency_s"))
    else:
        frame = _latencies(data, by)
    valid = frame.filter(pl.col("latency_s") >= 0)
    negative = frame.filter(pl.col("latency_s") < 0).height
    sizes = valid.group_by("g").len().sort(["len", "g"], descending=[True, False], nulls_last=True)
    groups = sizes["g"].to_list()[:top]
    values = valid["latency_s"].to_numpy()
    positive = values[values > 0]
    log = positive.size > 0 and positive.max() / max(positive.min(), 1e-9) > 1000
    import numpy as np

    for i, g in enumerate(groups):
        sample = np.sort(valid.filter(pl.col("g").eq_missing(g))["latency_s"].to_numpy())
        name = None if by is None else f"{label(g, none='(none)')} (n={sample.size:,})"
        if log:
            sample = np.maximum(sample, positive.min())
        if kind == "cdf":
            shares = np.arange(1, sample.size + 1) / sample.size * 100
            ax.step(sample, shares, where="post", label=name, color=None if by else _BLUE)
        else:
            bins: Any = 40
            if log:
                bins = np.geomspace(positive.min(), positive.max(), 41)
            ax.hist(sample, bins=bins, histtype="step" if by else "bar", label=name, color=None if by else _BLUE)
        if i == 0 and by is None and sample.size:
            for q in (50, 90, 99):
                ax.axvline(np.percentile(sample, q), color=_GREY, linestyle=":", linewidth=1)
                ax.annotate(
                    f"p{q}",
                    (np.percentile(sample, q), 1),
                    xycoords=("data", "axes fraction"),
                    fontsize=8,
                    xytext=(2, -10),
                    textcoords="offset points",
                    color=_GREY,
                )
    if log:
        ax.set_xscale("log")
    ax.set_xlabel("turn latency (seconds" + (", log scale)" if log else ")"))
    ax.set_ylabel("turns answered within x (%)" if kind == "cdf" else "turns (count)")
    if kind == "cdf":
        ax.set_ylim(0, 100)
    if by is not None and groups:
        ax.legend(fontsize=8, title=by)
    note = f"; {negative:,} negative not shown" if negative else ""
    ax.set_title(f"Turn latency ({valid.height:,} turns{note})")
    return ax


def _latency_summary(frame: pl.DataFrame, ax: Axes) -> Axes:
    has_group = frame.columns[0] != "exchanges"
    group = frame.columns[0] if has_group else None
    frame = frame.filter(frame["count"] > 0)
    if frame.height == 0:
        return _no_data(ax, "Turn latency percentiles")
    labels = [label(v) for v in frame[group].to_list()] if group else ["all turns"]
    positions = list(range(len(labels)))
    for q, marker in (("p50_s", "o"), ("p90_s", "s"), ("p99_s", "^")):
        ax.plot(frame[q].to_list(), positions, marker, label=q.removesuffix("_s"), linestyle="none")
    ax.set_yticks(positions, labels)
    ax.set_ylim(len(labels) - 0.5, -0.5)
    ax.set_xlabel("turn latency (seconds)")
    ax.legend(fontsize=8)
    ax.set_title("Turn latency percentiles" + (f" per {group.removesuffix('_id')}" if group else ""))
    return ax


_EVERY_UNIT = {"1d": "day", "1w": "week", "1mo": "month"}


def _period_unit(frame: pl.DataFrame, default: str) -> str:
    """The period of an ``activity`` frame, read from its dates: month, week or day."""
    periods = frame["period"].drop_nulls().sort().to_list()
    if len(periods) < 2:
        return default
    gap = min((b - a).days for a, b in itertools.pairwise(periods))
    if all(p.day == 1 for p in periods) and gap >= 28:
        return "month"
    if all(p.weekday() == 0 for p in periods) and gap >= 7:
        return "week"
    return "day"


#: Columns of ``activity`` counted in sessions and users (tens) and in turns (hundreds): each
#: kind gets a panel of its own, so that neither is a flat line at the bottom of the other's scale.
_ACTIVITY_PANELS = (("sessions", "active_users"), ("messages", "responses"))
_ACTIVITY_COLOURS = {"sessions": _BLUE, "active_users": _GREEN, "messages": "#8172B3", "responses": _RED}


def _panels(ax: Axes, count: int) -> tuple[list[Axes], bool]:
    """``ax`` and ``count - 1`` more panels stacked below it in the space ``ax`` had, sharing its
    x axis; for axes placed by hand (no grid to split), a second y axis on the right instead.
    Also whether the panels are stacked."""
    spec = ax.get_subplotspec()
    if count == 1:
        return [ax], False
    if spec is None:
        return [ax, ax.twinx()], False
    grid = spec.subgridspec(count, 1, hspace=0.08)
    ax.set_subplotspec(grid[0])
    return [ax, *(ax.figure.add_subplot(grid[i], sharex=ax) for i in range(1, count))], True


@_fitted
def plot_activity(
    data: Any,
    *,
    every: str = "1d",
    columns: tuple[str, ...] = ("sessions", "active_users", "messages", "responses"),
    ax: Axes | None = None,
) -> Axes:
    """Activity over time: one line per column of ``activity`` (sessions, users, messages, responses).

    Sessions and active users (tens a day) and messages and responses (hundreds) are drawn in
    two panels stacked in the space of ``ax``, sharing the time axis, each with a scale of its
    own; the returned ``Axes`` is the top one (``ax.figure.axes`` holds both). With columns of
    one kind only, there is one panel.

    Example:
        >>> import sessionkit as sk
        >>> ax = sk.plot_activity("build/sample-dataset", every="1w")  # doctest: +SKIP
    """
    import polars as pl

    from sessionkit.analytics import activity

    if isinstance(data, pl.DataFrame):
        frame, unit = data, _period_unit(data, _EVERY_UNIT.get(every, "period"))
    else:
        frame, unit = activity(data, every=every), _EVERY_UNIT[every]
    unknown = [c for c in columns if c not in frame.columns or c == "period"]
    if unknown:
        msg = f"plot_activity: no column {unknown[0]!r}; the columns are sessions, active_users, messages, responses"
        raise ValueError(msg)
    groups = [[c for c in kind if c in columns] for kind in _ACTIVITY_PANELS]
    groups = [g for g in groups if g] + [[c for c in columns if not any(c in k for k in _ACTIVITY_PANELS)]]
    groups = [g for g in groups if g]
    top = _axes(ax, (7.0, 5.5) if len(groups) > 1 else (7.0, 4.5))
    panels, stacked = _panels(top, len(groups))
    periods = frame["period"].to_list()
    for i, (panel, group) in enumerate(zip(panels, groups, strict=True)):
        for column in group:
            panel.plot(
                periods,
                frame[column].to_list(),
                marker="o",
                markersize=2,
                linewidth=1,
                label=column.replace("_", " "),
                color=_ACTIVITY_COLOURS.get(column),
            )
        panel.set_ylabel(f"count per {unit}")
        highest = max((v for c in group for v in frame[c].to_list() if v is not None), default=0)
        panel.set_ylim(0, max(highest, 1) * 1.3)  # room above the lines for the legend
        panel.legend(fontsize=8, loc="upper left" if stacked or i == 0 else "upper right", ncols=len(group))
    if stacked:
        for panel in panels[:-1]:
            panel.tick_params(labelbottom=False)
    panels[-1].set_xlabel(f"{unit} (UTC)")
    _date_axis(panels[-1])
    top.set_title(f"Activity per {unit}")
    return top
