"""Charts of who uses what: seeds, personas (also split by time, user, persona or seed), conversation
length, activity over time."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sessionkit.plot._base import (
    BLUE,
    EVERY_UNIT,
    GREEN,
    GREY,
    RED,
    as_frame,
    axes,
    barh,
    colours,
    date_axis,
    fill_periods,
    fitted,
    label,
    no_data,
    partial_flags,
    partial_legend,
    period_unit,
    time_line,
    top_n,
)

if TYPE_CHECKING:
    import polars as pl
    from matplotlib.axes import Axes

#: The column each ``by=`` of the usage helpers adds, and what it is called in a chart.
_SPLITS = {
    "day": ("day", "day"),
    "week": ("week", "week"),
    "month": ("month", "month"),
    "user": ("user_id", "user"),
    "persona": ("persona_id", "persona"),
    "seed": ("seed_id", "seed"),
    "project": ("project_id", "project"),
}
_SPLIT_OF_COLUMN = {column: by for by, (column, _) in _SPLITS.items()}
#: Split values shown one by one in a categorical split; the rest are one "other".
_SPLIT_TOP = 8


def usage_frame(
    data: Any, helper: Any, *, plot: str, subject: str, by: str | None, measure: str, measures: tuple[str, ...]
) -> tuple[pl.DataFrame, str | None]:
    """The helper's frame (given, or computed with ``by``) and the ``by`` it is split by."""
    import polars as pl

    if measure not in measures:
        choices = ", ".join(repr(m) for m in measures)
        hint = ""
        if by in measures:
            hint = f" Hint: by= splits the chart as {helper.__name__}'s by= does; the count is measure={by!r}"
        msg = f"{plot}: measure must be one of {choices}, not {measure!r}.{hint}"
        raise ValueError(msg)
    if by in measures:
        msg = (
            f"{plot}: by={by!r} is a count, not a split. Hint: measure={by!r} chooses what is counted; "
            f"by= splits the chart as {helper.__name__}(data, by=...) does"
        )
        raise ValueError(msg)
    if not isinstance(data, pl.DataFrame):
        return helper(data, by=by), by
    split = None if data.columns[0] == subject else _SPLIT_OF_COLUMN.get(data.columns[0])
    if by is not None and by != split:
        msg = f"{plot}: by={by!r}, but the frame given is split by {split!r}. Hint: pass data, or the frame of {helper.__name__}(data, by={by!r})"
        raise ValueError(msg)
    return data, split


def split_chart(
    ax: Axes,
    frame: pl.DataFrame,
    data: Any,
    *,
    subject: str,
    none: str,
    by: str,
    measure: str,
    top: int,
    title: str,
) -> Axes:
    """Usage split by ``by``: bars over time stacked by subject, or a bar per subject stacked by
    the split's values. A stack of users counts a user once in each part they used."""
    import polars as pl

    if frame.height == 0:
        return no_usage(ax, title, measure)

    column, split_name = _SPLITS[by]
    totals = (
        frame.group_by(subject)
        .agg(pl.col(measure).sum())
        .sort([measure, subject], descending=[True, False], nulls_last=True)
    )
    kept = totals[subject].head(top).to_list()
    rest = totals.height - len(kept)
    other = f"other ({rest})"
    named = frame.with_columns(
        pl.when(pl.col(subject).is_in(pl.Series(kept).implode()) | (pl.col(subject).is_null() & (None in kept)))
        .then(pl.col(subject).fill_null(none))
        .otherwise(pl.lit(other))
        .alias("_subject")
    )
    names = [none if v is None else str(v) for v in kept] + ([other] if rest else [])
    caveat = (
        f" (a user counts once in each {split_name if by in ('user', 'persona', 'seed') else subject.removesuffix('_id')})"
        if measure == "users"
        else ""
    )
    if by in ("day", "week", "month"):
        grouped = named.group_by(column, "_subject").agg(pl.col(measure).sum())
        wide = grouped.pivot(on="_subject", index=column, values=measure).sort(column)
        wide = fill_periods(wide, column, by, names)
        partial = partial_flags(data, wide.select(column), column, by)
        periods = wide[column].to_list()
        ends = wide[column].dt.offset_by({"day": "1d", "week": "1w", "month": "1mo"}[by]).to_list()
        lengths = [(end - start).days for start, end in zip(periods, ends, strict=True)]
        bottom = [0] * len(periods)
        for name, colour in zip(
            names, [*colours(len(kept)), GREY][: len(names)] if rest else colours(len(names)), strict=True
        ):
            values = [int(v or 0) for v in wide[name].to_list()] if name in wide.columns else [0] * len(periods)
            drawn = [i for i, v in enumerate(values) if v]  # empty periods have no bar (there may be thousands)
            bars = ax.bar(  # each bar spans its period, its left edge at the period's first day
                [periods[i] + timedelta(days=0.075 * lengths[i]) for i in drawn],
                [values[i] for i in drawn],
                width=[0.85 * lengths[i] for i in drawn],
                bottom=[bottom[i] for i in drawn],
                align="edge",
                color=colour,
                label=label(name, none=none),
            )
            for bar, i in zip(bars, drawn, strict=True):
                if partial and partial[i]:
                    bar.set_alpha(0.45)
                    bar.set_hatch("///")
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        ax.set_ylabel(f"{measure} per {by}{caveat}")
        ax.set_xlabel(f"{by} (UTC)")
        date_axis(ax)
        partial_legend(
            ax,
            partial,
            bars=True,
            fontsize=7,
            title=subject.removesuffix("_id"),
            loc="upper left",
            bbox_to_anchor=(1.0, 1.0),
        )
        ax.set_title(title)
        return ax
    values_total = (
        named.group_by(column)
        .agg(pl.col(measure).sum())
        .sort([measure, column], descending=[True, False], nulls_last=True)
    )
    shown = values_total[column].head(_SPLIT_TOP).to_list()
    split_rest = values_total.height - len(shown)
    split_other = f"other ({split_rest})"
    split_none = f"(no {split_name})"
    named = named.with_columns(
        pl.when(pl.col(column).is_in(pl.Series(shown).implode()) | (pl.col(column).is_null() & (None in shown)))
        .then(pl.col(column).cast(pl.String).fill_null(split_none))
        .otherwise(pl.lit(split_other))
        .alias("_split")
    )
    parts = [split_none if v is None else str(v) for v in shown] + ([split_other] if split_rest else [])
    cells = {
        (r["_subject"], r["_split"]): r[measure]
        for r in named.group_by("_subject", "_split").agg(pl.col(measure).sum()).iter_rows(named=True)
    }
    positions = list(range(len(names)))
    left = [0] * len(names)
    palette = colours(len(shown)) + ([GREY] if split_rest else [])
    for part, colour in zip(parts, palette, strict=True):
        widths = [int(cells.get((name, part), 0)) for name in names]
        ax.barh(positions, widths, left=left, color=colour, label=label(part, none=split_none))
        left = [a + w for a, w in zip(left, widths, strict=True)]
    ax.set_yticks(positions, [label(n, none=none) for n in names])
    ax.invert_yaxis()
    ax.set_xlabel(f"{measure} (count){caveat}")
    ax.legend(fontsize=7, title=split_name, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.margins(x=0.05)
    ax.set_title(title)
    return ax


def no_usage(ax: Axes, title: str, measure: str) -> Axes:
    """A usage chart of no data (e.g. no tool calls before oxios 1.9) that says so."""
    no_data(ax, title)
    ax.set_xlabel(f"{measure} (count)")
    return ax


def usage_chart(
    ax: Axes, frame: pl.DataFrame, data: Any, split: str | None, *, subject: str, none: str, measure: str, top: int
) -> Axes:
    """The usage chart of a subject (``seed_id``, ``persona_id``, ...): split by ``split``, or
    a bar per subject, the ``top`` largest and one "other"."""
    noun = subject.removesuffix("_id").removesuffix("_name")
    title = f"{noun.capitalize()} usage: {measure} per {noun}"
    if split is not None:
        title = f"{title}, by {_SPLITS[split][1]}"
        return split_chart(ax, frame, data, subject=subject, none=none, by=split, measure=measure, top=top, title=title)
    if frame.height == 0:
        return no_usage(ax, title, measure)
    labels, values = top_n(frame, subject, measure, n=top, none_label=none)
    return barh(ax, labels, values, f"{measure} (count)", title)


@fitted
def plot_seed_usage(
    data: Any, *, by: str | None = None, measure: str = "sessions", top: int = 15, ax: Axes | None = None
) -> Axes:
    """Bar chart of the most used seeds: ``measure`` = ``"sessions"``, ``"responses"`` or ``"users"``.

    ``by`` splits it as ``seed_usage``'s ``by=`` does: ``"day"``, ``"week"``, ``"month"`` stack
    the ``top`` seeds in a bar per period (partial periods hatched); ``"user"``, ``"persona"``
    stack each seed's bar by user or persona. Takes ``seed_usage``'s frame (its split is read
    from its first column) or ``data``.

    Example:
        >>> import sessionkit as sk
        >>> ax = sk.plot_seed_usage("build/sample-dataset")  # doctest: +SKIP
        >>> ax = sk.plot_seed_usage("build/sample-dataset", by="month", measure="responses", top=6)  # doctest: +SKIP
        >>> ax.figure.savefig("seeds.png")  # doctest: +SKIP
    """
    from sessionkit.analytics import seed_usage

    frame, split = usage_frame(
        data,
        seed_usage,
        plot="plot_seed_usage",
        subject="seed_id",
        by=by,
        measure=measure,
        measures=("sessions", "responses", "users"),
    )
    return usage_chart(axes(ax), frame, data, split, subject="seed_id", none="(no seed)", measure=measure, top=top)


@fitted
def plot_persona_usage(
    data: Any, *, by: str | None = None, measure: str = "sessions", top: int = 15, ax: Axes | None = None
) -> Axes:
    """Bar chart of persona use: ``measure`` = ``"sessions"``, ``"users"`` or ``"exchanges"``.

    ``by`` splits it as ``persona_usage``'s ``by=`` does (``"day"``, ``"week"``, ``"month"``,
    ``"user"``, ``"seed"``); see ``plot_seed_usage``.

    Example:
        >>> import sessionkit as sk
        >>> ax = sk.plot_persona_usage("build/sample-dataset", measure="exchanges")  # doctest: +SKIP
        >>> ax = sk.plot_persona_usage("build/sample-dataset", by="seed")  # doctest: +SKIP
    """
    from sessionkit.analytics import persona_usage

    frame, split = usage_frame(
        data,
        persona_usage,
        plot="plot_persona_usage",
        subject="persona_id",
        by=by,
        measure=measure,
        measures=("sessions", "users", "exchanges"),
    )
    return usage_chart(
        axes(ax), frame, data, split, subject="persona_id", none="(no persona)", measure=measure, top=top
    )


@fitted
def plot_exchange_histogram(data: Any, *, ax: Axes | None = None) -> Axes:
    """Bar chart of conversation length: sessions per exchange count.

    Example:
        >>> import sessionkit as sk
        >>> ax = sk.plot_exchange_histogram("build/sample-dataset")  # doctest: +SKIP
    """
    from matplotlib.ticker import MaxNLocator

    from sessionkit.analytics import exchange_histogram

    frame = as_frame(data, exchange_histogram)
    ax = axes(ax)
    ax.bar(frame["exchange_count"].to_list(), frame["sessions"].to_list(), width=0.8, color=BLUE)
    ax.set_xlabel("exchanges per session (count)")
    ax.set_ylabel("sessions (count)")
    total = int(frame["sessions"].sum()) if frame.height else 0
    ax.set_title(f"Conversation length ({total:,} sessions)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    return ax


#: Columns of ``activity`` counted in sessions and users (tens) and in turns (hundreds): each
#: kind gets a panel of its own, so that neither is a flat line at the bottom of the other's scale.
_ACTIVITY_PANELS = (("sessions", "active_users"), ("messages", "responses"))
_ACTIVITY_COLOURS = {"sessions": BLUE, "active_users": GREEN, "messages": "#8172B3", "responses": RED}
_ACTIVITY_COUNTS = ("sessions", "active_users", "messages", "responses")


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


@fitted
def plot_activity(
    data: Any,
    *,
    every: str = "1d",
    columns: tuple[str, ...] = _ACTIVITY_COUNTS,
    ax: Axes | None = None,
) -> Axes:
    """Activity over time: one line per column of ``activity`` (sessions, users, messages, responses).

    Sessions and active users (tens a day) and messages and responses (hundreds) are drawn in
    two panels stacked in the space of ``ax``, sharing the time axis, each with a scale of its
    own; the returned ``Axes`` is the top one (``ax.figure.axes`` holds both). With columns of
    one kind only, there is one panel. Periods without activity are drawn as zeros; a period
    the data covers only in part (the frame's ``partial`` column) is a hollow marker joined by
    dashes, so that its low count does not read as a drop.

    Example:
        >>> import sessionkit as sk
        >>> ax = sk.plot_activity("build/sample-dataset", every="1w")  # doctest: +SKIP
    """
    import polars as pl

    from sessionkit.analytics import activity

    if isinstance(data, pl.DataFrame):
        frame, unit = data, period_unit(data, EVERY_UNIT.get(every, "period"))
    else:
        frame, unit = activity(data, every=every), EVERY_UNIT[every]
    unknown = [c for c in columns if c not in frame.columns or c in ("period", "partial")]
    if unknown:
        msg = f"plot_activity: no column {unknown[0]!r}; the columns are sessions, active_users, messages, responses"
        raise ValueError(msg)
    if unit in ("day", "week", "month"):
        frame = fill_periods(frame, "period", unit, _ACTIVITY_COUNTS)
    partial = [bool(v) for v in frame["partial"].to_list()] if "partial" in frame.columns else None
    groups = [[c for c in kind if c in columns] for kind in _ACTIVITY_PANELS]
    groups = [g for g in groups if g] + [[c for c in columns if not any(c in k for k in _ACTIVITY_PANELS)]]
    groups = [g for g in groups if g]
    top = axes(ax, (7.0, 5.5) if len(groups) > 1 else (7.0, 4.5))
    panels, stacked = _panels(top, len(groups))
    periods = frame["period"].to_list()
    for i, (panel, group) in enumerate(zip(panels, groups, strict=True)):
        for column in group:
            time_line(
                panel,
                periods,
                frame[column].to_list(),
                partial,
                label=column.replace("_", " "),
                color=_ACTIVITY_COLOURS.get(column),
            )
        panel.set_ylabel(f"count per {unit}")
        highest = max((v for c in group for v in frame[c].to_list() if v is not None), default=0)
        panel.set_ylim(0, max(highest, 1) * 1.3)  # room above the lines for the legend
        legend_partial = partial if i == 0 else None  # the mark is explained once
        partial_legend(
            panel,
            legend_partial,
            fontsize=8,
            loc="upper left" if stacked or i == 0 else "upper right",
            ncols=len(group) + (1 if legend_partial and any(legend_partial) else 0),
        )
    if stacked:
        for panel in panels[:-1]:
            panel.tick_params(labelbottom=False)
    panels[-1].set_xlabel(f"{unit} (UTC)")
    date_axis(panels[-1])
    top.set_title(f"Activity per {unit}")
    return top
