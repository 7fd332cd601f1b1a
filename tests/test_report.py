"""The HTML report: one self-contained page, checked as text and in a real headless Chromium."""

from __future__ import annotations

import base64
import math
import os
import re
from collections import Counter
from collections.abc import Callable
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import FIXTURES, ROOT, oracle, tool_errors_from_the_runs

from sessionkit.cli import main
from sessionkit.model import AgentResponse, Session, UserMessage
from sessionkit.oxios import read_sessions
from sessionkit.report import write_report
from sessionkit.report._page import CSP, report_html
from sessionkit.tables import to_tables

#: Debian's chromium, or another one named by SESSIONKIT_TEST_CHROMIUM.
CHROMIUM = os.environ.get("SESSIONKIT_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HOSTILE = "</script><script>alert(1)</script>"


def _chromium() -> str:
    """The Chromium the browser tests drive (Debian's), or a skip that says how to get it.

    Nothing is downloaded at run time: playwright drives this executable, never a browser of its own.
    """
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(
            f"{CHROMIUM} is missing, so the report is not checked in a real browser here; "
            "install Debian's chromium (make chromium) or name one in SESSIONKIT_TEST_CHROMIUM to run this test"
        )
    pytest.importorskip("playwright.sync_api", reason="playwright (in the test extra) drives Chromium")
    return CHROMIUM


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(html)
    return parser.tags


def _traps() -> Session:
    """A session whose every field tries to run script or fetch something if it is not escaped."""
    s = Session(
        id="trap-<img src=x onerror=alert(2)>",
        user_id="<script>window.__pwned = 'user'</script>",
        active_seed_id="seed-<svg onload=alert(3)>",
        active_persona_id="persona-\u202eevil",
        created_at="2026-01-01T00:00:00Z",
        updated_at="2026-01-01T00:05:00Z",
    )
    s.user_messages.append(UserMessage(HOSTILE, "2026-01-01T00:00:00Z"))
    s.user_messages.append(
        UserMessage("<img src='http://127.0.0.1:9/x.png' onerror='window.__pwned=1'>", "2026-01-01T00:01:00Z")
    )
    s.agent_responses.append(
        AgentResponse(
            content="<link rel=stylesheet href='http://127.0.0.1:9/x.css'><style>@import url(http://127.0.0.1:9/y.css)</style>",
            seed_id="seed-<svg onload=alert(3)>",
            phase_reached="<iframe src=//127.0.0.1:9>",
            evaluation_passed=False,
            timestamp="2026-01-01T00:00:03Z",
        )
    )
    s.agent_responses.append(
        AgentResponse(content="<script>window.__pwned = 2</script>", timestamp="2026-01-01T00:01:04Z")
    )
    s.metadata[HOSTILE] = "<b>bold</b>"
    s.metadata["<meta http-equiv=refresh content='0;url=http://127.0.0.1:9/'>"] = 1
    return s


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of the edge fixture plus the trap session, whose transcript it shows."""
    sessions = [*read_sessions(FIXTURES / "oxios-edge"), _traps()]
    out = tmp_path_factory.mktemp("report") / "report.html"
    edge_ids = [s.id for s in sessions if any(HOSTILE in m.content for m in s.user_messages)][:2]
    return write_report(to_tables(sessions), out, sessions=[_traps().id, *edge_ids], title="edge <report>")


def test_the_page_loads_nothing_and_runs_nothing(hostile_report: Path) -> None:
    html = hostile_report.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert f'<meta http-equiv="Content-Security-Policy" content="{CSP}">' in html
    tags = _tags(html)
    assert not [t for t, _ in tags if t in ("script", "iframe", "frame", "object", "embed", "base", "form")]
    for tag, attrs in tags:
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
        for name in ("src", "href", "action", "formaction", "srcset"):
            value = attrs.get(name)
            inside = tag == "a" and name == "href" and value is not None and re.fullmatch(r"#[\w-]+", value)
            assert value is None or value.startswith("data:") or inside, (tag, name, value)
        if tag == "meta":
            assert attrs.get("http-equiv") in (None, "Content-Security-Policy")
        if tag == "link":
            assert attrs == {"rel": "icon", "href": "data:,"}
    assert "url(" not in html.split("<body>")[0].replace("data:", "")
    assert HOSTILE not in html and "\u202e" not in html
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<title>edge &lt;report&gt;</title>" in html


def test_the_charts_are_embedded_svg(hostile_report: Path) -> None:
    html = hostile_report.read_text(encoding="utf-8")
    images = [attrs["src"] for tag, attrs in _tags(html) if tag == "img"]
    assert len(images) >= 6
    for src in images:
        assert src.startswith("data:image/svg+xml;base64,")
        svg = base64.b64decode(src.split(",", 1)[1]).decode()
        assert svg.lstrip().startswith("<?xml") and "<svg" in svg
        assert "<script" not in svg.lower() and not re.search(r"href=\"(?!#)", svg)
        assert "onload" not in svg


def test_the_contents_link_every_section(hostile_report: Path) -> None:
    html = hostile_report.read_text(encoding="utf-8")
    links = re.findall(r'<li><a href="#([\w-]+)">', html)
    sections = re.findall(r'<section id="([\w-]+)"><h2>', html)
    assert links == sections and len(sections) >= 5
    assert html.count('<div class="sk-session">') == 3  # the three sessions asked for


def test_report_in_headless_chromium(hostile_report: Path, tmp_path: Path) -> None:
    chromium = _chromium()
    from playwright.sync_api import sync_playwright

    url = hostile_report.resolve().as_uri()
    console: list[str] = []
    errors: list[str] = []
    requests: list[str] = []
    dialogs: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"),  # a fresh --user-data-dir
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            page = browser.new_page()
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            response = page.goto(url, wait_until="load")
            assert response is not None and response.ok
            page.wait_for_timeout(200)  # let late errors and requests show up
            scripts = page.evaluate("document.scripts.length")
            pwned = page.evaluate("typeof window.__pwned")
            broken = page.evaluate("[...document.images].filter(i => !i.complete || i.naturalWidth === 0).length")
            images = page.evaluate("document.images.length")
            page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")  # unfold all
            text = page.evaluate("document.body.innerText")
            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=False)
        finally:
            browser.close()
    assert not [c for c in console if c.startswith("error")], console
    assert not errors
    assert not dialogs  # no alert() from the content ran
    assert scripts == 0 and pwned == "undefined"
    outside = [u for u in requests if not (u.startswith("data:") or u == url)]
    assert not outside, outside
    assert images >= 6 and broken == 0
    assert HOSTILE in text  # shown as text
    assert shot.stat().st_size > 10_000 and shot.read_bytes().startswith(b"\x89PNG")


def test_samples_spread_over_conversation_length(exported: dict[str, Path]) -> None:
    html = report_html(exported["oxios-v1"], samples=3, since="all")
    shown = re.findall(r"<summary>Session ([^ <]+) ", html)
    assert len(shown) == 3
    counts = oracle("oxios-v1")["exchange_count_by_session"]
    lengths = [counts[s] for s in shown]
    assert lengths == sorted(lengths) and lengths[0] >= 1 and lengths[-1] == max(counts.values())
    from sessionkit.query import connect
    from sessionkit.report._period import Period, PeriodSource
    from sessionkit.report._sections import samples as _samples

    con = connect(exported["oxios-v1"])
    everything = PeriodSource(con, Period(-(2**62), 2**62))
    assert _samples(everything, 0, None) == [] and len(_samples(everything, 1, None)) == 1
    assert _samples(everything, 2, ["a", "b"]) == ["a", "b"]


def test_report_of_nothing(tmp_path: Path) -> None:
    path = write_report(to_tables([]), tmp_path / "deep" / "er" / "empty.html")
    html = path.read_text(encoding="utf-8")
    assert "No sessions in this dataset." in html and "no sessions with exchanges" in html


def test_report_command(exported: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.html"
    assert main(["report", str(exported["oxios-v2"]), str(out), "--samples", "1", "--title", "v2"]) == 0
    assert "wrote the report of" in capsys.readouterr().out
    html = out.read_text(encoding="utf-8")
    assert "<title>v2</title>" in html and html.count('<details class="sample">') == 1
    assert main(["report", str(exported["oxios-v2"]), str(out), "--session", "no-such-id"]) == 2
    assert "no session with id 'no-such-id'" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "missing"), str(out)]) == 1
    assert main(["--help"]) == 0 and "report" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["sample", "modern-sample", "oxios-v2", "oxios-edge", "empty"])
def test_titles_and_labels_fit_every_chart_of_the_report(
    name: str, exported: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every chart the report draws, at the size the report draws it: each title, axis label and
    legend entry inside the figure, and so is everything drawn (the figure's tight box)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    drawn: list[Figure] = []
    savefig = Figure.savefig

    def keep(figure: Figure, *args: object, **kwargs: object) -> None:
        drawn.append(figure)
        savefig(figure, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    folders = {"sample": "oxios-sample", "modern-sample": "oxios-modern-sample"}
    data = {"empty": [], **{k: read_sessions(ROOT / "data" / v) for k, v in folders.items() if k == name}}
    report_html(to_tables(data[name]) if name in data else exported[name], since="all")
    assert len(drawn) >= (0 if name == "empty" else 6)
    for figure in drawn:
        FigureCanvasAgg(figure).draw()
        renderer = figure.canvas.get_renderer()
        frame = figure.bbox
        for ax in figure.axes:
            legend = ax.get_legend()
            for text in (ax.title, ax.xaxis.label, ax.yaxis.label, *(legend.get_texts() if legend else [])):
                if not (text.get_visible() and text.get_text()):
                    continue
                box = text.get_window_extent(renderer)
                inside = (
                    box.x0 >= frame.x0 - 1
                    and box.x1 <= frame.x1 + 1
                    and box.y0 >= frame.y0 - 1
                    and box.y1 <= frame.y1 + 1
                )
                assert inside, f"{name}: {text.get_text()!r} sticks out of its {figure.get_size_inches()} in chart"
        tight = figure.get_tightbbox(renderer)
        width, height = figure.get_size_inches()
        assert tight.x0 >= -0.01 and tight.y0 >= -0.01 and tight.x1 <= width + 0.01 and tight.y1 <= height + 0.01, (
            f"{name}: {drawn.index(figure)}: something is drawn outside the chart ({tight.extents} in a {width} x {height} in figure)"
        )


# -- what the report says, against figures computed here from the session files' JSON ------------------
SEEDS_ERA, TODAY = "oxios-v1", "oxios-v2"
#: Rows a ranked table of groups shows; the rest are in its folded full table.
SHOWN = 8
#: The bundled samples: the seeds era (oxios up to 1.8) and today's oxios (tools, projects, threads).
SAMPLE, MODERN = "oxios-sample", "oxios-modern-sample"
ERAS = [SEEDS_ERA, TODAY, SAMPLE, MODERN]
_FOLDERS = {
    SEEDS_ERA: FIXTURES / SEEDS_ERA,
    TODAY: FIXTURES / TODAY,
    SAMPLE: ROOT / "data" / SAMPLE,
    MODERN: ROOT / "data" / MODERN,
}
#: A period of two calendar months (or so) inside each dataset, the one before only partly covered.
_EXPLICIT = {
    SEEDS_ERA: ("2026-07-01", "2026-09-01T00:00:00Z"),
    TODAY: ("2026-07-01", "2026-09-01T00:00:00Z"),
    SAMPLE: ("2026-04-01", "2026-06-01T00:00:00Z"),
    MODERN: ("2026-08-01", "2026-09-15T12:00:00Z"),
}
DAY_NS = 86_400 * 10**9
_STAMP = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?Z$")


def _ns(text: str) -> int:
    """An oxios timestamp in nanoseconds, parsed here (not by sessionkit)."""
    import datetime as dt

    date, h, m, sec, fraction = _STAMP.match(text).groups()
    day = (dt.date.fromisoformat(date) - dt.date(1970, 1, 1)).days
    return ((day * 24 + int(h)) * 60 + int(m)) * 60 * 10**9 + int(sec) * 10**9 + int((fraction or "").ljust(9, "0"))


def _raw(name: str) -> list[dict]:
    import json

    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted((_FOLDERS[name] / "sessions").glob("*.json"))]


@pytest.fixture(scope="module")
def datasets(exported: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The fixtures' datasets and the bundled samples exported once, by name."""
    from sessionkit.archive import export

    out = dict(exported)
    for name in (SAMPLE, MODERN):
        out[name] = tmp_path_factory.mktemp("samples") / name
        export(_FOLDERS[name], out[name], jobs=1)
    return out


def _default_period(raw: list[dict]) -> tuple[int, int]:
    """The documented default: up to the second after the last activity, the 28 days before."""
    last = max(max(_ns(s["created_at"]), _ns(s["updated_at"])) for s in raw)
    until = (last // 10**9 + 1) * 10**9
    return until - 28 * DAY_NS, until


def _within(raw: list[dict], since: int, until: int) -> list[dict]:
    return [s for s in raw if since <= _ns(s["created_at"]) < until]


def _exchanges(s: dict) -> list[tuple[dict, dict]]:
    return list(zip(s["user_messages"], s["agent_responses"], strict=False))


def _figures(chosen: list[dict]) -> dict[str, float | int | None]:
    import numpy as np

    responses = [r for s in chosen for r in s["agent_responses"]]
    passed = sum(r.get("evaluation_passed") is True for r in responses)
    failed = sum(r.get("evaluation_passed") is False for r in responses)
    latencies = [_ns(r["timestamp"]) - _ns(m["timestamp"]) for s in chosen for m, r in _exchanges(s)]
    latencies = [x for x in latencies if x >= 0]
    steps = [t for s in chosen for t in s.get("trajectory_steps", [])]
    return {
        "tool_calls": len(steps),
        "tool_errors": sum(t.get("is_error") is True for t in steps),
        "sessions": len(chosen),
        "users": len({s["user_id"] for s in chosen}),
        "exchanges": sum(len(_exchanges(s)) for s in chosen),
        "pass_rate": passed / (passed + failed) if passed + failed else None,
        "p90_latency_s": float(np.percentile(np.array(latencies, dtype=np.int64), 90)) / 1e9 if latencies else None,
    }


def _cards(html: str) -> dict[str, tuple[str, str]]:
    return {
        m: (now, before)
        for m, now, before in re.findall(r'data-metric="(\w+)" data-now="([^"]*)" data-before="([^"]*)"', html)
    }


def _close(shown: str, want: float | int | None) -> bool:
    if want is None:
        return shown in ("None", "")
    return float(shown) == pytest.approx(want, rel=1e-9, abs=1e-9)


def _runs_within(name: str, since: int, until: int) -> list[dict]:
    """The agent-run records of fixture ``name`` created in ``[since, until)``, read here from the JSON."""
    import json

    folder = _FOLDERS[name] / "agents"
    records = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))]
    return [r for r in records if since <= _ns(r["created_at"]) < until]


def _expected_sections(chosen: list[dict], runs: int = 0) -> list[str]:
    """The sections the report must have for these sessions (and this many agent runs), decided here from the JSON."""
    responses = [r for s in chosen for r in s["agent_responses"]]
    phases = {r["phase_reached"] for r in responses if r.get("phase_reached") is not None}
    sections = ["activity", "conversations"]
    if any(s.get("active_seed_id") for s in chosen) or any(r.get("seed_id") for r in responses):
        sections.append("seeds")
    if any(s.get("active_persona_id") for s in chosen):
        sections.append("personas")
    if len(phases) > 1:
        sections.append("phases")
    if any(r.get("evaluation_passed") is not None for r in responses):
        sections.append("evaluations")
    if any(s.get("trajectory_steps") for s in chosen):
        sections.append("tools")
    if any(s.get("project_id") for s in chosen):
        sections.append("projects")
    if any(s.get("parent_session_id") for s in chosen):
        sections.append("threads")
    if runs:  # issue 13: the agent runs' cost and models
        sections.append("cost")
    sections.append("users")
    if any(s.get("metadata") for s in chosen):
        sections.append("metadata")
    return [*sections, "transcripts"]


def _sections(html: str) -> list[str]:
    return re.findall(r'<section id="([\w-]+)"><h2>', html)


@pytest.mark.parametrize("name", ERAS)
@pytest.mark.parametrize("window", ["default", "all", "explicit"])
def test_sections_and_headline_match_the_data(name: str, window: str, datasets: dict[str, Path]) -> None:
    """On both eras (the fixtures and the bundled samples): the sections the report has and the
    headline's figures, now and in the period before, against figures computed here from the
    session files' JSON."""
    raw = _raw(name)
    if window == "default":
        since, until = _default_period(raw)
        html = report_html(datasets[name])
    elif window == "all":
        until = _default_period(raw)[1]
        first = min(_ns(s["created_at"]) for s in raw)
        since = first - first % 10**9
        html = report_html(datasets[name], since="all")
    else:  # about two calendar months, the period before only partly covered by the data
        start, end = _EXPLICIT[name]
        since, until = _ns(f"{start}T00:00:00Z"), _ns(end)
        html = report_html(datasets[name], since=start, until=end)
    assert f'data-since="{since}" data-until="{until}"' in html
    chosen = _within(raw, since, until)
    before = _within(raw, 2 * since - until, since)
    runs = _runs_within(name, since, until)
    assert chosen and _sections(html) == _expected_sections(chosen, len(runs))
    if runs:
        dollars = math.fsum(r["cost_usd"] for r in runs)
        assert f"{len(runs):,} runs, ${dollars:,.2f} (oxios' estimate)" in unescape(html)
    cards = _cards(html)
    now, then = _figures(chosen), _figures(before)
    assert {"sessions", "users", "exchanges", "p90_latency_s"} <= set(cards)
    for metric in ("sessions", "users", "exchanges", "tool_calls", "tool_errors"):  # what the reader sees
        if metric in cards:
            assert re.search(rf'data-metric="{metric}"[^>]*><div class="v">{now[metric]:,}</div>', html), metric
    for metric, (shown_now, shown_before) in cards.items():
        assert _close(shown_now, now[metric]), (metric, shown_now, now[metric])
        compared = any(_ns(s["created_at"]) < since for s in raw)
        if compared:
            assert _close(shown_before, then[metric]), (metric, shown_before, then[metric])
        else:
            assert shown_before == ""
    # the arrow says which way a figure moved, the colour whether that is good news
    worse_up = {"tool_errors", "p90_latency_s"}
    changes = re.findall(r'data-metric="(\w+)"[^>]*>.*?<div class="c ?([a-z ]*)">', html)
    assert [m for m, _ in changes] == list(cards)
    for metric, way in changes:
        a, z = now[metric], then[metric]
        if not any(_ns(s["created_at"]) < since for s in raw) or a is None or z is None or a == z:
            assert way == "", (metric, way)
        else:
            up = a > z
            assert way == f"{'up' if up else 'down'} {'bad' if up == (metric in worse_up) else 'good'}", (metric, way)
    assert ("pass_rate" in cards) == (now["pass_rate"] is not None or then["pass_rate"] is not None)
    assert ("tool_calls" in cards) == ("tool_errors" in cards) == bool(now["tool_calls"] or then["tool_calls"])
    assert ("tool_calls" in cards) == (name in (TODAY, MODERN))  # the seeds era has no tool calls: no card
    if window == "all":
        assert "nothing to compare with" in html and "Biggest movers" not in html


def _movers(chosen: list[dict], before: list[dict]) -> list[tuple[str, str]]:
    """The three biggest movers as the docs define them: the groups (seeds, personas and projects
    by the sessions' ids, tools by their calls) whose share of their kind moved most, in points."""

    def by_session(field: str) -> Callable[[list[dict]], list[str | None]]:
        return lambda sessions: [s.get(field) for s in sessions]

    def by_call(sessions: list[dict]) -> list[str | None]:
        return [t.get("tool_name") for s in sessions for t in s.get("trajectory_steps", [])]

    kinds = (
        ("seed", by_session("active_seed_id")),
        ("persona", by_session("active_persona_id")),
        ("tool", by_call),
        ("project", by_session("project_id")),
    )
    moved = []
    for kind, groups in kinds:
        in_now, in_before = groups(chosen), groups(before)
        if not any(g is not None for g in in_now):
            continue
        now, then = Counter(in_now), Counter(in_before)
        if len(now.keys() | then.keys()) < 2 or not now or not then:
            continue
        for g in now.keys() | then.keys():
            n, m = now[g], then[g]
            shift = abs(n / len(in_now) - m / len(in_before))
            moved.append((-shift, -abs(n - m), kind, g is None, str(g), kind, f"(no {kind})" if g is None else g))
    moved.sort()
    return [(m[5], m[6]) for m in moved[:3] if m[0] != 0]


@pytest.mark.parametrize("name", ERAS)
def test_the_three_biggest_movers(name: str, datasets: dict[str, Path]) -> None:
    raw = _raw(name)
    since, until = _default_period(raw)
    html = report_html(datasets[name])
    shown = re.findall(r'<li data-kind="(\w+)" data-group="([^"]*)">', html)
    want = _movers(_within(raw, since, until), _within(raw, 2 * since - until, since))
    assert shown == want and len(shown) == 3


def _wilson_high(passed: int, failed: int) -> float:
    import math

    n, z = passed + failed, 1.959963984540054
    if failed == 0:
        return 1.0
    p = passed / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return min(1.0, centre + half)


def _column(html: str, ident: str) -> list[str]:
    table = re.search(rf'<table class="t" id="{ident}">(.*?)</table>', html, re.S).group(1)
    return [unescape(cell) for cell in re.findall(r"<tr><td[^>]*>(.*?)</td>", table)]


@pytest.mark.parametrize("name", [SEEDS_ERA, SAMPLE])
def test_group_tables_rank_what_an_analyst_looks_for(name: str, datasets: dict[str, Path]) -> None:
    """The seed tables of the seeds era against pass rates, session counts and p90 latencies
    computed here from the session files (and, for the fixture, checked against its oracle)."""
    import numpy as np

    raw = _raw(name)
    html = report_html(datasets[name], since="all")
    outcomes: dict[str, list[int]] = {}  # a response's seed: [passed, failed]
    for s in raw:
        for r in s["agent_responses"]:
            if r.get("evaluation_passed") is not None:
                outcomes.setdefault(r.get("seed_id") or "<none>", [0, 0])[0 if r["evaluation_passed"] else 1] += 1
    used = Counter(s.get("active_seed_id") or "<none>" for s in raw)
    if name == SEEDS_ERA:  # the oracle, computed by the fixtures' own tool, agrees with this test's reading
        facts = oracle(name)
        assert {k: [p, f] for k, (p, f, _) in facts["evaluation_by_seed"].items() if p + f} == outcomes
        assert facts["sessions_by_active_seed"] == dict(used)
    # the worst pass rates first: by the upper end of the 95% Wilson interval
    rated = sorted(
        outcomes,
        key=lambda k: (
            _wilson_high(*outcomes[k]),
            outcomes[k][0] / sum(outcomes[k]),
            -sum(outcomes[k]),
            k == "<none>",
            k,
        ),
    )
    named = ["(no seed)" if k == "<none>" else k for k in rated]
    assert len(rated) > SHOWN and _column(html, "seed-worst") == named[:SHOWN]
    assert f"{SHOWN} of {len(rated)} seeds with evaluations, the surely worst first" in html
    # the worst of all is among them, even when its id sorts late as text (seed-9 after seed-10)
    lowest = min(outcomes, key=lambda k: outcomes[k][0] / sum(outcomes[k]))
    assert _column(html, "seed-worst").index("(no seed)" if lowest == "<none>" else lowest) < SHOWN
    # the most used: by sessions, ties by id
    most = sorted(used, key=lambda k: (-used[k], k == "<none>", k))
    assert _column(html, "seed-most-used") == [("(no seed)" if k == "<none>" else k) for k in most[:SHOWN]]
    # a seed is any named as a session's active seed or by a response, "no seed" included
    seeds = {s.get("active_seed_id") for s in raw} | {r.get("seed_id") for s in raw for r in s["agent_responses"]}
    assert f"{SHOWN} of {len(seeds)} seeds, most sessions first" in html
    # the slowest: by p90 turn latency per seed of the response
    by_seed: dict[str, list[int]] = {}
    for s in raw:
        for m, r in _exchanges(s):
            if _ns(r["timestamp"]) >= _ns(m["timestamp"]):
                by_seed.setdefault(r.get("seed_id") or "(no seed)", []).append(
                    _ns(r["timestamp"]) - _ns(m["timestamp"])
                )
    p90 = {k: float(np.percentile(np.array(v, dtype=np.int64), 90)) for k, v in by_seed.items()}
    slowest = sorted(p90, key=lambda k: (-p90[k], -len(by_seed[k]), k == "(no seed)", k))
    assert _column(html, "seed-slowest") == slowest[:SHOWN]
    # and every row, folded, with the cut said
    assert _column(html, "seed-all")[:SHOWN] == _column(html, "seed-most-used")
    assert len(_column(html, "seed-all")) == len(seeds) and f"All {len(seeds)} seeds (full table, most" in html
    assert f'<details class="full"><summary>All {len(seeds)} seeds' in html


def test_timestamps_in_tables_are_shown_to_the_second(exported: dict[str, Path]) -> None:
    html = report_html(exported[SEEDS_ERA], since="all")
    body = html.split("<body>")[1]
    for table in re.findall(r'<table class="t".*?</table>', body, re.S):
        assert not re.search(r"\d\d:\d\d:\d\d\.\d", table), "a table shows fractions of a second"
    seen = _column(html, "users-all")
    assert seen and re.search(r"<td>\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ</td>", html)


def test_transcripts_are_folded_and_long_ones_fold_their_exchanges(exported: dict[str, Path]) -> None:
    html = report_html(exported[SEEDS_ERA], since="all")
    samples = re.findall(r"<details class=\"sample\"( open)?>", html)
    assert len(samples) == 3 and not any(samples)  # closed until opened
    longest = max(oracle(SEEDS_ERA)["exchange_count_by_session"].values())  # the last sample is the longest
    assert f'<details class="sk-more"><summary>show all {longest} exchanges ({longest - 3} more' in html


def test_since_and_until_choose_the_period(
    exported: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.html"
    data = str(exported[SEEDS_ERA])
    assert main(["report", data, str(out), "--since", "2026-08-01", "--until", "2026-08-15T12:00:00+02:00"]) == 0
    html = out.read_text(encoding="utf-8")
    since, until = _ns("2026-08-01T00:00:00Z"), _ns("2026-08-15T10:00:00Z")
    assert f'data-since="{since}" data-until="{until}"' in html
    assert "(14 days 10 h), against the 14 days 10 h before" in html
    assert _cards(html)["sessions"][0] == str(len(_within(_raw(SEEDS_ERA), since, until)))
    assert main(["report", data, str(out), "--since", "2w", "--until", "2026-08-15"]) == 0
    assert f'data-since="{_ns("2026-08-01T00:00:00Z")}"' in out.read_text(encoding="utf-8")
    capsys.readouterr()
    assert main(["report", data, str(out), "--since", "last tuesday"]) == 2
    assert "since: 'last tuesday' is not a bound the report takes" in capsys.readouterr().err
    assert main(["report", data, str(out), "--since", "2026-09-01", "--until", "2026-08-01"]) == 2
    assert "--since must be before --until" in capsys.readouterr().err


#: What a page must show whole: headings, captions, the summaries of folded parts, table cells.
_CUT_TEXT = """[...document.querySelectorAll('h1, h2, h3, figcaption, summary, .note, .card, th, td')]
    .filter(e => e.scrollWidth > e.clientWidth + 1 || e.getBoundingClientRect().right > innerWidth)
    .map(e => e.textContent.slice(0, 80))"""


@pytest.mark.parametrize("name", ERAS)
def test_screenshots_show_every_title_whole_on_a_page_under_6000_px(
    name: str, datasets: dict[str, Path], tmp_path: Path
) -> None:
    """The report of each era at its defaults and over all its data, in headless Chromium: the
    page, transcripts folded, is under 6,000 px (the cost and models section included; that
    section alone under 400), no text is cut, every chart is drawn whole; the charts' own titles
    are checked in their figures (test_titles_and_labels_fit_every_chart...). The heights
    measured are printed (pytest -s) beside the screenshots in tmp_path."""
    chromium = _chromium()
    from playwright.sync_api import sync_playwright

    pages = {}
    for window, options in (("default", {}), ("all", {"since": "all"})):
        pages[window] = write_report(
            datasets[name], tmp_path / f"{name}-{window}.html", title=f"{name} report", **options
        )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            for window, path in pages.items():
                page.goto(path.resolve().as_uri(), wait_until="load")
                height = page.evaluate("document.documentElement.scrollHeight")
                cost = page.evaluate("document.getElementById('cost')?.getBoundingClientRect().height ?? 0")
                assert cost < 400, f"{name}, {window}: the cost and models section is {cost} px tall"
                cut = page.evaluate(_CUT_TEXT)
                images = page.evaluate(
                    "[...document.images].map(i => [i.complete && i.naturalWidth > 0, "
                    "Math.abs(i.width / i.height - i.naturalWidth / i.naturalHeight) < 0.02, "
                    "i.getBoundingClientRect().right <= innerWidth])"
                )
                shot = tmp_path / f"{name}-{window}.png"
                page.screenshot(path=str(shot), full_page=True)
                assert height < 6_000, f"{name}, {window}: the page is {height} px tall"
                assert not cut, f"{name}, {window}: text cut at its box: {cut}"
                assert images and all(all(i) for i in images), f"{name}, {window}: {images}"
                closed = page.evaluate("[...document.querySelectorAll('details')].filter(d => !d.open).length")
                assert closed == page.evaluate("document.querySelectorAll('details').length")
                page.evaluate("document.querySelectorAll('details.sample').forEach(d => d.open = true)")
                opened = page.evaluate("document.documentElement.scrollHeight")
                print(f"report page height: {name}, {window}: {height} px folded, {opened} px with transcripts open")
                assert opened > height  # the transcripts are there, folded
                assert shot.read_bytes().startswith(b"\x89PNG")
        finally:
            browser.close()


@pytest.mark.parametrize("name", ERAS)
def test_personas_are_ranked_worst_and_slowest_first(name: str, datasets: dict[str, Path]) -> None:
    """On both eras, the persona tables against pass rates and p90 latencies computed here."""
    import numpy as np

    raw = _raw(name)
    html = report_html(datasets[name], since="all")
    outcomes: dict[str, list[int]] = {}
    latencies: dict[str, list[int]] = {}
    for s in raw:
        persona = s.get("active_persona_id") or "(no persona)"
        for r in s["agent_responses"]:
            if r.get("evaluation_passed") is not None:
                outcomes.setdefault(persona, [0, 0])[0 if r["evaluation_passed"] else 1] += 1
        for m, r in _exchanges(s):
            if _ns(r["timestamp"]) >= _ns(m["timestamp"]):
                latencies.setdefault(persona, []).append(_ns(r["timestamp"]) - _ns(m["timestamp"]))
    if outcomes:
        worst = sorted(
            outcomes,
            key=lambda k: (
                _wilson_high(*outcomes[k]),
                outcomes[k][0] / sum(outcomes[k]),
                -sum(outcomes[k]),
                k == "(no persona)",
                k,
            ),
        )
        assert _column(html, "persona-worst") == worst[:SHOWN]
    else:
        assert 'id="persona-worst"' not in html
    p90 = {k: float(np.percentile(np.array(v, dtype=np.int64), 90)) for k, v in latencies.items()}
    slowest = sorted(p90, key=lambda k: (-p90[k], -len(latencies[k]), k == "(no persona)", k))
    assert _column(html, "persona-slowest") == slowest[:SHOWN]


def _wilson_low(hits: int, n: int) -> float:
    import math

    if hits == 0:
        return 0.0
    z, p = 1.959963984540054, hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half)


@pytest.mark.parametrize("name", [TODAY, MODERN])
def test_today_s_tools_and_threads_are_ranked_against_the_json(name: str, datasets: dict[str, Path]) -> None:
    """The tools of today's oxios: most used, the surely most failing (the lower end of the 95%
    Wilson interval of the error rate, highest first) and the slowest p90 duration (0 ms: not
    timed, left out), each computed here from the session files, the totals also from the oracle;
    the threads followed through parent_session_id here."""
    import numpy as np

    raw = _raw(name)
    html = report_html(datasets[name], since="all")
    calls: dict[str, list[dict]] = {}
    for s in raw:
        for t in s.get("trajectory_steps", []):
            calls.setdefault(t["tool_name"], []).append(t)
    if name == TODAY:  # the oracle agrees with this test's reading of the files
        tools = oracle(name)["tools"]
        assert {k: len(v) for k, v in calls.items()} == {k: v["calls"] for k, v in tools.items()}
        assert {k: sum(t["is_error"] is True for t in v) for k, v in calls.items()} == {
            k: v["errors"] for k, v in tools.items()
        }
    # the headline counts the session files' flags; the ranking, tool_usage's errors
    assert _cards(html)["tool_calls"][0] == str(sum(map(len, calls.values())))
    assert _cards(html)["tool_errors"][0] == str(sum(t["is_error"] is True for v in calls.values() for t in v))
    assert _column(html, "tool-most-used") == sorted(calls, key=lambda k: (-len(calls[k]), k))[:SHOWN]
    # the error rates: the agent runs' flags for the turns linked to one (issue 13), else the files'
    checked = tool_errors_from_the_runs(_FOLDERS[name])
    errors = {k: checked[k][0] for k in calls}
    flagged = {k: checked[k][1] for k in calls}
    worst = sorted(
        (k for k in calls if flagged[k]),
        key=lambda k: (-_wilson_low(errors[k], flagged[k]), -errors[k] / flagged[k], -len(calls[k]), k),
    )
    assert _column(html, "tool-worst") == worst[:SHOWN]
    if name == TODAY:
        assert errors["bash"] == max(errors.values())  # the fixture's worst tool: the ranking is not by name
        assert sum(errors.values()) > sum(v["errors"] for v in tools.values())  # the runs know more failures
    p90 = {
        k: float(np.percentile(np.array(d, dtype=np.int64), 90))
        for k, v in calls.items()
        if (d := [t["duration_ms"] for t in v if t["duration_ms"] > 0])
    }
    assert _column(html, "tool-slowest") == sorted(p90, key=lambda k: (-p90[k], -len(calls[k]), k))[:SHOWN]
    # threads: a root and every session continuing it, followed here through the parents
    parent = {s["id"]: s.get("parent_session_id") for s in raw}
    members: dict[str, list[str]] = {}
    for sid in parent:
        at, seen = sid, {sid}
        while parent.get(at) is not None and parent[at] not in seen:
            at = parent[at]
            seen.add(at)
        members.setdefault(at, []).append(sid)
    threads = {r: m for r, m in members.items() if len(m) > 1 or r not in parent}
    assert len(threads) == len(_column(html, "threads-all"))
    assert _column(html, "threads-all") == sorted(threads, key=lambda r: (-len(threads[r]), r))
    # lists that rank no group against another show their first five, the rest folded
    assert len(threads) > 5 and f"5 of {len(threads)} threads, most sessions first" in html
    assert _column(html, "threads") == _column(html, "threads-all")[:5]
    users = {s["user_id"] for s in raw}
    assert len(users) > 5 and f"5 of {len(users)} users, most sessions first" in html
    assert _column(html, "users") == _column(html, "users-all")[:5]
    assert sum(map(len, threads.values())) - sum(r in parent for r in threads) == sum(
        s.get("parent_session_id") is not None for s in raw
    )
