"""`import sessionkit` stays light: no duckdb, polars, matplotlib, pyspark or sqlglot until they are needed."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("duckdb", "polars", "matplotlib", "pyspark", "sqlglot")


def test_import_does_not_load_heavy_libraries() -> None:
    code = f"import sys, sessionkit; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_import_spark_loads_spark_only_when_used() -> None:
    code = f"import sys, sessionkit.spark; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_cli_help_does_not_load_heavy_libraries() -> None:
    code = (
        "import sys\nfrom sessionkit.cli import main\nmain(['--help'])\n"
        f"print('LOADED=' + ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "LOADED="


def test_public_names_are_documented() -> None:
    import sessionkit

    for name in sessionkit.__all__:
        obj = getattr(sessionkit, name)
        if callable(obj) or isinstance(obj, type):
            assert (obj.__doc__ or "").strip(), f"{name} has no docstring"


def test_the_command_line_starts_without_arrow() -> None:
    # `sessionkit --help` and every command's parsing import click and little else; each command
    # imports what it needs when it runs
    code = (
        "import sys\nfrom sessionkit.cli import main\nmain(['--help'])\n"
        "print('LOADED=' + ','.join(m for m in ('pyarrow', 'numpy', 'msgspec', *"
        f"{HEAVY!r}) if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "LOADED="


def test_every_public_name_is_there() -> None:
    import sessionkit

    assert all(getattr(sessionkit, name) is not None for name in sessionkit.__all__)
    assert set(sessionkit.__all__) <= set(dir(sessionkit))
