"""The exporter's fast path: files in serde's own layout, parsed into columns by Arrow's JSON reader.

Most of an oxios file is message and response text. Turning it into Python strings and back
into Arrow columns costs several times the parse itself, so for a batch of files this module
lets Arrow's C++ JSON reader build the columns directly, and takes from Python only what Arrow
cannot hold: the metadata, whose values may be any JSON. A file qualifies only when it is
provably in serde's layout with nothing the columns would lose: the keys of the whole file,
in order, must be exactly those the parsed values imply (so no unknown field, no repeated key,
no explicit ``null`` where serde leaves a field out, no other order). Anything else is left to
``TableBuilder.add_raw``, which takes every file; both give the same rows.
"""

from __future__ import annotations

import io
import re
from typing import Any, NamedTuple

import msgspec
import msgspec.inspect as mi
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from sessionkit.model import MAX_DEPTH, MESSAGE, RESPONSE, SESSION, changed_numbers, deeper_than
from sessionkit.tables import (
    MESSAGES_SCHEMA,
    METADATA_SCHEMA,
    RESPONSES_SCHEMA,
    SESSIONS_SCHEMA,
    SessionTables,
    parse_timestamps,
    table_of,
)

__all__ = ["FastTables", "fast_tables"]


def _arrow_type(kind: mi.Type) -> pa.DataType:
    """The Arrow type of a declared JSON type (``sessionkit.model.SessionShape``): null is a null."""
    if isinstance(kind, mi.Metadata):
        return _arrow_type(kind.type)
    if isinstance(kind, mi.UnionType):
        (kind,) = (member for member in kind.types if not isinstance(member, mi.NoneType))
        return _arrow_type(kind)
    if isinstance(kind, mi.ListType):
        return pa.list_(_arrow_type(kind.item_type))
    if isinstance(kind, mi.StructType):
        return pa.struct([(field.name, _arrow_type(field.type)) for field in kind.fields])
    return {mi.StrType: pa.string(), mi.BoolType: pa.bool_()}[type(kind)]


# every field of the declaration but the maps of any JSON (metadata), which Arrow cannot hold
_SCHEMA = pa.schema(
    [(name, _arrow_type(kind)) for name, kind in SESSION.kinds.items() if not isinstance(kind, mi.DictType)]
)
# the lists of records, and the keys of each record in serde's layout
_RECORDS = {
    name: [field.encode() for field in shape.fields]
    for name, shape in (("user_messages", MESSAGE), ("agent_responses", RESPONSE))
}
# per field, in serde's order: (name, key, whether serde skips it when None, its records' keys)
_KEY_PLAN = [(name, name.encode(), name in SESSION.skipped_when_none, _RECORDS.get(name)) for name in SESSION.fields]
_PARSE = pj.ParseOptions(explicit_schema=_SCHEMA, newlines_in_values=True, unexpected_field_behavior="ignore")
_READ = pj.ReadOptions(use_threads=False, block_size=1 << 26)
_START = b'{\n  "id": '
# keys of today's oxios (1.9 and later), which the columns here do not hold: a file with one of
# them cannot pass the key check below, so it is not worth Arrow's parse
_LATER_KEYS = frozenset((b"trajectory_steps", b"reasoning_records", b"project_id", b"parent_session_id"))
_METADATA_KEY = b'\n  "metadata": '
_RESPONSES = b'\n  "agent_responses": [\n'
_SEED_ID = b'\n      "seed_id": '
# a key in serde's pretty layout: at the start of a line, quoted (escapes and all), then ": ";
# inside a string a newline is always escaped, so no text in a value can look like this
# (the loop unrolled: a run of plain characters, then escapes each followed by such a run, is
# one match attempt where one character per alternative was many; about twice as fast)
_KEY = re.compile(rb'\n +"([^"\\\n]*(?:\\.[^"\\\n]*)*)": ')
_ENCODER = msgspec.json.Encoder()


# the one part of a file Arrow cannot take: metadata values may be any JSON
_METADATA = msgspec.json.Decoder(dict[str, Any])


def _nested_keys(value: Any, keys: list[bytes]) -> None:
    """The object keys inside a JSON value, in document order, as serde writes them."""
    if type(value) is dict:
        for key, item in value.items():
            keys.append(_ENCODER.encode(key)[1:-1])
            if type(item) is dict or type(item) is list:
                _nested_keys(item, keys)
    else:
        for item in value:
            if type(item) is dict or type(item) is list:
                _nested_keys(item, keys)


def _may_qualify(data: bytes) -> list[bytes] | None:
    """The keys of a file that may be in the old layout, in document order; None for one that
    cannot be: today's oxios writes no ``seed_id`` in its responses, and top-level keys the
    columns here do not hold. (Both ``in`` tests stop at the first response of an old file.)"""
    if not data.startswith(_START):
        return None
    if _RESPONSES in data and _SEED_ID not in data:
        return None
    keys = _KEY.findall(data)
    try:  # the top-level keys before created_at: metadata (after it) may use any key names
        top = keys[: keys.index(b"created_at")]
    except ValueError:
        return None
    return keys if _LATER_KEYS.isdisjoint(top) else None


class FastTables(NamedTuple):
    """What ``fast_tables`` took: the tables, which files they hold, and the numbers of those
    files that restore would spell otherwise (``changed_numbers``), by file index."""

    tables: SessionTables
    taken: list[bool]
    changed_numbers: dict[int, list[str]]


def fast_tables(datas: list[bytes]) -> FastTables | None:
    """The tables of the files it can take, and which those are (the rest: ``add_raw``).

    Returns None when Arrow refuses the batch as a whole (a file that is not JSON, or a value
    of the wrong type): then the general path, file by file, finds and names the problem.
    """
    keys_of = {i: keys for i, data in enumerate(datas) if (keys := _may_qualify(data)) is not None}
    candidates = list(keys_of)
    if not candidates:
        return None
    try:
        parsed = pj.read_json(
            io.BytesIO(b"\n".join(datas[i] for i in candidates)), read_options=_READ, parse_options=_PARSE
        )
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return None
    if parsed.num_rows != len(candidates):
        return None
    parsed = parsed.combine_chunks()
    try:
        parsed.validate(full=True)  # Arrow's reader does not check that nested strings are UTF-8
    except pa.ArrowInvalid:
        return None
    messages, responses = parsed["user_messages"].chunk(0), parsed["agent_responses"].chunk(0)
    n_messages = pc.fill_null(pc.list_value_length(messages), 0)
    n_responses = pc.fill_null(pc.list_value_length(responses), 0)
    incomplete = _incomplete(parsed, messages, responses)
    skipped = {name: pc.is_valid(parsed[name]).to_pylist() for name in SESSION.skipped_when_none}
    lengths = {"user_messages": n_messages.to_pylist(), "agent_responses": n_responses.to_pylist()}
    ok_rows: list[int] = []
    metadata: list[dict[str, Any]] = []
    changed: dict[int, list[str]] = {}
    for row, i in enumerate(candidates):
        if row in incomplete:
            continue
        data = datas[i]
        # serde writes metadata last: its value runs from its key to the file's closing brace
        # (a newline inside a string is escaped, so no text can look like the key). The key
        # check below proves that layout; a file it does not fit fails to decode or to match.
        at = data.rfind(_METADATA_KEY)
        if at < 0:
            continue
        text = data[at + len(_METADATA_KEY) : data.rfind(b"}")]
        try:
            meta = _METADATA.decode(text)
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
            continue
        if meta and text.count(b"[") + text.count(b"{") >= MAX_DEPTH and deeper_than({"metadata": meta}, MAX_DEPTH):
            continue  # nested deeper than oxios reads: the general path refuses it, naming why
        expected = _serde_keys(row, skipped, lengths)
        if meta:
            _nested_keys(meta, expected)
        if keys_of[i] != expected:
            continue
        ok_rows.append(row)
        metadata.append(meta)
        if meta:  # in this layout every other value is a string, a bool or null: numbers are metadata's
            numbers = changed_numbers(text)
            if numbers:
                changed[i] = numbers
    if not ok_rows:
        return None
    taken = [False] * len(datas)
    for row in ok_rows:
        taken[candidates[row]] = True
    try:
        tables = _tables(parsed.take(pa.array(ok_rows, pa.int64())), metadata)
    except ValueError:  # a timestamp that is not RFC 3339: the general path names it
        return None
    return FastTables(tables, taken, changed)


def _serde_keys(row: int, present: dict[str, list[bool]], lengths: dict[str, list[int]]) -> list[bytes]:
    """The keys serde writes for the session at ``row``, in order, up to its metadata's own:
    every declared field but those skipped when None (``present`` says which are set), and
    each record's keys (``lengths`` says how many records each list has)."""
    keys: list[bytes] = []
    for name, key, skippable, records in _KEY_PLAN:
        if skippable and not present[name][row]:
            continue
        keys.append(key)
        if records is not None:
            keys += records * lengths[name][row]
    return keys


def _incomplete(parsed: pa.Table, messages: pa.ListArray, responses: pa.ListArray) -> set[int]:
    """The rows with a null where the declaration requires a value, in the session or in one of
    its records. serde writes every field but those it skips when None, so a null is a missing
    key or an explicit null; either way the general path takes the file (the key check of
    ``fast_tables`` tells the two apart for the optional fields)."""
    first, *others = (*SESSION.required, *_RECORDS)
    nulls = pc.is_null(parsed[first])
    for name in others:
        nulls = pc.or_(nulls, pc.is_null(parsed[name]))
    rows = set(pc.indices_nonzero(nulls).to_pylist())
    for lists, shape in ((messages, MESSAGE), (responses, RESPONSE)):
        flat = lists.flatten()
        holes = pc.is_null(flat)
        for name in shape.required:
            holes = pc.or_(holes, pc.is_null(flat.field(name)))
        if pc.any(holes).as_py():
            rows.update(pc.list_parent_indices(lists).filter(holes).to_pylist())
    return rows


def _children(lists: pa.ListArray, ids: pa.Array) -> tuple[pa.StructArray, pa.Array, pa.Array]:
    """The list items flattened, with their session id and 0-based position in the list."""
    flat = lists.flatten()
    parents = pc.list_parent_indices(lists)
    offsets = lists.offsets.to_numpy()
    starts = offsets[:-1] - offsets[0]
    lengths = np.diff(offsets)
    seq = np.arange(len(flat), dtype=np.int32) - np.repeat(starts, lengths).astype(np.int32)
    return flat, ids.take(parents), pa.array(seq, pa.int32())


def _tables(parsed: pa.Table, metadata: list[dict[str, Any]]) -> SessionTables:
    parsed = parsed.combine_chunks()
    ids = parsed["id"].chunk(0)
    messages, responses = parsed["user_messages"].chunk(0), parsed["agent_responses"].chunk(0)
    n_messages = pc.list_value_length(messages).cast(pa.int32())
    n_responses = pc.list_value_length(responses).cast(pa.int32())
    n = parsed.num_rows
    nulls = pa.nulls(n, pa.string())
    sessions = table_of(
        SESSIONS_SCHEMA,
        {
            "session_id": ids,
            "user_id": parsed["user_id"],
            "active_seed_id": parsed["active_seed_id"],
            "active_persona_id": parsed["active_persona_id"],
            "created_at": parse_timestamps(parsed["created_at"]),
            "updated_at": parse_timestamps(parsed["updated_at"]),
            "n_user_messages": n_messages,
            "n_agent_responses": n_responses,
            "exchange_count": pc.min_element_wise(n_messages, n_responses),
            "extra": nulls,
            "field_order": nulls,
            "n_metadata": [len(meta) for meta in metadata],
            "project_id": nulls,  # and parent_session_id: a file with them is not in the old layout
            "parent_session_id": nulls,
        },
    )
    flat, owner, seq = _children(messages, ids)
    m_nulls = pa.nulls(len(flat), pa.string())
    messages_table = table_of(
        MESSAGES_SCHEMA,
        {
            "session_id": owner,
            "seq": seq,
            "content": flat.field("content"),
            "timestamp": parse_timestamps(flat.field("timestamp")),
            "extra": m_nulls,
            "field_order": m_nulls,
        },
    )
    flat, owner, seq = _children(responses, ids)
    r_nulls = pa.nulls(len(flat), pa.string())
    responses_table = table_of(
        RESPONSES_SCHEMA,
        {
            "session_id": owner,
            "seq": seq,
            "content": flat.field("content"),
            "response_session_id": flat.field("session_id"),
            "seed_id": flat.field("seed_id"),
            "phase_reached": flat.field("phase_reached"),
            "evaluation_passed": flat.field("evaluation_passed"),
            "timestamp": parse_timestamps(flat.field("timestamp")),
            "extra": r_nulls,
            "field_order": r_nulls,
        },
    )
    sids = ids.to_pylist()
    d_ord: list[int]
    d_key: list[str]
    d_session, d_ord, d_key, d_value = [], [], [], []
    for sid, meta in zip(sids, metadata, strict=True):
        if meta:
            d_session += [sid] * len(meta)
            d_ord += range(len(meta))
            d_key += meta
            d_value += [_ENCODER.encode(value).decode() for value in meta.values()]
    metadata_table = table_of(METADATA_SCHEMA, {"session_id": d_session, "ord": d_ord, "key": d_key, "value": d_value})
    return SessionTables(sessions, messages_table, responses_table, metadata_table)
