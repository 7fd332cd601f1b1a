"""Charts of the helpers' results, drawn with matplotlib.

Each ``plot_<helper>`` takes the helper's frame (or any ``data`` the helper takes), draws on
``ax`` (a new figure when None), labels the axes with their units, and returns the ``Axes``;
it never calls ``plt.show()``. Every ``by=`` its helper takes, it takes too, and a frame the
helper split is drawn split. Charts of seeds and personas keep the ``top`` largest and put
the rest in one "other" bar, so they stay readable with many of them. Charts over time draw a
period the data covers only in part (its first and last) hollow or hatched, so that its low
count does not read as a drop. Titles and axis labels are fitted to the figure as it is when
the chart is drawn: one that would stick out of it is wrapped onto more lines (or, failing
that, set smaller). Labels taken from the data are shown literally: ``$`` does not start
math, and characters the font lacks (or invisible controls such as bidi overrides) are shown
as ``\\uXXXX``.
"""

from sessionkit.plot._cost import plot_cost, plot_model_usage
from sessionkit.plot._quality import (
    plot_evaluation_rates,
    plot_latency_percentiles,
    plot_phase_funnel,
    plot_turn_latency,
)
from sessionkit.plot._tools import plot_project_usage, plot_tool_durations, plot_tool_usage
from sessionkit.plot._usage import plot_activity, plot_exchange_histogram, plot_persona_usage, plot_seed_usage

__all__ = [
    "plot_activity",
    "plot_cost",
    "plot_evaluation_rates",
    "plot_exchange_histogram",
    "plot_latency_percentiles",
    "plot_model_usage",
    "plot_persona_usage",
    "plot_phase_funnel",
    "plot_project_usage",
    "plot_seed_usage",
    "plot_tool_durations",
    "plot_tool_usage",
    "plot_turn_latency",
]
