"""What the charts share: axes, fitted titles, literal labels, "other" bars, intervals, time axes."""

from __future__ import annotations

import functools
import itertools
import math
import textwrap
import unicodedata
from collections.abc import Callable, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import polars as pl
    from matplotlib.axes import Axes

BLUE, GREEN, GREY, RED = "#4C72B0", "#55A868", "#8C8C8C", "#C44E52"
_LABEL_MAX = 40
Z_95 = 1.959963984540054


def axes(ax: Axes | None, size: tuple[float, float] = (7.0, 4.5)) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=size, layout="constrained")
    return ax


_Plot = TypeVar("_Plot", bound=Callable[..., Any])
_MARGIN_PX = 2.0
_SMALLEST_FONT = 6.0


def fitted(plot: _Plot) -> _Plot:
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


def as_frame(data: Any, helper: Any, **options: Any) -> pl.DataFrame:
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


def barh(ax: Axes, labels: list[str], values: Sequence[float], xlabel: str, title: str, colors: Any = BLUE) -> Axes:
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


def rates_on_twin(ax: Axes, ordered: pl.DataFrame, rate: str, low: str, high: str, xlabel: str) -> Axes:
    """Red points with their interval (``low``, ``high``), in percent on a twin x axis, one per bar
    of a ``barh`` chart whose rows are ``ordered``'s, in the same order; null rates are skipped."""
    points = [(y, r[rate], r[low], r[high]) for y, r in enumerate(ordered.iter_rows(named=True)) if r[rate] is not None]
    twin = ax.twiny()
    if points:
        ys = [y for y, _, _, _ in points]
        rates = [100 * p for _, p, _, _ in points]
        lows = [max(0.0, 100 * (p - lo)) for _, p, lo, _ in points]
        highs = [max(0.0, 100 * (hi - p)) for _, p, _, hi in points]
        twin.errorbar(rates, ys, xerr=[lows, highs], fmt="o", color=RED, ecolor=RED, capsize=2, markersize=4)
    twin.set_xlim(0, 100)
    twin.set_xlabel(xlabel, color=RED)
    twin.tick_params(axis="x", colors=RED)
    return twin


def one_group(frame: pl.DataFrame, first: str, plot: str) -> pl.DataFrame:
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


def wilson(passed: int, failed: int) -> tuple[float, float, float] | None:
    """(rate, low, high): passed / (passed + failed) and its 95% Wilson interval; None when both are 0."""
    n = passed + failed
    if n == 0:
        return None
    p = passed / n
    z2 = Z_95 * Z_95
    center = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z_95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    low = 0.0 if passed == 0 else max(0.0, center - half)
    high = 1.0 if failed == 0 else min(1.0, center + half)
    return p, low, high


def no_data(ax: Axes, title: str) -> Axes:
    ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color=GREY)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def date_axis(ax: Axes) -> None:
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


EVERY_UNIT = {"1d": "day", "1w": "week", "1mo": "month"}


def period_unit(frame: pl.DataFrame, default: str) -> str:
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


_STEPS = {"day": "1d", "week": "1w", "month": "1mo"}


def fill_periods(frame: pl.DataFrame, column: str, unit: str, counts: Sequence[str]) -> pl.DataFrame:
    """``frame`` with a row of zeros for each period between its first and last that has none,
    so that a line over time drops to zero instead of joining its neighbours across a gap."""
    import polars as pl

    if frame.height < 2:
        return frame
    periods = frame[column].drop_nulls()
    every = pl.DataFrame({column: pl.date_range(periods.min(), periods.max(), _STEPS[unit], eager=True)})  # type: ignore[arg-type]
    filled = every.join(frame, on=column, how="left")
    fills = [pl.col(c).fill_null(0) for c in counts if c in filled.columns]
    if "partial" in filled.columns:
        fills.append(pl.col("partial").fill_null(False))
    return filled.with_columns(fills)


def partial_flags(data: Any, frame: pl.DataFrame, column: str, unit: str) -> list[bool] | None:
    """Which rows of ``frame`` are of a period the data covers only in part: its ``partial``
    column, or (given ``data``, not a frame) computed from the data's first and last instant;
    None when it cannot be known."""
    import polars as pl

    if "partial" in frame.columns:
        return [bool(v) for v in frame["partial"].to_list()]
    if isinstance(data, pl.DataFrame):
        return None
    from sessionkit._periods import SPAN_SQL, partial_periods
    from sessionkit.analytics import run_sql

    first, last = run_sql(data, SPAN_SQL, read_only=False).row(0)
    return partial_periods(frame[column], unit, first, last).to_list()


def time_line(ax: Axes, x: Sequence[Any], y: Sequence[Any], partial: Sequence[bool] | None, **style: Any) -> None:
    """A line over time with markers; a period the data covers only in part is a hollow marker
    joined by dashes, so that its low count does not read as a drop."""
    nan = float("nan")
    flags = list(partial) if partial is not None else [False] * len(x)
    values = [nan if v is None else v for v in y]
    solid = [nan if p else v for v, p in zip(values, flags, strict=True)]
    line = ax.plot(x, solid, marker="o", markersize=2.5, linewidth=1, **style)[0]
    if not any(flags):
        return
    colour = line.get_color()
    dashed_x: list[Any] = []
    dashed_y: list[float] = []
    for i in range(len(x)):
        if flags[i] and i > 0:
            dashed_x += [x[i - 1], x[i], x[i]]
            dashed_y += [values[i - 1], values[i], nan]
        if flags[i] and i + 1 < len(x):
            dashed_x += [x[i], x[i + 1], x[i + 1]]
            dashed_y += [values[i], values[i + 1], nan]
    if dashed_x:
        ax.plot(dashed_x, dashed_y, linestyle="--", linewidth=1, color=colour)
    marked = [(xi, v) for xi, v, p in zip(x, values, flags, strict=True) if p]
    ax.plot(
        [m[0] for m in marked],
        [m[1] for m in marked],
        linestyle="none",
        marker="o",
        markersize=4,
        markerfacecolor="white",
        color=colour,
    )


def partial_legend(ax: Axes, partial: Sequence[bool] | None, *, bars: bool = False, **legend: Any) -> None:
    """The axes' legend, with an entry for the partial-period mark (hollow and dashed, or for
    ``bars`` hatched) when some period is partial."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles, labels = ax.get_legend_handles_labels()
    if partial is not None and any(partial):
        mark: Any = (
            Patch(facecolor="white", edgecolor=GREY, hatch="///")
            if bars
            else Line2D(
                [], [], color=GREY, linestyle="--", marker="o", markersize=4, markerfacecolor="white", linewidth=1
            )
        )
        handles.append(mark)
        labels.append("partial period")
    if handles:
        ax.legend(handles, labels, **legend)


def colours(count: int) -> list[Any]:
    """``count`` distinct colours: matplotlib's tab10, or tab20 for more."""
    import matplotlib as mpl

    cmap = mpl.colormaps["tab10" if count <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(count)]
