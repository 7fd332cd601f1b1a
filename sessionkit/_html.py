"""Notebook rendering of sessions and tables: self-contained HTML, every piece of content escaped."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sessionkit.model import AgentResponse, Session, UserMessage
    from sessionkit.tables import SessionTables

_FOLD_AT = 600
_STYLE = (
    "<style>"
    ".sk-session{font-family:system-ui,sans-serif;font-size:13px;max-width:900px}"
    ".sk-session .sk-head{margin-bottom:6px}"
    ".sk-turn{border-left:3px solid #ccc;margin:6px 0;padding:2px 8px}"
    ".sk-user{border-color:#4C72B0}.sk-agent{border-color:#55A868}"
    ".sk-badge{display:inline-block;border-radius:3px;padding:0 4px;margin-right:4px;background:#eee;font-size:11px}"
    ".sk-pass{background:#d4edda}.sk-fail{background:#f8d7da}"
    ".sk-meta{color:#555;font-size:11px}"
    ".sk-text{white-space:pre-wrap;unicode-bidi:plaintext}"
    "</style>"
)


def _text(content: str) -> str:
    body = escape(content)
    if len(content) <= _FOLD_AT:
        return f'<div class="sk-text">{body}</div>'
    head = escape(content[:_FOLD_AT])
    return (
        f'<details><summary class="sk-text">{head}… ({len(content):,} characters)</summary>'
        f'<div class="sk-text">{body}</div></details>'
    )


def _badge(label: str, value: object, css: str = "") -> str:
    return f'<span class="sk-badge {css}">{escape(label)}: {escape(str(value))}</span>'


def _user(message: UserMessage) -> str:
    return (
        f'<div class="sk-turn sk-user"><div class="sk-meta">user · {escape(str(message.timestamp))}</div>'
        f"{_text(message.content)}</div>"
    )


def _agent(response: AgentResponse, latency: float | None) -> str:
    badges = []
    if latency is not None:
        badges.append(_badge("latency", f"{latency:.3f} s"))
    if response.seed_id is not None:
        badges.append(_badge("seed", response.seed_id))
    if response.phase_reached is not None:
        badges.append(_badge("phase", response.phase_reached))
    if response.evaluation_passed is not None:
        css = "sk-pass" if response.evaluation_passed else "sk-fail"
        badges.append(_badge("evaluation", "passed" if response.evaluation_passed else "failed", css))
    return (
        f'<div class="sk-turn sk-agent"><div class="sk-meta">agent · {escape(str(response.timestamp))} '
        f"{''.join(badges)}</div>{_text(response.content)}</div>"
    )


def session_html(session: Session) -> str:
    """The session as a transcript: exchanges in order, with badges, metadata and folded long texts."""
    head = [
        _badge("session", session.id),
        _badge("user", session.user_id),
        _badge("exchanges", session.exchange_count()),
    ]
    if session.active_seed_id is not None:
        head.append(_badge("seed", session.active_seed_id))
    if session.active_persona_id is not None:
        head.append(_badge("persona", session.active_persona_id))
    turns = []
    n = max(len(session.user_messages), len(session.agent_responses))
    for i in range(n):
        message = session.user_messages[i] if i < len(session.user_messages) else None
        response = session.agent_responses[i] if i < len(session.agent_responses) else None
        if message is not None:
            turns.append(_user(message))
        if response is not None:
            latency = (response.timestamp.ns - message.timestamp.ns) / 1e9 if message is not None else None
            turns.append(_agent(response, latency))
    meta = "".join(
        f"<tr><td>{escape(key)}</td><td><code>{escape(_compact(value))}</code></td></tr>"
        for key, value in session.metadata.items()
    )
    meta_html = f'<table class="sk-meta">{meta}</table>' if meta else ""
    return (
        f'{_STYLE}<div class="sk-session"><div class="sk-head">{"".join(head)}'
        f'<div class="sk-meta">created {escape(str(session.created_at))} · updated {escape(str(session.updated_at))}</div>'
        f"</div>{''.join(turns)}{meta_html}</div>"
    )


def _compact(value: object) -> str:
    from sessionkit.model import encode_compact

    return encode_compact(value)


def tables_html(tables: SessionTables) -> str:
    """Row counts of the four tables and the time span of the sessions."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from sessionkit._timestamp import Timestamp

    rows = "".join(
        f"<tr><td>{escape(name)}</td><td style='text-align:right'>{table.num_rows:,}</td></tr>"
        for name, table in tables.items()
    )
    span = ""
    if tables.sessions.num_rows:
        first = Timestamp(pc.min(tables.sessions["created_at"].cast(pa.int64())).as_py())
        last = Timestamp(pc.max(tables.sessions["updated_at"].cast(pa.int64())).as_py())
        span = f"<div>from {escape(str(first))} to {escape(str(last))}</div>"
    return f"<div><b>SessionTables</b>{span}<table>{rows}</table></div>"
