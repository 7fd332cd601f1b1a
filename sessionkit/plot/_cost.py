"""Charts of the agent runs: what they cost (over time, stacked by model or project), and how each model does."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sessionkit.plot._base import (
    BLUE,
    GREY,
    axes,
    barh,
    colours,
    date_axis,
    fitted,
    label,
    no_data,
    partial_legend,
    rates_on_twin,
    top_n,
)
from sessionkit.plot._usage import no_usage, split_chart

if TYPE_CHECKING:
    import polars as pl
    from matplotlib.axes import Axes

#: ``by`` of ``cost``: the column it groups by, and what the chart calls it.
_GROUPS = {
    "model": ("model_id", "model"),
    "project": ("project_id", "project"),
    "user": ("user_id", "user"),
    "persona": ("persona_id", "persona"),
    "day": ("day", "day"),
    "week": ("week", "week"),
    "month": ("month", "month"),
}
_BY_OF_COLUMN = {column: by for by, (column, _) in _GROUPS.items()}
_TIMES = ("day", "week", "month")
_STEP = {"day": "1d", "week": "1w", "month": "1mo"}
_DOLLARS = "cost (USD, oxios' estimate)"


def _cost_frame(data: Any, by: str | None, every: str | None) -> tuple[pl.DataFrame, str, str | None]:
    """``cost``'s frame (given, or computed), the ``by`` it groups by and the ``every`` it is split by."""
    import polars as pl

    from sessionkit.analytics import cost

    if not isinstance(data, pl.DataFrame):
        by = "model" if by is None else by
        return cost(data, by=by, every=every), by, every
    first = data.columns[0] if data.columns else None
    second = data.columns[1] if len(data.columns) > 1 else None
    if first in _TIMES and second in _BY_OF_COLUMN:
        found, split = _BY_OF_COLUMN[second], first
    elif first in _BY_OF_COLUMN:
        found, split = _BY_OF_COLUMN[first], None
    else:
        msg = f"plot_cost: the frame's first column is {first!r}, not one of cost's groups. Hint: pass data, or the frame of sk.cost(data, by=...)"
        raise ValueError(msg)
    if (by is not None and by != found) or (every is not None and every != split):
        msg = (
            f"plot_cost: by={by!r}, every={every!r}, but the frame given is cost(by={found!r}, every={split!r}). "
            f"Hint: pass data, or the frame of sk.cost(data, by={by or found!r}, every={every!r})"
        )
        raise ValueError(msg)
    return data, found, split


def _partial(data: Any, periods: list[Any], unit: str) -> list[bool] | None:
    """Which periods the agent runs cover only in part (the first and last, usually); None for a frame."""
    import polars as pl

    if isinstance(data, pl.DataFrame):
        return None
    from sessionkit._periods import partial_periods
    from sessionkit.analytics import run_sql

    sql = "SELECT epoch_ns(min(created_at)) AS f, epoch_ns(max(created_at)) AS l FROM agents"
    first, last = run_sql(data, sql, read_only=False).row(0)
    return partial_periods(pl.Series(periods, dtype=pl.Date), unit, first, last).to_list()


def _period_bars(
    ax: Axes,
    periods: list[Any],
    unit: str,
    stacks: list[tuple[str, list[float], Any]],
    partial: list[bool] | None,
    ylabel: str,
) -> None:
    """Bars over time, each spanning its period, stacked in the order given; partial periods hatched."""
    import polars as pl

    ends = pl.Series(periods, dtype=pl.Date).dt.offset_by(_STEP[unit]).to_list()
    lengths = [(end - start).days for start, end in zip(periods, ends, strict=True)]
    bottom = [0.0] * len(periods)
    for name, values, colour in stacks:
        drawn = [i for i, v in enumerate(values) if v]
        bars = ax.bar(
            [periods[i] + timedelta(days=0.075 * lengths[i]) for i in drawn],
            [values[i] for i in drawn],
            width=[0.85 * lengths[i] for i in drawn],
            bottom=[bottom[i] for i in drawn],
            align="edge",
            color=colour,
        )
        if len(stacks) > 1:  # a plain swatch in the legend, whatever the first bar's hatching
            ax.fill_between([], [], color=colour, label=name)
        for bar, i in zip(bars, drawn, strict=True):
            if partial and partial[i]:
                bar.set_alpha(0.45)
                bar.set_hatch("///")
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_xlabel(f"{unit} (UTC)")
    ax.set_ylabel(f"{ylabel} per {unit}")
    date_axis(ax)


def _stacked_over_time(
    ax: Axes, frame: pl.DataFrame, data: Any, *, period: str, group: str, value: str, none: str, top: int, ylabel: str
) -> None:
    """``value`` per ``period``, each period's bar stacked by the ``top`` values of ``group``
    (largest overall first) and one "other"; partial periods of the agent runs hatched."""
    import polars as pl

    totals = (
        frame.group_by(group).agg(pl.col(value).sum()).sort([value, group], descending=[True, False], nulls_last=True)
    )
    kept = totals[group].head(top).to_list()
    rest = totals.height - len(kept)
    names = [label(v, none=none) for v in kept] + ([f"other ({rest})"] if rest else [])
    index = {v: i for i, v in enumerate(kept)}
    periods = frame[period].unique().sort().to_list()
    at = {p: i for i, p in enumerate(periods)}
    values = [[0.0] * len(periods) for _ in names]
    for row in frame.iter_rows(named=True):
        values[index.get(row[group], len(names) - 1)][at[row[period]]] += row[value]
    palette = [*colours(len(kept)), GREY][: len(names)] if rest else colours(len(names))
    partial = _partial(data, periods, period)
    _period_bars(ax, periods, period, list(zip(names, values, palette, strict=True)), partial, ylabel)
    legend_title = group.removesuffix("_id")
    partial_legend(ax, partial, bars=True, fontsize=7, title=legend_title, loc="upper left", bbox_to_anchor=(1.0, 1.0))


@fitted
def plot_cost(
    data: Any, *, by: str | None = None, every: str | None = None, top: int = 8, ax: Axes | None = None
) -> Axes:
    """What the agent runs cost (oxios' ``cost_usd``), in US dollars.

    ``by`` and ``every`` are ``cost``'s: ``by="model"`` (the default), ``"project"``, ``"user"``
    or ``"persona"`` draws a bar per group (the ``top`` most costly, the rest one "other");
    ``by="day"``, ``"week"``, ``"month"`` the cost per period; and ``every="day"``, ``"week"``
    or ``"month"`` with a group the cost over time, each period's bar stacked by the ``top``
    groups (``plot_cost(data, by="project", every="week")``). A period the runs cover only in
    part is hatched. Takes ``cost``'s frame (its grouping read from its columns) or ``data``.

    Example:
        >>> import sessionkit as sk
        >>> ax = sk.plot_cost("build/modern-dataset", by="model", every="day")  # doctest: +SKIP
        >>> ax = sk.plot_cost("build/modern-dataset", by="project")  # doctest: +SKIP
    """
    frame, by, every = _cost_frame(data, by, every)
    column, noun = _GROUPS[by]
    ax = axes(ax)
    title = f"Cost per {every}, by {noun}" if every is not None else f"Cost per {noun}"
    if frame.height == 0:
        no_data(ax, title)
        ax.set_xlabel(_DOLLARS)
        return ax
    none = f"(no {noun})"
    if by in _TIMES:
        periods = frame[column].to_list()
        partial = _partial(data, periods, by)
        _period_bars(ax, periods, by, [("cost", frame["cost_usd"].to_list(), BLUE)], partial, _DOLLARS)
        partial_legend(ax, partial, bars=True, fontsize=7)
    elif every is not None:
        _stacked_over_time(
            ax, frame, data, period=every, group=column, value="cost_usd", none=none, top=top, ylabel=_DOLLARS
        )
    else:
        ordered = frame.sort(["cost_usd", column], descending=[True, False], nulls_last=True)
        labels = [label(v, none=none) for v in ordered[column].head(top).to_list()]
        values = ordered["cost_usd"].head(top).to_list()
        if ordered.height > top:
            labels.append(f"other ({ordered.height - top})")
            values.append(float(ordered["cost_usd"].tail(ordered.height - top).sum()))
        positions = list(range(len(labels)))
        ax.barh(positions, values, color=BLUE)
        ax.set_yticks(positions, labels)
        ax.invert_yaxis()
        for y, v in zip(positions, values, strict=True):
            ax.annotate(f"{v:,.2f}", (v, y), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
        ax.margins(x=0.15)
        ax.set_xlabel(_DOLLARS)
    ax.set_title(title)
    return ax


#: ``by`` of ``model_usage``: the column it adds.
_MODEL_SPLITS = {"day": "day", "week": "week", "project": "project_id"}
_MODEL_MEASURES = ("runs", "failed_runs", "tokens_input", "tokens_output", "timed_runs")


@fitted
def plot_model_usage(
    data: Any, *, by: str | None = None, measure: str = "runs", top: int = 15, ax: Axes | None = None
) -> Axes:
    """Agent runs per model, with each model's failure rate and its 95% Wilson interval.

    Bars are the ``top`` models by ``measure`` (``"runs"``, ``"failed_runs"``,
    ``"tokens_input"``, ``"tokens_output"``, ``"timed_runs"``; the rest one "other" bar); red
    dots on their own axis (top, 0-100%) are the failure rates (status ``Failed``), their
    whiskers the interval. ``by`` splits it as ``model_usage``'s ``by=`` does: ``"day"``,
    ``"week"`` stack the models in a bar per period; ``"project"`` stacks each model's bar by
    project. Takes ``model_usage``'s frame or ``data``.

    Example:
        >>> import sessionkit as sk
        >>> ax = sk.plot_model_usage("build/modern-dataset")  # doctest: +SKIP
        >>> ax = sk.plot_model_usage("build/modern-dataset", by="week", measure="tokens_output")  # doctest: +SKIP
    """
    import polars as pl

    from sessionkit.analytics import model_usage

    if measure not in _MODEL_MEASURES:
        choices = ", ".join(repr(m) for m in _MODEL_MEASURES)
        msg = f"plot_model_usage: measure must be one of {choices}, not {measure!r}"
        raise ValueError(msg)
    if isinstance(data, pl.DataFrame):
        second = data.columns[1] if len(data.columns) > 1 else None
        split = next((b for b, c in _MODEL_SPLITS.items() if c == second), None)
        if not data.columns or data.columns[0] != "model_id":
            msg = "plot_model_usage: the frame's first column is not model_id. Hint: pass data, or the frame of sk.model_usage(data, by=...)"
            raise ValueError(msg)
        if by is not None and by != split:
            msg = f"plot_model_usage: by={by!r}, but the frame given is split by {split!r}. Hint: pass data, or the frame of sk.model_usage(data, by={by!r})"
            raise ValueError(msg)
        frame = data
    else:
        frame, split = model_usage(data, by=by), by
    ax = axes(ax)
    if split is not None:
        title = f"Model usage: {measure} per model, by {split}"
        if frame.height == 0:
            return no_usage(ax, title, measure)
        if split == "project":
            ordered = frame.select("project_id", *(c for c in frame.columns if c != "project_id"))  # split first
            return split_chart(
                ax,
                ordered,
                data,
                subject="model_id",
                none="(no model)",
                by=split,
                measure=measure,
                top=top,
                title=title,
            )
        _stacked_over_time(
            ax, frame, data, period=split, group="model_id", value=measure, none="(no model)", top=top, ylabel=measure
        )
        ax.set_title(title)
        return ax
    title = f"Model usage: {measure} per model, and failure rate (95% interval)"
    if frame.height == 0:
        return no_usage(ax, title, measure)
    labels, values = top_n(frame, "model_id", measure, n=top, none_label="(no model)")
    barh(ax, labels, values, f"{measure} (count)", title)
    ordered = frame.sort([measure, "model_id"], descending=[True, False], nulls_last=True).head(top)
    rates_on_twin(ax, ordered, "failure_rate", "failure_low", "failure_high", "failure rate (% of runs, red)")
    return ax
