"""Charts of how far turns get and how well and fast they go: phases, pass rates, latency."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sessionkit.plot._base import (
    BLUE,
    GREY,
    as_frame,
    axes,
    barh,
    colours,
    date_axis,
    fitted,
    label,
    no_data,
    partial_flags,
    partial_legend,
    time_line,
    wilson,
)

if TYPE_CHECKING:
    import polars as pl
    from matplotlib.axes import Axes

_GROUP_NAMES = {"seed_id": "seed", "persona_id": "persona", "phase": "phase", "day": "day", "week": "week"}


def _none(group: str) -> str:
    return f"(no {_GROUP_NAMES.get(group, group.removesuffix('_id'))})"


@fitted
def plot_phase_funnel(
    data: Any, *, by: str | None = None, measure: str = "sessions", top: int = 8, ax: Axes | None = None
) -> Axes:
    """Funnel of the oxios phases: how many sessions (or responses) got at least this far.

    Bars of the oxios phases show ``<measure>_reached``; any other phase value and "no
    phase" follow in grey with their own count. ``by="seed"`` or ``"persona"`` (as
    ``phase_funnel``'s ``by=``) draws instead one line per group, the ``top`` largest: the
    share of the group's sessions (or responses) that reached each phase, so groups of any
    size compare; a single group (a frame filtered to one, or data with one) is its own funnel,
    titled with its name. Takes ``phase_funnel``'s frame or ``data``.

    Example:
        >>> import sessionkit as sk
        >>> ax = sk.plot_phase_funnel("build/sample-dataset", measure="responses")  # doctest: +SKIP
        >>> ax = sk.plot_phase_funnel("build/sample-dataset", by="persona")  # doctest: +SKIP
    """
    import polars as pl

    from sessionkit.analytics import phase_funnel
    from sessionkit.model import PHASES

    if measure not in ("sessions", "responses"):
        msg = f"plot_phase_funnel: measure must be 'sessions' or 'responses', not {measure!r}"
        raise ValueError(msg)
    frame = data if isinstance(data, pl.DataFrame) else phase_funnel(data, by=by)
    ax = axes(ax)
    group = frame.columns[0] if frame.columns[0] != "phase" else None
    whose = ""
    if group is not None:  # from data or its frame alike: a line per group, or one group's funnel
        if frame[group].n_unique() > 1:
            return _funnel_per_group(ax, frame, measure, top)
        if frame.height:
            only = frame[group][0]
            whose = f" of {_none(group)}" if only is None else f" of {_GROUP_NAMES.get(group, group)} {label(only)}"
        frame = frame.drop(group)
    labels, values, colors = [], [], []
    others = []
    for row in frame.iter_rows(named=True):
        if row["phase"] in PHASES:
            labels.append(row["phase"])
            values.append(int(row[f"{measure}_reached"]))
            colors.append(BLUE)
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
        colors.append(GREY)
    title = f"Phase funnel{whose}: {measure} that reached each phase"
    return barh(ax, labels, values, f"{measure} (count)", title, colors)


def _funnel_per_group(ax: Axes, frame: pl.DataFrame, measure: str, top: int) -> Axes:
    """One line per group: the share of its sessions (responses) that reached each oxios phase."""
    import polars as pl

    from sessionkit.model import PHASES

    group = frame.columns[0]
    sizes = (
        frame.group_by(group)
        .agg(pl.col(measure).sum().alias("n"))
        .filter(pl.col("n") > 0)
        .sort(["n", group], descending=[True, False], nulls_last=True)
    )
    title = f"Phase funnel per {_GROUP_NAMES.get(group, group)}: share of {measure} that reached each phase"
    if sizes.height == 0:
        return no_data(ax, title)
    shown = sizes.head(top)
    positions = list(range(len(PHASES)))
    for (g, n), colour in zip(shown.iter_rows(), colours(shown.height), strict=True):
        rows = frame.filter(pl.col(group).eq_missing(g) & pl.col("phase").is_in(list(PHASES)))
        reached = dict(zip(rows["phase"].to_list(), rows[f"{measure}_reached"].to_list(), strict=True))
        shares = [100 * (reached.get(p) or 0) / n for p in PHASES]
        ax.plot(
            positions,
            shares,
            marker="o",
            markersize=3,
            linewidth=1.2,
            color=colour,
            label=f"{label(g, none=_none(group))} (n={n:,})",
        )
    ax.set_xticks(positions, list(PHASES))
    ax.set_ylim(0, 105)
    ax.set_ylabel(f"{measure} that reached the phase (%)")
    ax.set_xlabel("phase, in the order oxios goes through them")
    more = sizes.height - shown.height
    ax.legend(
        fontsize=7,
        title=f"{_GROUP_NAMES.get(group, group)}" + (f" (largest {shown.height} of {sizes.height})" if more else ""),
    )
    ax.set_title(title)
    return ax


@fitted
def plot_evaluation_rates(data: Any, *, by: str = "seed", top: int = 20, ax: Axes | None = None) -> Axes:
    """Pass rates with their 95% Wilson intervals as error bars.

    Groups (seeds, personas, phases) are dots on a horizontal 0-100% scale, the ``top`` with
    most evaluated responses and one "other" for the rest; days and weeks are a line over
    time, a period the data covers only in part drawn hollow. Groups with no evaluated
    response are left out (the title says how many). Takes ``evaluation_rates``'s frame or
    ``data`` (then ``by`` is passed on).

    Example:
        >>> import sessionkit as sk
        >>> ax = sk.plot_evaluation_rates("build/sample-dataset", by="persona")  # doctest: +SKIP
    """
    import polars as pl

    from sessionkit.analytics import evaluation_rates

    frame = as_frame(data, evaluation_rates, by=by)
    group = frame.columns[0]
    decided = frame.filter((pl.col("passed") + pl.col("failed")) > 0)
    skipped = frame.height - decided.height
    ax = axes(ax)
    note = f"; {skipped} without evaluations not shown" if skipped else ""
    if isinstance(frame.schema[group], pl.Date):
        x = decided[group].to_list()
        rate = [100 * v for v in decided["pass_rate"].to_list()]
        low = [max(0.0, r - 100 * v) for r, v in zip(rate, decided["pass_rate_low"].to_list(), strict=True)]
        high = [max(0.0, 100 * v - r) for r, v in zip(rate, decided["pass_rate_high"].to_list(), strict=True)]
        partial = partial_flags(data, decided, group, group) if decided.height else None
        ax.errorbar(x, rate, yerr=[low, high], fmt="none", ecolor=GREY, capsize=2)
        time_line(ax, x, rate, partial, color=BLUE)
        ax.set_ylim(0, 100)
        ax.set_ylabel("pass rate (% of evaluated responses)")
        ax.set_xlabel(f"{group} (UTC)")
        date_axis(ax)
        partial_legend(ax, partial, fontsize=8, loc="lower left")
        ax.set_title(f"Evaluation pass rate per {group}, 95% interval{note}")
        return ax
    if group != "phase":  # phases keep the helper's oxios order; other groups: the largest first
        decided = decided.with_columns(_n=pl.col("passed") + pl.col("failed")).sort(
            ["_n", group], descending=[True, False], nulls_last=True
        )
    rows = [(r[group], int(r["passed"]), int(r["failed"])) for r in decided.iter_rows(named=True)]
    none = _none(group)
    labels = [f"{label(g, none=none)} (n={p + f:,})" for g, p, f in rows[:top]]
    counts = [(p, f) for _, p, f in rows[:top]]
    if len(rows) > top:
        rest_p = sum(p for _, p, _ in rows[top:])
        rest_f = sum(f for _, _, f in rows[top:])
        labels.append(f"other ({len(rows) - top}) (n={rest_p + rest_f:,})")
        counts.append((rest_p, rest_f))
    if not labels:
        return no_data(ax, f"Evaluation pass rate per {_GROUP_NAMES.get(group, group)}{note}")
    stats = [wilson(p, f) for p, f in counts]
    rate = [100 * s[0] for s in stats if s]
    xerr = [[max(0.0, 100 * (s[0] - s[1])) for s in stats if s], [max(0.0, 100 * (s[2] - s[0])) for s in stats if s]]
    positions = list(range(len(labels)))
    ax.errorbar(rate, positions, xerr=xerr, fmt="o", color=BLUE, ecolor=GREY, capsize=3)
    ax.set_yticks(positions, labels)
    ax.set_ylim(len(labels) - 0.5, -0.5)
    ax.set_xlim(0, 100)
    ax.set_xlabel("pass rate (% of evaluated responses, 95% Wilson interval)")
    ax.set_title(f"Evaluation pass rate per {_GROUP_NAMES.get(group, group)}{note}")
    return ax


_LATENCY_BY = (None, "seed", "persona", "phase", "day")


def _latencies(data: Any, by: str | None) -> pl.DataFrame:
    from sessionkit.analytics import run_sql

    group = {None: "NULL", "seed": "x.seed_id", "persona": "s.active_persona_id", "phase": "x.phase_reached"}[by]
    return run_sql(
        data,
        f"""
        SELECT {group} AS g, x.latency_s
        FROM exchanges AS x LEFT JOIN sessions AS s ON s.session_id = x.session_id
        """,
        read_only=False,
    )


@fitted
def plot_turn_latency(
    data: Any,
    *,
    kind: str = "cdf",
    by: str | None = None,
    log: bool | None = None,
    top: int = 6,
    ax: Axes | None = None,
) -> Axes:
    """How long answers take: the distribution of turn latency in seconds.

    With ``data`` (or a frame with a ``latency_s`` column, such as the ``exchanges`` view),
    ``kind="cdf"`` draws the share of turns answered within x seconds and ``kind="hist"``
    a histogram; ``by`` (``"seed"``, ``"persona"``, ``"phase"``) draws one curve for each of
    the ``top`` largest groups, to compare them. ``log=True`` puts the seconds on a
    logarithmic axis (log-spaced bins for a histogram), which tells apart groups whose
    latencies differ by a factor rather than by a few seconds; ``None`` does so when latencies
    span more than three decades. Negative latencies (clock trouble) are left out and
    counted in the title. ``by="day"``, and ``turn_latency``'s frame, draw the percentiles
    instead (see ``plot_latency_percentiles``).

    Example:
        >>> import sessionkit as sk
        >>> ax = sk.plot_turn_latency("build/sample-dataset", by="phase", log=True)  # doctest: +SKIP
    """
    import numpy as np
    import polars as pl

    from sessionkit._options import check_option

    if kind not in ("cdf", "hist"):
        msg = f"plot_turn_latency: kind must be 'cdf' or 'hist', not {kind!r}"
        raise ValueError(msg)
    check_option("plot_turn_latency", "by", by, _LATENCY_BY)
    if (isinstance(data, pl.DataFrame) and "p50_s" in data.columns) or by == "day":
        return plot_latency_percentiles.__wrapped__(data, by=by, log=bool(log), ax=ax)  # type: ignore[attr-defined]
    ax = axes(ax)
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
    if log is None:
        log = bool(positive.size > 0 and positive.max() / max(positive.min(), 1e-9) > 1000)
    log = log and positive.size > 0
    none = f"(no {by})" if by else "(none)"
    for i, g in enumerate(groups):
        sample = np.sort(valid.filter(pl.col("g").eq_missing(g))["latency_s"].to_numpy())
        name = None if by is None else f"{label(g, none=none)} (n={sample.size:,})"
        if log:
            sample = np.maximum(sample, positive.min())
        if kind == "cdf":
            shares = np.arange(1, sample.size + 1) / sample.size * 100
            ax.step(sample, shares, where="post", label=name, color=None if by else BLUE)
        else:
            bins: Any = 40
            if log:
                bins = np.geomspace(positive.min(), positive.max(), 41)
            ax.hist(sample, bins=bins, histtype="step" if by else "bar", label=name, color=None if by else BLUE)
        if i == 0 and by is None and sample.size:
            for q in (50, 90, 99):
                ax.axvline(np.percentile(sample, q), color=GREY, linestyle=":", linewidth=1)
                ax.annotate(
                    f"p{q}",
                    (np.percentile(sample, q), 1),
                    xycoords=("data", "axes fraction"),
                    fontsize=8,
                    xytext=(2, -10),
                    textcoords="offset points",
                    color=GREY,
                )
    if log:
        ax.set_xscale("log")
    ax.set_xlabel("turn latency (seconds" + (", log scale)" if log else ")"))
    ax.set_ylabel("turns answered within x (%)" if kind == "cdf" else "turns (count)")
    if kind == "cdf":
        ax.set_ylim(0, 100)
    if by is not None and groups:
        ax.legend(fontsize=8, title=by, loc="upper left" if kind == "cdf" else "best")
    note = f"; {negative:,} negative not shown" if negative else ""
    ax.set_title(f"Turn latency{f' per {by}' if by else ''} ({valid.height:,} turns{note})")
    return ax


_PERCENTILES = (("p50_s", "p50", "#9DB4D6"), ("p90_s", "p90", BLUE), ("p99_s", "p99", "#1F3A66"))


@fitted
def plot_latency_percentiles(
    data: Any, *, by: str | None = None, top: int = 15, log: bool = False, ax: Axes | None = None
) -> Axes:
    """p50, p90 and p99 turn latency per group, as bars, each group labelled with its count of turns.

    ``by`` is ``turn_latency``'s: ``"seed"``, ``"persona"`` and ``"phase"`` give a group of
    three bars each (phases in oxios order, other groups the ``top`` with most turns);
    ``"day"`` gives three lines over time, a day the data covers only in part drawn hollow;
    ``None`` one group of all turns. ``log=True`` puts the seconds on a logarithmic axis.
    Takes ``turn_latency``'s frame or ``data``.

    Example:
        >>> import sessionkit as sk
        >>> ax = sk.plot_latency_percentiles("build/sample-dataset", by="phase")  # doctest: +SKIP
    """
    import polars as pl

    from sessionkit.analytics import turn_latency

    frame = data if isinstance(data, pl.DataFrame) else turn_latency(data, by=by)
    if "p50_s" not in frame.columns:
        msg = "plot_latency_percentiles takes data or turn_latency's frame (with p50_s, p90_s, p99_s)"
        raise ValueError(msg)
    ax = axes(ax)
    group = frame.columns[0] if frame.columns[0] != "exchanges" else None
    frame = frame.filter(pl.col("count") > 0)
    what = f" per {_GROUP_NAMES.get(group, group)}" if group else ""
    if frame.height == 0:
        return no_data(ax, f"Turn latency percentiles{what}")
    if group is not None and isinstance(frame.schema[group], pl.Date):
        x = frame[group].to_list()
        partial = partial_flags(data, frame, group, group)
        for column, name, colour in _PERCENTILES:
            time_line(ax, x, frame[column].to_list(), partial, label=name, color=colour)
        if log:
            ax.set_yscale("log")
        else:
            ax.set_ylim(bottom=0)
        ax.set_ylabel("turn latency (seconds" + (", log scale)" if log else ")"))
        ax.set_xlabel(f"{group} (UTC)")
        date_axis(ax)
        partial_legend(ax, partial, fontsize=8, ncols=4)
        ax.set_title(f"Turn latency percentiles{what}")
        return ax
    if group is not None and group != "phase":
        frame = frame.sort(["count", group], descending=[True, False], nulls_last=True).head(top)
    names = (
        [f"{label(g, none=_none(group))} (n={n:,})" for g, n in zip(frame[group], frame["count"], strict=True)]
        if group
        else [f"all turns (n={frame['count'][0]:,})"]
    )
    positions = list(range(len(names)))
    height = 0.26
    for k, (column, name, colour) in enumerate(_PERCENTILES):
        offsets = [p + (k - 1) * height for p in positions]
        values = frame[column].to_list()
        ax.barh(offsets, values, height=height, color=colour, label=name)
        for y, v in zip(offsets, values, strict=True):
            ax.annotate(f"{v:,.1f}", (v, y), xytext=(2, 0), textcoords="offset points", va="center", fontsize=6)
    ax.set_yticks(positions, names)
    ax.invert_yaxis()
    if log:
        ax.set_xscale("log")
    ax.margins(x=0.1)
    ax.set_xlabel("turn latency (seconds" + (", log scale)" if log else ")"))
    ax.legend(fontsize=8, loc="lower right", ncols=3)
    ax.set_title(f"Turn latency percentiles{what}")
    return ax
