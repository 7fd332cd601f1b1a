"""Notebook display: the transcript of a Session and the summary of SessionTables, escaped and self-contained."""

from __future__ import annotations

import re
import unicodedata
from html import unescape
from html.parser import HTMLParser

import pytest
from conftest import fixture_files

from sessionkit._html import escape_text
from sessionkit.model import AgentResponse, Session, UserMessage, encode_compact, session_html
from sessionkit.oxios import read_session
from sessionkit.tables import tables_html, to_tables

_FOLD = 600  # long texts show their first 600 characters unfolded
HOSTILE = "</script><script>alert(1)</script>"
ALLOWED_TAGS = {
    "style",
    "div",
    "span",
    "details",
    "summary",
    "table",
    "tr",
    "th",
    "td",
    "code",
    "caption",
    "b",
    "ol",
    "li",
}
ALLOWED_ATTRS = {"class", "title", "style"}


class _Page(HTMLParser):
    """Collects the tags, attributes and text of an HTML fragment."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if not self._in_style:
            self.text.append(data)


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    return page


def _shown(text: str) -> str:
    """What a reader sees of ``text``: invisible controls as \\uXXXX marks (the documented rule)."""
    out = []
    for ch in text:
        hidden = unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")
        out.append(f"\\u{ord(ch):04x}" if hidden and ch not in "\n\t\u200d" else ch)
    return "".join(out)


def _assert_self_contained(html: str) -> _Page:
    page = _parse(html)
    for tag, attrs in page.tags:
        assert tag in ALLOWED_TAGS, tag
        assert set(attrs) <= ALLOWED_ATTRS, attrs
    styles = re.findall(r"<style>(.*?)</style>", html, re.S)
    for css in styles:
        assert "url(" not in css and "@import" not in css and "@font-face" not in css
    return page


@pytest.mark.parametrize("path", fixture_files("oxios-edge"), ids=lambda p: p.stem[:8])
def test_edge_transcripts_are_escaped(path) -> None:
    session = read_session(path)
    html = session._repr_html_()
    assert HOSTILE not in html and "<script" not in html.lower()
    assert "\u202e" not in html and "\u2066" not in html  # no bidi control reaches the page
    page = _assert_self_contained(html)
    text = "".join(page.text)
    for message in session.user_messages:
        assert _shown(message.content) in text
    for response in session.agent_responses:
        assert _shown(response.content) in text
    for key in session.metadata:
        assert _shown(key) in text


def test_the_hostile_strings_show_as_text() -> None:
    s = Session(id=HOSTILE, user_id="u\u202eevil", created_at="2026-01-01T00:00:00Z", updated_at="2026-01-01T00:00:00Z")
    s.user_messages.append(UserMessage(HOSTILE, "2026-01-01T00:00:00Z"))
    s.agent_responses.append(
        AgentResponse(content="<img src=x onerror=alert(1)>", seed_id='"><b>', timestamp="2026-01-01T00:00:02.5Z")
    )
    s.metadata[HOSTILE] = {"k": "<b>"}
    s.metadata["rtl \u202eabc"] = 1
    html = session_html(s)
    assert "<img" not in html and "<script" not in html and '"><b>' not in html
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in html
    text = "".join(_parse(html).text)
    assert HOSTILE in text and "<img src=x onerror=alert(1)>" in text
    assert "rtl \\u202eabc" in text and "u\\u202eevil" in text
    assert 'title="U+202E RIGHT-TO-LEFT OVERRIDE"' in html


def test_escape_text() -> None:
    assert escape_text("a<b & 'c'") == "a&lt;b &amp; &#x27;c&#x27;"
    assert escape_text("line\nnext\ttab") == "line\nnext\ttab"
    assert escape_text("\u202e") == '<span class="sk-ctl" title="U+202E RIGHT-TO-LEFT OVERRIDE">\\u202e</span>'
    assert unescape(re.sub("<[^>]+>", "", escape_text("x\x00y"))) == "x\\u0000y"
    family = "\U0001f469\u200d\U0001f469\u200d\U0001f467"  # joined by zero-width joiners: left alone
    assert escape_text(family) == family


def _session(n_messages: int, n_responses: int) -> Session:
    s = Session(
        id="s-1",
        user_id="ann",
        active_seed_id="seed-7",
        active_persona_id="dev",
        created_at="2026-01-01T00:00:00Z",
        updated_at="2026-01-01T00:01:00Z",
        metadata={"channel": "cli"},
        extra={"project_id": "p-9"},
    )
    for i in range(n_messages):
        s.user_messages.append(UserMessage(f"question {i}", f"2026-01-01T00:00:{10 * i:02d}Z"))
    for i in range(n_responses):
        s.agent_responses.append(
            AgentResponse(
                content=f"answer {i}",
                seed_id="seed-7",
                phase_reached="Execute" if i else "Interview",
                evaluation_passed=[True, False, None][i % 3],
                timestamp=f"2026-01-01T00:00:{10 * i + 2:02d}.250000001Z",
                extra={"trajectory_range": [0, i]},
            )
        )
    return s


def test_transcript_pairs_exchanges_with_badges() -> None:
    html = session_html(_session(3, 2))
    text = " ".join(_parse(html).text)
    assert text.index("question 0") < text.index("answer 0") < text.index("question 1") < text.index("answer 1")
    assert "seq 0" in text and "seq 2" in text  # numbered by seq, from 0, as in the tables
    assert "no agent response yet" in text  # the third message is unanswered
    assert "latency: 2.250 s" in text
    assert "seed: seed-7" in text and "persona: dev" in text
    assert "phase: Interview" in text and "phase: Execute" in text
    assert "evaluation: passed" in text and "evaluation: failed" in text
    assert "2026-01-01T00:00:12.250000001Z" in text  # every digit of the timestamp
    assert "channel" in text and '"cli"' in text
    assert "project: p-9" in text  # today's oxios: the project is a badge of the head
    assert "trajectory_range" in text  # a range oxios would not write (a list) stays a field, folded
    assert 'class="sk-badge sk-pass"' in html and 'class="sk-badge sk-fail"' in html
    unpaired = " ".join(_parse(session_html(_session(1, 2))).text)
    assert "no user message at this position" in unpaired
    empty = " ".join(_parse(session_html(Session.with_id("u", "e"))).text)
    assert "no messages" in empty


def test_long_transcripts_fold_past_a_few_exchanges() -> None:
    long = Session(id="l", user_id="u", created_at="2026-01-01T00:00:00Z", updated_at="2026-01-01T00:30:00Z")
    for i in range(20):
        long.user_messages.append(UserMessage(f"q{i}", f"2026-01-01T00:{i:02d}:00Z"))
        long.agent_responses.append(AgentResponse(content=f"a{i}", timestamp=f"2026-01-01T00:{i:02d}:05Z"))
    html = session_html(long)
    shown, folded = html.split('<details class="sk-more">')
    assert [f"seq {i}" for i in range(3)] == re.findall(r"seq \d+(?=</span>)", shown)
    assert re.search(r"<summary>show all 20 exchanges \(17 more: seq 3 to 19\)</summary>", folded)
    assert re.findall(r"seq \d+(?=</span>)", folded) == [f"seq {i}" for i in range(3, 20)]
    assert '<details class="sk-more">' not in session_html(_session(4, 4))  # four fit; five fold
    assert '<details class="sk-more">' in session_html(_session(5, 5))
    assert '<details class="sk-more">' not in session_html(long, fold=False)


def test_long_contents_are_folded() -> None:
    s = _session(1, 1)
    s.user_messages[0].content = "word " * 1000 + "<end>"
    html = session_html(s)
    assert html.count("<details>") >= 1
    assert "(5,005 characters; open for all)" in html
    assert "&lt;end&gt;" in html and "<end>" not in html


def test_tables_summary_lists_seeds_and_personas_only_when_there_are_some() -> None:
    plain = [_session(1, 1) for _ in range(3)]
    for i, s in enumerate(plain):
        s.id, s.active_seed_id, s.active_persona_id = f"p-{i}", None, None
    text = " ".join(_parse(to_tables(plain)._repr_html_()).text)
    assert "top seeds" not in text and "(no seed)" not in text and "top personas" not in text
    plain[0].active_persona_id = "dev"
    text = " ".join(_parse(to_tables(plain)._repr_html_()).text)
    assert "top personas" in text and "top seeds" not in text


def test_transcript_style_can_be_left_out() -> None:
    assert session_html(_session(1, 1)).startswith("<style>")
    assert "<style>" not in session_html(_session(1, 1), style=False)


def test_tables_summary() -> None:
    sessions = []
    for i, seed in enumerate(["seed-a", "seed-a", "seed-b", None, HOSTILE, "s3", "s4", "s5"]):
        s = _session(1, 1)
        s.id = f"s-{i}"
        s.active_seed_id = seed
        s.active_persona_id = None if i % 2 else "dev"
        sessions.append(s)
    tables = to_tables(sessions)
    html = tables._repr_html_()
    page = _assert_self_contained(html)
    text = " ".join(page.text)
    assert HOSTILE not in html and HOSTILE in text
    for name, rows in (("sessions", 8), ("messages", 8), ("responses", 8), ("metadata", 8)):
        assert re.search(rf"{name}\s+{rows}", text), name
    assert "1 users" in text and "2026-01-01T00:00:00Z" in text and "2026-01-01T00:01:00Z" in text
    assert text.index("seed-a") < text.index("(2)")  # the most used seed first, with its count
    assert "(no persona)" in text and "dev" in text
    assert "… and 2 more" in text  # 7 distinct seeds (null included), 5 shown
    assert "… and 2 more" not in re.search(r"<ol>.*?</ol>", html, re.S).group(0)  # not a numbered item
    assert tables_html(to_tables([])).count("<tr>") == 5  # header and four empty tables


def _working_session() -> Session:
    """Two exchanges of today's oxios: tool calls by trajectory_range, reasoning by time, with segments."""
    s = Session(
        id="w",
        user_id="u",
        created_at="2026-01-01T00:00:00Z",
        updated_at="2026-01-01T00:01:00Z",
        extra={"project_id": "proj-1", "parent_session_id": "root-0"},
    )
    step = {"output_summary": "ok", "duration_ms": 12, "is_error": False, "tool_call_id": None}
    s.extra["trajectory_steps"] = [
        {"tool_name": "grep", "tool_args": '{"pattern":"<b>"}', **step, "timestamp": "2026-01-01T00:00:01Z"},
        {"tool_name": "bash", "tool_args": {"command": "make"}, **step, "is_error": True, "duration_ms": 2500},
        {"tool_name": "edit", "tool_args": {}, **step, "duration_ms": 0},
        {"tool_name": "stray", "tool_args": {}, **step},  # in no response's range
    ]
    s.extra["reasoning_records"] = [
        {
            "content": "first then second then last",
            "source": "thinking",
            "timestamp": "2026-01-01T00:00:05Z",
            "segments": [
                {"before_step": 0, "text": "first thought"},
                {"before_step": 1, "text": "second thought"},
                {"before_step": 2, "text": "last thought"},
            ],
        },
        {"content": "plain reasoning", "source": "thinking", "timestamp": "2026-01-01T00:00:25Z"},
        {"content": "compacted long ago", "source": "compaction", "timestamp": "2025-12-31T00:00:00Z"},
    ]
    s.user_messages.append(UserMessage("question zero", "2026-01-01T00:00:00Z"))
    s.agent_responses.append(
        AgentResponse(
            content="answer zero", timestamp="2026-01-01T00:00:05Z", extra={"trajectory_range": {"start": 0, "end": 2}}
        )
    )
    s.user_messages.append(UserMessage("question one", "2026-01-01T00:00:20Z"))
    s.agent_responses.append(
        AgentResponse(
            content="answer one", timestamp="2026-01-01T00:00:30Z", extra={"trajectory_range": {"start": 2, "end": 3}}
        )
    )
    return s


def test_tool_calls_and_reasoning_sit_between_message_and_response_folded() -> None:
    html = session_html(_working_session())
    page = _assert_self_contained(html)
    text = " ".join(page.text)
    order = ["question zero", "first thought", "step 0", "grep", "second thought", "step 1", "bash", "last thought"]
    order += ["answer zero", "question one", "plain reasoning", "step 2", "edit", "answer one"]
    positions = [text.index(item) for item in order]
    assert positions == sorted(positions), list(zip(order, positions, strict=True))
    assert "project: proj-1" in text and "continues: root-0" in text
    # folded by default, the summary says what is inside and marks errors
    assert html.count('<details class="sk-work">') == 3  # two exchanges and the leftovers
    assert re.search(
        r"<summary>2 tool calls · 2\.512 s in tools · reasoning \(27 characters\) <span class=\"sk-badge sk-fail\">1 error</span>",
        html,
    )
    assert '<div class="sk-tool sk-fail"><span class="sk-n">step 1</span><b>bash</b>' in html
    assert "0 ms (not timed)" in text and "2.500 s" in text and "12 ms" in text
    # arguments as oxios stored them: the chat route's JSON text as is, an object as compact JSON, escaped
    assert "{&quot;pattern&quot;:&quot;&lt;b&gt;&quot;}" in html and '{"pattern":"<b>"}' in text
    assert '{"command":"make"}' in text
    # nothing is lost: what fits no exchange follows the transcript
    leftover = html.split('<details class="sk-work">')[3]
    assert "not in any exchange" in leftover and "stray" in leftover and "compacted long ago" in leftover
    # shown as tool calls and reasoning, so not again as raw fields
    assert "trajectory_steps" not in text and "reasoning_records" not in text and "trajectory_range" not in text


def test_odd_shaped_trajectories_stay_raw_fields() -> None:
    s = _working_session()
    s.extra["trajectory_steps"] = "not a list"
    s.extra["reasoning_records"] = [1, 2]
    s.extra["project_id"] = 7
    text = " ".join(_parse(session_html(s)).text)
    assert "trajectory_steps" in text and '"not a list"' in text
    assert "reasoning_records" in text and "project_id" in text
    assert "tool call" not in text


@pytest.mark.parametrize("path", fixture_files("oxios-v2"), ids=lambda p: p.stem[:8])
def test_every_tool_call_and_reasoning_of_the_fixtures_is_shown(path) -> None:
    session = read_session(path)
    page = _assert_self_contained(session_html(session, fold=False))
    text = "".join(page.text)
    steps = session.extra.get("trajectory_steps", [])
    assert text.count("step ") >= len(steps)
    for step in steps:
        assert _shown(step["tool_name"]) in text
        args = step["tool_args"]
        assert _shown(args if isinstance(args, str) else encode_compact(args)) in text
    for record in session.extra.get("reasoning_records", []):
        texts = [segment["text"] for segment in record.get("segments", [])] or [record["content"]]
        for piece in texts:
            assert _shown(piece[:_FOLD]) in text
