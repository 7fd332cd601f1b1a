"""The table transform: ``Privacy.apply`` rewrites a batch of the tables; ``PrivacyCounts`` says what it did."""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import msgspec
import pyarrow as pa

from sessionkit.exceptions import PrivacyError
from sessionkit.model import encode_compact
from sessionkit.privacy._keys import PSEUDONYM_HEX_DIGITS, check_key, key_fingerprint, load_key, pseudonym
from sessionkit.privacy._mask import PLACEHOLDERS, Masker, is_secret_name
from sessionkit.tables import SCHEMAS, SessionTables

#: ``none`` keeps text; ``drop`` empties it; ``mask`` replaces personal data and secrets with
#: placeholders; ``hash`` replaces each text with its keyed hash (equal texts stay equal).
REDACT_MODES = ("none", "drop", "mask", "hash")
RedactMode = Literal["none", "drop", "mask", "hash"]


@dataclass
class PrivacyCounts:
    """What ``Privacy.apply`` did to a batch; add them up over batches with ``+`` or ``sum``.

    Attributes:
        masked: masked items by kind (``EMAIL``, ``PHONE``, ...), over content, extra and metadata.
        users: session rows whose ``user_id`` became a pseudonym.
        sessions: sessions whose id became a pseudonym.
        id_references: other ids rewritten (``response_session_id``, ids in extra or metadata).
        texts_dropped, chars_dropped: contents emptied by ``drop``, and their total length.
        texts_hashed: contents replaced by their keyed hash.
        metadata_rows_dropped: metadata entries left out; ``metadata_keys_dropped`` by key.

    Example:
        >>> total = PrivacyCounts(masked={"EMAIL": 2}) + PrivacyCounts(masked={"EMAIL": 1}, users=3)
        >>> total.masked, total.users
        ({'EMAIL': 3}, 3)
    """

    masked: dict[str, int] = field(default_factory=dict)
    users: int = 0
    sessions: int = 0
    id_references: int = 0
    texts_dropped: int = 0
    chars_dropped: int = 0
    texts_hashed: int = 0
    metadata_rows_dropped: int = 0
    metadata_keys_dropped: dict[str, int] = field(default_factory=dict)

    def __add__(self, other: PrivacyCounts) -> PrivacyCounts:
        if not isinstance(other, PrivacyCounts):
            return NotImplemented
        return PrivacyCounts(
            masked=dict(Counter(self.masked) + Counter(other.masked)),
            users=self.users + other.users,
            sessions=self.sessions + other.sessions,
            id_references=self.id_references + other.id_references,
            texts_dropped=self.texts_dropped + other.texts_dropped,
            chars_dropped=self.chars_dropped + other.chars_dropped,
            texts_hashed=self.texts_hashed + other.texts_hashed,
            metadata_rows_dropped=self.metadata_rows_dropped + other.metadata_rows_dropped,
            metadata_keys_dropped=dict(Counter(self.metadata_keys_dropped) + Counter(other.metadata_keys_dropped)),
        )

    def __radd__(self, other: object) -> PrivacyCounts:
        if other == 0:  # sum() starts from 0
            return self
        return NotImplemented

    def to_dict(self, *, named: Collection[str] = ()) -> dict[str, Any]:
        """The counts as JSON-ready data, keys sorted, for a dataset's run record.

        Dropped metadata keys are named only when listed in ``named`` (the drop-list, which the
        settings record already holds); the others, dropped for not being in an allow-list, are
        data and may name a person: they are counted together under ``"(others)"``.

        Example:
            >>> counts = PrivacyCounts(masked={"PHONE": 1, "EMAIL": 2}, metadata_keys_dropped={"alice@x.org": 2, "ssn": 1})
            >>> counts.to_dict(named={"ssn"})["metadata_keys_dropped"]
            {'(others)': 2, 'ssn': 1}
        """
        dropped: Counter[str] = Counter()
        for name, n in self.metadata_keys_dropped.items():
            dropped[name if name in named else "(others)"] += n
        return {
            "masked": dict(sorted(self.masked.items())),
            "masked_total": sum(self.masked.values()),
            "users": self.users,
            "sessions": self.sessions,
            "id_references": self.id_references,
            "texts_dropped": self.texts_dropped,
            "chars_dropped": self.chars_dropped,
            "texts_hashed": self.texts_hashed,
            "metadata_rows_dropped": self.metadata_rows_dropped,
            "metadata_keys_dropped": dict(sorted(dropped.items())),
        }


_JSON = msgspec.json.Decoder()


@dataclass(frozen=True)
class Privacy:
    """What to do to a batch of tables before they are written: pseudonyms, redaction, metadata keys.

    Attributes:
        key: the secret key (see ``load_key``); needed for pseudonyms and ``hash``. Never shown
            by ``repr`` or written anywhere; it travels to worker processes only by pickling.
        pseudonymize_users: ``user_id`` becomes ``u_`` + 24 hex digits (HMAC-SHA-256).
        pseudonymize_sessions: session ids become ``s_`` + 24 hex digits in every table,
            in ``response_session_id``, and in extra/metadata values under session-id keys.
        redact: what happens to message and response ``content`` (see ``REDACT_MODES``).
            ``drop`` gives ``""`` (the columns are non-null); lengths survive only in the counts.
        keep_metadata_keys: if set, only these metadata keys are kept (an allow-list).
        drop_metadata_keys: these metadata keys are left out.
        mask_extra: mask the strings, integers and object keys inside ``extra`` JSON and metadata
            (free text such as ``reasoning_records``); ``None``: whenever ``redact`` is not ``none``.

    What is rewritten, and what is not: the ids in the columns named above; in ``extra`` and
    metadata JSON (a metadata value read under its metadata key), any string or integer under a
    key that names an id of a user or a session (``user``, ``user_id``, ``user_ids``,
    ``referrer_user_id``, ``parent_session_id``, ``parentSessionId``, ...), and any string or
    object key equal to the session's own id or its user's id. Ids of other sessions under other
    keys, seed, persona and phase ids, timestamps and ids inside free text are not rewritten.
    Each rule looks at one session only, never at the rest of the batch, so a full export and
    any sequence of incremental ones give the same tables. With masking (``masks_extra``), the
    other strings, integers (cards; phones under a key such as ``phone``) and object keys,
    metadata keys included, and ``sessions.project_id`` are masked, and any value under a
    secret key (``password``, ``api_key``, ``token``, ...) becomes ``<SECRET>``. ``tool_args``
    follows ``redact``: walked like ``extra`` under ``mask`` (ids alone under ``none``),
    replaced by its redacted text under ``drop`` and ``hash``. Empty ids stay empty: they
    identify nobody.

    Example:
        >>> import sessionkit as sk
        >>> s = sk.Session.with_id("alice", "s-1")
        >>> s.add_user_message("write to alice@example.com")
        >>> tables, counts = Privacy(bytes(32), redact="mask").apply(sk.to_tables([s]))
        >>> tables.messages["content"].to_pylist(), counts.masked
        (['write to <EMAIL>'], {'EMAIL': 1})
        >>> tables.sessions["user_id"][0].as_py().startswith("u_")
        True
    """

    key: bytes | None = field(default=None, repr=False)
    pseudonymize_users: bool = True
    pseudonymize_sessions: bool = False
    redact: RedactMode = "none"
    keep_metadata_keys: frozenset[str] | None = None
    drop_metadata_keys: frozenset[str] = frozenset()
    mask_extra: bool | None = None

    def __post_init__(self) -> None:
        if self.redact not in REDACT_MODES:
            msg = f"unknown redaction mode {self.redact!r}. Hint: use one of {', '.join(REDACT_MODES)}"
            raise PrivacyError(msg)
        needs_key = self.pseudonymize_users or self.pseudonymize_sessions or self.redact == "hash"
        if self.key is None:
            if needs_key:
                msg = "pseudonyms and redact='hash' need a key. Hint: create one with `sessionkit keygen KEYFILE` and pass load_key(KEYFILE), or set pseudonymize_users=False"
                raise PrivacyError(msg)
        else:
            object.__setattr__(self, "key", check_key(self.key, "Privacy.key"))
        if self.keep_metadata_keys is not None:
            object.__setattr__(self, "keep_metadata_keys", frozenset(self.keep_metadata_keys))
        object.__setattr__(self, "drop_metadata_keys", frozenset(self.drop_metadata_keys))

    @classmethod
    def from_key_file(cls, path: str | os.PathLike[str], **options: Any) -> Privacy:
        """A ``Privacy`` with the key read from ``path`` (see ``load_key``) and these options.

        Example:
            >>> Privacy.from_key_file("sessionkit.key", redact="mask")  # doctest: +SKIP
        """
        return cls(load_key(path), **options)

    @property
    def fingerprint(self) -> str | None:
        """``key_fingerprint`` of the key, or None without one."""
        return key_fingerprint(self.key) if self.key is not None else None

    @property
    def masks_extra(self) -> bool:
        """Whether strings in ``extra`` and metadata values are masked."""
        return self.redact != "none" if self.mask_extra is None else self.mask_extra

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready data for a run record, with the key's fingerprint (never the key).

        Example:
            >>> Privacy(bytes(32), redact="mask").to_dict()["redact"]
            'mask'
        """
        return {
            "redact": self.redact,
            "pseudonymize_users": self.pseudonymize_users,
            "pseudonymize_sessions": self.pseudonymize_sessions,
            "pseudonym": f"HMAC-SHA-256, prefix + {PSEUDONYM_HEX_DIGITS} hex digits",
            "key_fingerprint": self.fingerprint,
            "mask_extra": self.masks_extra,
            "keep_metadata_keys": sorted(self.keep_metadata_keys) if self.keep_metadata_keys is not None else None,
            "drop_metadata_keys": sorted(self.drop_metadata_keys),
        }

    def run_record(self, counts: PrivacyCounts) -> dict[str, Any]:
        """``to_dict()`` with ``counts.to_dict()`` under ``"counts"``: the ``privacy`` entry of a run record.

        Example:
            >>> Privacy(bytes(32)).run_record(PrivacyCounts(users=2))["counts"]["users"]
            2
        """
        return {**self.to_dict(), "counts": counts.to_dict(named=self.drop_metadata_keys)}

    @property
    def is_noop(self) -> bool:
        """True when ``apply`` would change nothing."""
        return not (
            self.pseudonymize_users
            or self.pseudonymize_sessions
            or self.redact != "none"
            or self.masks_extra
            or self.keep_metadata_keys is not None
            or self.drop_metadata_keys
        )

    def apply(self, tables: SessionTables) -> tuple[SessionTables, PrivacyCounts]:
        """The tables rewritten by these settings, and counts of what changed.

        The result has the declared schemas, so ``to_sessions()`` and writing Parquet work as
        before, and the sessions still write out as valid oxios files.

        Example:
            >>> import sessionkit as sk
            >>> tables = sk.to_tables([sk.Session.with_id("user-1", "s-1")])
            >>> out, counts = Privacy(bytes(32), pseudonymize_sessions=True).apply(tables)
            >>> out.sessions["session_id"][0].as_py()[:2], counts.sessions
            ('s_', 1)
        """
        if not isinstance(tables, SessionTables):
            msg = f"Privacy.apply takes SessionTables, got {type(tables).__name__}. Hint: build them with sk.to_tables"
            raise TypeError(msg)
        return _Apply(self, tables).run()

    def apply_agents(self, tables: Mapping[str, pa.Table]) -> tuple[dict[str, pa.Table], PrivacyCounts]:
        """The agent tables (``agents``, ``agent_tool_calls``) rewritten by these settings.

        ``redact`` covers what holds the user's words or the tools' data: the run's ``name``
        (the user's request), its ``error``, and each tool call's ``input`` and ``output``.
        Session ids (``session_id``, ``linked_session_id``) get the same pseudonyms as in the
        session tables, so the link between a run and its exchange survives; ``extra`` is
        rewritten as the session tables' is.

        Example:
            >>> from sessionkit.tables import agent_tables
            >>> t = agent_tables([({"id": "a-1", "name": "mail bob@example.com", "status": "Completed",
            ...                     "created_at": "2026-08-03T11:02:11Z"}, "a-1.json")])
            >>> out, counts = Privacy(bytes(32), redact="mask").apply_agents(t)
            >>> out["agents"]["name"].to_pylist()
            ['mail <EMAIL>']
        """
        from sessionkit.tables import to_tables

        work = _Apply(self, to_tables([]))
        out = dict(tables)
        if self.is_noop:
            return out, work.counts
        agents, calls = out["agents"], out["agent_tool_calls"]
        changes: dict[str, dict[str, pa.Array]] = {"agents": {}, "agent_tool_calls": {}}
        if self.pseudonymize_sessions:
            for column in ("session_id", "linked_session_id"):
                changes["agents"][column] = work.id_column(agents[column], "session")
            work.counts.id_references += sum(1 for v in agents["session_id"].to_pylist() if v)
        if self.redact != "none":
            changes["agents"]["name"] = work.content_column(agents["name"])
            changes["agents"]["error"] = work.content_column(agents["error"])
            for column in ("input", "output"):
                changes["agent_tool_calls"][column] = work.content_column(calls[column])
        if work.wants_json():  # each run's JSON read for its session: the stored one, else the linked one
            session_of = {
                agent: stored or linked
                for agent, stored, linked in zip(
                    agents["agent_id"].to_pylist(),
                    agents["session_id"].to_pylist(),
                    agents["linked_session_id"].to_pylist(),
                    strict=True,
                )
            }
            for name in changes:
                owners = [session_of.get(agent) for agent in out[name]["agent_id"].to_pylist()]
                changes[name]["extra"] = work.json_column(out[name], "extra", None, owners=owners)
        for name, columns in changes.items():
            if out[name].num_rows:
                out[name] = _with_columns(out[name], columns, name)
        work.counts.masked = dict(work.masked)
        return out, work.counts


_SETTINGS = (
    "redact",
    "pseudonymize_users",
    "pseudonymize_sessions",
    "key_fingerprint",
    "mask_extra",
    "keep_metadata_keys",
    "drop_metadata_keys",
)


def check_same_privacy(previous: Mapping[str, Any] | None, current: Privacy | None, *, dataset: str) -> None:
    """Refuse to add to a dataset rows made under other privacy settings than its earlier runs.

    An incremental export merges sessions by id: with another key, or with pseudonyms on one
    run and off the next, one session would be stored twice, clear and pseudonymised, or under
    two pseudonyms. ``previous`` is the ``privacy`` entry of the dataset's last run record
    (``Privacy.run_record``; None when that run applied none).

    Raises:
        PrivacyError: the settings differ; the message names the first that does.

    Example:
        >>> record = Privacy(bytes(32), redact="mask").run_record(PrivacyCounts())
        >>> check_same_privacy(record, Privacy(bytes(32), redact="mask"), dataset="out")
        >>> check_same_privacy(None, Privacy(bytes(32)), dataset="out")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        sessionkit.exceptions.PrivacyError: out: ... Hint: ...
    """
    before = {k: previous.get(k) for k in _SETTINGS} if previous is not None else None
    now = {k: v for k, v in current.to_dict().items() if k in _SETTINGS} if current is not None else None
    if before == now:
        return
    if before is None or now is None:
        then_, now_ = ("without privacy", "with") if before is None else ("with privacy", "without")
        what = f"its earlier runs were made {then_} settings, and this one is {now_} them"
    else:
        name = next(k for k in _SETTINGS if before.get(k) != now.get(k))
        what = f"{name} was {before.get(name)!r} in its earlier runs and is {now.get(name)!r} now"
    msg = (
        f"{dataset}: {what}; one dataset cannot mix them. "
        "Hint: export into a new folder, or use the same key file and options as before"
    )
    raise PrivacyError(msg)


#: The JSON text columns the walk rewrites, by table: column -> the column naming each cell's
#: key (a metadata value is read under its key, as a value inside JSON is), or None. A new JSON
#: column only needs a line here; a new free-text column, one in ``TEXT_COLUMNS``.
JSON_COLUMNS: dict[str, dict[str, str | None]] = {
    "sessions": {"extra": None},
    "messages": {"extra": None},
    "responses": {"extra": None},
    "tool_calls": {"extra": None},
    "reasoning": {"extra": None},
    "metadata": {"value": "key"},
}
#: The free-text columns ``redact`` treats, by table.
TEXT_COLUMNS: dict[str, tuple[str, ...]] = {
    "messages": ("content",),
    "responses": ("content",),
    "tool_calls": ("output_summary",),
    "reasoning": ("content",),
}
#: Columns holding ids of another kind than their table's ``session_id``: (table, column) -> kind.
ID_COLUMNS: dict[tuple[str, str], Literal["user", "session"]] = {
    ("sessions", "user_id"): "user",
    ("sessions", "parent_session_id"): "session",
    ("responses", "response_session_id"): "session",
}
#: Key names that say their value is an id, after camelCase and dashes become snake_case:
#: ``user``, ``user_id``, ``user_ids``, ``userid``, ``referrer_user_id``, ``parentSessionId``...
_ID_KEY = re.compile(r"(?:^|_)(user|session)(?:_?ids?)?$")
_PHONE_KEY = re.compile(r"(?:^|_)(?:phone|tel|telephone|mobile|cell|fax)(?:_|$)")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
#: Values under a secret key that are left as they are: they hide nothing.
_HIDES_NOTHING: tuple[Any, ...] = (None, "", [], {})


def _snake(key: str) -> str:
    return _CAMEL.sub("_", key).lower().replace("-", "_")


class _Apply:
    """One run of ``Privacy.apply`` over one batch, with its memo of pseudonyms and its counts.

    Every decision is made per session (its own ids) and per key, never from what else is in
    the batch, so a full export and any sequence of incremental ones give the same tables.
    """

    def __init__(self, privacy: Privacy, tables: SessionTables) -> None:
        self.p = privacy
        self.tables = tables
        self.counts = PrivacyCounts()
        self.masked: Counter[str] = Counter()
        self.mask = Masker(self.masked)
        self.memo: dict[tuple[str, str], str] = {}
        self.key_kinds: dict[str, tuple[str | None, bool, bool]] = {}
        sessions = tables.sessions
        # the user of each session, looked up with an owner that may be None (which finds none)
        self.own_user: dict[str | None, str] = dict(
            zip(sessions["session_id"].to_pylist(), sessions["user_id"].to_pylist(), strict=True)
        )

    # -- ids
    def ident(self, value: str, kind: Literal["user", "session"]) -> str:
        if not value:
            return value
        out = self.memo.get((kind, value))
        if out is None:
            assert self.p.key is not None
            out = pseudonym(value, key=self.p.key, kind=kind)
            self.memo[(kind, value)] = out
        return out

    def id_column(self, column: pa.ChunkedArray, kind: Literal["user", "session"]) -> pa.Array:
        values = column.to_pylist()
        return pa.array([None if v is None else self.ident(v, kind) for v in values], pa.string())

    def reference(self, value: str, kind: Literal["user", "session"]) -> str:
        self.counts.id_references += 1
        return self.ident(value, kind)

    def key_kind(self, key: str | None) -> tuple[str | None, bool, bool]:
        """What a JSON key says of its value: an id kind (or None), whether it is a phone, and
        whether it is a secret (``is_secret_name``)."""
        if key is None:
            return None, False, False
        known = self.key_kinds.get(key)
        if known is None:
            name = _snake(key)
            match = _ID_KEY.search(name)
            known = self.key_kinds[key] = (
                match.group(1) if match else None,
                _PHONE_KEY.search(name) is not None,
                is_secret_name(key),
            )
        return known

    # -- JSON
    def rewrite_json(self, text: str | None, key: str | None, owner: str | None, *, masking: bool) -> str | None:
        """Masked strings and rewritten ids inside one cell of JSON text, read under ``key``
        (its metadata key, if any) for the session ``owner``; ``masking``: mask, not only ids."""
        if text is None:
            return None
        value, changed = self.walk(_JSON.decode(text), key, owner, masking=masking)
        return encode_compact(value) if changed else text

    def walk(self, value: Any, key: str | None, owner: str | None, *, masking: bool) -> tuple[Any, bool]:
        """``value`` rewritten (in place where it can be), and whether anything changed.

        Iterative, so no nesting can exhaust the stack. Each item is looked at under the
        nearest object key above it (an array passes its key to its items). With ``masking``,
        a value under a secret key (``is_secret_name``), whatever it holds, becomes
        ``<SECRET>``, unless it hides nothing (null, a boolean, ``""``, ``[]``, ``{}``).
        """
        holder = [value]
        stack: list[tuple[Any, Any, str | None]] = [(holder, 0, key)]
        changed = False
        rename = masking or self.p.pseudonymize_users or self.p.pseudonymize_sessions
        while stack:
            parent, slot, name = stack.pop()
            item = parent[slot]
            kind = type(item)
            if masking and self.key_kind(name)[2] and item not in _HIDES_NOTHING and kind is not bool:
                if item != PLACEHOLDERS["SECRET"]:
                    self.masked["SECRET"] += 1
                    parent[slot] = PLACEHOLDERS["SECRET"]
                    changed = True
                continue
            if kind is str:
                new: int | str = self.rewrite_string(item, name, owner, masking=masking)
            elif kind is int:
                new = self.rewrite_int(item, name, owner, masking=masking)
            elif kind is list:
                stack.extend((item, i, name) for i in range(len(item)))
                continue
            elif kind is dict:
                if rename:
                    renamed = self.rename_keys(item, owner, masking=masking)
                    if isinstance(renamed, _Renamed):  # not the same dict: a key changed
                        parent[slot] = item = renamed
                        changed = True
                        stack.extend((item, new_name, old_name) for new_name, old_name in renamed.origin.items())
                        continue
                stack.extend((item, name_, name_) for name_ in item)
                continue
            else:
                continue
            if new is not item:
                parent[slot] = new
                changed = True
        return holder[0], changed

    def rewrite_string(self, value: str, key: str | None, owner: str | None, *, masking: bool) -> str:
        if not value:
            return value
        p = self.p
        kind, _, _ = self.key_kind(key)
        if p.pseudonymize_sessions and (kind == "session" or value == owner):
            return self.reference(value, "session")
        if p.pseudonymize_users and (kind == "user" or value == self.own_user.get(owner)):
            return self.reference(value, "user")
        if masking:
            masked = self.mask(value)
            return value if masked == value else masked
        return value

    def rewrite_int(self, value: int, key: str | None, owner: str | None, *, masking: bool) -> int | str:
        """A JSON integer: an id under an id key becomes its pseudonym; with masking, a card or
        a phone number (a number under a key such as ``phone``) becomes its placeholder."""
        p = self.p
        kind, phone, _ = self.key_kind(key)
        if kind == "session" and p.pseudonymize_sessions:
            return self.reference(str(value), "session")
        if kind == "user" and p.pseudonymize_users:
            return self.reference(str(value), "user")
        if not masking:
            return value
        text = str(value)
        masked = self.mask(text)
        if masked != text:
            return masked
        if phone and 7 <= len(text.lstrip("-")) <= 15:
            self.masked["PHONE"] += 1
            return PLACEHOLDERS["PHONE"]
        return value

    def rewrite_key(self, key: str, owner: str | None, *, masking: bool) -> str:
        """An object key: the session's own ids become pseudonyms; with masking, masked."""
        p = self.p
        if p.pseudonymize_sessions and key and key == owner:
            return self.reference(key, "session")
        if p.pseudonymize_users and key and key == self.own_user.get(owner):
            return self.reference(key, "user")
        if masking:
            masked = self.mask(key)
            return key if masked == key else masked
        return key

    def rename_keys(self, value: dict, owner: str | None, *, masking: bool) -> dict:
        """``value`` with its keys rewritten (the same dict when none changes); two keys that
        become one are told apart by a suffix, ``<EMAIL>~2``."""
        names = [self.rewrite_key(name, owner, masking=masking) for name in value]
        if all(new is old for new, old in zip(names, value, strict=True)):
            return value
        out = _Renamed()
        for new, (old, item) in zip(_unique(names), value.items(), strict=True):
            out[new] = item
            out.origin[new] = old
        return out

    def json_column(
        self, table: pa.Table, column: str, key_column: str | None, keys: list | None = None, owners: list | None = None
    ) -> pa.Array:
        """A column of JSON text rewritten, each cell under its key and for its session (``owners``,
        by default the table's ``session_id``)."""
        owners = owners if owners is not None else table["session_id"].to_pylist()
        names = keys if keys is not None else table[key_column].to_pylist() if key_column else [None] * table.num_rows
        values = table[column].to_pylist()
        return pa.array(
            [
                self.rewrite_json(v, k, o, masking=self.p.masks_extra)
                for v, k, o in zip(values, names, owners, strict=True)
            ],
            pa.string(),
        )

    def metadata_keys(self, table: pa.Table) -> pa.Array | None:
        """The metadata ``key`` column rewritten, unique within each session; None if unchanged."""
        owners, keys = table["session_id"].to_pylist(), table["key"].to_pylist()
        new = [self.rewrite_key(k, o, masking=self.p.masks_extra) for k, o in zip(keys, owners, strict=True)]
        if all(a is b for a, b in zip(new, keys, strict=True)):
            return None
        used: dict[str | None, set[str]] = {}
        for i, (name, owner) in enumerate(zip(new, owners, strict=True)):
            taken = used.setdefault(owner, set())
            new[i] = _unique_one(name, taken)
        return pa.array(new, pa.string())

    def wants_json(self) -> bool:
        return self.p.pseudonymize_sessions or self.p.pseudonymize_users or self.p.masks_extra

    # -- content
    def content_column(self, column: pa.ChunkedArray) -> pa.Array:
        return pa.array(self.redact_texts(column.to_pylist()), pa.string())

    def redact_texts(self, texts: list[str | None]) -> list[str | None]:
        """Texts as ``--redact`` leaves them (null stays null)."""
        mode = self.p.redact
        present = [t for t in texts if t is not None]
        if mode == "drop":
            self.counts.texts_dropped += len(present)
            self.counts.chars_dropped += sum(len(t) for t in present)
            return [None if t is None else "" for t in texts]
        if mode == "hash":
            self.counts.texts_hashed += len(present)
            key = self.p.key
            assert key is not None
            return [pseudonym(t, key=key, kind="content") if t else t for t in texts]
        return [None if t is None else self.mask(t) for t in texts]

    def args_columns(self, calls: pa.Table) -> tuple[pa.Array, pa.Array] | None:
        """Tool arguments as the settings leave them, with ``tool_args_is_text``; None if unchanged.

        ``mask``: arguments stored as JSON are walked as ``extra`` is (strings, integers and keys
        masked, values under secret keys replaced, ids rewritten) and stay JSON; arguments
        oxios stored as text are masked as text. ``drop`` and ``hash``: replaced by the redacted
        text, which then restores as a JSON string. ``none``: only ids are rewritten.
        """
        values, as_text = calls["tool_args"].to_pylist(), calls["tool_args_is_text"].to_pylist()
        p = self.p
        if p.redact in ("drop", "hash"):
            out = self.redact_texts(values)
            return pa.array(out, pa.string()), pa.array([None if v is None else True for v in out], pa.bool_())
        masking = p.redact == "mask"
        if not (masking or p.pseudonymize_users or p.pseudonymize_sessions):
            return None
        owners = calls["session_id"].to_pylist()
        out = [
            v
            if v is None
            else (self.mask(v) if masking else v)
            if text
            else self.rewrite_json(v, None, owner, masking=masking)
            for v, text, owner in zip(values, as_text, owners, strict=True)
        ]
        return pa.array(out, pa.string()), pa.array(as_text, pa.bool_())

    def segments_column(self, column: pa.ChunkedArray) -> pa.Array:
        """Reasoning segments with their ``text`` redacted."""
        rows = column.to_pylist()
        texts = self.redact_texts([seg["text"] for row in rows if row for seg in row])
        it = iter(texts)
        out = [None if row is None else [{**seg, "text": next(it)} for seg in row] for row in rows]
        return pa.array(out, column.type)

    # -- tables
    def run(self) -> tuple[SessionTables, PrivacyCounts]:
        p = self.p
        if p.is_noop:
            return self.tables, self.counts
        out = {name: table for name, table in self.tables.items()}
        changes: dict[str, dict[str, pa.Array]] = {name: {} for name in out}
        if "metadata" in out:
            metadata, per_session = self.filter_metadata(out["metadata"], out["sessions"])
            if metadata is not out["metadata"]:
                out["metadata"] = metadata
                if per_session is not None:  # a per-session count kept beside the rows
                    changes["sessions"]["n_metadata"] = per_session
        if p.pseudonymize_users:
            self.counts.users += sum(1 for v in out["sessions"]["user_id"].to_pylist() if v)
        if p.pseudonymize_sessions:
            self.counts.sessions += sum(1 for v in out["sessions"]["session_id"].to_pylist() if v)
        for name, table in out.items():
            if p.pseudonymize_sessions and "session_id" in table.schema.names:
                changes[name]["session_id"] = self.id_column(table["session_id"], "session")
        for (name, column), kind in ID_COLUMNS.items():
            wanted = p.pseudonymize_users if kind == "user" else p.pseudonymize_sessions
            if wanted and name in out and column in out[name].schema.names:
                if (name, column) != ("sessions", "user_id"):  # counted as users above
                    self.counts.id_references += sum(1 for v in out[name][column].to_pylist() if v)
                changes[name][column] = self.id_column(out[name][column], kind)
        if p.redact != "none":
            for name, columns in TEXT_COLUMNS.items():
                for column in columns:
                    if name in out and column in out[name].schema.names:
                        changes[name][column] = self.content_column(out[name][column])
            changes["reasoning"]["segments"] = self.segments_column(out["reasoning"]["segments"])
        args = self.args_columns(out["tool_calls"])
        if args is not None:
            changes["tool_calls"]["tool_args"], changes["tool_calls"]["tool_args_is_text"] = args
        if p.masks_extra:  # an oxios project id is a UUID, which masking leaves; anything else is masked
            projects = out["sessions"]["project_id"].to_pylist()
            changes["sessions"]["project_id"] = pa.array(
                [None if v is None else self.mask(v) for v in projects], pa.string()
            )
        if self.wants_json():
            for name, json_columns in JSON_COLUMNS.items():
                for column, key_column in json_columns.items():
                    if name in out and column in out[name].schema.names:
                        changes[name][column] = self.json_column(out[name], column, key_column)
            if "metadata" in out:
                keys = self.metadata_keys(out["metadata"])
                if keys is not None:
                    changes["metadata"]["key"] = keys
        for name, new_columns in changes.items():
            out[name] = _with_columns(out[name], new_columns, name)
        self.counts.masked = dict(self.masked)
        return SessionTables(**out), self.counts

    def filter_metadata(self, table: pa.Table, sessions: pa.Table) -> tuple[pa.Table, pa.Array | None]:
        """The metadata rows kept by the allow- and drop-lists, with ``ord`` renumbered in each
        session, and the sessions' new ``n_metadata`` (None: the table has no such column).

        Rows are told apart by the session row they belong to, not by its id, so a batch
        holding one id twice (a duplicate file, set aside later) stays consistent.
        """
        keep, drop = self.p.keep_metadata_keys, self.p.drop_metadata_keys
        if keep is None and not drop:
            return table, None
        import numpy as np

        keys = table["key"].to_pylist()
        mask = [(keep is None or k in keep) and k not in drop for k in keys]
        dropped = Counter(k for k, kept in zip(keys, mask, strict=True) if not kept)
        if not dropped:
            return table, None
        self.counts.metadata_rows_dropped += sum(dropped.values())
        self.counts.metadata_keys_dropped = dict(Counter(self.counts.metadata_keys_dropped) + dropped)
        has_count = "n_metadata" in sessions.schema.names
        if has_count:  # metadata rows follow their sessions, n_metadata of them each
            counts = sessions["n_metadata"].to_numpy(zero_copy_only=False).astype(np.int64)
            owner = np.repeat(np.arange(sessions.num_rows), counts)
        else:  # runs of one session id
            sids = table["session_id"].to_pylist()
            owner = np.cumsum([i == 0 or sids[i] != sids[i - 1] for i in range(len(sids))]) - 1
        if len(owner) != table.num_rows:
            msg = f"the metadata table has {table.num_rows} rows, its sessions' n_metadata add up to {len(owner)}. Hint: build the tables with sk.to_tables"
            raise PrivacyError(msg)
        kept = np.array(mask, dtype=bool)
        table = table.filter(pa.array(kept))
        owner = owner[kept]
        ords = np.asarray(table["ord"].to_numpy(zero_copy_only=False), dtype=np.int64)
        order = np.lexsort((ords, owner))  # by session row, then old position
        new_ord = np.empty(len(owner), dtype=np.int32)
        starts = np.r_[0, np.flatnonzero(np.diff(owner[order])) + 1] if len(owner) else np.array([], dtype=np.int64)
        rank = np.arange(len(owner)) - np.repeat(starts, np.diff(np.r_[starts, len(owner)]))
        new_ord[order] = rank
        table = _with_columns(table, {"ord": pa.array(new_ord, pa.int32())}, "metadata")
        per_session = pa.array(np.bincount(owner, minlength=sessions.num_rows).astype(np.int32)) if has_count else None
        return table, per_session


class _Renamed(dict):
    """A dict whose keys were rewritten, remembering each new key's original (the walk reads
    values under their original key)."""

    def __init__(self) -> None:
        super().__init__()
        self.origin: dict[str, str] = {}


def _unique(names: list[str]) -> list[str]:
    taken: set[str] = set()
    return [_unique_one(name, taken) for name in names]


def _unique_one(name: str, taken: set[str]) -> str:
    """``name``, or ``name~2``, ``name~3``... if it is taken; marks the result taken."""
    out, n = name, 1
    while out in taken:
        n += 1
        out = f"{name}~{n}"
    taken.add(out)
    return out


def _with_columns(table: pa.Table, columns: dict[str, pa.Array], name: str) -> pa.Table:
    """``table`` with some columns replaced, keeping the declared schema (and its metadata)."""
    if not columns:
        return table
    schema = SCHEMAS[name]
    for column, array in columns.items():
        i = table.schema.get_field_index(column)
        table = table.set_column(i, schema.field(column), array)
    return table.cast(schema) if table.schema.names == schema.names else table


def read_key_list(path: str | os.PathLike[str]) -> frozenset[str]:
    """Metadata key names from a text file: one a line; blank lines and ``#`` comments ignored.

    Raises:
        PrivacyError: the file is missing or unreadable.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "allow.txt"
        >>> _ = path.write_text("# kept\\nchannel\\nproject_id\\n")
        >>> sorted(read_key_list(path))
        ['channel', 'project_id']
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        msg = f"{path}: cannot read the list of metadata keys ({err.strerror or err}). Hint: give a text file with one key a line"
        raise PrivacyError(msg) from None
    except UnicodeDecodeError:
        msg = f"{path}: the list of metadata keys is not UTF-8 text. Hint: give a text file with one key a line"
        raise PrivacyError(msg) from None
    return frozenset(line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))
