"""The shape of an oxios session file, declared once: records, fields, JSON types, what may be
left out, and what serde leaves out.

``SessionShape`` and its records mirror the Rust structs of oxios (``state_store.rs``) as serde
reads and writes them: the fields in struct order, their JSON types, which may be missing (a
default), and which serde leaves out when null (``skip_serializing_if``). Everything that
checks a session derives from these declarations: ``check_session`` (``msgspec.convert``,
whose errors name the JSON path), the exporter's fast type checks (``RecordShape.types``),
the field lists and serde layouts of the model, and the Arrow types of the export's fast path.

Each record keeps what the declaration does not name: unknown keys of a session, a message or a
response stay in the record's ``extra``, and its key order in ``field_order``, so that a file
writes back to the very same bytes; ``metadata`` is a map of any JSON values. Of those kept
fields, one relation between them is read here too, for the tables and the transcript alike:
which response's ``trajectory_range`` owns which of the session's ``trajectory_steps``
(``step_owners``).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

import msgspec
import msgspec.inspect as mi

from sessionkit.exceptions import SessionFormatError

#: Any value JSON can hold, as Python gives it: dict, list, str, int, float, bool or None.
JSONValue = Any

#: A field serde leaves out of the file when it is None (``skip_serializing_if = "Option::is_none"``).
_SKIPPED_WHEN_NONE = msgspec.Meta(extra={"serde": "skip_serializing_if_none"})

#: A record's timestamp: RFC 3339 text, checked to be a string here and parsed later; the error
#: messages say which text they want (the session's own two say "a string", as they always did).
_RFC3339 = msgspec.Meta(extra={"expected": "an RFC 3339 timestamp string"})


class _Record(msgspec.Struct, kw_only=True):
    #: what one record is called in messages: "an array of messages"
    noun: ClassVar[str]


class MessageShape(_Record, kw_only=True):
    """``UserMessage``: what the user sent, and when (RFC 3339 text, parsed later)."""

    noun: ClassVar[str] = "message"
    content: str
    timestamp: Annotated[str, _RFC3339]


class ResponseShape(_Record, kw_only=True):
    """``AgentResponse``: serde writes its optional fields as ``null``."""

    noun: ClassVar[str] = "response"
    content: str
    session_id: str | None = None
    seed_id: str | None = None
    phase_reached: str | None = None
    evaluation_passed: bool | None = None
    timestamp: Annotated[str, _RFC3339]


class SessionShape(_Record, kw_only=True):
    """``Session``: the lists and metadata may be missing (empty); the two ids are left out when None."""

    noun: ClassVar[str] = "session"
    id: str
    user_id: str
    user_messages: list[MessageShape] = []
    agent_responses: list[ResponseShape] = []
    active_seed_id: Annotated[str | None, _SKIPPED_WHEN_NONE] = None
    active_persona_id: Annotated[str | None, _SKIPPED_WHEN_NONE] = None
    created_at: str
    updated_at: str
    metadata: dict[str, Any] = {}


class RecordShape:
    """What the declaration of one record says, in the forms the checkers and the layouts use.

    Attributes:
        struct: the declaring ``msgspec.Struct``.
        info: its ``msgspec.inspect`` type (what msgspec's error paths walk).
        fields: the field names in struct order (serde's order).
        required: the fields a file must name.
        types: for each field, the Python types of the JSON values it takes (``dict`` for an
            object, ``type(None)`` for null), for checks of the form ``type(value) in types``.
        skipped_when_none: the fields serde leaves out when they are None.
        kinds: for each field, its ``msgspec.inspect`` type (without annotations).
    """

    def __init__(self, struct: type[_Record]) -> None:
        info = mi.type_info(struct)
        assert isinstance(info, mi.StructType)
        self.struct = struct
        self.info: mi.Type = info
        self.noun = struct.noun
        self.fields = tuple(field.name for field in info.fields)
        self.known = frozenset(self.fields)
        self.required = tuple(field.name for field in info.fields if field.required)
        self.kinds = {field.name: _bare(field.type) for field in info.fields}
        self.types = {name: frozenset(_python_types(kind)) for name, kind in self.kinds.items()}
        self.skipped_when_none = frozenset(
            field.name
            for field in info.fields
            if isinstance(field.type, mi.Metadata)
            and (field.type.extra or {}).get("serde") == "skip_serializing_if_none"
        )

        self._skippable = tuple(name for name in self.fields if name in self.skipped_when_none)
        self._layouts = {
            present: tuple(
                name
                for name in self.fields
                if name not in self.skipped_when_none or present[self._skippable.index(name)]
            )
            for present in itertools.product((False, True), repeat=len(self._skippable))
        }

    def standard(self, values: Mapping[str, Any]) -> tuple[str, ...]:
        """The keys serde writes, in order, for a record with these values: every field, but
        those ``skipped_when_none`` that are None (or missing) in ``values``."""
        if not self._skippable:
            return self.fields
        return self._layouts[tuple(values.get(name) is not None for name in self._skippable)]

    def __repr__(self) -> str:
        return f"RecordShape({self.struct.__name__})"


def _bare(kind: mi.Type) -> mi.Type:
    return kind.type if isinstance(kind, mi.Metadata) else kind


_PYTHON_TYPES: dict[type[mi.Type], tuple[type, ...]] = {
    mi.StrType: (str,),
    mi.BoolType: (bool,),
    mi.IntType: (int,),
    mi.FloatType: (float,),
    mi.NoneType: (type(None),),
    mi.ListType: (list,),
    mi.DictType: (dict,),
    mi.StructType: (dict,),
}


def _python_types(kind: mi.Type) -> tuple[type, ...]:
    kind = _bare(kind)
    if isinstance(kind, mi.UnionType):
        return tuple(t for member in kind.types for t in _python_types(member))
    return _PYTHON_TYPES[type(kind)]


def _words(kind: mi.Type) -> list[str]:
    """The JSON values a type takes, as words: ``["a string", "null"]``."""
    kind = _bare(kind)
    if isinstance(kind, mi.UnionType):
        return [word for member in kind.types for word in _words(member)]
    if isinstance(kind, mi.ListType) and isinstance(kind.item_type, mi.StructType):
        cls = kind.item_type.cls
        return [f"an array of {cls.noun}s" if issubclass(cls, _Record) else "an array"]
    words = {
        mi.StrType: ["a string"],
        mi.BoolType: ["true", "false"],
        mi.IntType: ["an integer"],
        mi.FloatType: ["a number"],
        mi.NoneType: ["null"],
        mi.ListType: ["an array"],
        mi.DictType: ["an object"],
        mi.StructType: ["an object"],
    }
    return words[type(kind)]


def expected(kind: mi.Type) -> str:
    """What a declared type takes, as the error messages say it: ``a string or null`` (or the
    description its declaration gives)."""
    said = kind.extra.get("expected") if isinstance(kind, mi.Metadata) and kind.extra else None
    if said is not None:
        return str(said)
    words = _words(kind)
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


#: The session and its records, as the checkers and layouts use them.
SESSION = RecordShape(SessionShape)
MESSAGE = RecordShape(MessageShape)
RESPONSE = RecordShape(ResponseShape)

_ERROR = re.compile(r"^(?P<reason>.*?)(?: - at `(?P<path>\$[^`]*)`)?$", re.DOTALL)
_MISSING_FIELD = re.compile(r"^Object missing required field `(?P<name>[^`]*)`$")
_STEP = re.compile(r"\.([^.\[]+)|\[(\d+)\]")


def check_session(obj: Any, source: str = "<text>") -> None:
    """Check that decoded JSON has the shape and types ``SessionShape`` declares.

    Timestamps are checked to be strings here; their RFC 3339 form is checked where they are
    parsed. Raises ``SessionFormatError`` naming ``source`` and the JSON path (msgspec's).

    Example:
        >>> check_session({"id": "s-1", "user_id": 7, "created_at": "", "updated_at": ""}, "s-1.json")
        Traceback (most recent call last):
        sessionkit.exceptions.SessionFormatError: s-1.json: at $.user_id: expected a string, got an integer (7)
    """
    try:
        msgspec.convert(obj, SessionShape)
    except msgspec.ValidationError as err:
        raise _shape_error(str(err), obj, source) from None


def _shape_error(text: str, obj: Any, source: str) -> SessionFormatError:
    """msgspec's ``Expected `str`, got `int` - at `$.id``` in sessionkit's words: the JSON path,
    what the declaration takes, and the value the file holds."""
    match = _ERROR.match(text)
    assert match is not None  # the pattern matches any text
    reason, path = match["reason"], match["path"] or "$"
    missing = _MISSING_FIELD.match(reason)
    if missing:
        return SessionFormatError(f"the required field `{missing['name']}` is missing", source=source, path=path)
    value, kind = obj, SESSION.info
    for name, index in _STEP.findall(path[1:]):
        kind = _bare(kind)
        if isinstance(kind, mi.StructType) and name:
            kind, value = next(f.type for f in kind.fields if f.name == name), value[name]
        elif isinstance(kind, mi.ListType) and index:
            kind, value = kind.item_type, value[int(index)]
        else:  # not a path through the declaration: say what msgspec said
            return SessionFormatError(f"not an oxios session: {reason}", source=source, path=path)
    what = expected(kind) if path != "$" else f"a JSON object (a {SESSION.noun})"
    return SessionFormatError(f"expected {what}, got {describe(value)}", source=source, path=path)


def describe(value: object) -> str:
    """A JSON value as an error message names it: ``an integer (12)``, ``a string ('x')``, ``an array``."""
    if value is None:
        return "null"
    if type(value) is bool:
        return f"a boolean ({'true' if value else 'false'})"
    if type(value) is int:
        return f"an integer ({value})"
    if type(value) is float:
        return f"a number ({value!r})"
    if type(value) is str:
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"a string ({shown!r})"
    if type(value) is list:
        return "an array"
    if type(value) is dict:
        return "an object"
    return type(value).__name__


def step_owners(count: int, ranges: list[Any]) -> list[int | None]:
    """For each of ``count`` trajectory steps, the seq of the first response whose
    ``trajectory_range`` (``{"start", "end"}``, end exclusive) holds it, or None.

    Example:
        >>> step_owners(4, [{"start": 0, "end": 2}, None, {"start": 1, "end": 3}])
        [0, 0, 2, None]
    """
    owner: list[int | None] = [None] * count
    for seq, span in enumerate(ranges):
        if type(span) is not dict:
            continue
        start, end = span.get("start"), span.get("end")
        if type(start) is not int or type(end) is not int:
            continue
        for step in range(max(start, 0), min(end, count)):
            if owner[step] is None:
                owner[step] = seq
    return owner
