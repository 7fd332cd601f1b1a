"""The HTML report: one self-contained page, checked as text and in a real headless Chromium."""

from __future__ import annotations

import base64
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import FIXTURES, ROOT, oracle

from sessionkit.cli import main
from sessionkit.model import AgentResponse, Session, UserMessage
from sessionkit.oxios import read_sessions
from sessionkit.report import CSP, report_html, write_report
from sessionkit.tables import to_tables

CHROMIUM = "/usr/bin/chromium"
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
            assert value is None or value.startswith("data:"), (tag, name, value)
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
    assert len(images) == 8
    for src in images:
        assert src.startswith("data:image/svg+xml;base64,")
        svg = base64.b64decode(src.split(",", 1)[1]).decode()
        assert svg.lstrip().startswith("<?xml") and "<svg" in svg
        assert "<script" not in svg.lower() and not re.search(r"href=\"(?!#)", svg)
        assert "onload" not in svg


def test_the_page_has_every_section(hostile_report: Path) -> None:
    html = hostile_report.read_text(encoding="utf-8")
    for heading in (
        "Totals",
        "Charts",
        "Seeds",
        "Personas",
        "Phases",
        "Evaluations by phase",
        "Evaluations by seed",
        "Turn latency",
        "Conversation length",
        "Users",
        "Metadata census",
        "Sample transcripts",
    ):
        assert f"<h2>{heading}</h2>" in html, heading
    assert html.count('<div class="sk-session">') == 3  # the three sessions asked for
    assert "151 sessions of 9 users" in html


def test_report_in_headless_chromium(hostile_report: Path, tmp_path: Path) -> None:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} is missing: the report must be tested in a real browser. "
            "Run scripts/ensure-chromium (make test does) to install Debian's chromium."
        )
    from playwright.sync_api import sync_playwright

    url = hostile_report.resolve().as_uri()
    console: list[str] = []
    errors: list[str] = []
    requests: list[str] = []
    dialogs: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"),  # a fresh --user-data-dir
            executable_path=CHROMIUM,
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
    assert images == 8 and broken == 0
    assert HOSTILE in text  # shown as text
    assert shot.stat().st_size > 10_000 and shot.read_bytes().startswith(b"\x89PNG")


def test_samples_spread_over_conversation_length(exported: dict[str, Path]) -> None:
    html = report_html(exported["oxios-v1"], samples=3)
    shown = re.findall(r"<h3>Session ([^<]+)</h3>", html)
    assert len(shown) == 3
    counts = oracle("oxios-v1")["exchange_count_by_session"]
    lengths = [counts[s] for s in shown]
    assert lengths == sorted(lengths) and lengths[0] >= 1 and lengths[-1] == max(counts.values())
    from sessionkit.query import connect
    from sessionkit.report import _samples

    con = connect(exported["oxios-v1"])
    assert _samples(con, 0, None) == [] and len(_samples(con, 1, None)) == 1
    assert _samples(con, 2, ["a", "b"]) == ["a", "b"]


def test_report_of_nothing(tmp_path: Path) -> None:
    path = write_report(to_tables([]), tmp_path / "deep" / "er" / "empty.html")
    html = path.read_text(encoding="utf-8")
    assert "0 sessions of 0 users" in html and "no sessions with exchanges" in html


def test_report_command(exported: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.html"
    assert main(["report", str(exported["oxios-v2"]), str(out), "--samples", "1", "--title", "v2"]) == 0
    assert "wrote the report of" in capsys.readouterr().out
    html = out.read_text(encoding="utf-8")
    assert "<title>v2</title>" in html and html.count("<h3>Session") == 1
    assert main(["report", str(exported["oxios-v2"]), str(out), "--session", "no-such-id"]) == 2
    assert "no session with id 'no-such-id'" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "missing"), str(out)]) == 1
    assert main(["--help"]) == 0 and "report" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["sample", "oxios-edge", "empty"])
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
    data = {"empty": [], "sample": read_sessions(ROOT / "data" / "oxios-sample")}
    report_html(to_tables(data[name]) if name in data else exported[name])
    assert len(drawn) == 8
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
