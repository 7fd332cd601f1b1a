"""The README and docs/ stay true to the code: every command, option, table column, helper, chart
and public name is documented, the links resolve, and the README's quickstart runs.

The checks read the code's own lists (click's commands, the declared schemas, the views of a
connection, ``__all__``), so what is added later is caught without editing this file.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import click
import pytest
from conftest import ROOT

import sessionkit
from sessionkit import analytics, plot
from sessionkit.cli import cli, main
from sessionkit.query import connect
from sessionkit.tables import ARCHIVE_SCHEMAS, SCHEMAS, to_tables

DOCS = ROOT / "docs"
README = ROOT / "README.md"
PAGES = sorted(DOCS.glob("*.md"))

sys.path.insert(0, str(ROOT / "scripts"))
import readme_chart  # noqa: E402


def _sections(text: str, level: str = "##") -> dict[str, str]:
    """The text under each heading of ``level``, by heading (without the hashes)."""
    parts = re.split(rf"^{level} (.+)$", text, flags=re.M)
    return {title.strip(): body for title, body in zip(parts[1::2], parts[2::2], strict=True)}


def _rows(body: str) -> list[list[str]]:
    """The cells of a Markdown table's body rows (header and rule left out)."""
    rows = []
    for line in body.splitlines():
        if line.startswith("|") and not re.match(r"^\|\s*-", line):
            rows.append([c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]])
    return rows[1:] if rows else rows


# -- the command line ---------------------------------------------------------------------------------
CLI_SECTIONS = _sections((DOCS / "cli.md").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_and_option_is_in_the_cli_reference(name: str) -> None:
    command = cli.commands[name]
    assert command.help, f"sessionkit {name} has no help"
    section = CLI_SECTIONS.get(f"sessionkit {name}")
    assert section is not None, f"docs/cli.md has no '## sessionkit {name}' section"
    usage = next(line for line in section.splitlines() if line.startswith("`sessionkit"))
    for param in command.params:
        if isinstance(param, click.Argument):
            assert param.human_readable_name in usage, (name, param.name)
            continue
        documented = [row[0] for row in _rows(section)]
        for opt in (*param.opts, *param.secondary_opts):
            assert any(re.search(rf"`{re.escape(opt)}[` ]", cell) for cell in documented), (
                f"docs/cli.md: `sessionkit {name}` does not document {opt}"
            )


def test_the_cli_reference_documents_only_real_commands_and_options() -> None:
    for title, section in CLI_SECTIONS.items():
        if not title.startswith("sessionkit "):
            continue
        command = cli.commands.get(title.split()[1])
        assert command is not None, f"docs/cli.md documents {title}, which does not exist"
        real = {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}
        for row in _rows(section):
            for opt in re.findall(r"`(-[-\w]+)", row[0]):
                assert opt in real, f"docs/cli.md: {title} has no option {opt}"
    intro = (DOCS / "cli.md").read_text(encoding="utf-8").split("\n## ")[0]
    for param in cli.params:
        for opt in param.opts:
            assert re.search(rf"`(sessionkit )?{opt}`", intro), f"docs/cli.md does not document sessionkit {opt}"
    for opt in cli.context_settings["help_option_names"]:
        assert f"`{opt}`" in intro


# -- the tables ---------------------------------------------------------------------------------------
def _arrow_type(kind: object) -> str:
    return str(kind).replace("tz=Etc/UTC", "UTC").replace("tz=UTC", "UTC")


def _declared() -> dict[str, tuple[object, bool]]:
    """Every table and view a user can query, with its Arrow schema; whether nullability is declared."""
    import pyarrow as pa

    tables = {name: (schema, True) for name, schema in {**SCHEMAS, **ARCHIVE_SCHEMAS}.items()}
    con = connect(to_tables([]))
    views = [r[0] for r in con.sql("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()]
    for view in views:
        if view not in tables and not view.startswith("_"):
            schema: pa.Schema = con.sql(f"SELECT * FROM {view} LIMIT 0").to_arrow_table().schema
            tables[view] = (schema, False)
    con.close()
    return tables


def test_the_tables_page_lists_every_column_of_every_table() -> None:
    sections = _sections((DOCS / "tables.md").read_text(encoding="utf-8"))
    declared = _declared()
    assert {"sessions", "messages", "responses", "metadata", "exchanges", "runs", "errors"} <= set(declared)
    for name, (schema, nullability) in declared.items():
        assert name in sections, f"docs/tables.md has no '## {name}' section"
        rows = _rows(sections[name])
        documented = [(row[0].strip("`"), row[1], row[2]) for row in rows]
        expected = [(f.name, _arrow_type(f.type), "yes" if f.nullable else "") for f in schema]
        if not nullability:
            documented = [d[:2] for d in documented]
            expected = [e[:2] for e in expected]
        assert documented == expected, f"docs/tables.md, {name}: columns, types or nullability differ"


# -- helpers, charts, magic, report ---------------------------------------------------------------------
HELPERS_PAGE = (DOCS / "helpers.md").read_text(encoding="utf-8")


def test_the_helpers_page_documents_every_helper_and_chart() -> None:
    for name in analytics.__all__:
        if name.islower():
            assert f"{name}(" in HELPERS_PAGE, name
            assert getattr(sessionkit, name) is getattr(analytics, name)
    for name in plot.__all__:
        if name.startswith("plot_"):
            assert f"sk.{name}(" in HELPERS_PAGE, name
            assert getattr(sessionkit, name) is getattr(plot, name)
    assert "%load_ext sessionkit" in HELPERS_PAGE and "%%sessionkit_sql" in HELPERS_PAGE
    assert "sessionkit report" in HELPERS_PAGE and "sk.write_report(" in HELPERS_PAGE


def test_the_helpers_table_names_real_columns(exported: dict[str, Path]) -> None:
    table = _sections(HELPERS_PAGE)["Helpers"]
    rows = _rows(table)
    assert len(rows) >= 10
    for helper, _, columns in rows:
        name = re.match(r"`(\w+)\(", helper).group(1)
        frame = getattr(analytics, name)(exported["oxios-v2"])
        named = re.findall(r"`(\w+)`", re.sub(r"\([^)]*\)", "", columns))
        missing = [c for c in named if c not in frame.columns]
        assert not missing, f"docs/helpers.md: {name} has no column {missing}"


# -- public names, links, the README ------------------------------------------------------------------------
def test_every_public_name_is_documented() -> None:
    text = "\n".join(p.read_text(encoding="utf-8") for p in [README, *PAGES])
    missing = [n for n in sessionkit.__all__ if not re.search(rf"\b{re.escape(n)}\b", text)]
    assert not missing, f"not in README.md or docs/: {missing}"


#: The subpackages whose ``__all__`` is what the docs describe.
SUBPACKAGES = ("analytics", "archive", "model", "plot", "privacy", "report", "spark", "tables")


@pytest.mark.parametrize("name", SUBPACKAGES)
def test_a_subpackage_publishes_only_what_the_docs_describe(name: str) -> None:
    import importlib

    text = "\n".join(p.read_text(encoding="utf-8") for p in [README, *PAGES])
    module = importlib.import_module(f"sessionkit.{name}")
    missing = [n for n in module.__all__ if not re.search(rf"\b{re.escape(n)}\b", text)]
    assert not missing, f"sessionkit.{name}.__all__ names what README.md and docs/ do not: {missing}"
    assert all(getattr(module, n) is not None for n in module.__all__)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("page", [README, *PAGES], ids=lambda p: p.name)
def test_links_resolve(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://", target):
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        assert resolved.exists(), f"{page.name}: broken link {target}"
        if anchor:
            headings = re.findall(r"^#+ (.+)$", resolved.read_text(encoding="utf-8"), flags=re.M)
            assert anchor in {_slug(h) for h in headings}, f"{page.name}: no heading for {target}"


def test_the_readme_is_a_landing_page() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.encode()) < 6_000 and len(text.splitlines()) < 80
    assert "make demo" in text and "make test" in text and "](docs/images/seed-usage.png)" in text
    for command in ("export", "restore", "sql", "stats", "report"):
        assert f"sessionkit {command}" in text


def test_the_readme_quickstart_runs_and_draws_the_committed_chart(tmp_path: Path) -> None:
    from matplotlib.testing.compare import compare_images

    chart = readme_chart.run_quickstart(tmp_path)
    difference = compare_images(str(readme_chart.CHART), str(chart), tol=1)
    assert difference is None, f"{difference}. Hint: run `make notebooks` to redraw docs/images/seed-usage.png"


def test_the_readme_command_line_quickstart_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    block = re.search(r"```sh\n(sessionkit .*?)```", README.read_text(encoding="utf-8"), re.S).group(1)
    monkeypatch.chdir(tmp_path)
    for line in block.splitlines():
        args = shlex.split(line.replace("~/.oxios/state", str(ROOT / "data" / "oxios-sample")), comments=True)
        assert args[0] == "sessionkit"
        assert main(args[1:]) == 0, (line, capsys.readouterr().err)
    out = capsys.readouterr().out
    assert "300 exported" in out and "restored 300 sessions" in out


# -- every example of the README and docs/ runs, and shows what it prints ------------------------------------
#: A fenced block, with the reason it is not run when the line before says so.
_FENCE = re.compile(
    r"^(?:<!-- docs-test: skip: (?P<skip>[^\n]+?) -->\n)?```(?P<lang>[\w-]*)\n(?P<code>.*?)^```[ \t]*$", re.M | re.S
)
#: How each kind of block is checked; "crontab" lines are shown, not run (their command is run elsewhere).
_RUN = ("python", "pycon", "sh", "console", "ipython", "sql")
_SHOWN = ("crontab",)
#: The places the docs name, and where the examples find them here (prepared by ``_workdir``).
_PLACES = {
    "~/.oxios/state": "data/oxios-sample",
    "/srv/oxios-archive": "archive",
    "~/.config/sessionkit/export.key": "export.key",
    "'OUT/": "'out-day/",
}


def _examples(page: Path) -> list[tuple[int, str, str, str | None]]:
    """(line, language, code, reason not run) of each fenced block of a page."""
    text = page.read_text(encoding="utf-8")
    found = []
    for match in _FENCE.finditer(text):
        line = text.count("\n", 0, match.start("code"))
        found.append((line, match.group("lang"), match.group("code"), match.group("skip")))
    return found


def test_every_fenced_block_says_how_it_is_checked() -> None:
    skipped = []
    for page in [README, *PAGES]:
        for line, lang, _, skip in _examples(page):
            assert lang in (*_RUN, *_SHOWN), f"{page.name}:{line}: a ```{lang} block; say its language"
            if skip:
                skipped.append(f"{page.name}:{line}")
    assert len(skipped) <= 6, skipped  # only what needs S3, Spark, Trino or the environment itself


def _normal(text: str) -> str:
    """Output with what changes from run to run masked: times, rates, worker counts."""
    text = re.sub(r"in \d+(\.\d+)? s\b", "in <t> s", text)
    return re.sub(r"\(\d+(\.\d+)? [kMG]?B/s, \d+ jobs?\)", "(<rate>)", text)


@pytest.fixture
def _workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder like a checkout after the README's quickstart: data/ and build/sample-dataset, plus
    the places the docs name: an archive, a dataset partitioned by day, a metadata allow-list."""
    import matplotlib

    matplotlib.use("Agg")
    from sessionkit.archive import export

    (tmp_path / "data").symlink_to(ROOT / "data")
    (tmp_path / "build").mkdir()
    sample = ROOT / "data" / "oxios-sample"
    export(sample, tmp_path / "build" / "sample-dataset", jobs=1)
    export(sample, tmp_path / "archive", jobs=1)
    export(sample, tmp_path / "out-day", jobs=1, partition_by="day")
    (tmp_path / "allow.txt").write_text("channel\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run_sh(code: str, capsys: pytest.CaptureFixture[str], where: str) -> None:
    for line in code.replace("\\\n", " ").splitlines():
        args = shlex.split(line, comments=True)
        if not args:
            continue
        assert args[0] == "sessionkit", f"{where}: only sessionkit commands run here: {line}"
        code_ = main(args[1:])
        assert code_ == 0, f"{where}: {line} exited {code_}: {capsys.readouterr().err}"


def _run_console(code: str, capsys: pytest.CaptureFixture[str], where: str) -> None:
    runs: list[tuple[str, list[str]]] = []
    for line in code.splitlines():
        if line.startswith("$ "):
            runs.append((line[2:], []))
        else:
            runs[-1][1].append(line)
    for command, shown in runs:
        capsys.readouterr()
        args = shlex.split(command)
        assert args[0] == "sessionkit" and main(args[1:]) == 0, f"{where}: {command}"
        printed = capsys.readouterr().out.rstrip("\n").splitlines()
        assert [_normal(x) for x in printed] == [_normal(x) for x in shown], f"{where}: {command} prints otherwise"


def _run_pycon(code: str, names: dict, where: str) -> None:
    import doctest

    test = doctest.DocTestParser().get_doctest(code, names, where, where, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report: list[str] = []
    runner.run(test, out=report.append, clear_globs=False)
    names.update(test.globs)  # the next blocks of the page go on from here
    assert runner.failures == 0, "".join(report)


def _run_ipython(code: str, where: str) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        shell.run_line_magic("load_ext", "sessionkit")
        result = shell.run_cell(code)
        assert result.success, f"{where}: {result.error_in_exec or result.error_before_exec}"
    finally:
        InteractiveShell.clear_instance()


@pytest.mark.parametrize("page", [README, *PAGES], ids=lambda p: p.name)
def test_every_example_runs_and_shows_what_it_prints(
    page: Path, _workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each page's examples in order, sharing one namespace (as a reader would type them), on the
    bundled sample: Python blocks run, >>> blocks print exactly what they show, shell blocks'
    sessionkit commands exit 0, console blocks print what they show (times aside), SQL runs."""
    import duckdb
    import matplotlib.pyplot as plt

    names: dict = {"__name__": "docs", "sk": sessionkit}  # the pages take `import sessionkit as sk` as done
    for line, lang, code, skip in _examples(page):
        if skip or lang not in _RUN:
            continue
        where = f"{page.name}:{line}"
        for place, here in _PLACES.items():
            code = code.replace(place, here)
        if lang == "python":
            exec(compile(code, where, "exec"), names)
        elif lang == "pycon":
            _run_pycon(code, names, where)
        elif lang == "sh":
            _run_sh(code, capsys, where)
        elif lang == "console":
            _run_console(code, capsys, where)
        elif lang == "ipython":
            _run_ipython(code, where)
        else:
            duckdb.sql(code).fetchall()
        plt.close("all")
