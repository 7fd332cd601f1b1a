"""The command line: commands, output formats, and errors without tracebacks."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BAD, FIXTURES, first_message, fixture_files, oracle

from sessionkit._timestamp import Timestamp
from sessionkit.cli import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_export_restore_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "export", FIXTURES / "oxios-v2", tmp_path / "ds")
    assert code == 0 and out.startswith("150 seen: 150 exported, 0 unchanged, 0 quarantined, 0 vanished, 0 ignored")
    o = oracle("oxios-v2")
    assert f"150 sessions ({o['user_messages']} messages, {o['agent_responses']} responses" in out
    code, out, _ = run(capsys, "restore", tmp_path / "ds", tmp_path / "back")
    assert code == 0 and "restored 150 sessions" in out
    for src in fixture_files("oxios-v2"):
        assert (tmp_path / "back" / "sessions" / src.name).read_bytes() == src.read_bytes()


def test_sql_formats(exported: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    ds = exported["oxios-v1"]
    query = "SELECT session_id, seq, timestamp FROM messages ORDER BY session_id, seq LIMIT 2"
    code, out, _ = run(capsys, "sql", ds, query, "--format", "csv")
    rows = list(csv.reader(io.StringIO(out)))
    assert code == 0 and rows[0] == ["session_id", "seq", "timestamp"]
    sid, text = first_message("oxios-v1")
    assert rows[1] == [sid, "0", text]
    code, out, _ = run(capsys, "sql", ds, query, "--format", "json")
    assert json.loads(out)[0]["timestamp"] == text
    code, out, _ = run(capsys, "sql", ds, "SELECT count(*) AS n FROM exchanges")
    assert code == 0 and str(oracle("oxios-v1")["exchanges"]) in out.split()
    code, out, _ = run(capsys, "sql", ds, "SELECT [1, 2] AS l, {'a': 1} AS s", "-f", "csv")
    assert code == 0 and '"[1,2]"' in out


def test_sql_errors_are_one_line(exported: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "sql", exported["oxios-v1"], "SELECT nope FROM sessions")
    assert code == 1 and err.startswith("error: ") and "Traceback" not in err


def test_stats(exported: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "stats", exported["oxios-v1"])
    exchanges = oracle("oxios-v1")["exchanges"]
    assert code == 0 and "sessions" in out and f"{exchanges:,}" in out and "top seeds" in out and "top personas" in out
    code, out, _ = run(capsys, "stats", exported["oxios-v1"], "--json")
    data = json.loads(out)
    assert data["exchanges"] == exchanges and len(data["top_seeds"]) == 5
    import pyarrow.compute as pc

    from sessionkit.storage import read_parquet

    first = pc.min(read_parquet(exported["oxios-v1"]).sessions["created_at"].cast("int64")).as_py()
    assert data["first_created"] == str(Timestamp(first))  # all nine digits, not a datetime's six


@pytest.mark.parametrize("bad", sorted(p.name for p in BAD.glob("*.json")))
def test_bad_input_names_the_file_without_a_traceback(
    bad: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "sessions"
    src.mkdir()
    shutil.copy(BAD / bad, src / bad)
    code, out, err = run(capsys, "export", src, tmp_path / "out")
    assert code == 0 and "1 quarantined" in out
    assert bad in err and "Traceback" not in err
    code, _, err = run(capsys, "export", src, tmp_path / "out", "--strict")
    assert code == 1 and bad in err and "Traceback" not in err
    code, out, _ = run(capsys, "errors", tmp_path / "out", "--format", "json")
    assert code == 0 and json.loads(out)[0]["file"].endswith(bad)


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "export")
    assert code == 2 and "Missing argument" in err
    code, _, err = run(capsys, "sql", "x", "SELECT 1", "--format", "xml")
    assert code == 2


def test_missing_source_and_existing_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "export", tmp_path / "nope", tmp_path / "out")
    assert code == 1 and "no such file or directory" in err
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("")
    code, _, err = run(capsys, "export", FIXTURES / "oxios-v1", tmp_path / "out")
    assert code == 1 and "not a sessionkit dataset" in err
    code, _, err = run(capsys, "stats", tmp_path / "nothing")
    assert code == 1 and "no such dataset" in err


def test_demo_makes_a_dataset_stats_and_a_chart(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "demo"
    code, out, _ = run(capsys, "demo", target, "--sessions", "60", "--seed", "3")
    assert code == 0, out
    assert (target / "dataset" / "sessions").is_dir() and (target / "seed-usage.png").stat().st_size > 1000
    assert len(list((target / "state" / "sessions").glob("*.json"))) == 60
    assert "top seeds" in out
    # again, into the same folder: it replaces what the last demo made
    assert run(capsys, "demo", target, "--sessions", "10")[0] == 0
    other = tmp_path / "other"
    other.mkdir()
    (other / "mine.txt").write_text("")
    code, _, err = run(capsys, "demo", other)
    assert code == 1 and "a demo did not make" in err


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for command in ("export", "restore", "sql", "stats", "demo", "errors", "report"):
        assert command in out


def test_the_installed_command_and_python_m(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "sessionkit"
    result = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "version" in result.stdout
    result = subprocess.run(
        [sys.executable, "-m", "sessionkit", "stats", str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
