"""Notebook rendering of sessions and tables: self-contained HTML, every piece of content escaped.

Content is escaped with ``html.escape`` (quotes too), and characters that would change how
the page reads without being seen — bidi overrides and isolates, other invisible format
characters and C0/C1 controls other than newline and tab — are shown as visible
``\\uXXXX`` marks, so a transcript cannot be spoofed by its content (Trojan Source).
No script, no external CSS, fonts or images: only an inline ``<style>``.
"""

from __future__ import annotations

import unicodedata
from html import escape
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sessionkit.model import AgentResponse, Session, UserMessage
    from sessionkit.tables import SessionTables

__all__ = ["STYLE", "escape_text", "session_html", "tables_html"]

_FOLD_AT = 600
_TOP = 5
#: A transcript longer than this many exchanges shows the first ``_SHOWN`` and folds the rest.
_FOLD_EXCHANGES = 4
_SHOWN = 3

#: The CSS of the transcript and the table summary; scoped by ``sk-`` class names.
STYLE = (
    "<style>"
    ".sk-session{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;font-size:13px;max-width:960px;"
    "line-height:1.4;color:#222}"
    ".sk-session .sk-head{margin-bottom:6px}"
    ".sk-exchange{margin:8px 0;padding-top:4px;border-top:1px solid #eee}"
    ".sk-n{color:#888;font-size:11px;margin-right:6px}"
    ".sk-turn{border-left:3px solid #ccc;margin:4px 0;padding:2px 8px}"
    ".sk-user{border-color:#4C72B0}.sk-agent{border-color:#55A868;background:#fafdfa}"
    ".sk-badge{display:inline-block;border-radius:3px;padding:0 4px;margin:0 4px 2px 0;background:#eee;"
    "font-size:11px;unicode-bidi:isolate}"
    ".sk-pass{background:#d4edda}.sk-fail{background:#f8d7da}.sk-warn{background:#fff3cd}"
    ".sk-meta{color:#555;font-size:11px}"
    ".sk-text{white-space:pre-wrap;overflow-wrap:anywhere;unicode-bidi:isolate}"
    ".sk-ctl{color:#a00;background:#fee;font-family:monospace;font-size:10px;border-radius:2px}"
    ".sk-kv{border-collapse:collapse;font-size:11px;margin-top:6px}.sk-kv caption{text-align:left}"
    ".sk-kv td,.sk-kv th{border:1px solid #ddd;padding:1px 6px;text-align:left;vertical-align:top}"
    ".sk-kv code{white-space:pre-wrap;overflow-wrap:anywhere}"
    ".sk-missing{color:#a00;font-style:italic}"
    ".sk-more>summary{cursor:pointer;color:#2b5797;font-size:12px;margin:6px 0}"
    "</style>"
)

_KEEP = frozenset("\n\t")


def _visible(ch: str) -> bool:
    """False for characters that act without being seen: controls, format characters, separators."""
    if ch in _KEEP or ch == " ":
        return True
    category = unicodedata.category(ch)
    if category in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
        return ch == "\u200d"  # the zero-width joiner of emoji sequences is harmless
    return True


def escape_text(text: str) -> str:
    """``text`` as HTML: escaped, with invisible controls (bidi overrides, ...) shown as ``\\uXXXX`` marks."""
    if all(_visible(ch) for ch in text):
        return escape(text, quote=True)
    out = []
    for ch in text:
        if _visible(ch):
            out.append(escape(ch, quote=True))
        else:
            code = f"U+{ord(ch):04X}"
            name = unicodedata.name(ch, "control character")
            out.append(f'<span class="sk-ctl" title="{code} {escape(name)}">\\u{ord(ch):04x}</span>')
    return "".join(out)


def _text(content: str) -> str:
    body = escape_text(content)
    if len(content) <= _FOLD_AT:
        return f'<div class="sk-text">{body}</div>'
    head = escape_text(content[:_FOLD_AT])
    return (
        f'<details><summary><span class="sk-text">{head}</span> … <span class="sk-meta">'
        f"({len(content):,} characters; open for all)</span></summary>"
        f'<div class="sk-text">{body}</div></details>'
    )


def _badge(label: str, value: object, css: str = "") -> str:
    return f'<span class="sk-badge {css}">{escape_text(label)}: {escape_text(str(value))}</span>'


def _json(value: object) -> str:
    from sessionkit.model import encode_compact

    return encode_compact(value)


def _fields(extra: dict[str, Any], what: str) -> str:
    """Fields a newer oxios wrote that the model does not name, folded."""
    if not extra:
        return ""
    rows = "".join(
        f"<tr><th>{escape_text(key)}</th><td><code>{_code(_json(value))}</code></td></tr>"
        for key, value in extra.items()
    )
    return (
        f'<details class="sk-meta"><summary>{len(extra)} more {escape(what)} field'
        f'{"s" if len(extra) != 1 else ""}</summary><table class="sk-kv">{rows}</table></details>'
    )


def _code(text: str) -> str:
    if len(text) <= _FOLD_AT:
        return escape_text(text)
    return (
        f"<details><summary>{escape_text(text[:120])} … ({len(text):,} characters)</summary>"
        f"{escape_text(text)}</details>"
    )


def _user(message: UserMessage) -> str:
    return (
        f'<div class="sk-turn sk-user"><div class="sk-meta">user · {escape(str(message.timestamp))}</div>'
        f"{_text(message.content)}{_fields(message.extra, 'message')}</div>"
    )


def _agent(response: AgentResponse, latency: float | None, session_id: str) -> str:
    badges = []
    if latency is not None:
        css = "sk-warn" if latency < 0 else ""
        badges.append(_badge("latency", f"{latency:,.3f} s", css))
    if response.seed_id is not None:
        badges.append(_badge("seed", response.seed_id))
    if response.phase_reached is not None:
        badges.append(_badge("phase", response.phase_reached))
    if response.evaluation_passed is not None:
        css = "sk-pass" if response.evaluation_passed else "sk-fail"
        badges.append(_badge("evaluation", "passed" if response.evaluation_passed else "failed", css))
    if response.session_id is not None and response.session_id != session_id:
        badges.append(_badge("response session", response.session_id, "sk-warn"))
    return (
        f'<div class="sk-turn sk-agent"><div class="sk-meta">agent · {escape(str(response.timestamp))} '
        f"{''.join(badges)}</div>{_text(response.content)}{_fields(response.extra, 'response')}</div>"
    )


def session_html(session: Session, *, style: bool = True, fold: bool = True) -> str:
    """The session as a transcript: exchanges in order, with badges, metadata and folded long texts.

    Each exchange pairs the user message and the agent response at the same position, with
    the latency between them; a message without a response (or the reverse) is marked.
    Exchanges are numbered by ``seq``, from 0, as in the tables (``seq`` of ``messages``,
    ``responses`` and ``exchanges``). A conversation of more than four exchanges shows the
    first three and folds the rest under "show all" (``fold=False`` shows all at once).
    ``style=False`` leaves out the ``<style>`` block (for a page that has it once).
    """
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
        parts = [f'<span class="sk-n">seq {i}</span>']
        if message is not None:
            parts.append(_user(message))
        else:
            parts.append('<div class="sk-turn sk-user sk-missing">no user message at this position</div>')
        if response is not None:
            latency = (response.timestamp.ns - message.timestamp.ns) / 1e9 if message is not None else None
            parts.append(_agent(response, latency, session.id))
        else:
            parts.append('<div class="sk-turn sk-agent sk-missing">no agent response yet</div>')
        turns.append(f'<div class="sk-exchange">{"".join(parts)}</div>')
    if fold and len(turns) > _FOLD_EXCHANGES:
        rest = turns[_SHOWN:]
        turns = [
            *turns[:_SHOWN],
            f'<details class="sk-more"><summary>show all {n:,} exchanges ({len(rest):,} more: seq {_SHOWN} to '
            f"{n - 1})</summary>{''.join(rest)}</details>",
        ]
    meta = "".join(
        f"<tr><th>{escape_text(key)}</th><td><code>{_code(_json(value))}</code></td></tr>"
        for key, value in session.metadata.items()
    )
    meta_html = f'<table class="sk-kv"><caption class="sk-meta">metadata</caption>{meta}</table>' if meta else ""
    empty = '<div class="sk-meta sk-missing">no messages</div>' if n == 0 else ""
    return (
        f'{STYLE if style else ""}<div class="sk-session"><div class="sk-head">{"".join(head)}'
        f'<div class="sk-meta">created {escape(str(session.created_at))} · '
        f"updated {escape(str(session.updated_at))}</div>"
        f"{_fields(session.extra, 'session')}</div>{''.join(turns)}{empty}{meta_html}</div>"
    )


def _top_counts(column: Any, none: str) -> str:
    """The most frequent values of an Arrow column (nulls as ``none``) as 'value (count)' items."""
    import pyarrow.compute as pc

    counts = pc.value_counts(column.combine_chunks() if hasattr(column, "combine_chunks") else column)
    pairs = [(item["values"], item["counts"]) for item in counts.to_pylist()]
    pairs.sort(key=lambda p: (-p[1], p[0] is None, p[0] or ""))
    items = [
        f"<li>{escape_text(none) if v is None else escape_text(v)} <span class='sk-meta'>({c:,})</span></li>"
        for v, c in pairs[:_TOP]
    ]
    more = f"<div class='sk-meta'>… and {len(pairs) - _TOP} more</div>" if len(pairs) > _TOP else ""
    return f"<ol>{''.join(items)}</ol>{more}"


def tables_html(tables: SessionTables) -> str:
    """Row counts of the tables, the time span of the sessions, and their top seeds and personas (if any)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from sessionkit._timestamp import Timestamp
    from sessionkit.tables import LATER_TABLES

    rows = "".join(
        f"<tr><th>{escape(name)}</th><td style='text-align:right'>{table.num_rows:,}</td></tr>"
        for name, table in tables.items()
        if table.num_rows or name not in LATER_TABLES  # today's oxios only: shown when present
    )
    span = ""
    tops = ""
    sessions = tables.sessions
    if sessions.num_rows:
        first = Timestamp(pc.min(sessions["created_at"].cast(pa.int64())).as_py())
        last = Timestamp(pc.max(sessions["updated_at"].cast(pa.int64())).as_py())
        users = pc.count_distinct(sessions["user_id"]).as_py()
        span = f"<div class='sk-meta'>{users:,} users · from {escape(str(first))} to {escape(str(last))}</div>"
        lists = [
            f"<div><b>top {what}</b> <span class='sk-meta'>(sessions)</span>{_top_counts(sessions[column], none)}</div>"
            for what, column, none in (
                ("seeds", "active_seed_id", "(no seed)"),
                ("personas", "active_persona_id", "(no persona)"),
            )
            if sessions[column].null_count < sessions.num_rows  # oxios 1.9 and later write no seeds: no list
        ]
        tops = f"<div style='display:flex;gap:24px'>{''.join(lists)}</div>" if lists else ""
    return (
        f'{STYLE}<div class="sk-session"><b>SessionTables</b>{span}'
        f'<table class="sk-kv"><tr><th>table</th><th>rows</th></tr>{rows}</table>{tops}</div>'
    )
