"""Today's oxios fields as tables: tool calls, reasoning records, project and parent ids.

oxios (1.9 and later) adds to a session ``trajectory_steps`` (one tool call each),
``reasoning_records``, ``project_id`` and ``parent_session_id``, and to a response the
``trajectory_range`` of the steps it made. Older sessionkit versions kept them in the sessions'
``extra`` JSON; here they become the ``tool_calls`` and ``reasoning`` tables and two columns of
``sessions``, and go back into the very same bytes on restore.

The rule that keeps it lossless: a known field whose value does not fit its column (a
``duration_ms`` that is not an integer, a timestamp not in chrono's own form, ...) stays in
the row's ``extra`` JSON under its own name with the column null, and ``field_order`` keeps
the keys' order whenever it is not serde's. A list that is not a list of objects stays whole
in the session's ``extra``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from sessionkit._timestamp import autosi_text
from sessionkit.model import encode_compact, step_owners
from sessionkit.tables._schemas import JSON_DECODER, REASONING_SCHEMA, TIMESTAMP_NS, TOOL_CALLS_SCHEMA, table_of

#: A trajectory step's fields, in the order serde writes them.
STEP_FIELDS = ("tool_name", "tool_args", "output_summary", "duration_ms", "is_error", "tool_call_id", "timestamp")
#: A reasoning record's fields, in the order serde writes them (``segments`` only when set).
REASONING_FIELDS = ("content", "source", "timestamp", "segments")
_REASONING_SHORT = REASONING_FIELDS[:3]
#: The session keys that become columns or tables.
SESSION_KEYS = ("trajectory_steps", "reasoning_records", "project_id", "parent_session_id")

# chrono's AutoSi form: Z, and 0, 3, 6 or 9 fraction digits, whichever is the shortest exact one
_AUTOSI = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.(?:(?!000)\d{3}|\d{3}(?!000)\d{3}|\d{6}(?!000)\d{3}))?Z")
_INT64 = (-(2**63), 2**63 - 1)
_INT32 = (-(2**31), 2**31 - 1)
_NO_WRITTEN_STEP = dict.fromkeys(STEP_FIELDS, False)
_NO_WRITTEN_REASONING = dict.fromkeys(REASONING_FIELDS, False)


def _is_text(value: Any) -> bool:
    return value is None or type(value) is str


def _is_int(value: Any, bounds: tuple[int, int]) -> bool:
    return value is None or (type(value) is int and bounds[0] <= value <= bounds[1])


def _is_time(value: Any) -> bool:
    """Null, or a text in chrono's own form of a real instant within timestamp[ns]'s years."""
    if value is None:
        return True
    if type(value) is not str or _AUTOSI.fullmatch(value) is None or not "1678" <= value[:4] <= "2261":
        return False
    try:
        datetime.fromisoformat(value[:19])  # a real date and time of day (no 30 February)
    except ValueError:
        return False
    return True


def _segments_fit(value: Any) -> bool:
    if value is None:
        return True
    if type(value) is not list:
        return False
    for segment in value:
        if type(segment) is not dict or tuple(segment) != ("before_step", "text"):
            return False
        if not _is_int(segment["before_step"], _INT32) or not _is_text(segment["text"]):
            return False
    return True


_STEP_FITS = {
    "tool_name": _is_text,
    "tool_args": lambda value: True,
    "output_summary": _is_text,
    "duration_ms": lambda value: _is_int(value, _INT64),
    "is_error": lambda value: value is None or type(value) is bool,
    "tool_call_id": _is_text,
    "timestamp": _is_time,
}
_REASONING_FITS = {"content": _is_text, "source": _is_text, "timestamp": _is_time, "segments": _segments_fit}


def _split(record: dict, fits: dict, standard: tuple[str, ...]) -> tuple[dict, str | None, str | None]:
    """(values that fit their columns, extra JSON or None, field order JSON or None) of a record."""
    values: dict = {}
    extra: dict = {}
    for key, value in record.items():
        check = fits.get(key)
        if check is not None and check(value):
            values[key] = value
        else:
            extra[key] = value
    keys = tuple(record)
    order = None if keys == standard and not extra else encode_compact(keys)
    return values, (encode_compact(extra) if extra else None), order


class TrajectoryColumns:
    """The columns of ``tool_calls`` and ``reasoning`` and the two new ``sessions`` columns,
    filled session by session from the keys taken out of each session's ``extra``."""

    def __init__(self) -> None:
        self.t: dict[str, list] = {name: [] for name in (*TOOL_CALLS_SCHEMA.names, "index")}
        self.r: dict[str, list] = {name: [] for name in (*REASONING_SCHEMA.names, "index")}
        self.project: list[str | None] = []
        self.parent: list[str | None] = []

    def mark(self) -> tuple[int, int, int]:
        """The current lengths, for ``rollback``."""
        return len(self.t["step"]), len(self.r["ord"]), len(self.project)

    def rollback(self, mark: tuple[int, int, int]) -> None:
        """Drop everything added after ``mark``."""
        for columns, length in ((self.t, mark[0]), (self.r, mark[1])):
            for values in columns.values():
                del values[length:]
        del self.project[mark[2] :]
        del self.parent[mark[2] :]

    def add(self, sid: str, index: int, extra: dict, ranges: list[Any]) -> None:
        """Take the session's new keys out of ``extra`` (mutated) into rows; ``ranges`` are its
        responses' ``trajectory_range`` values, in order (anything, as stored)."""
        project = extra.get("project_id")
        parent = extra.get("parent_session_id")
        self.project.append(extra.pop("project_id") if type(project) is str else None)
        self.parent.append(extra.pop("parent_session_id") if type(parent) is str else None)
        steps = extra.get("trajectory_steps")
        if type(steps) is list and all(type(step) is dict for step in steps):
            del extra["trajectory_steps"]
            self._steps(sid, index, steps, ranges)
        records = extra.get("reasoning_records")
        if type(records) is list and all(type(record) is dict for record in records):
            del extra["reasoning_records"]
            self._reasoning(sid, index, records)

    def _steps(self, sid: str, index: int, steps: list[dict], ranges: list[Any]) -> None:
        owner = step_owners(len(steps), ranges)
        t = self.t
        for position, step in enumerate(steps):
            values, extra, order = _split(step, _STEP_FITS, STEP_FIELDS)
            t["session_id"].append(sid)
            t["index"].append(index)
            t["step"].append(position)
            t["response_seq"].append(owner[position])
            t["tool_name"].append(values.get("tool_name"))
            if "tool_args" in values:
                args = values["tool_args"]
                is_text = type(args) is str
                t["tool_args"].append(args if is_text else encode_compact(args))
                t["tool_args_is_text"].append(is_text)
            else:
                t["tool_args"].append(None)
                t["tool_args_is_text"].append(None)
            for name in ("output_summary", "duration_ms", "is_error", "tool_call_id", "timestamp"):
                t[name].append(values.get(name))
            t["extra"].append(extra)
            t["field_order"].append(order)

    def _reasoning(self, sid: str, index: int, records: list[dict]) -> None:
        r = self.r
        for position, record in enumerate(records):
            standard = REASONING_FIELDS if record.get("segments") is not None else _REASONING_SHORT
            values, extra, order = _split(record, _REASONING_FITS, standard)
            r["session_id"].append(sid)
            r["index"].append(index)
            r["ord"].append(position)
            for name in ("source", "content", "timestamp", "segments"):
                r[name].append(values.get(name))
            r["extra"].append(extra)
            r["field_order"].append(order)

    def finish(self) -> tuple[pa.Table, pa.Table]:
        """The ``tool_calls`` and ``reasoning`` tables of everything added."""
        tool_calls, reasoning = (
            table_of(schema, {**columns, "timestamp": _times(columns["timestamp"])}, internal=("index",))
            for columns, schema in ((self.t, TOOL_CALLS_SCHEMA), (self.r, REASONING_SCHEMA))
        )
        return tool_calls, reasoning


def _times(texts: list[str | None]) -> pa.Array:
    """Texts that passed ``_is_time`` as timestamp[ns, UTC], all at once in Arrow."""
    return pc.cast(pa.array(texts, pa.string()), TIMESTAMP_NS)


# -- back to JSON ------------------------------------------------------------------------------
def _with_extra(values: dict, extra: str | None, order: str | None, fields: tuple[str, ...], written: dict) -> dict:
    from sessionkit.model import ordered_record

    if extra is None and order is None:
        return values
    more = JSON_DECODER.decode(extra) if extra is not None else {}
    for key in more:
        values.pop(key, None)
    keys = tuple(JSON_DECODER.decode(order)) if order is not None else fields
    return ordered_record(values, more, keys, fields, written)


def step_rows(table: pa.Table) -> Iterator[dict]:
    """The ``tool_calls`` rows of a table as trajectory steps (JSON values in file order)."""
    columns = [
        table.column(name).to_pylist()
        for name in (
            "tool_name",
            "tool_args",
            "tool_args_is_text",
            "output_summary",
            "duration_ms",
            "is_error",
            "tool_call_id",
            "extra",
            "field_order",
        )
    ]
    times = autosi_text(table.column("timestamp"))
    for name, args, is_text, summary, duration, error, call_id, extra, order, ts in zip(*columns, times, strict=True):
        values = {
            "tool_name": name,
            "tool_args": args if is_text or args is None else JSON_DECODER.decode(args),
            "output_summary": summary,
            "duration_ms": duration,
            "is_error": error,
            "tool_call_id": call_id,
            "timestamp": ts,
        }
        yield _with_extra(values, extra, order, STEP_FIELDS, _NO_WRITTEN_STEP)


def reasoning_rows(table: pa.Table) -> Iterator[dict]:
    """The ``reasoning`` rows of a table as reasoning records (JSON values in file order)."""
    columns = [table.column(name).to_pylist() for name in ("content", "source", "segments", "extra", "field_order")]
    times = autosi_text(table.column("timestamp"))
    for content, source, segments, extra, order, ts in zip(*columns, times, strict=True):
        values = {"content": content, "source": source, "timestamp": ts}
        if segments is not None or order is not None:
            values["segments"] = segments
        yield _with_extra(values, extra, order, REASONING_FIELDS, _NO_WRITTEN_REASONING)


def put_back(extra: dict, order: tuple[str, ...] | None, row: dict[str, Any]) -> dict:
    """The session's ``extra`` with the keys taken out by ``TrajectoryColumns.add`` put back:
    ``row`` holds ``project_id``, ``parent_session_id`` (column values) and the rebuilt
    ``trajectory_steps`` and ``reasoning_records`` lists. A key goes back only when the session's
    field order names it and ``extra`` does not hold it (it was taken out)."""
    if order is None:
        return extra
    missing = [key for key in SESSION_KEYS if key in order and key not in extra]
    if not missing:
        return extra
    extra = dict(extra)
    for key in missing:
        extra[key] = row[key]
    return extra
