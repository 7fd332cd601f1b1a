"""The report's section on the agent runs: what they cost, per model and over time, and how each model does.

Kept apart from ``_page`` so that the section is one call there; it is left out for data
without agent-run records (``<state>/agents``, issue 13).
"""

from __future__ import annotations

import math

from sessionkit.report import _blocks as b
from sessionkit.report._common import Section
from sessionkit.report._period import NS_PER_DAY, Period, PeriodSource

#: The charts are lower than the report's others: the section is a summary, its table folded.
_SIZE = (7.0, 2.8)


def _dollars(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"${value:,.{digits}f}"


def cost_and_models(src: PeriodSource, period: Period, top: int = 8) -> list[Section]:
    """The section "Cost and models" for the agent runs created in the period; none without any."""
    from sessionkit import analytics as a
    from sessionkit import plot as p

    runs, linked = src.rows("SELECT count(*), count(linked_seq) FROM agents")[0]
    if not runs:
        return []
    every = "day" if period.length <= 14 * NS_PER_DAY else "week"
    over_time = b.svg(lambda ax: p.plot_cost(src, by="model", every=every, top=top, ax=ax), _SIZE)
    models = b.svg(lambda ax: p.plot_model_usage(src, top=top, ax=ax), _SIZE)
    usage = a.model_usage(src)
    cost = a.cost(src, by="model").select("model_id", "exchanges", "cost_per_exchange")
    frame = usage.join(cost, on="model_id", how="left", nulls_equal=True).sort(
        ["cost_usd", "model_id"], descending=[True, False], nulls_last=True
    )
    columns = [
        b.group_col("model", "model_id", "(no model)"),
        b.col("runs", "runs"),
        b.Column("failed", lambda r: b.rate(r["failure_rate"], r["failure_low"], r["failure_high"])),
        b.col("tokens in", "tokens_input"),
        b.col("tokens out", "tokens_output"),
        b.col("cost", "cost_usd", _dollars),
        b.col("per exchange", "cost_per_exchange", lambda v: _dollars(v, 4)),
        b.col("p50 run", "duration_p50_s", b.seconds),
        b.col("p90 run", "duration_p90_s", b.seconds),
    ]
    total = math.fsum(usage["cost_usd"].to_list())
    caption = f"{runs:,} runs, {_dollars(total)} (oxios' estimate), {linked:,} linked to an exchange; per {every}, UTC."
    body = (
        f'<div class="grid">{b.figure(over_time, caption)}'
        f"{b.figure(models, 'Runs per model; the share that failed, with 95% intervals.')}</div>"
        + b.full(frame, columns, noun="models", order="most costly first", ident="models")
    )
    return [Section("cost", "Cost and models", body)]
