"""Charts of today's oxios: tool calls with their error rates, tool durations, projects."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sessionkit.plot._base import BLUE, GREY, axes, barh, fitted, label, no_data, rates_on_twin, top_n
from sessionkit.plot._usage import no_usage, usage_chart, usage_frame

if TYPE_CHECKING:
    from matplotlib.axes import Axes


@fitted
def plot_tool_usage(
    data: Any, *, by: str | None = None, measure: str = "calls", top: int = 15, ax: Axes | None = None
) -> Axes:
    """Tool calls per tool, with each tool's error rate and its 95% Wilson interval.

    Bars are the ``top`` tools by calls (the rest one "other" bar); red dots on their own axis
    (top, 0-100%) are the error rates (``tool_usage``'s ``errors``: the agent runs' flags for
    the turns linked to one, else the session files'), their whiskers the
    interval, wide for rarely used tools. ``by`` splits it as ``tool_usage``'s ``by=`` does:
    ``"day"``, ``"week"`` stack the tools in a bar per period; ``"persona"``, ``"project"``
    stack each tool's bar; ``measure`` (``"calls"``, ``"errors"``, ``"responses"``,
    ``"sessions"``) is what is counted there. Takes ``tool_usage``'s frame or ``data``.

    Example:
        >>> import sessionkit as sk
        >>> ax = sk.plot_tool_usage("build/modern-dataset")  # doctest: +SKIP
        >>> ax = sk.plot_tool_usage("build/modern-dataset", by="week", measure="errors")  # doctest: +SKIP
    """
    from sessionkit.analytics import tool_usage

    frame, split = usage_frame(
        data,
        tool_usage,
        plot="plot_tool_usage",
        subject="tool_name",
        by=by,
        measure=measure,
        measures=("calls", "errors", "responses", "sessions"),
    )
    ax = axes(ax)
    if split is not None:
        return usage_chart(ax, frame, data, split, subject="tool_name", none="(no name)", measure=measure, top=top)
    title = f"Tool usage: {measure} per tool, and error rate (95% interval)"
    if frame.height == 0:
        return no_usage(ax, title, measure)
    labels, values = top_n(frame, "tool_name", measure, n=top, none_label="(no name)")
    barh(ax, labels, values, f"{measure} (count)", title)
    ordered = frame.sort([measure, "tool_name"], descending=[True, False], nulls_last=True).head(top)
    rates_on_twin(ax, ordered, "error_rate", "error_rate_low", "error_rate_high", "error rate (% of calls, red)")
    return ax


@fitted
def plot_tool_durations(data: Any, *, top: int = 12, log: bool = True, ax: Axes | None = None) -> Axes:
    """How long each tool takes: the distribution of ``duration_ms`` per tool, a box each.

    The ``top`` tools by calls; calls with ``duration_ms`` 0 (oxios did not measure them) are
    left out and counted in the labels. Boxes span p25-p75 with the median, whiskers p5-p95;
    on a logarithmic axis by default (a shell command and a file read differ a thousandfold).
    Takes ``data`` (a dataset, tables or a connection) or a frame with ``tool_name`` and
    ``duration_ms`` columns, e.g. from ``SELECT * FROM tool_calls``.

    Example:
        >>> import sessionkit as sk
        >>> ax = sk.plot_tool_durations("build/modern-dataset")  # doctest: +SKIP
    """
    import polars as pl

    if isinstance(data, pl.DataFrame):
        missing = {"tool_name", "duration_ms"} - set(data.columns)
        if missing:
            msg = f"plot_tool_durations: the frame lacks the columns {sorted(missing)}. Hint: pass data, or a frame of SELECT tool_name, duration_ms FROM tool_calls"
            raise ValueError(msg)
        calls = data.select("tool_name", "duration_ms")
    else:
        from sessionkit.analytics import run_sql

        calls = run_sql(data, "SELECT tool_name, duration_ms FROM tool_calls", read_only=False)
    ax = axes(ax)
    title = "Tool durations per tool (p5, p25, median, p75, p95)"
    measured = calls.filter(pl.col("duration_ms") > 0)
    if measured.height == 0:
        no_data(ax, title)
        ax.set_xlabel("duration (ms)")
        return ax
    counts = calls.group_by("tool_name").agg(pl.len().alias("calls"), (pl.col("duration_ms") == 0).sum().alias("zero"))
    tools = counts.sort(["calls", "tool_name"], descending=[True, False], nulls_last=True).head(top)
    groups, labels = [], []
    for row in tools.iter_rows(named=True):
        values = measured.filter(pl.col("tool_name").eq_missing(row["tool_name"]))["duration_ms"].to_list()
        if not values:
            continue
        groups.append(values)
        unmeasured = f", {row['zero']:,} unmeasured" if row["zero"] else ""
        labels.append(f"{label(row['tool_name'], none='(no name)')} (n={len(values):,}{unmeasured})")
    positions = list(range(len(groups)))
    ax.boxplot(
        groups,
        positions=positions,
        orientation="horizontal",
        whis=(5, 95),
        showfliers=False,
        patch_artist=True,
        boxprops={"facecolor": BLUE, "alpha": 0.6},
        medianprops={"color": "black"},
        whiskerprops={"color": GREY},
        capprops={"color": GREY},
    )
    ax.set_yticks(positions, labels)
    ax.invert_yaxis()
    if log:
        ax.set_xscale("log")
    ax.set_xlabel("duration (ms" + (", log scale)" if log else ")"))
    ax.set_title(title)
    return ax


@fitted
def plot_project_usage(
    data: Any, *, by: str | None = None, measure: str = "sessions", top: int = 15, ax: Axes | None = None
) -> Axes:
    """Bar chart of the busiest oxios projects: ``measure`` = ``"sessions"``, ``"users"``,
    ``"exchanges"``, ``"tool_calls"`` or ``"tool_errors"``.

    ``by`` splits it as ``project_usage``'s ``by=`` does (``"day"``, ``"week"``, ``"month"``,
    ``"user"``, ``"persona"``); see ``plot_seed_usage``. Takes ``project_usage``'s frame or
    ``data``.

    Example:
        >>> import sessionkit as sk
        >>> ax = sk.plot_project_usage("build/modern-dataset", by="month")  # doctest: +SKIP
    """
    from sessionkit.analytics import project_usage

    frame, split = usage_frame(
        data,
        project_usage,
        plot="plot_project_usage",
        subject="project_id",
        by=by,
        measure=measure,
        measures=("sessions", "users", "exchanges", "tool_calls", "tool_errors"),
    )
    return usage_chart(
        axes(ax), frame, data, split, subject="project_id", none="(no project)", measure=measure, top=top
    )
