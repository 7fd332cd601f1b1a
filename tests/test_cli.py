"""The command line: commands, output formats, and errors without tracebacks."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
from datetime import datetime, timedelta
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


TRAPS = "\x1b]0;pwned\x07\x1b[2J\x1b[31m\u202e\x9b\u2028"


def acting(text: str) -> list[str]:
    """Characters that would act on a terminal: controls, bidi and other invisible ones (newlines aside)."""
    import unicodedata

    return [c for c in text if c != "\n" and unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") and c != "\u200d"]


@pytest.mark.parametrize("columns", [80, 200])
def test_sql_prints_one_line_per_row_fitted_to_the_terminal(
    exported: dict[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, columns: int
) -> None:
    from sessionkit._terminal import display_width

    monkeypatch.setenv("COLUMNS", str(columns))
    query = "SELECT * FROM exchanges ORDER BY session_id, seq LIMIT 3"
    code, out, _ = run(capsys, "sql", exported["oxios-v1"], query)
    lines = out.rstrip("\n").split("\n")
    assert code == 0 and all(display_width(line) <= columns for line in lines)
    session_id, timestamp = first_message("oxios-v1", exchange=True)
    assert lines[2].startswith(f"{session_id}    0  ")  # the whole id, to copy
    assert lines[5] == "3 rows"
    header = lines[0].split()
    if columns == 80:
        # the first two columns and the last two that fit (the linked run's, issue 13)
        assert header == ["session_id", "seq", "…", "tokens_output", "cost_usd"]
        assert lines[6].startswith("15 of 19 columns not shown: user_content, ")
        assert lines[7].startswith("whole values: --format csv, json or markdown")
    else:
        assert "user_timestamp" in header and timestamp in lines[2]
    code, out, _ = run(capsys, "sql", exported["oxios-v1"], query, "--max-width", "0")
    assert len(out.rstrip("\n").split("\n")) == 6 and "…" not in out and "columns not shown" not in out
    code, out, _ = run(capsys, "sql", exported["oxios-v1"], "SELECT * FROM messages", "--max-rows", "4")
    assert "\n…" in out and re.search(r"\n[\d,]+ rows \(4 shown: the first 2 and the last 2\)\n", out)


def test_sql_markdown(exported: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    query = "SELECT session_id, seq, timestamp, content FROM messages ORDER BY session_id, seq LIMIT 2"
    code, out, _ = run(capsys, "sql", exported["oxios-v1"], query, "--format", "markdown")
    lines = out.rstrip("\n").split("\n")
    assert code == 0 and lines[:2] == ["| session_id | seq | timestamp | content |", "| --- | ---: | --- | --- |"]
    session_id, timestamp = first_message("oxios-v1")
    assert lines[2].startswith(f"| {session_id} | 0 | {timestamp} | ")
    assert len(lines) == 4 and "…" not in out


def test_errors_table_keeps_the_message_on_a_narrow_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "sessions"
    src.mkdir()
    shutil.copy(BAD / "bom.json", src / "a-rather-long-file-name-that-will-be-cut.json")
    run(capsys, "export", src, tmp_path / "out")
    code, out, _ = run(capsys, "errors", tmp_path / "out", "--max-width", "80")
    header = out.split("\n")[0].split()
    assert code == 0 and header[0] == "file" and header[-1] == "message"


def test_stats_formats(exported: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    ds = exported["oxios-v1"]
    code, out, _ = run(capsys, "stats", ds, "--format", "csv")
    rows = list(csv.reader(io.StringIO(out)))
    assert code == 0 and len(rows) == 2 and rows[0][:2] == ["sessions", "users"]
    exchanges = oracle("oxios-v1")["exchanges"]
    assert dict(zip(*rows, strict=True))["exchanges"] == str(exchanges)
    code, out, _ = run(capsys, "stats", ds, "--format", "json")
    assert json.loads(out) == json.loads(run(capsys, "stats", ds, "--json")[1])
    code, out, _ = run(capsys, "stats", ds, "--format", "markdown", "--top", "3")
    assert code == 0 and "## Totals" in out and "## Top seeds" in out and "## Top personas" in out
    assert f"| exchanges | {exchanges:,} |" in out


def test_stats_lists_seeds_only_when_the_data_has_some(
    exported: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert set(oracle("oxios-v2")["sessions_by_active_seed"]) == {"<none>"}  # oxios 1.9 and later: no seeds
    code, out, _ = run(capsys, "stats", exported["oxios-v2"])
    assert code == 0 and "top seeds" not in out and "(no seed)" not in out and "top personas" in out
    code, out, _ = run(capsys, "stats", exported["oxios-v2"], "--format", "markdown")
    assert "## Top seeds" not in out and "## Top personas" in out
    code, out, _ = run(capsys, "stats", exported["oxios-v2"], "--json")
    assert json.loads(out)["top_seeds"] == [
        {
            "seed_id": None,
            "sessions": 150,
            "responses": oracle("oxios-v2")["agent_responses"],
            "users": json.loads(out)["users"],
        }
    ]


def test_data_and_file_names_cannot_act_on_the_terminal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sessionkit.model import AgentResponse, Session
    from sessionkit.oxios import write_sessions

    s = Session.with_id(f"user{TRAPS}", "trap")
    s.set_active_seed(f"seed{TRAPS}")
    s.set_active_persona(f"persona{TRAPS}")
    s.add_user_message(f"hello{TRAPS}\nsecond line")
    s.add_agent_response(AgentResponse(content=f"answer{TRAPS}", seed_id=f"seed{TRAPS}", phase_reached="Seed"))
    s.set_metadata(f"key{TRAPS}", f"value{TRAPS}")
    state = tmp_path / "state"
    write_sessions([s], state)
    (state / "sessions" / f"bad{TRAPS}.json").write_text("{nope")
    ds = tmp_path / f"out{TRAPS}"
    code, out, err = run(capsys, "export", state, ds)
    assert code == 0 and "1 quarantined" in out and not acting(out + err) and "bad\\u001b]0;pwned" in err
    for args in (
        ["sql", ds, "SELECT * FROM sessions"],
        ["sql", ds, "SELECT * FROM exchanges", "--max-width", "0"],
        ["sql", ds, "SELECT * FROM metadata", "--format", "markdown"],
        ["sql", ds, "SELECT * FROM exchanges", "--format", "json"],
        ["errors", ds, "--max-width", "0"],
        ["errors", ds, "--format", "markdown"],
        ["errors", ds, "--format", "json"],
        ["stats", ds],
        ["stats", ds, "--format", "markdown"],
        ["stats", ds, "--json"],
        ["sql", ds, 'SELECT * FROM "no\x1b[2J"'],
    ):
        code, out, err = run(capsys, *args)
        assert not acting(out + err), (args, acting(out + err))
        assert "\\u001b" in out + err, args  # shown, not dropped
    # csv and json stay exact
    code, out, _ = run(capsys, "sql", ds, "SELECT active_seed_id, user_id FROM sessions", "--format", "csv")
    assert list(csv.reader(io.StringIO(out)))[1] == [f"seed{TRAPS}", f"user{TRAPS}"]
    code, out, _ = run(capsys, "sql", ds, "SELECT user_content FROM exchanges", "--format", "json")
    assert json.loads(out) == [{"user_content": f"hello{TRAPS}\nsecond line"}]
    code, out, _ = run(capsys, "errors", ds, "--format", "json")
    assert json.loads(out)[0]["file"].endswith(f"bad{TRAPS}.json")


def test_timestamps_print_in_utc_whatever_the_machine_zone(exported: dict[str, Path]) -> None:
    # DuckDB labels TIMESTAMPTZ results with the machine's zone; the instant must still print as UTC.
    query = "SELECT timestamp, timestamp + INTERVAL 1 HOUR AS later FROM messages ORDER BY session_id, seq LIMIT 1"
    _, timestamp = first_message("oxios-v1")
    head, _, fraction = timestamp.partition(".")
    later = (datetime.fromisoformat(head) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S") + "." + fraction
    for fmt in ("csv", "table"):
        done = subprocess.run(
            [sys.executable, "-m", "sessionkit", "sql", str(exported["oxios-v1"]), query, "--format", fmt],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "TZ": "Asia/Tokyo"},
        )
        assert timestamp in done.stdout and later in done.stdout
