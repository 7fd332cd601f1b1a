"""Charts of the helpers' results, drawn with matplotlib.

Each ``plot_<helper>`` takes the helper's frame (or any ``data`` the helper takes), draws on
``ax`` (a new figure when None), labels the axes, and returns the ``Axes``; it never calls
``plt.show()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl
    from matplotlib.axes import Axes

__all__ = ["plot_persona_usage", "plot_seed_usage", "top_n"]


def _axes(ax: Axes | None, size: tuple[float, float] = (7.0, 4.5)) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=size, layout="constrained")
    return ax


def _as_frame(data: Any, helper: Any) -> pl.DataFrame:
    import polars as pl

    return data if isinstance(data, pl.DataFrame) else helper(data)


def top_n(frame: pl.DataFrame, label: str, value: str, *, n: int, none_label: str) -> tuple[list[str], list[int]]:
    """The ``n`` largest rows by ``value`` plus one "other" bar for the rest; nulls get ``none_label``."""
    frame = frame.sort([value, label], descending=[True, False], nulls_last=True)
    labels = [none_label if v is None else str(v) for v in frame[label].to_list()]
    values = [int(v) for v in frame[value].to_list()]
    if len(labels) > n:
        rest = sum(values[n:])
        labels, values = [*labels[:n], f"other ({len(labels) - n})"], [*values[:n], rest]
    return labels, values


def _barh(ax: Axes, labels: list[str], values: list[int], xlabel: str, title: str) -> Axes:
    positions = range(len(labels))
    ax.barh(list(positions), values, color="#4C72B0")
    ax.set_yticks(list(positions), labels)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    for y, v in zip(positions, values, strict=True):
        ax.annotate(f"{v:,}", (v, y), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
    return ax


def plot_seed_usage(data: Any, *, by: str = "sessions", top: int = 15, ax: Axes | None = None) -> Axes:
    """Bar chart of the most used seeds (``by`` = ``"sessions"``, ``"responses"`` or ``"users"``).

    Example:
        >>> import sessionkit as sk
        >>> ax = sk.plot_seed_usage("build/sample-dataset")  # doctest: +SKIP
        >>> ax.figure.savefig("seeds.png")  # doctest: +SKIP
    """
    from sessionkit.analytics import seed_usage

    if by not in ("sessions", "responses", "users"):
        msg = f"by must be 'sessions', 'responses' or 'users', not {by!r}"
        raise ValueError(msg)
    labels, values = top_n(_as_frame(data, seed_usage), "seed_id", by, n=top, none_label="(no seed)")
    return _barh(_axes(ax), labels, values, f"{by} (count)", f"Seed usage: {by} per seed")


def plot_persona_usage(data: Any, *, by: str = "sessions", top: int = 15, ax: Axes | None = None) -> Axes:
    """Bar chart of persona use (``by`` = ``"sessions"``, ``"users"`` or ``"exchanges"``)."""
    from sessionkit.analytics import persona_usage

    if by not in ("sessions", "users", "exchanges"):
        msg = f"by must be 'sessions', 'users' or 'exchanges', not {by!r}"
        raise ValueError(msg)
    labels, values = top_n(_as_frame(data, persona_usage), "persona_id", by, n=top, none_label="(no persona)")
    return _barh(_axes(ax), labels, values, f"{by} (count)", f"Persona usage: {by} per persona")
