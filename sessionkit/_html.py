"""HTML for notebooks and the report: the shared style, and escaping that shows what hides.

The renderers live with what they render (``sessionkit.model`` renders a session,
``sessionkit.tables`` a ``SessionTables``, ``sessionkit.report`` its page); this module holds
what they share. Their output is self-contained HTML with every piece of content escaped.

Content is escaped with ``html.escape`` (quotes too), and characters that would change how
the page reads without being seen — bidi overrides and isolates, other invisible format
characters and C0/C1 controls other than newline and tab — are shown as visible
``\\uXXXX`` marks, so a transcript cannot be spoofed by its content (Trojan Source).
No script, no external CSS, fonts or images: only an inline ``<style>``.
"""

from __future__ import annotations

import unicodedata
from html import escape

__all__ = ["STYLE", "escape_text"]

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
    ".sk-work{margin:4px 0 4px 12px;font-size:12px}.sk-work>summary{cursor:pointer;color:#555}"
    ".sk-tool{border-left:3px solid #8172B2;margin:3px 0;padding:1px 8px;background:#fbfaff}"
    ".sk-tool.sk-fail{border-color:#C44E52;background:#fdf3f3}"
    ".sk-think{border-left:3px dotted #aaa;margin:3px 0;padding:1px 8px;color:#444;font-style:italic}"
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
