"""The agent-run records as tables (``agents``, ``agent_tool_calls``), and back to their bytes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import pyarrow as pa

from sessionkit._timestamp import Timestamp, autosi_text
from sessionkit.exceptions import DatasetError, SessionFormatError
from sessionkit.model import (
    agent_layout,
    agent_standard,
    agent_values,
    encode_compact,
    encode_raw,
    record_raw,
    tool_call_layout,
    tool_call_standard,
    tool_call_values,
)
from sessionkit.tables._schemas import AGENT_TOOL_CALLS_SCHEMA, AGENTS_SCHEMA, JSON_DECODER, int_times

_AGENT_TIMES = ("created_at", "started_at", "completed_at")
_NO_EXTRA: dict = {}


def _ns(text: str | None, source: str, path: str) -> int | None:
    if text is None:
        return None
    try:
        return Timestamp.parse(text).ns
    except ValueError as err:
        raise SessionFormatError(str(err), source=source, path=path) from None


def _json_or_none(value: Any) -> str | None:
    return encode_compact(value) if value else None


def agent_rows(obj: dict, source: str = "<text>") -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The ``agents`` row and the ``agent_tool_calls`` rows of one checked agent record
    (see ``sessionkit.model.check_agent``); timestamps as integer nanoseconds.

    Raises:
        SessionFormatError: a timestamp is not RFC 3339; the message names the JSON path.
    """
    values = agent_values(obj)
    extra, order = agent_layout(obj, values)
    agent_id = values["id"]
    row = {
        "agent_id": agent_id,
        "name": values["name"],
        "status": values["status"],
        **{name: _ns(values[name], source, f"$.{name}") for name in _AGENT_TIMES},
        "project_id": values["project_id"],
        "error": values["error"],
        "steps_completed": values["steps_completed"],
        "steps_total": values["steps_total"],
        "tokens_input": values["tokens_input"],
        "tokens_output": values["tokens_output"],
        "cost_usd": values["cost_usd"],
        "model_id": values["model_id"],
        "session_id": values["session_id"],
        "linked_session_id": None,
        "linked_seq": None,
        "link_candidates": None,
        "extra": _json_or_none(extra),
        "field_order": encode_compact(list(order)) if order is not None else None,
    }
    calls = []
    for i, call in enumerate(values["tool_calls"]):
        named = tool_call_values(call)
        call_extra, call_order = tool_call_layout(call, named)
        calls.append(
            {
                "agent_id": agent_id,
                "ord": i,
                "tool": named["tool"],
                "input": named["input"],
                "output": named["output"],
                "duration_ms": named["duration_ms"],
                "is_error": named["is_error"],
                "tool_call_id": named["tool_call_id"],
                "timestamp": _ns(named["timestamp"], source, f"$.tool_calls[{i}].timestamp"),
                "extra": _json_or_none(call_extra),
                "field_order": encode_compact(list(call_order)) if call_order is not None else None,
            }
        )
    return row, calls


def agent_tables(records: Iterable[tuple[dict, str]]) -> dict[str, pa.Table]:
    """The ``agents`` and ``agent_tool_calls`` tables of checked agent records, given as
    (decoded JSON, source) pairs, in the order given.

    Example:
        >>> t = agent_tables([({"id": "a-1", "name": "hi", "status": "Completed",
        ...                     "created_at": "2026-08-03T11:02:11Z", "cost_usd": 0.5}, "a-1.json")])
        >>> t["agents"].column("cost_usd").to_pylist()
        [0.5]
    """
    agents, calls = [], []
    for obj, source in records:
        row, rows = agent_rows(obj, source)
        agents.append(row)
        calls.extend(rows)
    return {
        "agents": pa.Table.from_pylist(agents, schema=int_times(AGENTS_SCHEMA)).cast(AGENTS_SCHEMA),
        "agent_tool_calls": pa.Table.from_pylist(calls, schema=int_times(AGENT_TOOL_CALLS_SCHEMA)).cast(
            AGENT_TOOL_CALLS_SCHEMA
        ),
    }


def _decode(text: str | None, default: Any) -> Any:
    return JSON_DECODER.decode(text) if text is not None else default


def agent_json(agents: pa.Table, tool_calls: pa.Table) -> Iterator[tuple[str, bytes]]:
    """(agent id, the bytes oxios writes for the record) for each row of ``agents``, in order.

    Raises:
        DatasetError: an agent id appears twice, or tool calls have no agent row, or their
            ``ord`` has a gap.
    """
    calls: dict[str, list[dict]] = {}
    if tool_calls.num_rows:
        tool_calls = tool_calls.sort_by([("agent_id", "ascending"), ("ord", "ascending")])
        names: tuple[str, ...] = (
            "agent_id",
            "ord",
            "tool",
            "input",
            "output",
            "duration_ms",
            "is_error",
            "tool_call_id",
            "extra",
            "field_order",
        )
        columns = [tool_calls.column(name).to_pylist() for name in names]
        stamps = autosi_text(tool_calls.column("timestamp"))
        for (aid, ord_, tool, inp, out, ms, err, tcid, extra, order), ts in zip(
            zip(*columns, strict=True), stamps, strict=True
        ):
            group = calls.setdefault(aid, [])
            if ord_ != len(group):
                msg = f"agent {aid!r}: tool call {ord_} is missing or repeated in agent_tool_calls. Hint: the dataset is damaged; re-export it"
                raise DatasetError(msg)
            values = {
                "tool": tool,
                "input": inp,
                "output": out,
                "duration_ms": ms,
                "is_error": err,
                "tool_call_id": tcid,
                "timestamp": ts,
            }
            group.append(
                record_raw(
                    values,
                    _decode(extra, _NO_EXTRA),
                    tuple(JSON_DECODER.decode(order)) if order is not None else None,
                    tool_call_standard(values),
                )
            )
    names = (
        "agent_id",
        "name",
        "status",
        "project_id",
        "error",
        "steps_completed",
        "steps_total",
        "tokens_input",
        "tokens_output",
        "cost_usd",
        "model_id",
        "session_id",
        "extra",
        "field_order",
    )
    columns = [agents.column(name).to_pylist() for name in names]
    times = [autosi_text(agents.column(name)) for name in _AGENT_TIMES]
    seen: set[str] = set()
    for i, row in enumerate(zip(*columns, strict=True)):
        record = dict(zip(names, row, strict=True))
        aid = record["agent_id"]
        if aid in seen:
            msg = f"the agents table holds agent {aid!r} twice. Hint: a dataset holds each agent run once; re-export it"
            raise DatasetError(msg)
        seen.add(aid)
        values = {
            "id": aid,
            "name": record["name"],
            "status": record["status"],
            "created_at": times[0][i],
            "project_id": record["project_id"],
            "started_at": times[1][i],
            "completed_at": times[2][i],
            "error": record["error"],
            "steps_completed": record["steps_completed"],
            "steps_total": record["steps_total"],
            "tool_calls": calls.pop(aid, []),
            "tokens_input": record["tokens_input"],
            "tokens_output": record["tokens_output"],
            "cost_usd": record["cost_usd"],
            "model_id": record["model_id"],
            "session_id": record["session_id"],
        }
        order = tuple(JSON_DECODER.decode(record["field_order"])) if record["field_order"] is not None else None
        raw = record_raw(values, _decode(record["extra"], _NO_EXTRA), order, agent_standard(values))
        yield aid, encode_raw(raw)
    for aid in calls:
        msg = f"tool calls of agent {aid!r} have no row in the agents table. Hint: the dataset is incomplete; re-export it"
        raise DatasetError(msg)
