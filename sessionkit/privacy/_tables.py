"""The table transform: ``Privacy.apply`` rewrites a batch of the tables; ``PrivacyCounts`` says what it did."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import msgspec
import pyarrow as pa

from sessionkit.exceptions import PrivacyError
from sessionkit.model import encode_compact
from sessionkit.privacy._keys import PSEUDONYM_HEX_DIGITS, check_key, key_fingerprint, load_key, pseudonym
from sessionkit.privacy._mask import Masker, mask_text
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

    def to_dict(self) -> dict[str, Any]:
        """The counts as JSON-ready data, keys sorted, for a dataset's run record.

        Metadata key names are masked, so a key that held an email cannot leak through here.

        Example:
            >>> PrivacyCounts(masked={"PHONE": 1, "EMAIL": 2}).to_dict()["masked"]
            {'EMAIL': 2, 'PHONE': 1}
        """
        dropped: Counter[str] = Counter()
        for name, n in self.metadata_keys_dropped.items():
            dropped[mask_text(name)] += n
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


def _is_session_key(name: str) -> bool:
    return name == "session_id" or name.endswith("_session_id")


def _is_user_key(name: str) -> bool:
    return name == "user_id" or name.endswith("_user_id")


@dataclass(frozen=True)
class Privacy:
    """What to do to a batch of tables before they are written: pseudonyms, redaction, metadata keys.

    Attributes:
        key: the secret key (see ``load_key``); needed for pseudonyms and ``hash``. Never shown
            by ``repr`` or written anywhere; it travels to worker processes only by pickling.
        pseudonymize_users: ``user_id`` becomes ``u_`` + 24 hex digits (HMAC-SHA-256).
        pseudonymize_sessions: session ids become ``s_`` + 24 hex digits in every table,
            in ``response_session_id``, and in extra/metadata values that are session ids.
        redact: what happens to message and response ``content`` (see ``REDACT_MODES``).
            ``drop`` gives ``""`` (the columns are non-null); lengths survive only in the counts.
        keep_metadata_keys: if set, only these metadata keys are kept (an allow-list).
        drop_metadata_keys: these metadata keys are left out.
        mask_extra: mask the strings inside ``extra`` JSON and metadata values (free text such
            as ``reasoning_records``); ``None`` means: whenever ``redact`` is not ``none``.

    What is rewritten, and what is not: the ids in the columns named above; in ``extra`` and
    metadata JSON, any string under a key named ``user_id``/``*_user_id`` or
    ``session_id``/``*_session_id`` (e.g. ``parent_session_id``, also outside the batch), and
    any string equal to a user or session id of the batch. JSON object keys, numbers, seed,
    persona and phase ids, timestamps and ids inside free text are not rewritten. Empty ids
    stay empty: they identify nobody.

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
        return {**self.to_dict(), "counts": counts.to_dict()}

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
        if work.wants_json():
            for name in changes:
                changes[name]["extra"] = work.json_column(out[name]["extra"])
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


class _Apply:
    """One run of ``Privacy.apply`` over one batch, with its memo of pseudonyms and its counts."""

    def __init__(self, privacy: Privacy, tables: SessionTables) -> None:
        self.p = privacy
        self.tables = tables
        self.counts = PrivacyCounts()
        self.masked: Counter[str] = Counter()
        self.mask = Masker(self.masked)
        self.memo: dict[tuple[str, str], str] = {}
        self.session_ids: frozenset[str] = frozenset(tables.sessions["session_id"].to_pylist())
        self.user_ids: frozenset[str] = frozenset(tables.sessions["user_id"].to_pylist())

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

    # -- JSON
    def rewrite_json(self, text: str | None) -> str | None:
        """Masked strings and rewritten id references inside one cell of JSON text."""
        if text is None:
            return None
        changed = [False]
        value = self.walk(_JSON.decode(text), None, changed)
        return encode_compact(value) if changed[0] else text

    def walk(self, value: Any, key: str | None, changed: list[bool]) -> Any:
        kind = type(value)
        if kind is str:
            new = self.rewrite_string(value, key)
            if new != value:
                changed[0] = True
            return new
        if kind is dict:
            return {k: self.walk(v, k, changed) for k, v in value.items()}
        if kind is list:
            return [self.walk(v, key, changed) for v in value]
        return value

    def rewrite_string(self, value: str, key: str | None) -> str:
        p = self.p
        if (
            p.pseudonymize_sessions
            and value
            and (value in self.session_ids or (key is not None and _is_session_key(key)))
        ):
            self.counts.id_references += 1
            return self.ident(value, "session")
        if p.pseudonymize_users and value and (value in self.user_ids or (key is not None and _is_user_key(key))):
            self.counts.id_references += 1
            return self.ident(value, "user")
        return self.mask(value) if p.masks_extra else value

    def json_column(self, column: pa.ChunkedArray) -> pa.Array:
        return pa.array([self.rewrite_json(v) for v in column.to_pylist()], pa.string())

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

    def args_columns(self, args: pa.ChunkedArray, as_text: pa.ChunkedArray) -> tuple[pa.Array, pa.Array]:
        """Tool arguments redacted: masked inside their JSON values (``mask``), else replaced by
        the redacted text, which then restores as a JSON string."""
        values, kinds = args.to_pylist(), as_text.to_pylist()
        if self.p.redact == "mask":
            out = [
                self.mask(v) if kind or v is None else encode_compact(_mask_json(_JSON.decode(v), self.mask))
                for v, kind in zip(values, kinds, strict=True)
            ]
            return pa.array(out, pa.string()), pa.array(kinds, pa.bool_())
        out = self.redact_texts(values)
        return pa.array(out, pa.string()), pa.array([None if v is None else True for v in out], pa.bool_())

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
        metadata = self.filter_metadata(out["metadata"])
        changes: dict[str, dict[str, pa.Array]] = {name: {} for name in out}
        if metadata is not out["metadata"]:
            out["metadata"] = metadata
            if "n_metadata" in out["sessions"].schema.names:  # a per-session count kept beside the rows
                per_session = Counter(metadata["session_id"].to_pylist())
                sids = out["sessions"]["session_id"].to_pylist()
                changes["sessions"]["n_metadata"] = pa.array([per_session[sid] for sid in sids], pa.int32())
        if p.pseudonymize_users:
            changes["sessions"]["user_id"] = self.id_column(out["sessions"]["user_id"], "user")
            self.counts.users += sum(1 for v in out["sessions"]["user_id"].to_pylist() if v)
        if p.pseudonymize_sessions:
            for name in out:
                changes[name]["session_id"] = self.id_column(out[name]["session_id"], "session")
            self.counts.sessions += sum(1 for v in out["sessions"]["session_id"].to_pylist() if v)
            rsid = out["responses"]["response_session_id"]
            self.counts.id_references += sum(1 for v in rsid.to_pylist() if v)
            changes["responses"]["response_session_id"] = self.id_column(rsid, "session")
            parent = out["sessions"]["parent_session_id"]
            self.counts.id_references += sum(1 for v in parent.to_pylist() if v)
            changes["sessions"]["parent_session_id"] = self.id_column(parent, "session")
        if p.redact != "none":
            for name in ("messages", "responses"):
                changes[name]["content"] = self.content_column(out[name]["content"])
            calls = out["tool_calls"]
            changes["tool_calls"]["output_summary"] = self.content_column(calls["output_summary"])
            args, as_text = self.args_columns(calls["tool_args"], calls["tool_args_is_text"])
            changes["tool_calls"]["tool_args"], changes["tool_calls"]["tool_args_is_text"] = args, as_text
            changes["reasoning"]["content"] = self.content_column(out["reasoning"]["content"])
            changes["reasoning"]["segments"] = self.segments_column(out["reasoning"]["segments"])
        if self.wants_json():
            for name in ("sessions", "messages", "responses", "tool_calls", "reasoning"):
                changes[name]["extra"] = self.json_column(out[name]["extra"])
            changes["metadata"]["value"] = self.json_column(out["metadata"]["value"])
        for name, columns in changes.items():
            out[name] = _with_columns(out[name], columns, name)
        self.counts.masked = dict(self.masked)
        return SessionTables(**out), self.counts

    def filter_metadata(self, table: pa.Table) -> pa.Table:
        keep, drop = self.p.keep_metadata_keys, self.p.drop_metadata_keys
        if keep is None and not drop:
            return table
        keys = table["key"].to_pylist()
        mask = [(keep is None or k in keep) and k not in drop for k in keys]
        dropped = Counter(k for k, kept in zip(keys, mask, strict=True) if not kept)
        if not dropped:
            return table
        self.counts.metadata_rows_dropped += sum(dropped.values())
        self.counts.metadata_keys_dropped = dict(Counter(self.counts.metadata_keys_dropped) + dropped)
        table = table.filter(pa.array(mask, pa.bool_()))
        # ``ord`` numbers each session's keys 0, 1, 2, ... in file order: renumber what is left.
        sids = table["session_id"].to_pylist()
        ords = table["ord"].to_pylist()
        order = sorted(range(len(sids)), key=lambda i: (sids[i], ords[i]))
        new_ord = [0] * len(sids)
        last, n = None, 0
        for i in order:
            n = n + 1 if sids[i] == last else 0
            last = sids[i]
            new_ord[i] = n
        return _with_columns(table, {"ord": pa.array(new_ord, pa.int32())}, "metadata")


def _mask_json(value: Any, mask: Any) -> Any:
    """Every string value of a JSON value masked (object keys are kept, as in ``extra``)."""
    kind = type(value)
    if kind is str:
        return mask(value)
    if kind is dict:
        return {k: _mask_json(v, mask) for k, v in value.items()}
    if kind is list:
        return [_mask_json(v, mask) for v in value]
    return value


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
