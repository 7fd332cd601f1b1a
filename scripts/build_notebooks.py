"""Write the gallery notebooks 02-06 from the cells below, run every notebook, store it with its outputs.

Run from the project root (``make notebooks`` does): ``.venv/bin/python scripts/build_notebooks.py``.
Keeping 02-04 here as text makes their sources' diffs readable; 01-quickstart is written by
hand. Every notebook in ``notebooks/`` is then executed on ``data/oxios-sample`` (05 and 06: on
``data/oxios-modern-sample``; no network)
and stored with its outputs, charts as PNG, so that the repository shows the results. Volatile
parts of the outputs (temporary paths, timings, the jobs of this machine, memory addresses)
are replaced by fixed marks before storing, so a run on any machine stores the same text.

tests/test_notebooks.py runs each notebook again and fails when its outputs differ from the
stored ones: after changing sessionkit, the sample or a notebook, run ``make notebooks`` and
commit the result. A merge conflict in a notebook is resolved the same way: take either side,
then run ``make notebooks``.
"""

from __future__ import annotations

import base64
import io
import re
import sys
import tempfile
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
#: Volatile text in outputs and the fixed mark that replaces it, in order.
VOLATILE = [
    # the export's summary: how long it took, at what rate, on how many cores
    (re.compile(r"read (\d+\.\d) MB in [\d.]+ s \([\d.]+ MB/s, \d+ jobs?\)"), r"read \1 MB in <seconds> (<rate>)"),
    (re.compile(re.escape(tempfile.gettempdir()) + r"/[\w.-]+"), "<tmp>"),
    (re.compile(r"\b0x[0-9a-f]{8,16}\b"), "0x<address>"),
]
#: How far two renderings of a chart may differ (RMS of the pixel values, 0-255) and still match.
IMAGE_TOLERANCE = 1.0

SETUP = """\
from pathlib import Path
import tempfile

import polars as pl
import sessionkit as sk

ROOT = Path.cwd().parent if Path.cwd().name == "notebooks" else Path.cwd()
STATE = ROOT / "data" / "oxios-sample"
DATASET = Path(tempfile.mkdtemp(prefix="sessionkit-{name}-")) / "dataset"
print(sk.export(STATE, DATASET, jobs=1).line())"""


def md(text: str) -> nbformat.NotebookNode:
    return new_markdown_cell(text.strip("\n"))


def code(text: str) -> nbformat.NotebookNode:
    return new_code_cell(text.strip("\n"))


SEEDS_AND_PERSONAS = [
    md("""
# Seeds and personas

Which seeds (oxios' task specifications) and personas do people use, how does that change
over time, and who uses what? Each question is one call that returns a polars DataFrame, and
one more that draws it. This notebook exports the bundled sample (`data/oxios-sample`, 300
synthetic sessions) to a Parquet dataset first; every helper also takes `SessionTables` or a
`sk.connect` connection.
"""),
    code(SETUP.format(name="seeds")),
    md("""
## The most used seeds

`seed_usage` counts, per seed, the sessions whose *active* seed it is, the responses that ran
under it, and the distinct users. The null row is sessions with no seed, so the columns add
up to the totals.
"""),
    code("""
seeds = sk.seed_usage(DATASET)
seeds.head(8)
"""),
    code("""
print(seeds["sessions"].sum(), "sessions,", seeds["responses"].sum(), "responses")
sk.stats(DATASET).select("sessions", "responses")
"""),
    md("""
The chart keeps the largest seeds and folds the rest into one "other" bar, so it stays
readable however many seeds there are. It returns the matplotlib `Axes`.
"""),
    code("""
ax = sk.plot_seed_usage(DATASET, measure="responses", top=12)
"""),
    md("""
## Seeds over time

`by="day" | "week" | "month"` splits the same table by time (UTC): sessions fall in the
bucket of their `created_at`, responses in the bucket of their own timestamp. A pivot makes
it a table of seeds by month.
"""),
    md("""
The chart takes the same `by=`: the six most used seeds, stacked per month. The first and last
months are hatched: the sample starts and ends inside them, so their bars are short for that
reason alone.
"""),
    code("""
ax = sk.plot_seed_usage(DATASET, by="month", top=6)
"""),
    code("""
monthly = sk.seed_usage(DATASET, by="month")
top = seeds.drop_nulls("seed_id").head(5)["seed_id"]
(
    monthly.filter(pl.col("seed_id").is_in(top.implode()))
    .pivot(on="month", index="seed_id", values="sessions", sort_columns=True)
    .fill_null(0)
)
"""),
    md("""
## Personas

`persona_usage` counts sessions, users and exchanges per active persona. `by="seed"` shows
which seeds each persona works with (exchanges by the seed of their response).
"""),
    code("""
sk.persona_usage(DATASET)
"""),
    code("""
ax = sk.plot_persona_usage(DATASET, measure="exchanges")
"""),
    code("""
pairs = sk.persona_usage(DATASET, by="seed")
pairs.filter(pl.col("persona_id").is_not_null() & pl.col("seed_id").is_not_null()).sort(
    "exchanges", descending=True
).head(8)
"""),
    md("""
## Who uses what

`user_summary` is one row per user: sessions, exchanges, first and last seen, how many
seeds and personas they touched, and their favourite of each.
"""),
    code("""
sk.user_summary(DATASET).head(8)
"""),
    md("""
## Activity

`activity(every="1d" | "1w" | "1mo")` counts sessions created, active users, messages and
responses per period.
"""),
    code("""
weekly = sk.activity(DATASET, every="1w")
weekly.tail(4)
"""),
    code("""
ax = sk.plot_activity(weekly, columns=("sessions", "active_users"))
"""),
    md("""
## From a chart to a transcript

The longest conversation of the most used seed, read straight from the dataset with
`sk.get_session` (only that session's rows are read). In Jupyter a `Session` shows as a
transcript: exchanges in order, numbered by `seq` from 0 as in the tables, with latency, seed,
phase and evaluation badges, metadata, and long texts folded; past four exchanges it shows the
first three and folds the rest under "show all".
"""),
    code("""
con = sk.connect(DATASET)
top_seed = seeds.drop_nulls("seed_id")["seed_id"][0]
longest = con.sql(
    "SELECT session_id FROM sessions WHERE active_seed_id = ? ORDER BY exchange_count DESC, session_id LIMIT 1",
    params=[top_seed],
).fetchall()[0][0]
session = sk.get_session(con, longest)
session
"""),
]

QUALITY_AND_LATENCY = [
    md("""
# Quality and latency

How far do turns get through the oxios phases, how often do they pass evaluation, and how
long does the agent take to answer? This notebook answers each with a helper and a chart,
then writes the whole picture to one HTML page you can mail around.
"""),
    code(SETUP.format(name="quality")),
    md("""
## The phase funnel

oxios takes a turn through `interview`, `seed`, `execute`, `evaluate` and `evolve` (the names
as oxios writes them; other spellings of them count the same). `phase_funnel`
counts, per phase, the responses that stopped there and those that got at least that far
(`responses_reached`), and the sessions by the furthest phase any of their responses
reached. Phases oxios may add later, and responses without a phase, come last.
"""),
    code("""
funnel = sk.phase_funnel(DATASET)
funnel
"""),
    code("""
ax = sk.plot_phase_funnel(funnel)
"""),
    md("""
Split by persona, the funnel shows which personas get their sessions furthest:
"""),
    code("""
(
    sk.phase_funnel(DATASET, by="persona")
    .filter(pl.col("phase") == "evaluate")
    .select("persona_id", "sessions_reached", "responses_reached")
    .sort("sessions_reached", descending=True)
)
"""),
    md("""
## Evaluation pass rates

`evaluation_rates` counts passed, failed and unknown (not evaluated) responses per seed,
persona, phase, day or week. `pass_rate` is passed / (passed + failed), and the 95% Wilson
interval (`pass_rate_low` .. `pass_rate_high`) shows how little a rate from a handful of
responses says.
"""),
    code("""
rates = sk.evaluation_rates(DATASET, by="seed")
rates.sort("responses", descending=True).head(8)
"""),
    code("""
ax = sk.plot_evaluation_rates(rates, top=12)
"""),
    code("""
sk.evaluation_rates(DATASET, by="phase")
"""),
    md("""
## Turn latency

The latency of a turn is the agent response's timestamp minus the user message's, in
seconds, to the nanosecond. `turn_latency` gives count, mean, p50, p90, p99 and max; turns
stamped backwards (`negative`) and messages without an answer (`missing`) are counted
apart rather than hidden.
"""),
    code("""
sk.turn_latency(DATASET)
"""),
    code("""
by_phase = sk.turn_latency(DATASET, by="phase")
by_phase
"""),
    md("""
The distribution per phase, on a log axis (`log=True`), and the percentiles as bars with the
count of turns behind each:
"""),
    code("""
ax = sk.plot_turn_latency(DATASET, by="phase", log=True)
"""),
    code("""
ax = sk.plot_latency_percentiles(by_phase)
"""),
    md("""
The slowest turns, and the session of the slowest as a transcript. `seq` numbers the exchanges
of a session from 0, in the tables and in the transcript alike.
"""),
    code("""
con = sk.connect(DATASET)
slow = con.sql(
    "SELECT session_id, seq, latency_s, phase_reached FROM exchanges ORDER BY latency_s DESC LIMIT 5"
).pl()
slow
"""),
    code("""
sk.get_session(con, slow["session_id"][0])
"""),
    md("""
## The report

`sk.write_report` (or `sessionkit report DATASET report.html`) puts all of this on one
self-contained HTML page to mail around: a headline of the period's totals against the period
before and the biggest movers, a section for each kind of data, ranked tables and folded sample
transcripts; no scripts, nothing loaded from anywhere. `since="all"` covers the whole sample (by
default, the last 28 days). It is written to `build/` beside the notebooks and shown below
([open it on its own](../build/quality-report.html)).
"""),
    code("""
report = sk.write_report(DATASET, ROOT / "build" / "quality-report.html", title="oxios sample", since="all")
print(report.relative_to(ROOT))
"""),
    code("""
from IPython.display import IFrame

IFrame("../build/quality-report.html", width="100%", height=640)
"""),
]

SQL_COOKBOOK = [
    md("""
# SQL cookbook

The helpers cover the usual questions; for the rest there is SQL. `sk.connect` gives a
DuckDB connection with five views:

| view | one row per |
| --- | --- |
| `sessions` | session: `session_id`, `user_id`, `active_seed_id`, `active_persona_id`, `created_at`, `updated_at`, `exchange_count`, ... |
| `messages` | user message: `session_id`, `seq`, `content`, `timestamp` |
| `responses` | agent response: `session_id`, `seq`, `content`, `seed_id`, `phase_reached`, `evaluation_passed`, `timestamp` |
| `metadata` | metadata key of a session: `session_id`, `ord`, `key`, `value` (JSON text) |
| `exchanges` | message and its response: `user_content`, `response_content`, `latency_s`, `seed_id`, `phase_reached`, ... |

After `%load_ext sessionkit`, a cell starting with `%%sessionkit_sql DATA` runs its SQL over
those views and shows a polars DataFrame; DATA is a dataset folder or a variable.
"""),
    code(SETUP.format(name="sql")),
    code("""
%load_ext sessionkit
"""),
    md("""
## Sessions per day

Timestamps are `TIMESTAMPTZ` with nanoseconds; take the calendar day in UTC with `timezone`.
"""),
    code("""
%%sessionkit_sql DATASET
SELECT timezone('UTC', created_at)::DATE AS day, count(*) AS sessions, count(DISTINCT user_id) AS users
FROM sessions
GROUP BY ALL
ORDER BY day DESC
LIMIT 7
"""),
    md("""
## Share of responses per seed

A window over the grouped counts gives each seed's share.
"""),
    code("""
%%sessionkit_sql DATASET
SELECT
    coalesce(seed_id, '(no seed)') AS seed,
    count(*) AS responses,
    round(100 * count(*) / sum(count(*)) OVER (), 1) AS pct
FROM responses
GROUP BY ALL
ORDER BY responses DESC, seed
LIMIT 8
"""),
    md("""
## The longest conversation of each user

`QUALIFY` filters on a window function without a subquery.
"""),
    code("""
%%sessionkit_sql DATASET
SELECT user_id, session_id, exchange_count
FROM sessions
QUALIFY row_number() OVER (PARTITION BY user_id ORDER BY exchange_count DESC, session_id) = 1
ORDER BY exchange_count DESC, user_id
LIMIT 8
"""),
    md("""
## How conversations open

The first message of each session is the one at `seq = 0`.
"""),
    code("""
%%sessionkit_sql DATASET
SELECT left(content, 60) AS opening, timestamp
FROM messages
WHERE seq = 0
ORDER BY timestamp
LIMIT 5
"""),
    md("""
## Latency percentiles per phase

`quantile_cont` interpolates like numpy; `FILTER` keeps clock-skewed turns out.
"""),
    code("""
%%sessionkit_sql DATASET --out latency
SELECT
    coalesce(phase_reached, '(none)') AS phase,
    count(*) AS turns,
    round(quantile_cont(latency_s, 0.5) FILTER (latency_s >= 0), 2) AS p50_s,
    round(quantile_cont(latency_s, 0.9) FILTER (latency_s >= 0), 2) AS p90_s
FROM exchanges
GROUP BY ALL
ORDER BY p90_s DESC
"""),
    md("""
`--out latency` also kept the frame in a variable, to go on in polars:
"""),
    code("""
latency.filter(pl.col("turns") > 100)
"""),
    md("""
## Slicing by a metadata value

Metadata values are JSON text; `->>'$'` reads a JSON string as text. Here the pass rate per
`channel` the session came from:
"""),
    code("""
%%sessionkit_sql DATASET
SELECT
    m.value->>'$' AS channel,
    count(*) FILTER (r.evaluation_passed) AS passed,
    count(*) FILTER (NOT r.evaluation_passed) AS failed,
    round(passed / nullif(passed + failed, 0), 3) AS pass_rate
FROM responses AS r
JOIN metadata AS m ON m.session_id = r.session_id AND m.key = 'channel'
GROUP BY ALL
ORDER BY pass_rate DESC
"""),
    md("""
## Turns that failed, then passed

`lag` looks at the previous response of the same session.
"""),
    code("""
%%sessionkit_sql DATASET
WITH ordered AS (
    SELECT session_id, seq, evaluation_passed,
           lag(evaluation_passed) OVER (PARTITION BY session_id ORDER BY seq) AS before
    FROM responses
)
SELECT count(*) FILTER (before = false AND evaluation_passed) AS recovered,
       count(*) FILTER (before = false AND NOT evaluation_passed) AS failed_again
FROM ordered
"""),
    md("""
## Searching the text

`ILIKE` for a quick search across what users asked and what the agent answered.
"""),
    code("""
%%sessionkit_sql DATASET
SELECT session_id, seq, left(user_content, 50) AS asked, round(latency_s, 1) AS latency_s
FROM exchanges
WHERE user_content ILIKE '%deploy%' AND response_content ILIKE '%report%'
ORDER BY latency_s DESC
LIMIT 5
"""),
    md("""
## Without sessionkit

The dataset is plain Parquet: any engine reads a table with the glob
`DATASET/<table>/**/*.parquet`, here polars lazily and DuckDB directly.
"""),
    code("""
(
    pl.scan_parquet(DATASET / "responses" / "**" / "*.parquet")
    .group_by("phase_reached")
    .agg(pl.len().alias("responses"))
    .sort("responses", descending=True)
    .collect()
)
"""),
    code("""
import duckdb

glob = str(DATASET / "sessions" / "**" / "*.parquet")
duckdb.sql(f"SELECT count(*) AS sessions, max(exchange_count) AS longest FROM read_parquet('{glob}')").pl()
"""),
]

MODERN_SETUP = SETUP.replace('"oxios-sample"', '"oxios-modern-sample"')

TOOLS_PROJECTS_THREADS = [
    md("""
# Tools, projects and threads

Since version 1.9 oxios records no seeds; what it records instead is every tool call of a turn
(`trajectory_steps`), the agent's reasoning, the project a session belongs to and the session
it continues. sessionkit makes them the `tool_calls` and `reasoning` tables and the
`project_id` and `parent_session_id` columns of `sessions`. This notebook exports the bundled
`data/oxios-modern-sample` (200 synthetic sessions in today's shape, made by
`sessionkit demo --shape modern`) and answers the usual questions on it.
"""),
    code(MODERN_SETUP.format(name="tools")),
    md("""
## Which tools, how often they fail, how long they take

`tool_usage` gives one row per tool. Error rates come with a 95% Wilson interval, wide for
rarely used tools. oxios writes `duration_ms` 0 when it did not measure a call: those are
counted in `zero_duration` and left out of the percentiles.
"""),
    code("""
tools = sk.tool_usage(DATASET)
tools.select("tool_name", "calls", "errors", "error_rate", "error_rate_high", "zero_duration", "duration_p50_ms", "duration_p90_ms")
"""),
    code("""
ax = sk.plot_tool_usage(tools)
"""),
    md("""
A shell command and a file read differ a thousandfold, so durations go on a logarithmic axis.
"""),
    code("""
ax = sk.plot_tool_durations(DATASET)
"""),
    md("""
## What the agent does in a row

`tool_sequences` counts runs of consecutive tools within one turn: here, three in a row.
"""),
    code("""
sk.tool_sequences(DATASET, n=3, top=8)
"""),
    md("""
## Projects

`project_usage` gives sessions, users, exchanges and tool calls per project; the null row is
sessions of no project. The chart takes every `by=` of the helper.
"""),
    code("""
sk.project_usage(DATASET).head(5)
"""),
    code("""
ax = sk.plot_project_usage(DATASET, by="month", measure="tool_calls", top=5)
"""),
    md("""
## Threads

A session that continues another names it in `parent_session_id`. `threads` follows the
chain to its root; `root_pruned` says oxios pruned the root (it keeps 7 days or 100 sessions
by default), so the thread starts at its children.
"""),
    code("""
threads = sk.threads(DATASET)
threads.head(5)
"""),
    md("""
## Every exchange with its tool calls

The `exchanges` view carries each turn's tool calls, errors and time in tools, so SQL can
relate them to the turn's latency.
"""),
    code("""
con = sk.connect(DATASET)
con.sql('''
    SELECT n_tool_calls, count(*) AS turns, round(median(latency_s), 1) AS median_latency_s,
           round(median(tool_ms) / 1000, 1) AS median_tool_s
    FROM exchanges GROUP BY n_tool_calls ORDER BY n_tool_calls LIMIT 8
''').pl()
"""),
    md("""
## Which generation of oxios wrote the data

A fleet upgrades oxios over time; `generations` counts, per month, the sessions that carry
each part of the shape: the drift report.
"""),
    code("""
sk.generations(DATASET)
"""),
]

COST_AND_MODELS = [
    md("""
# Cost and models

oxios keeps tokens, cost and model per agent run, not per session: one `AgentInfo` record per
run in `<state>/agents/<id>.json`, named by the request it served. `sessionkit export` takes
them beside the sessions (the `agents` and `agent_tool_calls` tables) and links each run to the
exchange it served: the user message of the same text, in a session of the same project, whose
turn the run started in. This notebook exports the bundled `data/oxios-modern-sample` (200
sessions and their agent runs, made by `sessionkit demo --shape modern`) and asks what it costs
and what fails.
"""),
    code(MODERN_SETUP.format(name="cost")),
    md("""
## Which runs are linked

A run links when exactly one exchange matches; a retry after the answer, or a run of a session
oxios has pruned since (it keeps runs 30 days, sessions 7), links to none.
"""),
    code("""
sk.stats(DATASET).select("exchanges", "agent_runs", "runs_linked", "runs_unlinked", "runs_ambiguous")
"""),
    md("""
## What each model costs

`cost` sums the runs' tokens and oxios' cost estimate per model (or project, user, persona,
day, week, month), with the cost per exchange and per thousand tokens.
"""),
    code("""
sk.cost(DATASET, by="model").select("model_id", "runs", "failed_runs", "cost_usd", "cost_per_exchange", "cost_per_1k_tokens")
"""),
    md("""
Over time, stacked by model: a model that arrives or leaves shows at once. Weeks the runs cover
only in part are hatched.
"""),
    code("""
ax = sk.plot_cost(DATASET, by="model", every="week")
"""),
    code("""
ax = sk.plot_cost(DATASET, by="project", top=5)
"""),
    md("""
## How each model does

`model_usage` gives runs, the failure rate with a 95% Wilson interval, tokens, cost and the
p50/p90 run time per model; `plot_model_usage` draws runs and failure rates.
"""),
    code("""
sk.model_usage(DATASET).select("model_id", "runs", "failure_rate", "failure_high", "cost_usd", "duration_p50_s", "duration_p90_s")
"""),
    code("""
ax = sk.plot_model_usage(DATASET)
"""),
    md("""
## The failures the session files do not show

oxios' chat route saves `is_error = false` for every tool call in the session file; the agent
run keeps the real flag. `tool_usage` takes the run's flag for the turns linked to one
(`errors`), keeps the session files' count (`errors_flagged`), and says where `errors` came
from.
"""),
    code("""
sk.tool_usage(DATASET).select("tool_name", "calls", "errors", "errors_flagged", "errors_source", "agent_calls")
"""),
    md("""
## The most expensive turns

The `exchanges` view carries the linked run's model, tokens and cost, beside the turn's tool
calls and latency.
"""),
    code("""
con = sk.connect(DATASET)
con.sql('''
    SELECT session_id, seq, model_id, tokens_input, tokens_output, round(cost_usd, 4) AS cost_usd,
           n_tool_calls, round(latency_s, 1) AS latency_s
    FROM exchanges WHERE agent_id IS NOT NULL ORDER BY cost_usd DESC LIMIT 5
''').pl()
"""),
]

NOTEBOOK_CELLS = {
    "02-seeds-and-personas.ipynb": SEEDS_AND_PERSONAS,
    "03-quality-and-latency.ipynb": QUALITY_AND_LATENCY,
    "04-sql-cookbook.ipynb": SQL_COOKBOOK,
    "05-tools-projects-threads.ipynb": TOOLS_PROJECTS_THREADS,
    "06-cost-and-models.ipynb": COST_AND_MODELS,
}


QUICKSTART_NEXT = md("""
## Next

The gallery goes on from here: `02-seeds-and-personas.ipynb` (usage over time, users, from a
chart to a transcript), `03-quality-and-latency.ipynb` (phases, evaluations, turn latency and
the HTML report), `04-sql-cookbook.ipynb` (the SQL magic and recipes against the views),
`05-tools-projects-threads.ipynb` (today's oxios: tool calls, projects, threads) and
`06-cost-and-models.ipynb` (agent runs: cost, models, the tool errors session files hide).
""")


def _point_quickstart_onwards() -> Path:
    """Append the "Next" cell to 01-quickstart.ipynb (written by hand) unless it is there."""
    path = NOTEBOOKS / "01-quickstart.ipynb"
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.source.startswith("## Next") and cell.source != QUICKSTART_NEXT.source:
            cell.source = QUICKSTART_NEXT.source
            nbformat.write(notebook, path)
    if not any(cell.source.startswith("## Next") for cell in notebook.cells):
        cell = QUICKSTART_NEXT.copy()
        cell["id"] = "01-next"
        notebook.cells.append(cell)
        nbformat.validate(notebook)
        nbformat.write(notebook, path)
    return path


def build() -> list[Path]:
    """Write the notebooks; returns their paths."""
    written = [_point_quickstart_onwards()]
    for name, cells in NOTEBOOK_CELLS.items():
        notebook = new_notebook(
            cells=cells,
            metadata={
                "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                "language_info": {"name": "python"},
            },
        )
        for i, cell in enumerate(notebook.cells):
            cell["id"] = f"{name[:2]}-{i:02d}"  # stable ids: no churn in git
        nbformat.validate(notebook)
        path = NOTEBOOKS / name
        nbformat.write(notebook, path)
        written.append(path)
    return written


def _scrub(text: str) -> str:
    for pattern, mark in VOLATILE:
        text = pattern.sub(mark, text)
    return text


def normalise(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook with its volatile parts replaced by fixed marks (in place; also returned)."""
    notebook.metadata["language_info"] = {"name": "python"}
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
        for output in cell.get("outputs", []):
            if "text" in output:
                output["text"] = _scrub(output["text"])
            for kind, value in output.get("data", {}).items():
                if isinstance(value, str) and not kind.startswith("image/"):
                    output["data"][kind] = _scrub(value)
    return notebook


def execute(path: Path) -> nbformat.NotebookNode:
    """Run the notebook at ``path`` from a clean slate, in its folder; returns it with its outputs, normalised."""
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        record_timing=False,
        # one print can reach the kernel's stdout in two flushes on a busy machine: merged, it is one output
        coalesce_streams=True,
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    return normalise(notebook)


def _pixels(png: str):
    import matplotlib.image

    return matplotlib.image.imread(io.BytesIO(base64.b64decode(png)), format="png")


def differences(stored: nbformat.NotebookNode, fresh: nbformat.NotebookNode) -> list[str]:
    """Where a fresh run's outputs differ from the stored ones (both normalised); empty when they match.

    Charts match when their pixels are within ``IMAGE_TOLERANCE`` of each other, so that a
    rendering detail of another machine's font library does not count.
    """
    import numpy as np

    found = []
    if [c.source for c in stored.cells] != [c.source for c in fresh.cells]:
        return ["the cells' sources differ"]
    for number, (old, new) in enumerate(zip(stored.cells, fresh.cells, strict=True)):
        if old.cell_type != "code":
            continue
        where = f"cell {number} ({old.source.splitlines()[0][:50] if old.source else 'empty'!r})"
        if len(old.outputs) != len(new.outputs):
            found.append(f"{where}: {len(old.outputs)} outputs stored, {len(new.outputs)} now")
            continue
        for a, b in zip(old.outputs, new.outputs, strict=True):
            a_data, b_data = dict(a.get("data", {})), dict(b.get("data", {}))
            png_a, png_b = a_data.pop("image/png", None), b_data.pop("image/png", None)
            if (png_a is None) != (png_b is None):
                found.append(f"{where}: a chart appeared or went")
            elif png_a is not None:
                x, y = _pixels(png_a), _pixels(png_b)
                rms = float(np.sqrt(np.mean((x - y) ** 2)) * 255) if x.shape == y.shape else float("inf")
                if rms > IMAGE_TOLERANCE:
                    found.append(f"{where}: the chart differs (RMS {rms:.2f} over {IMAGE_TOLERANCE})")
            keys = ("output_type", "name", "text", "ename", "evalue")
            if [a.get(k) for k in keys] != [b.get(k) for k in keys] or a_data != b_data:
                found.append(
                    f"{where}: the output differs: {str(a.get('text', a_data))[:200]!r} != {str(b.get('text', b_data))[:200]!r}"
                )
    return found


def main(names: list[str]) -> None:
    """Write 02-04 from their cells, then run and store the notebooks named (default: all)."""
    for path in build():
        print(f"wrote {path.relative_to(ROOT)}")
    paths = [NOTEBOOKS / n for n in names] if names else sorted(NOTEBOOKS.glob("*.ipynb"))
    for path in paths:
        notebook = execute(path)
        errors = [o for c in notebook.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
        if errors:
            sys.exit(f"{path.relative_to(ROOT)}: {errors[0]['ename']}: {errors[0]['evalue']}")
        nbformat.write(notebook, path)
        print(f"ran {path.relative_to(ROOT)} ({path.stat().st_size / 1e3:,.0f} kB with its outputs)")


if __name__ == "__main__":
    main(sys.argv[1:])
