"""The ``sessionkit`` command line: parses, calls the library, prints, and maps errors to exit codes.

This is the only module that prints or exits. Exit codes: 0 success, 1 a problem with the
input or the data (the message names the file and what to do), 2 a usage error.
"""

from __future__ import annotations

import errno
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import click

from sessionkit.exceptions import SessionkitError, with_hint


class _Dataset(click.ParamType):
    """A dataset: a local folder (a Path) or ``s3://bucket/prefix`` (kept as text: a Path would
    fold its double slash)."""

    name = "dataset"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Path | str:
        text = str(value)
        return text if text.startswith("s3://") else Path(text)


DATASET = _Dataset()

__all__ = ["cli", "main"]

_DEMO_MARKER = ".sessionkit-demo"


@contextmanager
def _progress(label: str, *, quiet: bool, unit: str = "file") -> Iterator[Callable[[int, int], None] | bool]:
    """A progress bar on a terminal (stderr), learning its total on the first update; none when quiet."""
    from sessionkit._progress import resolve

    update, done = resolve(not quiet and sys.stderr.isatty(), label, unit=unit)
    try:
        yield update or False
    finally:
        done()


_WHOLE_VALUES_HINT = "whole values: --format csv, json or markdown; more: --max-width, --max-rows"


def output_options(*, rows: bool = True) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The output options of the commands that print tables: ``--format``, ``--max-width`` and,
    for commands that list rows, ``--max-rows``."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        options = [
            click.option(
                "--format",
                "-f",
                "fmt",
                type=click.Choice(["table", "csv", "json", "markdown"]),
                default="table",
                show_default=True,
                help="table: one line per row, fitted to the terminal; csv, json and markdown: every value whole.",
            ),
            click.option(
                "--max-width",
                type=click.IntRange(min=0),
                default=None,
                help="Width of the table in characters (default: the terminal's; 0: no limit).",
            ),
        ]
        if rows:
            options.append(
                click.option(
                    "--max-rows",
                    type=click.IntRange(min=0),
                    default=40,
                    show_default=True,
                    help="Rows of the table: the first and the last ones (0: all).",
                )
            )
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def _safe(text: str) -> str:
    """``text`` for the terminal: each line with its controls and bidi characters made visible."""
    from sessionkit._terminal import visible

    return "\n".join(visible(line) for line in text.split("\n"))


def _width(max_width: int | None) -> int | None:
    """The table width: as asked (0: no limit), else the terminal's (``COLUMNS``, or 80 when not a terminal)."""
    import shutil

    if max_width is None:
        return shutil.get_terminal_size((80, 24)).columns
    return max_width or None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sessionkit")
def cli() -> None:
    """Turn oxios agent sessions into analytics-ready Parquet, and query them with SQL.

    \b
    sessionkit export ~/.oxios/state sessions-dataset
    sessionkit stats sessions-dataset
    sessionkit sql sessions-dataset "SELECT seed_id, count(*) FROM responses GROUP BY 1"
    """


@cli.command()
@click.argument("src", type=click.Path(path_type=Path))
@click.argument("out", type=DATASET)
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None, help="Worker processes (default: all cores).")
@click.option("--strict", is_flag=True, help="Exit 1 when any file was quarantined (the good ones are still exported).")
@click.option(
    "--pseudonymize",
    "keyfile",
    type=click.Path(path_type=Path),
    default=None,
    help="Replace user ids with keyed pseudonyms (HMAC-SHA-256 under the key in KEYFILE; see `sessionkit keygen`).",
)
@click.option("--pseudonymize-sessions", is_flag=True, help="Session ids too (needs --pseudonymize).")
@click.option(
    "--redact",
    type=click.Choice(["none", "drop", "mask", "hash"]),
    default="none",
    show_default=True,
    help="Message, response, tool call and reasoning text: keep, drop, mask personal data and secrets, or keyed-hash it.",
)
@click.option(
    "--metadata-keys",
    "allow",
    type=click.Path(path_type=Path),
    default=None,
    help="A file of metadata keys to keep, one per line; the others are dropped.",
)
@click.option("--drop-metadata-keys", "drop", default="", help="Metadata keys to drop, separated by commas.")
@click.option(
    "--partition-by",
    type=click.Choice(["none", "month", "day"]),
    default=None,
    help="For a new dataset: Hive-style folders by month or day of the sessions' creation (default none); an existing dataset keeps its own.",
)
@click.option(
    "--break-lock",
    is_flag=True,
    help="On s3://, take over the writer's lock of a writer known to be dead (it goes stale by itself after 2 minutes).",
)
@click.option(
    "--no-agents", is_flag=True, help="Leave out the agent-run records of a state directory (SRC/agents/*.json)."
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary line.")
def export(
    src: Path,
    out: Path | str,
    jobs: int | None,
    strict: bool,
    keyfile: Path | None,
    pseudonymize_sessions: bool,
    redact: str,
    allow: Path | None,
    drop: str,
    partition_by: str | None,
    break_lock: bool,
    no_agents: bool,
    quiet: bool,
) -> None:
    """Export the sessions under SRC into the Parquet dataset OUT, new or existing.

    SRC is an oxios state directory (holding sessions/, and agents/ with the agent-run
    records), a sessions/ folder, or one .json file. OUT gets one folder per table:
    sessions/, messages/, responses/, metadata/, agents/, agent_tool_calls/, plus runs/ and
    errors/. Run it again (e.g. from cron) to add new sessions, update changed
    ones and keep the ones oxios pruned; unchanged files are skipped without being read.
    Files that are not valid sessions are copied to OUT/quarantine/ and listed by
    `sessionkit errors OUT`; the exit code is 0 unless --strict. OUT may be
    s3://bucket/prefix (credentials, region and endpoint from the AWS environment variables).
    """
    import warnings

    from sessionkit.archive import ExportError
    from sessionkit.archive import export as run_export
    from sessionkit.exceptions import SessionkitWarning

    privacy = _privacy(keyfile, pseudonymize_sessions, redact, allow, drop)
    with _progress("export", quiet=quiet) as update, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SessionkitWarning)
        try:
            summary = run_export(
                src,
                out,
                jobs=jobs,
                strict=strict,
                privacy=privacy,
                partition_by=partition_by,
                progress=update,
                break_lock=break_lock,
                agents=not no_agents,
            )
        except ExportError as err:
            if not quiet and err.summary is not None:
                click.echo(_safe(err.summary.line()))
            _error(err.message, err.hint)
            raise SystemExit(1) from None
    if not quiet:
        click.echo(_safe(summary.line()))
    for warning in caught:
        if issubclass(warning.category, SessionkitWarning):
            click.echo(_safe(f"warning: {warning.message}"), err=True)
        else:
            warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
    for row in summary.errors[:10]:
        where = f" at {row['json_path']}" if row["json_path"] else ""
        click.echo(_safe(f"quarantined {row['file']}{where}: {row['message']}"), err=True)
    if len(summary.errors) > 10:
        click.echo(f"... and {len(summary.errors) - 10} more newly quarantined files", err=True)
    if summary.quarantined:
        click.echo(
            _safe(f"{summary.quarantined} files are in quarantine: `sessionkit errors {out}` lists them"), err=True
        )


def _privacy(keyfile: Path | None, sessions: bool, redact: str, allow: Path | None, drop: str) -> Any:
    """The export's privacy settings from the command line, or None when there are none."""
    from sessionkit.exceptions import PrivacyError
    from sessionkit.privacy import Privacy, load_key, read_key_list

    dropped = frozenset(k.strip() for k in drop.split(",") if k.strip())
    if keyfile is None and (sessions or redact == "hash"):
        msg = f"{'--pseudonymize-sessions' if sessions else '--redact hash'} needs a key"
        raise PrivacyError(msg, hint="add --pseudonymize KEYFILE (create one with `sessionkit keygen KEYFILE`)")
    if keyfile is None and redact == "none" and allow is None and not dropped:
        return None
    return Privacy(
        load_key(keyfile) if keyfile is not None else None,
        pseudonymize_users=keyfile is not None,
        pseudonymize_sessions=sessions,
        redact=redact,  # type: ignore[arg-type]
        keep_metadata_keys=read_key_list(allow) if allow is not None else None,
        drop_metadata_keys=dropped,
    )


@cli.command()
@click.argument("keyfile", type=click.Path(path_type=Path))
def keygen(keyfile: Path) -> None:
    """Create a new secret key for pseudonyms in KEYFILE (hex, file mode 0600).

    Keep it apart from the data: whoever holds it can link pseudonyms back to the ids. The
    same key gives the same pseudonyms in every export; a new key gives all-new ones.
    """
    from sessionkit.privacy import key_fingerprint, write_key

    key = write_key(keyfile)
    click.echo(_safe(f"wrote a new key to {keyfile} (mode 0600); its fingerprint is {key_fingerprint(key)}"))


@cli.command()
@click.argument("dataset", type=DATASET)
@click.argument("dest", type=click.Path(path_type=Path))
@click.option("--overwrite", is_flag=True, help="Replace session and agent files that already exist in DEST.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None, help="Worker processes (default: all cores).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary line.")
def restore(dataset: Path | str, dest: Path, overwrite: bool, jobs: int | None, quiet: bool) -> None:
    """Write the sessions of DATASET back as oxios files, DEST/sessions/<id>.json, and its
    agent-run records as DEST/agents/<id>.json.

    A dataset exported from oxios files restores them byte for byte.
    """
    import warnings

    from sessionkit.archive import restore as run_restore
    from sessionkit.archive import restore_agents
    from sessionkit.exceptions import SessionkitWarning

    with _progress("restore", quiet=quiet, unit="session") as update, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SessionkitWarning)
        count = run_restore(dataset, dest, overwrite=overwrite, jobs=jobs, progress=update, agents=False)
        agents = restore_agents(str(dataset), dest, overwrite=overwrite)
    if not quiet:
        click.echo(_safe(f"restored {count} sessions to {dest / 'sessions'}"))
        if agents:
            click.echo(_safe(f"restored {agents} agent records to {dest / 'agents'}"))
    for warning in caught:
        if issubclass(warning.category, SessionkitWarning):
            click.echo(_safe(f"warning: {warning.message}"), err=True)
        else:
            warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)


def _size(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    """A size option: bytes, or text like 256MB or 1GiB."""
    if value is None:
        return None
    from sessionkit._layout import parse_size

    try:
        return parse_size(value)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None


@cli.command()
@click.argument("out", type=DATASET)
@click.option(
    "--target-size",
    callback=_size,
    default=None,
    help="The size of the files to make, e.g. 256MB or 1GiB (default: the dataset's own, 256 MiB unless set before).",
)
@click.option(
    "--partition-by",
    type=click.Choice(["none", "month", "day"]),
    default=None,
    help="Rewrite the dataset with this partitioning (default: its own; none for a dataset of sessionkit 0.1).",
)
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None, help="Threads (default: all cores).")
@click.option(
    "--break-lock",
    is_flag=True,
    help="On s3://, take over the writer's lock of a writer known to be dead (it goes stale by itself after 2 minutes).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary line.")
def compact(
    out: Path | str, target_size: int | None, partition_by: str | None, jobs: int | None, break_lock: bool, quiet: bool
) -> None:
    """Rewrite the small files of dataset OUT into large ones, as one new version.

    In every table, the files below the target size are merged into files of that size, their
    rows ordered by the sessions' creation time; readers see the old version or the new one.
    With --partition-by, or on a dataset made by sessionkit 0.1 (one folder per day), every
    file is rewritten into the new layout. `sessionkit export` compacts by itself, a little at a
    time, as small files pile up.
    """
    from sessionkit.archive import compact as run_compact

    with _progress("compact", quiet=quiet, unit="table") as update:
        summary = run_compact(
            out, target_size=target_size, partition_by=partition_by, jobs=jobs, progress=update, break_lock=break_lock
        )
    if not quiet:
        click.echo(summary.line())


@cli.command()
@click.argument("dataset", type=DATASET)
@click.argument("query")
@output_options()
def sql(dataset: Path | str, query: str, fmt: str, max_width: int | None, max_rows: int) -> None:
    """Run a SQL QUERY over DATASET's views: sessions, messages, responses, metadata, exchanges.

    The table shows one line per row, cutting long values with "…" and leaving out middle
    columns that do not fit (it says which); timestamps keep all nine digits.
    """
    from sessionkit.query import connect

    con = connect(dataset)
    try:
        result = con.sql(query)
        table = result.to_arrow_table() if result is not None else None
    finally:
        con.close()
    if table is None:
        return
    _print_table(table, fmt, max_width=max_width, max_rows=max_rows)


def _with_nanoseconds(frame: Any) -> dict[str, Any]:
    """The one row of a frame, timestamps as RFC 3339 text with all their digits (a Python
    datetime would drop the nanoseconds)."""
    import polars as pl

    from sessionkit._timestamp import Timestamp

    row = frame.row(0, named=True)
    for name, kind in frame.schema.items():
        if isinstance(kind, pl.Datetime) and row[name] is not None:
            row[name] = str(Timestamp(frame[name].dt.epoch("ns")[0]))
    return row


def _privacy_record(dataset: Path | str) -> dict | None:
    """The privacy settings of the dataset's last export run, if it had any."""
    import json

    from sessionkit.archive import runs

    table = runs(dataset)
    if table.num_rows == 0:
        return None
    record = table["privacy"][table.num_rows - 1].as_py()
    return json.loads(record) if record else None


def _print_table(table: Any, fmt: str, *, max_width: int | None, max_rows: int = 0) -> None:
    """Rows in the asked format: csv and json exact, markdown whole but escaped, table fitted."""
    from sessionkit import _terminal

    if fmt == "csv":
        import pyarrow.csv as pacsv

        sys.stdout.flush()
        pacsv.write_csv(_terminal.printable(table), sys.stdout.buffer)
        sys.stdout.buffer.flush()
    elif fmt == "json":
        from sessionkit.model import encode_compact

        click.echo(_terminal.json_visible(encode_compact(_terminal.printable(table).to_pylist())))
    elif fmt == "markdown":
        click.echo(_terminal.markdown(table))
    else:
        click.echo(
            _terminal.render(table, max_width=_width(max_width), max_rows=max_rows or None, hint=_WHOLE_VALUES_HINT)
        )


@cli.command()
@click.argument("dataset", type=DATASET)
@click.option("--top", type=click.IntRange(min=1), default=5, show_default=True, help="Seeds and personas to list.")
@output_options(rows=False)
@click.option("--json", "as_json", is_flag=True, help="The same as --format json.")
def stats(dataset: Path | str, top: int, fmt: str, max_width: int | None, as_json: bool) -> None:
    """Totals of DATASET (tool calls, projects and threads too when it has them), its most used
    seeds and personas, and the privacy settings of its last export.

    --format csv prints the totals as one row, for a log kept over time; json and markdown
    also hold the top seeds and personas.
    """
    import math

    import polars as pl

    from sessionkit import _terminal
    from sessionkit.analytics import cost, persona_usage, seed_usage
    from sessionkit.analytics import stats as totals
    from sessionkit.query import connect

    con = connect(dataset, read_only=False)  # sessionkit's own queries: DuckDB reads the files itself
    con.execute("SET enable_progress_bar = false")  # a terminal: DuckDB takes the setting
    try:
        frame = totals(con)
        row = _with_nanoseconds(frame)
        seeds = seed_usage(con).head(top)
        personas = persona_usage(con).head(top)
        models = cost(con, by="model") if row["agent_runs"] else None
    finally:
        con.close()
    applied = _privacy_record(dataset)
    fmt = "json" if as_json else fmt
    if fmt == "json":
        from sessionkit.model import encode_compact

        out = {**row, "top_seeds": seeds.to_dicts(), "top_personas": personas.to_dicts(), "privacy": applied}
        out["cost_by_model"] = models.to_dicts() if models is not None else []
        click.echo(_terminal.json_visible(encode_compact(out)))
        return
    if fmt == "csv":
        _print_table(frame.to_arrow(), "csv", max_width=None)
        return
    # data from oxios 1.9 and later has no seeds: no list of one "(no seed)" row (json keeps the key)
    lists = [
        (title, frame.with_columns(pl.col(column).fill_null(none)).to_arrow())
        for title, frame, column, none in (
            ("top seeds", seeds, "seed_id", "(no seed)"),
            ("top personas", personas, "persona_id", "(no persona)"),
        )
        if frame[column].drop_nulls().len()
    ]
    if models is not None:  # cost and models: only for data with agent-run records
        shown = models.select(
            pl.col("model_id").fill_null("(no model)"),
            "runs",
            "failed_runs",
            "tokens_input",
            "tokens_output",
            pl.col("cost_usd").round(2),
        )
        lists.append(("cost per model (USD, oxios' estimate)", shown.to_arrow()))
    # what only today's oxios records: shown when the data has it (json and csv keep every total)
    row = {k: v for k, v in row.items() if k not in _MODERN_TOTALS or v}
    if not row["agent_runs"]:
        row = {k: v for k, v in row.items() if k not in _AGENT_TOTALS}
    elif models is not None:
        row["cost_usd"] = f"{math.fsum(models['cost_usd'].to_list()):,.2f}"  # exact sum, to the cent
    privacy = _privacy_line(applied) if applied else None
    if fmt == "markdown":
        import pyarrow as pa

        listed = pa.table({"total": [k.replace("_", " ") for k in row], "value": [_total(v) for v in row.values()]})
        click.echo(f"## Totals\n\n{_terminal.markdown(listed)}")
        for title, table in lists:
            click.echo(f"\n## {title[0].upper()}{title[1:]}\n\n{_terminal.markdown(table, thousands=True)}")
        if privacy:
            click.echo(f"\n## Privacy\n\n{_terminal.visible(privacy)}")
        return
    width = max(len(k) for k in row)
    for key, value in row.items():
        click.echo(f"{key.replace('_', ' '):<{width}}  {_total(value)}")
    if privacy:
        click.echo(_safe(f"{'privacy':<{width}}  {privacy}"))
    for title, table in lists:
        rendered = _terminal.render(
            table, max_width=_width(max_width), max_rows=None, thousands=True, counts=False, hint=_WHOLE_VALUES_HINT
        )
        click.echo(f"\n{title}\n{rendered}")


_MODERN_TOTALS = ("tool_calls", "tool_errors", "projects", "sessions_with_parent")
_AGENT_TOTALS = ("agent_runs", "runs_linked", "runs_unlinked", "runs_ambiguous")


def _total(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def _privacy_line(applied: dict) -> str:
    """The privacy settings of a run record, on one line."""
    masked = ", ".join(f"{k} {v:,}" for k, v in sorted(applied.get("counts", {}).get("masked", {}).items())) or "none"
    return (
        f"redact {applied['redact']}, pseudonymised users {applied['pseudonymize_users']}, "
        f"sessions {applied['pseudonymize_sessions']}, key {applied['key_fingerprint']}; masked: {masked}"
    )


@cli.command()
@click.argument("directory", type=click.Path(path_type=Path), default="sessionkit-demo")
@click.option(
    "--from",
    "source",
    type=click.Path(path_type=Path, exists=True),
    default=None,
    help="Use this oxios state directory instead of generating one.",
)
@click.option(
    "--sessions", "-n", type=click.IntRange(min=0), default=500, show_default=True, help="Sessions to generate."
)
@click.option("--seed", type=int, default=7, show_default=True, help="Seed of the generator.")
@click.option(
    "--shape",
    type=click.Choice(["seeds", "modern"]),
    default="seeds",
    show_default=True,
    help="What oxios the generated sessions look like: before 1.9 (seeds), or today's (tool calls, reasoning, projects, threads).",
)
def demo(directory: Path, source: Path | None, sessions: int, seed: int, shape: str) -> None:
    """Generate a realistic oxios state directory, export it, print stats, save a chart.

    Everything lands in DIRECTORY: state/ (unless --from), dataset/ and a chart: seed-usage.png,
    or tool-usage.png for data with tool calls. Running it again replaces what an earlier demo
    made there.
    """
    import shutil

    from sessionkit.generate import write_demo_state

    if directory.exists() and any(directory.iterdir()):
        if not (directory / _DEMO_MARKER).exists():
            msg = f"{directory}: the folder holds files that a demo did not make. Hint: pick another folder"
            raise click.ClickException(msg)
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / _DEMO_MARKER).write_text("made by `sessionkit demo`; the next demo replaces this folder\n")
    if source is None:
        source = directory / "state"
        write_demo_state(source, sessions, seed=seed, shape=shape)
        click.echo(_safe(f"generated {sessions} sessions in {source / 'sessions'}"))
    dataset = directory / "dataset"
    ctx = click.get_current_context()
    ctx.invoke(export, src=source, out=dataset, jobs=None, quiet=False)
    click.echo("")
    ctx.invoke(stats, dataset=dataset, top=5, fmt="table", max_width=None, as_json=False)

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from sessionkit.analytics import tool_usage
    from sessionkit.plot import plot_seed_usage, plot_tool_usage

    tools = tool_usage(dataset)
    ax = plot_tool_usage(tools) if tools.height else plot_seed_usage(dataset)
    what = "tool usage" if tools.height else "seed usage"
    chart = directory / f"{what.replace(' ', '-')}.png"
    cast(Figure, ax.figure).savefig(chart, dpi=120)  # the plot made its own Figure, not a SubFigure
    click.echo(_safe(f"\nsaved the {what} chart to {chart}"))


@cli.command()
@click.argument("dataset", type=DATASET)
@output_options()
def errors(dataset: Path | str, fmt: str, max_width: int | None, max_rows: int) -> None:
    """List the files of DATASET's exports that could not be read as sessions.

    Each was copied, bytes unchanged, to DATASET/quarantine/; the list gives the file, its
    size and sha256, the kind of error, the JSON path or byte offset, and the message.
    """
    from sessionkit.archive import errors as error_table

    table = error_table(dataset)
    if fmt == "table" and table.num_rows == 0:
        click.echo("no errors: every file of the exports was a valid session")
        return
    if fmt == "table":
        # the message last, so that it is among the columns a narrow terminal still shows
        table = table.select(["file", "error_class", "json_path", "byte_offset", "quarantined_as", "message"])
    _print_table(table, fmt, max_width=max_width, max_rows=max_rows)


@cli.command()
@click.argument("dataset", type=DATASET)
@click.argument("out", type=click.Path(path_type=Path))
@click.option(
    "--since",
    default=None,
    metavar="WHEN",
    help="Start of the period (inclusive): a date, a date-time (UTC unless it has an offset), a length "
    "back from --until (12h, 28d, 4w) or 'all'. Default: 28d.",
)
@click.option(
    "--until",
    default=None,
    metavar="WHEN",
    help="End of the period (exclusive): a date or a date-time. Default: just after the last activity.",
)
@click.option("--title", default=None, help="The page's title (default: sessionkit report).")
@click.option(
    "--samples", type=click.IntRange(min=0), default=3, show_default=True, help="Sample transcripts to include."
)
@click.option(
    "--session",
    "session_ids",
    multiple=True,
    help="Include the transcript of this session id (repeatable; replaces --samples).",
)
@click.option("--top", type=click.IntRange(min=1), default=15, show_default=True, help="Seeds and personas to chart.")
def report(
    dataset: Path | str,
    out: Path,
    since: str | None,
    until: str | None,
    title: str | None,
    samples: int,
    session_ids: tuple[str, ...],
    top: int,
) -> None:
    """Write a self-contained HTML report of DATASET to OUT, to open offline or mail around.

    One page about the sessions created in a period (by default the last 28 days of the data):
    a headline of its totals against the period before and the biggest movers, then a section
    for each kind of data it holds, with charts and ranked tables, and folded sample
    transcripts. It loads nothing from anywhere and runs no script.
    """
    from sessionkit.report import write_report

    try:
        path = write_report(
            dataset,
            out,
            title=title,
            since=since,
            until=until,
            samples=samples,
            sessions=list(session_ids) or None,
            top=top,
        )
    except KeyError as err:  # a --session id the dataset does not hold
        raise click.BadParameter(str(err.args[0]), param_hint="--session") from None
    except ValueError as err:  # a bound the report does not take, or --since after --until
        text = str(err)
        hint = "--until" if text.startswith("until:") else "--since"
        raise click.BadParameter(text, param_hint=hint) from None
    click.echo(_safe(f"wrote the report of {dataset} to {path} ({path.stat().st_size / 1e3:,.0f} kB)"))


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code instead of raising."""
    try:
        cli.main(args=argv, prog_name="sessionkit", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as err:
        click.echo(err.ctx.get_help() if err.ctx else str(err))
        return 2
    except click.UsageError as err:
        err.show()
        return 2
    except click.ClickException as err:
        err.show()
        return 1
    except click.exceptions.Exit as err:
        return err.exit_code
    except SystemExit as err:
        return err.code if isinstance(err.code, int) else 1
    except click.Abort:
        click.echo("aborted", err=True)
        return 1
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    except SessionkitError as err:
        _error(err.message, err.hint)
        return 1
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            message = (
                f"no room to write ({err.strerror}: {err.filename or 'a file'}). The previous dataset is unchanged"
            )
            _error(message, "free some disk space (or raise the file size limit) and run again")
        else:
            _error(str(err))
        return 1
    except Exception as err:
        # DuckDB's errors (a SQL typo, the lock-down refusing a file): one line, no traceback.
        # duckdb is imported only by the commands that use it, so an error can be one of its
        # only when it is loaded; --help stays light.
        duckdb = sys.modules.get("duckdb")
        if duckdb is None or not isinstance(err, duckdb.Error):
            raise
        message = str(err)
        hint = None
        if isinstance(err, duckdb.PermissionException) or "locked" in message or "disabled" in message:
            from sessionkit.query import LOCKED_HINT

            hint = LOCKED_HINT.removeprefix("Hint: ")
        _error(message, hint)
        return 1
    return 0


def _error(message: str, hint: str | None = None) -> None:
    """Print an error the one way the command line does: ``error: <message>. Hint: <hint>``."""
    click.echo(_safe(f"error: {with_hint(message, hint)}"), err=True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
