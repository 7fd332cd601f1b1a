"""``%load_ext sessionkit`` and the ``%%sessionkit_sql`` magic, in a real IPython shell."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from conftest import oracle
from polars.testing import assert_frame_equal

from sessionkit import run_sql
from sessionkit.magic import _parse
from sessionkit.query import connect
from sessionkit.tables import to_tables


@pytest.fixture(scope="module")
def shell(tmp_path_factory: pytest.TempPathFactory):
    import os

    os.environ["IPYTHONDIR"] = str(tmp_path_factory.mktemp("ipython"))  # no history in the user's profile
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "sessionkit")
    yield ip
    InteractiveShell.clear_instance()


def test_load_ext_registers_the_magic(shell) -> None:
    magics = shell.magics_manager.magics
    assert "sessionkit_sql" in magics["cell"] and "sessionkit_sql" in magics["line"]
    shell.run_line_magic("load_ext", "sessionkit")  # loading twice is harmless


def test_cell_magic_over_a_dataset_folder(shell, exported: dict[str, Path]) -> None:
    o = oracle("oxios-v1")
    got = shell.run_cell_magic(
        "sessionkit_sql",
        str(exported["oxios-v1"]),
        "SELECT phase_reached, count(*) AS n\nFROM responses\nGROUP BY ALL",
    )
    assert isinstance(got, pl.DataFrame)
    assert {("<none>" if p is None else p): n for p, n in got.iter_rows()} == o["responses_by_phase"]
    exchanges = shell.run_cell_magic("sessionkit_sql", str(exported["oxios-v1"]), "SELECT count(*) AS n FROM exchanges")
    assert exchanges.item() == o["exchanges"]


def test_cell_magic_over_a_variable(shell, exported: dict[str, Path]) -> None:
    from crafted import quality_sessions

    shell.user_ns["tables"] = to_tables(quality_sessions())
    got = shell.run_cell_magic("sessionkit_sql", "tables --out users", "SELECT user_id FROM sessions ORDER BY 1")
    assert got["user_id"].to_list() == ["ann", "ann", "bob", "cy"]
    assert_frame_equal(shell.user_ns["users"], got)
    con = connect(exported["oxios-v2"])
    shell.user_ns["con"] = con
    got = shell.run_cell_magic("sessionkit_sql", "con", "SELECT count(*) AS n FROM sessions")
    assert got.item() == oracle("oxios-v2")["sessions"]
    assert con.sql("SELECT 1").fetchall() == [(1,)]  # a connection passed in stays open
    shell.user_ns["folder"] = str(exported["oxios-v2"])
    assert shell.run_cell_magic("sessionkit_sql", "folder", "SELECT 1 AS one").item() == 1


def test_timestamps_come_back_in_utc(shell, exported: dict[str, Path]) -> None:
    got = shell.run_cell_magic(
        "sessionkit_sql", str(exported["oxios-v1"]), "SELECT min(created_at) AS first FROM sessions"
    )
    assert got.schema["first"] == pl.Datetime("ns", "UTC")


def test_integer_sums_come_back_as_integers(shell, exported: dict[str, Path]) -> None:
    got = shell.run_cell_magic(
        "sessionkit_sql",
        str(exported["oxios-v1"]),
        "SELECT sum(exchange_count) AS exchanges, sum(exchange_count) / 2 AS half, "
        "170141183460469231731687303715884105727::HUGEINT AS huge FROM sessions",
    )
    assert got.schema["exchanges"] == pl.Int64 and got["exchanges"].item() == oracle("oxios-v1")["exchanges"]
    assert got.schema["half"] == pl.Float64  # a division stays what DuckDB made it
    assert got.schema["huge"] == pl.Int128 and got["huge"].item() == 2**127 - 1  # too large for Int64


def test_line_magic(shell, exported: dict[str, Path]) -> None:
    got = shell.run_line_magic(
        "sessionkit_sql", f"{exported['oxios-edge']} SELECT 'a  b' AS text, count(*) AS n FROM metadata"
    )
    assert got.row(0) == ("a  b", oracle("oxios-edge")["metadata_entries"])


def test_magic_usage_errors(shell, exported: dict[str, Path]) -> None:
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="neither a variable nor a dataset folder"):
        shell.run_cell_magic("sessionkit_sql", "no_such_thing", "SELECT 1")
    with pytest.raises(UsageError, match="no SQL to run"):
        shell.run_cell_magic("sessionkit_sql", str(exported["oxios-v1"]), "   \n")
    with pytest.raises(UsageError, match="usage: %%sessionkit_sql DATA"):
        shell.run_cell_magic("sessionkit_sql", "", "SELECT 1")
    with pytest.raises(UsageError, match="--out takes a Python variable name"):
        shell.run_cell_magic("sessionkit_sql", "x --out 1abc", "SELECT 1")


def test_parse_keeps_the_sql_as_typed() -> None:
    assert _parse("data SELECT 1") == ("data", None, "SELECT 1")
    assert _parse("-o x 'my data' SELECT  'a -o b'") == ("my data", "x", "SELECT  'a -o b'")
    assert _parse("data --out x") == ("data", "x", "")


def test_run_sql_gives_a_frame_for_any_statement(exported: dict[str, Path]) -> None:
    assert run_sql(exported["oxios-v1"], "SELECT count(*) AS n FROM sessions").item() == 300
    con = connect(exported["oxios-v1"])
    assert isinstance(run_sql(con, "CREATE TABLE t AS SELECT 1 AS x"), pl.DataFrame)
    assert run_sql(con, "SELECT * FROM t").item() == 1  # on the connection given, which stays open


def test_import_sessionkit_does_not_load_ipython() -> None:
    code = "import sys, sessionkit; print('IPython' in sys.modules, callable(sessionkit.load_ipython_extension))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "True"]
