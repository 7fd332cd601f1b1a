"""Terminal tables: one line per row, fitted to the width, whole timestamps, nothing that acts."""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessionkit._terminal import ELLIPSIS, display_width, json_visible, markdown, render, visible
from sessionkit.query import connect

HIDDEN = ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")
STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
HOSTILE = "a\x1b[31mred\x1b[0m \x1b]0;title\x07 \x9b2J \r\n\t\x00 \u202eevil\u2066 \u200b \u2028 \ufeff \U000e0041 end"


def acting(text: str) -> list[str]:
    """The characters of ``text`` that would act on a terminal (newlines between lines aside)."""
    return [ch for ch in text if ch != "\n" and unicodedata.category(ch) in HIDDEN and ch != "\u200d"]


@pytest.fixture(scope="module")
def exchanges(exported: dict[str, Path]) -> pa.Table:
    con = connect(exported["oxios-v1"])
    # the ten columns of the seeds era: data with no tool calls or projects, as the layout below expects
    columns = "session_id, seq, user_content, user_timestamp, response_content, response_timestamp, latency_s, seed_id, phase_reached, evaluation_passed"
    table = con.sql(f"SELECT {columns} FROM exchanges ORDER BY session_id, seq").to_arrow_table()
    con.close()
    return table


@pytest.mark.parametrize("width", [80, 200])
def test_one_line_per_row_fitted_to_the_width(exchanges: pa.Table, width: int) -> None:
    text = render(exchanges, max_width=width, max_rows=10)
    lines = text.split("\n")
    assert all(display_width(line) <= width for line in lines)
    header, rule, rows, footer = lines[0], lines[1], lines[2:13], lines[13:]
    assert len(rows) == 11 and rows[5].split() == [ELLIPSIS] * len(header.split())  # 5 + the gap + 5
    assert footer[0] == f"{exchanges.num_rows:,} rows (10 shown: the first 5 and the last 5)"
    assert set(rule.replace(" ", "")) == {"─"}
    shown = header.split()
    assert shown[:2] == ["session_id", "seq"] and shown[-1] == "evaluation_passed"
    left_out = [c for c in exchanges.column_names if c not in shown]
    assert footer[1] == f"{len(left_out)} of 10 columns not shown: " + ", ".join(left_out) or len(footer[1]) == width
    ids = exchanges["session_id"].to_pylist()
    assert [UUID.search(r).group() for r in rows if r[0] != ELLIPSIS] == ids[:5] + ids[-5:]  # whole, to copy
    if width == 80:
        assert shown == ["session_id", "seq", ELLIPSIS, "phase_reached", "evaluation_passed"]
        assert footer[1].startswith("6 of 10 columns not shown: user_content, user_timestamp,")
    else:
        assert "user_timestamp" in shown and len(left_out) <= 2
        stamps = [STAMP.findall(r) for r in rows if r[0] != ELLIPSIS]
        assert all(len(found) >= 1 for found in stamps)  # all nine digits, never cut
        assert any(ELLIPSIS in r for r in rows)  # the long texts are cut


def test_the_exact_layout() -> None:
    table = pa.table(
        {
            "id": ["a", "b", "c"],
            "text": ["short", "a rather long text that will not fit at all", None],
            "n": [1, 22, 333],
            "at": pa.array([0, 10**18, 123456789], pa.timestamp("ns", tz="UTC")),
        }
    )
    assert render(table, max_width=70, hint="more: --max-width").split("\n") == [
        "id  text                             n  at",
        "──  ─────────────────────────────  ───  ──────────────────────────────",
        "a   short                            1  1970-01-01T00:00:00.000000000Z",
        "b   a rather long text that will…   22  2001-09-09T01:46:40.000000000Z",
        "c   null                           333  1970-01-01T00:00:00.123456789Z",
        "3 rows",
        "more: --max-width",
    ]
    assert render(table, max_width=40).split("\n") == [
        "id  …  at",
        "──     ──────────────────────────────",
        "a   …  1970-01-01T00:00:00.000000000Z",
        "b   …  2001-09-09T01:46:40.000000000Z",
        "c   …  1970-01-01T00:00:00.123456789Z",
        "3 rows",
        "2 of 4 columns not shown: text, n",
    ]
    whole = render(table, max_width=None)
    assert "a rather long text that will not fit at all" in whole and ELLIPSIS not in whole


def test_a_column_wider_than_the_terminal_is_cut_rather_than_dropped() -> None:
    table = pa.table({"content": ["x" * 500]})
    lines = render(table, max_width=30).split("\n")
    assert lines[2] == "x" * 29 + ELLIPSIS and all(display_width(line) <= 30 for line in lines)


def test_wide_characters_keep_the_columns_aligned() -> None:
    table = pa.table({"text": ["한국어 텍스트", "abc", "🚀🚀 emoji", "naïve café"], "n": [1, 2, 3, 4]})
    lines = render(table, max_width=80).split("\n")[:-1]
    assert len({display_width(line.rstrip()) for line in lines[2:]}) == 1  # n is right-aligned, same column
    narrow = render(table, max_width=9).split("\n")
    assert all(display_width(line) <= 9 for line in narrow)


def test_empty_and_unlimited() -> None:
    empty = pa.table({"a": pa.array([], pa.string())})
    assert render(empty, max_width=80).split("\n") == ["a", "─", "0 rows"]
    many = pa.table({"i": list(range(100))})
    assert len(render(many, max_width=80, max_rows=None).split("\n")) == 103


def test_controls_are_shown_not_sent() -> None:
    table = pa.table({HOSTILE: [HOSTILE, "plain"], "n": [1, 2]})
    for text in (render(table, max_width=None), render(table, max_width=60), markdown(table)):
        assert not acting(text), acting(text)
        assert "\\u001b[31m" in text
    cut = render(table, max_width=60).split("\n")
    assert cut[0].endswith(f"{ELLIPSIS}  n") and display_width(cut[2]) == 60
    assert "\\u202e" in markdown(table)
    whole = render(table, max_width=None)
    assert len(whole.split("\n")) == 5  # the newline inside the value does not start a line
    assert "\\r\\n\\t\\u0000" in whole and "\\U000e0041" in whole and "\\u009b" in whole


@given(st.text())
def test_visible_leaves_nothing_that_acts(text: str) -> None:
    shown = visible(text)
    assert not acting(shown) and "\n" not in shown
    if text.isprintable():
        assert shown == text


@given(st.recursive(st.text() | st.integers() | st.none(), lambda inner: st.lists(inner, max_size=3), max_leaves=8))
def test_json_stays_exact(value: object) -> None:
    text = json_visible(json.dumps(value, ensure_ascii=False))
    assert json.loads(text) == value and not acting(text)


def test_markdown_gives_whole_values() -> None:
    long = "a | b " * 30
    table = pa.table({"text": [long, None], "n": [1.5, 2.0], "ok": [True, False]})
    assert markdown(table).split("\n") == [
        "| text | n | ok |",
        "| --- | ---: | --- |",
        f"| {long.replace('|', chr(92) + '|')} | 1.5 | true |",
        "| null | 2.0 | false |",
    ]
