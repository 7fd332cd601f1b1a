"""Reading a session's JSON: strict decoding, checks that name the JSON path, and layouts."""

from __future__ import annotations

import itertools
import re
from collections import Counter as _Counter
from typing import Any

import msgspec

from sessionkit.exceptions import SessionFormatError
from sessionkit.model._shape import SESSION, JSONValue, RecordShape

_DECODER = msgspec.json.Decoder()
_ENCODER = msgspec.json.Encoder()
_BYTE_AT = re.compile(r"\(byte (\d+)\)")
_BOM = b"\xef\xbb\xbf"


def decode_json(data: str | bytes, *, source: str = "<text>") -> JSONValue:
    """Parse JSON text strictly (no NaN, no trailing text), with errors that name ``source``."""
    if not data:
        raise SessionFormatError(
            "the file is empty",
            source=source,
            offset=0,
            hint="oxios never writes an empty file; it may have been cut off by a crash",
        )
    if isinstance(data, bytes) and data.startswith(_BOM):
        raise SessionFormatError(
            "the text starts with a UTF-8 byte-order mark",
            source=source,
            offset=0,
            hint="oxios writes no byte-order mark; remove the first three bytes",
        )
    try:
        value = _DECODER.decode(data)
    except msgspec.DecodeError as err:
        raise _syntax_error(str(err), data, source) from None
    except msgspec.ValidationError as err:  # e.g. a number beyond the range of a double
        raise SessionFormatError(f"not valid JSON: {err}", source=source) from None
    except RecursionError:
        raise _too_deep(source, "$") from None
    openings = data.count(b"[") + data.count(b"{") if isinstance(data, bytes) else data.count("[") + data.count("{")
    if openings > MAX_DEPTH:  # else it cannot nest that deep
        where = deeper_than(value, MAX_DEPTH)
        if where is not None:
            raise _too_deep(source, where)
    return value


#: The deepest nesting oxios reads: serde_json refuses a 128th level of arrays and objects, the
#: session object itself counted as the first.
MAX_DEPTH = 127


def _too_deep(source: str, path: str) -> SessionFormatError:
    return SessionFormatError(
        f"the JSON nests too deeply: more than the {MAX_DEPTH} levels of arrays and objects oxios reads",
        source=source,
        path=path,
        hint="oxios (serde_json) refuses such a file; it cannot hold a session oxios wrote",
    )


def deeper_than(value: JSONValue, limit: int) -> str | None:
    """Where ``value`` nests arrays and objects more than ``limit`` levels deep (itself the
    first), or None. The answer names the top-level field (``$.metadata``), never deeper keys,
    which are data. Iterative: any depth is safe to check.

    Example:
        >>> deeper_than({"metadata": {"a": [[1]]}}, 3), deeper_than({"metadata": {"a": [[1]]}}, 4)
        ('$.metadata', None)
    """
    if type(value) is not dict and type(value) is not list:
        return None
    tops = value.items() if type(value) is dict else enumerate(value)
    for key, top in tops:
        if type(top) is not dict and type(top) is not list:
            continue
        stack = [(top, 2)]
        while stack:
            item, depth = stack.pop()
            if depth > limit:
                if type(value) is list:
                    return f"$[{key}]"
                return f"$.{key}" if key in SESSION.known else "$"
            children = item.values() if type(item) is dict else item
            stack.extend((child, depth + 1) for child in children if type(child) is dict or type(child) is list)
    return None


_LONE_SURROGATE = re.compile(
    rb"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})|(?<![0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)


#: Numbers where serde_json's layout puts them: after a key's ``":`` and at the start of a line
#: (an array's items), the quick first look of ``changed_numbers``. Each scan starts on a literal,
#: so both together read several hundred MB/s. A ``":`` inside a string (JSON quoted in a
#: message) can give a false candidate; only the exact second look decides.
_AFTER_KEY = re.compile(rb'":[ \t\r\n]*(-?[0-9][0-9.eE+-]*)')
_LINE_START = re.compile(rb"\n[ \t\r]*(-?[0-9][0-9.eE+-]*)")
_PLAIN_INT = re.compile(rb"0|-?[1-9][0-9]*")


def _respelled(token: bytes) -> bool:
    try:
        return _ENCODER.encode(_DECODER.decode(token)) != token
    except (msgspec.DecodeError, msgspec.ValidationError):  # not a number after all ("12-34" in a string)
        return True


def changed_numbers(data: bytes) -> list[str]:
    """The numbers of a session file, as written, that restore would write otherwise.

    A value keeps its number, not its spelling: ``-0`` restores as ``0``, ``1E2`` as
    ``100.0``, ``1e+308`` as ``1e308``, ``1.50`` as ``1.5``. serde_json writes none of these,
    so files oxios wrote give ``[]``. Numbers are looked for where serde_json's layout puts
    them (a file in another layout restores to other bytes anyway); the text is parsed again
    only if one of them would be respelled.

    Example:
        >>> changed_numbers(b'{"a": 1E2, "b": -0, "c": 1.5, "d": [1.50]}')
        ['1E2', '-0', '1.50']
    """
    tokens = itertools.chain(_AFTER_KEY.findall(data), _LINE_START.findall(data))
    if not any(_PLAIN_INT.fullmatch(token) is None and _respelled(token) for token in tokens):
        return []
    import json

    found: list[str] = []

    def check(text: str) -> int:
        if _respelled(text.encode()):
            found.append(text)
        return 0

    json.loads(data, parse_int=check, parse_float=check)
    return found


def _syntax_error(detail: str, data: str | bytes, source: str) -> SessionFormatError:
    raw = data.encode(errors="surrogatepass") if isinstance(data, str) else data
    if not raw.strip(b"\x00"):
        return SessionFormatError(
            f"the file holds only {len(raw)} zero bytes",
            source=source,
            offset=0,
            hint="a crash can leave such a file before oxios wrote it; there is no session in it",
        )
    match = _BYTE_AT.search(detail)
    offset = int(match.group(1)) if match else None
    reason = _BYTE_AT.sub("", detail).strip().removeprefix("JSON is malformed: ")
    surrogate = _LONE_SURROGATE.search(raw) if "surrogate" in detail or "truncated" in detail else None
    if surrogate is not None:
        reason = f"a lone UTF-16 surrogate escape {surrogate.group().decode()} names no character"
        offset = surrogate.start()
    elif detail.startswith("Input data was truncated"):
        reason = "the JSON text ends too early (truncated file, or an unfinished string or escape)"
        offset = len(raw)
    elif "UTF-8" in detail:
        reason = "the file is not valid UTF-8"
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as err:
            offset = err.start
    else:
        reason = f"not valid JSON: {reason}"
    if offset is not None:
        head = raw[:offset]
        line = head.count(b"\n") + 1
        column = offset - (head.rfind(b"\n") + 1) + 1
        reason += f" (line {line}, column {column})"
    return SessionFormatError(reason, source=source, offset=offset)


def decode_session(data: str | bytes, *, source: str = "<text>") -> JSONValue:
    """``decode_json``, then refuse duplicate keys in the records oxios reads as structs.

    serde refuses a session, message or response that names a field twice; sessionkit
    does too, rather than keep one of the values silently. (Metadata is a map, where oxios
    keeps the last value of a repeated key; so does sessionkit.)
    """
    obj = decode_json(data, source=source)
    if type(obj) is dict:
        check_duplicate_keys(data, obj, source)
    return obj


def count_keys(value: JSONValue) -> int:
    """The object keys anywhere inside a decoded JSON value."""
    count = 0
    if type(value) is dict:
        count = len(value)
        value = value.values()
    for item in value:
        kind = type(item)
        if kind is dict or kind is list:
            count += count_keys(item)
    return count


def _key_count(obj: dict) -> int:
    """The object keys of a decoded session: ``len`` for each record, plus any nested objects."""
    count = len(obj)
    for value in obj.values():
        kind = type(value)
        if kind is list:
            for item in value:
                kind = type(item)
                if kind is dict:
                    count += len(item)
                    for inner in item.values():
                        if type(inner) is dict or type(inner) is list:
                            count += count_keys(inner)
                elif kind is list:
                    count += count_keys(item)
        elif kind is dict:
            count += count_keys(value)
    return count


class _Pairs(dict):
    """A JSON object that remembers the keys it saw twice."""

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__(pairs)
        self.repeated = [k for k, n in _Counter(k for k, _ in pairs).items() if n > 1] if len(self) < len(pairs) else []


def check_duplicate_keys(data: str | bytes, obj: dict, source: str = "<text>", *, keys: int | None = None) -> None:
    """Raise ``SessionFormatError`` when the session, a message or a response names a key twice.

    The text's keys are counted with a byte count (``":`` ends a key; inside a string a quote
    is escaped as ``\\"``) and compared with the decoded keys; only when they differ (a
    repeated key, or an unusual layout) is the text parsed again to find the repeated key.
    """
    raw = data.encode(errors="surrogatepass") if isinstance(data, str) else data
    if keys is None:  # a caller that walked the records already passes their count
        keys = _key_count(obj)
    found = raw.count(b'":')
    if found == keys or (found > keys and found - raw.count(b'\\":') == keys):
        return
    import json

    try:
        pairs = json.loads(raw, object_pairs_hook=_Pairs)
    except (ValueError, RecursionError):
        return  # msgspec read it; whatever json objects to is not a duplicate key
    records = [("$", pairs)]
    for name in ("user_messages", "agent_responses"):
        items = pairs.get(name) if isinstance(pairs, dict) else None
        if type(items) is list:
            records += [(f"$.{name}[{i}]", item) for i, item in enumerate(items)]
    for path, record in records:
        if isinstance(record, _Pairs) and record.repeated:
            raise SessionFormatError(
                f"the key `{record.repeated[0]}` appears twice in one object",
                source=source,
                path=path,
                hint="oxios refuses such a file (serde: duplicate field); keep one of the two",
            )


def record_layout(record: dict, shape: RecordShape) -> tuple[dict, tuple[str, ...] | None]:
    """The (extra fields, field order) of a decoded record of this shape: the fields the
    declaration does not name, and the record's keys when they are not serde's layout."""
    keys = tuple(record)
    if keys == shape.standard(record):
        return {}, None
    known = shape.known
    return {key: value for key, value in record.items() if key not in known}, keys
