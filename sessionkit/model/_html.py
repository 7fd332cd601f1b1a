"""A session as HTML for notebooks (``Session._repr_html_``) and the report: its transcript."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

from sessionkit._html import STYLE, escape_text
from sessionkit._timestamp import Timestamp
from sessionkit.model._encode import encode_compact
from sessionkit.model._shape import step_owners

if TYPE_CHECKING:
    from sessionkit.model._records import AgentResponse, Session, UserMessage

_FOLD_AT = 600
#: A transcript longer than this many exchanges shows the first ``_SHOWN`` and folds the rest.
_FOLD_EXCHANGES = 4
_SHOWN = 3


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


def _fields(extra: dict[str, Any], what: str) -> str:
    """Fields a newer oxios wrote that the model does not name, folded."""
    if not extra:
        return ""
    rows = "".join(
        f"<tr><th>{escape_text(key)}</th><td><code>{_code(encode_compact(value))}</code></td></tr>"
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


def _agent(response: AgentResponse, latency: float | None, session_id: str, hide_range: bool) -> str:
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
    extra = response.extra
    if hide_range:  # shown as the turn's tool calls
        extra = {key: value for key, value in extra.items() if key != "trajectory_range"}
    return (
        f'<div class="sk-turn sk-agent"><div class="sk-meta">agent · {escape(str(response.timestamp))} '
        f"{''.join(badges)}</div>{_text(response.content)}{_fields(extra, 'response')}</div>"
    )


def _records(value: Any) -> list[dict] | None:
    """``value`` if it is a list of JSON objects (as oxios writes steps and reasoning), else None."""
    if type(value) is list and all(type(item) is dict for item in value):
        return value
    return None


def _plain(value: Any) -> str:
    """A field as text: strings as they are, anything else as compact JSON."""
    return value if type(value) is str else encode_compact(value)


def _duration(ms: Any) -> str:
    if type(ms) is not int:
        return f"duration {_plain(ms)}"
    if ms == 0:
        return "0 ms (not timed)"  # oxios writes 0 when it did not time the call
    return f"{ms:,} ms" if abs(ms) < 1000 else f"{ms / 1000:,.3f} s"


def _tool(step: dict, position: int) -> str:
    failed = step.get("is_error") is True
    badges = [_badge("time", _duration(step.get("duration_ms")))]
    if failed:
        badges.append('<span class="sk-badge sk-fail">error</span>')
    args = f"<div><code>{_code(_plain(step['tool_args']))}</code></div>" if "tool_args" in step else ""
    summary = _text(_plain(step["output_summary"])) if "output_summary" in step else ""
    return (
        f'<div class="sk-tool{" sk-fail" if failed else ""}"><span class="sk-n">step {position}</span>'
        f"<b>{escape_text(_plain(step.get('tool_name', '(no tool_name)')))}</b> {''.join(badges)}{args}{summary}</div>"
    )


def _thought(text: Any, source: Any) -> str:
    label = f'<span class="sk-n">{escape_text(_plain(source))}</span>' if source is not None else ""
    return f'<div class="sk-think">{label}{_text(_plain(text))}</div>'


class _Work:
    """A session's tool calls and reasoning, placed in the exchanges they belong to.

    A step belongs to the first response whose ``trajectory_range`` holds it (as in the
    ``tool_calls`` table). A reasoning record belongs to the exchange whose user message and
    response enclose its timestamp: oxios captures it just before it saves the response. Its
    ``segments`` interleave with the turn's tool calls by ``before_step``, the number of the
    turn's calls that started before the span. Steps and records that fit no exchange are
    listed after the transcript, nothing is left out.
    """

    def __init__(self, session: Session, steps: list[dict] | None, records: list[dict] | None) -> None:
        self.steps = steps
        self.records = records
        n = len(session.agent_responses)
        self.steps_of: list[list[int]] = [[] for _ in range(n)]
        self.loose_steps: list[int] = []
        if steps:
            ranges = [response.extra.get("trajectory_range") for response in session.agent_responses]
            for position, owner in enumerate(step_owners(len(steps), ranges)):
                (self.loose_steps if owner is None else self.steps_of[owner]).append(position)
        self.records_of: list[list[dict]] = [[] for _ in range(n)]
        self.loose_records: list[dict] = []
        for record in records or ():
            seq = self._exchange_at(session, record.get("timestamp"))
            (self.loose_records if seq is None else self.records_of[seq]).append(record)

    @classmethod
    def of(cls, session: Session) -> _Work:
        """The tool calls and reasoning of ``session``, if oxios wrote them in their usual shape."""
        return cls(
            session, _records(session.extra.get("trajectory_steps")), _records(session.extra.get("reasoning_records"))
        )

    @staticmethod
    def _exchange_at(session: Session, text: Any) -> int | None:
        try:
            ns = Timestamp.parse(text).ns
        except (TypeError, ValueError):
            return None
        for seq, (message, response) in enumerate(zip(session.user_messages, session.agent_responses, strict=False)):
            if message.timestamp.ns <= ns <= response.timestamp.ns:
                return seq
        return None

    def shown_range(self, response: AgentResponse) -> bool:
        """Whether the response's ``trajectory_range`` is shown as its tool calls (so not as a field)."""
        span = response.extra.get("trajectory_range")
        return self.steps is not None and type(span) is dict and set(span) == {"start", "end"}

    def other_fields(self, extra: dict[str, Any]) -> dict[str, Any]:
        """The session's extra fields that are not shown as tool calls, reasoning or badges."""
        shown = {
            "trajectory_steps": self.steps is not None,
            "reasoning_records": self.records is not None,
            "project_id": type(extra.get("project_id")) is str,
            "parent_session_id": type(extra.get("parent_session_id")) is str,
        }
        return {key: value for key, value in extra.items() if not shown.get(key, False)}

    def turn(self, seq: int) -> str:
        """The folded tool calls and reasoning of exchange ``seq`` ('' when it has none)."""
        if seq >= len(self.steps_of):
            return ""
        return self._block(self.steps_of[seq], self.records_of[seq], "")

    def leftover(self) -> str:
        """Steps and reasoning that no exchange holds, after the transcript."""
        return self._block(self.loose_steps, self.loose_records, " not in any exchange")

    def _block(self, steps: list[int], records: list[dict], where: str) -> str:
        if not steps and not records:
            return ""
        calls = [self.steps[p] for p in steps] if self.steps is not None else []
        items: list[str] = []
        spans: list[tuple[int, str]] = []  # (the number of the turn's calls before it, html)
        for record in records:
            segments = _records(record.get("segments"))
            if not segments:
                items.append(_thought(record.get("content", ""), record.get("source")))
                continue
            for segment in segments:
                before = segment.get("before_step")
                at = before if type(before) is int and before >= 0 else len(calls)
                spans.append((at, _thought(segment.get("text", ""), record.get("source"))))
        for k, position in enumerate(steps):
            items.extend(html for at, html in spans if at == k)
            items.append(_tool(calls[k], position))
        items.extend(html for at, html in spans if at >= len(calls))
        errors = sum(call.get("is_error") is True for call in calls)
        ms = sum(call["duration_ms"] for call in calls if type(call.get("duration_ms")) is int)
        parts = []
        if calls:
            parts.append(f"{len(calls):,} tool call{'s' if len(calls) != 1 else ''}")
            parts.append(f"{ms / 1000:,.3f} s in tools")
        if records:
            chars = sum(len(_plain(r.get("content", ""))) for r in records)
            parts.append(f"reasoning ({chars:,} characters)")
        error_badge = (
            f'<span class="sk-badge sk-fail">{errors:,} error{"s" if errors != 1 else ""}</span>' if errors else ""
        )
        return (
            f'<details class="sk-work"><summary>{" · ".join(parts)}{escape(where)} {error_badge}</summary>'
            f"{''.join(items)}</details>"
        )


def session_html(session: Session, *, style: bool = True, fold: bool = True) -> str:
    """The session as a transcript: exchanges in order, with badges, metadata and folded long texts.

    Each exchange pairs the user message and the agent response at the same position, with
    the latency between them; a message without a response (or the reverse) is marked.
    Exchanges are numbered by ``seq``, from 0, as in the tables (``seq`` of ``messages``,
    ``responses`` and ``exchanges``). A conversation of more than four exchanges shows the
    first three and folds the rest under "show all" (``fold=False`` shows all at once).
    ``style=False`` leaves out the ``<style>`` block (for a page that has it once).
    Today's oxios: each exchange's tool calls (name, arguments, summary, duration, errors
    marked) and reasoning sit between the user message and the response, folded; the
    project and the parent session are badges of the head.
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
    work = _Work.of(session)
    for label, key in (("project", "project_id"), ("continues", "parent_session_id")):
        if type(session.extra.get(key)) is str:
            head.append(_badge(label, session.extra[key]))
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
        parts.append(work.turn(i))
        if response is not None:
            latency = (response.timestamp.ns - message.timestamp.ns) / 1e9 if message is not None else None
            parts.append(_agent(response, latency, session.id, work.shown_range(response)))
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
        f"<tr><th>{escape_text(key)}</th><td><code>{_code(encode_compact(value))}</code></td></tr>"
        for key, value in session.metadata.items()
    )
    meta_html = f'<table class="sk-kv"><caption class="sk-meta">metadata</caption>{meta}</table>' if meta else ""
    empty = '<div class="sk-meta sk-missing">no messages</div>' if n == 0 else ""
    return (
        f'{STYLE if style else ""}<div class="sk-session"><div class="sk-head">{"".join(head)}'
        f'<div class="sk-meta">created {escape(str(session.created_at))} · '
        f"updated {escape(str(session.updated_at))}</div>"
        f"{_fields(work.other_fields(session.extra), 'session')}</div>{''.join(turns)}{work.leftover()}{empty}"
        f"{meta_html}</div>"
    )
