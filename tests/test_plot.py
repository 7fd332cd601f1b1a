"""The charts, asserted on the Axes they return: bar sizes, labels, units, and a clean PNG."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import polars as pl
import pytest
from crafted import quality_sessions
from matplotlib.axes import Axes

from sessionkit import plot
from sessionkit.analytics import (
    activity,
    evaluation_rates,
    exchange_histogram,
    persona_usage,
    phase_funnel,
    seed_usage,
    turn_latency,
)
from sessionkit.model import AgentResponse, Session, UserMessage
from sessionkit.plot._base import fit_texts, label
from sessionkit.tables import to_tables

HOSTILE = ["$x^2$", "</script><script>alert(1)</script>", "RTL \u202eabc", "emoji \U0001f680", "", "tab\there", None]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def quality():
    return to_tables(quality_sessions())


def _png_without_warnings(ax: Axes) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ax.figure.savefig(buffer, format="png", dpi=60)
    data = buffer.getvalue()
    assert data.startswith(b"\x89PNG")
    return data


def _bar_sizes(ax: Axes) -> list[float]:
    return [p.get_width() for p in ax.patches]


def _ticks(ax: Axes, axis: str = "y") -> list[str]:
    labels = ax.get_yticklabels() if axis == "y" else ax.get_xticklabels()
    return [t.get_text() for t in labels]


def _many_seeds(n: int = 50) -> pl.DataFrame:
    """seed_usage's frame for n seeds: seed-k has k + 1 sessions, plus a null row of 5."""
    rows = [(f"seed-{k:02d}", k + 1, 2 * (k + 1), 1) for k in range(n)] + [(None, 5, 7, 3)]
    frame = pl.DataFrame(rows, schema=["seed_id", "sessions", "responses", "users"], orient="row")
    return frame.sort(["sessions", "responses", "seed_id"], descending=[True, True, False], nulls_last=True)


def test_seed_usage_keeps_fifty_seeds_readable() -> None:
    ax = plot.plot_seed_usage(_many_seeds(), top=10)
    assert len(ax.patches) == 11
    assert _ticks(ax)[:3] == ["seed-49", "seed-48", "seed-47"]
    assert _ticks(ax)[-1] == "other (41)"
    assert _bar_sizes(ax)[:10] == [50, 49, 48, 47, 46, 45, 44, 43, 42, 41]
    assert _bar_sizes(ax)[-1] == sum(range(1, 41)) + 5  # seeds 0..39 and the null row
    assert ax.get_xlabel() == "sessions (count)"
    _png_without_warnings(ax)


def test_seed_usage_from_data_and_frame_agree(quality: object) -> None:
    from_data = plot.plot_seed_usage(quality, measure="responses")
    from_frame = plot.plot_seed_usage(seed_usage(quality), measure="responses")
    assert _ticks(from_data) == _ticks(from_frame) == ["s1", "s2", "(no seed)"]  # ties by id, null last
    assert _bar_sizes(from_data) == _bar_sizes(from_frame) == [4, 1, 1]
    assert from_data.get_xlabel() == "responses (count)"
    with pytest.raises(ValueError, match=r"by='responses' is a count, not a split\. Hint: measure='responses'"):
        plot.plot_seed_usage(quality, by="responses")
    with pytest.raises(ValueError, match="measure must be one of 'sessions', 'responses', 'users', not 'exchanges'"):
        plot.plot_seed_usage(quality, measure="exchanges")
    with pytest.raises(ValueError, match="by must be one of None, 'day'"):
        plot.plot_seed_usage(quality, by="phase")
    with pytest.raises(ValueError, match="split by 'month'"):
        plot.plot_seed_usage(seed_usage(quality, by="month"), by="week")


def _stacks(ax: Axes) -> dict[object, float]:
    """Bar stacks over time: the height of each period's stack, by the first day of its month."""
    heights: dict[object, float] = {}
    for patch in ax.patches:
        month = _stacks_key(patch)
        heights[month] = heights.get(month, 0) + patch.get_height()
    return heights


def test_usage_split_over_time_stacks_seeds_per_period_and_hatches_partial_ones(quality: object) -> None:
    import datetime as dt

    monthly = seed_usage(quality, by="month")
    for ax in (plot.plot_seed_usage(quality, by="month"), plot.plot_seed_usage(monthly)):  # from data or the frame
        stacks = _stacks(ax)
        assert (
            stacks[dt.date(2026, 1, 1)] == 2 and stacks[dt.date(2026, 2, 1)] == 1 and stacks[dt.date(1969, 12, 1)] == 1
        )
        assert sum(stacks.values()) == monthly["sessions"].sum()  # months between are drawn, empty
        assert ax.get_ylabel() == "sessions per month" and ax.get_xlabel() == "month (UTC)"
        assert ax.get_title() == "Seed usage: sessions per seed, by month"
    drawn = plot.plot_seed_usage(quality, by="month")
    hatched = {_stacks_key(p) for p in drawn.patches if p.get_hatch()}
    assert hatched == {dt.date(1969, 12, 1), dt.date(2026, 2, 1)}  # the data starts and ends inside these months
    assert "partial period" in [t.get_text() for t in drawn.get_legend().get_texts()]
    responses = plot.plot_seed_usage(
        seed_usage(quality, by="week").filter(pl.col("week").dt.year() == 2026), measure="responses", top=1
    )
    assert {t.get_text() for t in responses.get_legend().get_texts()} >= {"s1", "other (2)"}
    assert sum(_stacks(responses).values()) == 6
    _png_without_warnings(drawn)


def _stacks_key(patch: object) -> object:
    """The month a bar is drawn in: each bar lies inside its period."""
    import matplotlib.dates as mdates

    return mdates.num2date(patch.get_x() + patch.get_width() / 2).date().replace(day=1)


def test_usage_split_by_a_category_stacks_each_bar(quality: object) -> None:
    ax = plot.plot_seed_usage(quality, by="persona")
    assert _ticks(ax) == ["s1", "(no seed)", "s2"]  # by sessions (2, 2, 0), ties by id, null last
    widths: dict[str, float] = {}
    for patch in ax.patches:
        row = _ticks(ax)[round(patch.get_y() + patch.get_height() / 2)]
        widths[row] = widths.get(row, 0) + patch.get_width()
    assert widths == {"s1": 2, "(no seed)": 2, "s2": 0}
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"dev", "ops", "(no persona)"}
    users = plot.plot_persona_usage(quality, by="user", measure="users")
    assert "a user counts once in each user" in users.get_xlabel()
    _png_without_warnings(users)


def test_persona_usage(quality: object) -> None:
    ax = plot.plot_persona_usage(quality, measure="exchanges")
    assert _ticks(ax) == ["dev", "ops", "(no persona)"]
    assert _bar_sizes(ax) == [3, 1, 1]
    assert ax.get_xlabel() == "exchanges (count)"
    by_seed = plot.plot_persona_usage(persona_usage(quality, by="seed"), measure="sessions")
    assert by_seed.get_title() == "Persona usage: sessions per persona, by seed" and by_seed.patches
    _png_without_warnings(ax)


def test_labels_from_the_data_are_shown_literally() -> None:
    rows = [(name, 10 - i, 1, 1) for i, name in enumerate(HOSTILE)]
    frame = pl.DataFrame(rows, schema=["seed_id", "sessions", "responses", "users"], orient="row")
    ax = plot.plot_seed_usage(frame)
    labels = _ticks(ax)
    assert labels[0] == r"\$x^2\$"  # no mathtext
    assert labels[1] == "</script><script>alert(1)</script>"
    assert labels[2] == "RTL \\u202eabc"  # the bidi override is shown, not obeyed
    assert labels[3] == "emoji \\U0001f680"  # no glyph in the font: shown as its code, no warning
    assert labels[4] == '""'
    assert labels[5] == "tab\\u0009here"
    assert labels[6] == "(no seed)"
    png = _png_without_warnings(ax)
    assert len(png) > 1000
    assert label("x" * 100).endswith("…") and len(label("x" * 100)) == 40


def test_exchange_histogram(quality: object) -> None:
    ax = plot.plot_exchange_histogram(quality)
    assert [p.get_x() + p.get_width() / 2 for p in ax.patches] == [0, 1, 3]
    assert [p.get_height() for p in ax.patches] == [1, 2, 1]
    assert ax.get_xlabel() == "exchanges per session (count)"
    assert ax.get_ylabel() == "sessions (count)"
    assert "4 sessions" in ax.get_title()
    same = plot.plot_exchange_histogram(exchange_histogram(quality))
    assert [p.get_height() for p in same.patches] == [1, 2, 1]
    _png_without_warnings(ax)


def test_phase_funnel(quality: object) -> None:
    ax = plot.plot_phase_funnel(quality)
    # the oxios phases show sessions that got at least that far; others their own count, in grey
    assert _ticks(ax) == ["interview", "seed", "execute", "evaluate", "evolve", "Refine"]
    assert _bar_sizes(ax) == [2, 2, 2, 2, 1, 1]
    colors = [matplotlib.colors.to_hex(p.get_facecolor()) for p in ax.patches]
    assert colors[:5] == ["#4c72b0"] * 5 and colors[5] == "#8c8c8c"
    assert ax.get_xlabel() == "sessions (count)"
    responses = plot.plot_phase_funnel(phase_funnel(quality), measure="responses")
    assert _ticks(responses) == ["interview", "seed", "execute", "evaluate", "evolve", "Refine", "(no phase)"]
    assert _bar_sizes(responses) == [4, 3, 3, 2, 1, 1, 1]
    one = phase_funnel(quality, by="persona").filter(pl.col("persona_id") == "dev")
    dev = plot.plot_phase_funnel(one, measure="responses")
    assert _bar_sizes(dev) == [3, 2, 2, 1, 0]
    assert dev.get_title() == "Phase funnel of persona dev: responses that reached each phase"
    with pytest.raises(ValueError, match="measure must be"):
        plot.plot_phase_funnel(quality, measure="users")
    _png_without_warnings(ax)


def test_phase_funnel_per_group_is_a_line_of_shares_per_group(quality: object) -> None:
    for ax in (
        plot.plot_phase_funnel(quality, by="persona"),
        plot.plot_phase_funnel(phase_funnel(quality, by="persona")),
    ):
        assert _ticks(ax, "x") == ["interview", "seed", "execute", "evaluate", "evolve"]
        lines = {line.get_label(): list(line.get_ydata()) for line in ax.lines}
        # dev: one session, which got to Evaluate; (no persona): one session, at a phase oxios does not know
        assert lines == {
            "dev (n=1)": [100.0, 100.0, 100.0, 100.0, 0.0],
            "ops (n=1)": [100.0, 100.0, 100.0, 100.0, 100.0],
            "(no persona) (n=1)": [0.0, 0.0, 0.0, 0.0, 0.0],
        }
        assert ax.get_ylabel() == "sessions that reached the phase (%)"
    seeds = plot.plot_phase_funnel(quality, by="seed", measure="responses", top=1)
    assert [line.get_label() for line in seeds.lines] == ["s1 (n=4)"]
    assert "largest 1 of 3" in seeds.get_legend().get_title().get_text()
    _png_without_warnings(seeds)


def test_evaluation_rates_with_interval_bars(quality: object) -> None:
    ax = plot.plot_evaluation_rates(quality)
    frame = evaluation_rates(quality)
    assert _ticks(ax) == ["s1 (n=2)", "s2 (n=1)", "(no seed) (n=1)"]
    points = ax.lines[0]
    assert list(points.get_xdata()) == pytest.approx([50.0, 0.0, 100.0])
    assert list(points.get_ydata()) == [0, 1, 2]
    # the error bars span the Wilson interval
    segments = ax.collections[0].get_segments()
    spans = [x for seg in segments for x in (seg[0][0], seg[1][0])]
    want = [100 * x for row in frame.select("pass_rate_low", "pass_rate_high").rows() for x in row]
    assert spans == pytest.approx(want)
    assert ax.get_xlim() == (0, 100)
    assert "%" in ax.get_xlabel()
    _png_without_warnings(ax)


def test_evaluation_rates_fifty_seeds_and_time() -> None:
    sessions = []
    for k in range(50):
        s = Session(id=f"s{k}", user_id="u", created_at="2026-01-01T00:00:00Z", updated_at="2026-01-01T00:00:00Z")
        for i in range(k + 1):
            s.user_messages.append(UserMessage("q", "2026-01-01T00:00:00Z"))
            s.agent_responses.append(
                AgentResponse(
                    content="a",
                    seed_id=f"seed-{k:02d}",
                    evaluation_passed=i % 2 == 0,
                    timestamp=f"2026-01-{1 + i % 20:02d}T00:00:01Z",
                )
            )
        sessions.append(s)
    data = to_tables(sessions)
    ax = plot.plot_evaluation_rates(data, top=12)
    labels = _ticks(ax)
    assert len(labels) == 13 and labels[0] == "seed-49 (n=50)" and labels[-1].startswith("other (38)")
    weekly = plot.plot_evaluation_rates(data, by="week")
    rates = evaluation_rates(data, by="week")
    line = next(line for line in weekly.lines if line.get_linestyle() == "-")
    assert len(line.get_xdata()) == rates.height
    # the data starts on the first week's Thursday and ends inside the fourth: those two are partial, drawn hollow
    assert np.isnan(line.get_ydata()).tolist() == [True, False, False, True]
    assert 100 * rates["pass_rate"][1] == pytest.approx(line.get_ydata()[1])
    assert weekly.get_ylim() == (0, 100)
    _png_without_warnings(weekly)
    by_phase = plot.plot_evaluation_rates(data, by="phase")
    assert "1 without evaluations" not in by_phase.get_title()


def test_turn_latency_cdf_and_histogram(quality: object) -> None:
    ax = plot.plot_turn_latency(quality)
    line = ax.lines[0]
    assert list(line.get_xdata()) == [2.0, 3.0, 5.0, 10.0]  # the non-negative latencies, sorted
    assert list(line.get_ydata()) == [25.0, 50.0, 75.0, 100.0]
    assert "1 negative not shown" in ax.get_title()
    assert ax.get_xlabel() == "turn latency (seconds)"
    assert ax.get_ylabel() == "turns answered within x (%)"
    hist = plot.plot_turn_latency(quality, kind="hist")
    assert sum(p.get_height() for p in hist.patches) == 4
    assert hist.get_ylabel() == "turns (count)"
    by_phase = plot.plot_turn_latency(quality, by="phase")
    assert len(by_phase.lines) == 4  # interview, execute, Refine, no phase: evaluate's only latency is negative
    assert by_phase.get_legend() is not None
    summary = plot.plot_turn_latency(turn_latency(quality, by="phase"))
    assert summary.get_title() == "Turn latency percentiles per phase"
    with pytest.raises(ValueError, match="kind must be"):
        plot.plot_turn_latency(quality, kind="box")
    with pytest.raises(ValueError, match="by must be one of"):
        plot.plot_turn_latency(quality, by="week")
    for axes in (ax, hist, by_phase, summary):
        _png_without_warnings(axes)


def test_latency_percentiles_are_bars_per_group_with_counts(quality: object) -> None:
    frame = turn_latency(quality, by="phase")
    for ax in (plot.plot_latency_percentiles(quality, by="phase"), plot.plot_latency_percentiles(frame)):
        # phases with a latency, in oxios order and spelling: interview 2 s, execute 5 s, Refine 10 s, no phase 3 s
        assert _ticks(ax) == ["interview (n=1)", "execute (n=1)", "Refine (n=1)", "(no phase) (n=1)"]
        bars = {}
        for patch, colour in ((p, p.get_facecolor()) for p in ax.patches):
            bars.setdefault(colour, []).append(patch.get_width())
        assert list(bars.values()) == [[2.0, 5.0, 10.0, 3.0]] * 3  # one turn each: p50 = p90 = p99
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["p50", "p90", "p99"]
        assert ax.get_xlabel() == "turn latency (seconds)"
    log = plot.plot_latency_percentiles(quality, by="phase", log=True)
    assert log.get_xscale() == "log" and "log scale" in log.get_xlabel()
    whole = plot.plot_latency_percentiles(quality)
    assert _ticks(whole) == ["all turns (n=4)"]
    days = plot.plot_turn_latency(quality, by="day")  # the percentiles per day, a line each
    assert [line.get_label() for line in days.lines if not line.get_label().startswith("_")] == ["p50", "p90", "p99"]
    assert days.get_title() == "Turn latency percentiles per day" and days.get_xlabel() == "day (UTC)"
    for axes in (log, whole, days):
        _png_without_warnings(axes)


def test_turn_latency_goes_logarithmic_for_wide_ranges(exported: dict[str, Path]) -> None:
    ax = plot.plot_turn_latency(exported["oxios-edge"])  # 1970 and 2026 side by side
    assert ax.get_xscale() == "log"
    assert "log scale" in ax.get_xlabel()
    linear = plot.plot_turn_latency(exported["oxios-edge"], log=False)
    assert linear.get_xscale() == "linear" and "log" not in linear.get_xlabel()
    _png_without_warnings(ax)


def test_turn_latency_on_a_log_axis_compares_groups(exported: dict[str, Path]) -> None:
    ax = plot.plot_turn_latency(exported["oxios-v1"], by="phase", log=True)
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "turn latency (seconds, log scale)"
    named = [line.get_label() for line in ax.lines]
    assert len(named) == 6 and all("(n=" in n for n in named)  # one curve per phase, with its count
    hist = plot.plot_turn_latency(exported["oxios-v1"], by="phase", kind="hist", log=True)
    edges = [p.get_path().vertices[:, 0] for p in hist.patches]
    steps = np.diff(np.log(np.unique(np.concatenate(edges))))
    assert np.allclose(steps[steps > 1e-9], steps[steps > 1e-9][0], rtol=1e-6)  # log-spaced bins
    _png_without_warnings(hist)


def test_activity(quality: object) -> None:
    ax = plot.plot_activity(quality, every="1mo")
    frame = activity(quality, every="1mo")
    top, bottom = ax.figure.axes
    assert top is ax and ax.get_title() == "Activity per month"
    assert [line.get_label() for line in _labelled(top)] == ["sessions", "active users"]
    assert [line.get_label() for line in _labelled(bottom)] == ["messages", "responses"]
    by_month = dict(zip(frame["period"].to_list(), frame.iter_rows(named=True), strict=True))
    for line, column in zip(
        _labelled(top) + _labelled(bottom), ["sessions", "active_users", "messages", "responses"], strict=True
    ):
        for day, value in zip(line.get_xdata(), line.get_ydata(), strict=True):
            row = by_month.get(day)
            if row is None:
                assert value == 0  # a month without activity is drawn as zero, not skipped
            elif row["partial"]:
                assert np.isnan(value)  # drawn hollow, apart
            else:
                assert value == row[column]
    assert top.get_ylabel() == bottom.get_ylabel() == "count per month" and bottom.get_xlabel() == "month (UTC)"
    assert top.get_shared_x_axes().joined(top, bottom)
    weekly = plot.plot_activity(activity(quality, every="1w"), columns=("messages",))
    assert len(weekly.figure.axes) == 1 and weekly.get_ylabel() == "count per week"  # read from the frame's dates
    solid = _labelled(weekly)[0].get_ydata()
    assert np.nansum(solid) == 5 and int(np.isnan(solid).sum()) == 2  # 1 + 4; the first and last weeks are partial
    hollow = [line for line in weekly.lines if line.get_linestyle() == "None"]
    assert [list(h.get_ydata()) for h in hollow] == [[0, 1]]  # the partial weeks' own counts, as hollow marks
    assert "partial period" in [t.get_text() for t in weekly.get_legend().get_texts()]
    with pytest.raises(ValueError, match="no column 'users'"):
        plot.plot_activity(quality, columns=("users",))
    _png_without_warnings(ax)


def _labelled(ax: Axes) -> list[object]:
    """The lines of an Axes that carry a label: one per series (the partial marks are unlabelled)."""
    return [line for line in ax.lines if not line.get_label().startswith("_")]


def test_activity_gives_each_scale_its_own_panel(exported: dict[str, Path]) -> None:
    ax = plot.plot_activity(exported["oxios-v1"], every="1w")
    top, bottom = ax.figure.axes
    highest = [max(np.nanmax(line.get_ydata()) for line in panel.lines) for panel in (top, bottom)]
    assert highest[1] > 3 * highest[0]  # messages and responses are many times the sessions and users
    for panel, most in zip((top, bottom), highest, strict=True):
        low, high = panel.get_ylim()
        assert low == 0 and most <= high <= 1.5 * most  # each panel scaled to its own lines
    assert bottom.get_position().y1 <= top.get_position().y0  # stacked, in the space of one Axes
    placed = plt.figure().add_axes((0.1, 0.1, 0.8, 0.8))  # no grid to split: a second y axis instead
    assert plot.plot_activity(exported["oxios-v1"], ax=placed) is placed and len(placed.figure.axes) == 2


def test_every_chart_draws_on_the_axes_given(quality: object) -> None:
    charts = [
        plot.plot_seed_usage,
        plot.plot_persona_usage,
        plot.plot_exchange_histogram,
        plot.plot_phase_funnel,
        plot.plot_evaluation_rates,
        plot.plot_turn_latency,
        plot.plot_activity,
    ]
    fig, axes = plt.subplots(1, len(charts))
    for chart, ax in zip(charts, axes, strict=True):
        assert chart(quality, ax=ax) is ax
        assert ax.get_title() and (ax.get_xlabel() or ax.get_ylabel())
    assert len(fig.axes) == len(charts) + 1  # the activity chart's second panel


def test_charts_of_the_fixtures_render_cleanly(exported: dict[str, Path]) -> None:
    data = exported["oxios-edge"]  # hostile ids, 1970 timestamps, negative latencies
    _, axes = plt.subplots(2, 4, figsize=(20, 8))
    plot.plot_seed_usage(data, ax=axes[0, 0])
    plot.plot_persona_usage(data, ax=axes[0, 1])
    plot.plot_exchange_histogram(data, ax=axes[0, 2])
    plot.plot_phase_funnel(data, ax=axes[0, 3])
    plot.plot_evaluation_rates(data, ax=axes[1, 0])
    plot.plot_turn_latency(data, by="persona", kind="hist", ax=axes[1, 1])
    plot.plot_activity(data, every="1w", ax=axes[1, 2])
    plot.plot_evaluation_rates(data, by="day", ax=axes[1, 3])
    _png_without_warnings(axes[0, 0])
    assert len(axes[0, 0].patches) == 16  # the top 15 seeds and "other"
    assert np.isfinite(_bar_sizes(axes[0, 0])).all()


def test_charts_of_no_data_draw_without_warnings() -> None:
    empty = to_tables([])
    charts = [
        plot.plot_seed_usage,
        plot.plot_persona_usage,
        plot.plot_exchange_histogram,
        plot.plot_phase_funnel,
        plot.plot_evaluation_rates,
        plot.plot_turn_latency,
        plot.plot_activity,
    ]
    for chart in charts:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            ax = chart(empty)
        _png_without_warnings(ax)
    ax = plot.plot_evaluation_rates(empty)
    assert [t.get_text() for t in ax.texts] == ["no data"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ax = plot.plot_turn_latency(turn_latency(empty))
    assert [t.get_text() for t in ax.texts] == ["no data"]


def test_titles_and_labels_are_wrapped_to_fit_the_figure() -> None:
    fig = plt.figure(figsize=(3, 2), layout="constrained")
    ax = fig.add_subplot()
    ax.set_title("Evaluation pass rate per seed; 13 without evaluations not shown")
    ax.set_xlabel("pass rate (% of evaluated responses, 95% Wilson interval)")
    ax.set_ylabel("a_single_word_too_long_for_this_axis")
    fit_texts(fig)
    fig.canvas.draw()
    assert ax.get_title().count("\n") in (1, 2) and "\n" in ax.get_xlabel()
    assert ax.yaxis.label.get_fontsize() < 10 and ax.get_ylabel() == "a_single_word_too_long_for_this_axis"
    tiny = plt.figure(figsize=(1, 1)).add_subplot()
    tiny.set_title("a_single_word_far_too_long_for_any_small_figure")
    fit_texts(tiny.figure)
    assert tiny.get_title().endswith("…") and tiny.title.get_window_extent().width <= tiny.figure.bbox.width
    frame = fig.bbox
    for text in (ax.title, ax.xaxis.label, ax.yaxis.label):
        box = text.get_window_extent()
        assert frame.x0 - 1 <= box.x0 and box.x1 <= frame.x1 + 1 and frame.y0 - 1 <= box.y0 and box.y1 <= frame.y1 + 1
    lines = ax.get_title().split("\n")
    assert max(map(len, lines)) - min(map(len, lines)) < 20  # balanced, not one word left over
    short = plt.figure(figsize=(7, 4)).add_subplot()
    short.set_title("Activity per week")
    fit_texts(short.figure)
    assert short.get_title() == "Activity per week"  # what fits is left alone


def _by_values(helper: object) -> list[object]:
    """The by= values a helper takes, read from its own error message for one it does not."""
    import ast
    import re

    with pytest.raises(ValueError, match="by must be one of") as err:
        helper(to_tables([]), by="no such by")  # type: ignore[operator]
    listed = re.search(r"by must be one of (.*), not 'no such by'", str(err.value)).group(1)
    return list(ast.literal_eval(f"[{listed}]"))


def _helpers_with_a_by_and_a_plot() -> list[tuple[str, object, object]]:
    import inspect

    from sessionkit import analytics

    pairs = []
    for name in analytics.__all__:
        helper = getattr(analytics, name)
        chart = getattr(plot, f"plot_{name}", None)
        if callable(helper) and chart is not None and "by" in inspect.signature(helper).parameters:
            pairs.append((name, helper, chart))
    return pairs


def test_every_helper_with_a_by_has_a_plot_that_takes_the_same_by() -> None:
    named = [name for name, _, _ in _helpers_with_a_by_and_a_plot()]
    assert {"seed_usage", "persona_usage", "phase_funnel", "evaluation_rates", "turn_latency"} <= set(named)
    import inspect

    from sessionkit import analytics

    helpers = [getattr(analytics, n) for n in analytics.__all__ if callable(getattr(analytics, n))]
    unplotted = [h.__name__ for h in helpers if "by" in inspect.signature(h).parameters and h.__name__ not in named]
    assert not unplotted, f"helpers with by= but no plot_<helper>: {unplotted}"


def _charts_of_helpers_with_a_by() -> list[tuple[str, object, object]]:
    """Every (helper, chart) pair: plot_<helper>, and plot_latency_percentiles for turn_latency."""
    return [*_helpers_with_a_by_and_a_plot(), ("latency_percentiles", turn_latency, plot.plot_latency_percentiles)]


@pytest.fixture(scope="module")
def modern():
    """The bundled sample of today's oxios: tool calls, projects, threads."""
    from sessionkit.oxios import read_sessions

    return to_tables(read_sessions(Path(__file__).parent.parent / "data" / "oxios-modern-sample"))


@pytest.mark.parametrize("dataset", ["quality", "modern"])
@pytest.mark.parametrize(
    ("name", "helper", "chart"), _charts_of_helpers_with_a_by(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_every_plot_takes_every_by_of_its_helper(
    name: str, helper: object, chart: object, dataset: str, request: pytest.FixtureRequest
) -> None:
    """On seeds-era data and on today's oxios, from the data and from the helper's frame."""
    import inspect

    data = request.getfixturevalue(dataset)
    for by in _by_values(helper):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            from_data = chart(data, by=by)  # type: ignore[operator]
            from_frame = chart(helper(data, by=by))  # type: ignore[operator]
        for ax in (from_data, from_frame):
            assert isinstance(ax, Axes) and ax.get_title(), (name, by)
            assert ax.get_xlabel() or ax.get_ylabel(), (name, by)
        if name != "turn_latency":  # whose frame draws percentiles, its data a distribution
            assert from_data.get_title() == from_frame.get_title(), (name, by)
        if by != inspect.signature(helper).parameters["by"].default:  # None, or e.g. "seed", "model"
            assert from_data.get_title() != chart(data).get_title(), (name, by)  # type: ignore[operator]
        plt.close("all")
