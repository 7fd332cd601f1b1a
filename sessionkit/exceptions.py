"""One exception hierarchy for sessionkit.

Every class also inherits the builtin it resembles, so ``except ValueError`` keeps
working for callers who do not know sessionkit. Messages say what was wrong and where;
what to do is the error's ``hint``, which the message ends with as ``Hint: ...``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sessionkit.archive import ExportSummary

__all__ = [
    "DatasetError",
    "DatasetExistsError",
    "DatasetLockedError",
    "ExportError",
    "MissingDependencyError",
    "PrivacyError",
    "SessionFormatError",
    "SessionkitError",
    "SessionkitWarning",
    "SourceNotFoundError",
    "SparkResultError",
    "TargetExistsError",
]

_HINT = "Hint: "


def with_hint(message: str, hint: str | None) -> str:
    """``message`` followed by ``hint`` as sessionkit writes it: ``... Hint: ...``, on a line of
    its own after a message of several lines."""
    if not hint:
        return message
    sep = "\n" if "\n" in message else ". "
    return f"{message}{sep}{_HINT}{hint}"


def _split_hint(text: str) -> tuple[str, str | None]:
    """``text`` as (message, hint), the inverse of ``with_hint``; (text, None) for text it did not write."""
    at = text.find(_HINT)
    while at > 0:
        for sep in ("\n", ". "):
            if text[at - len(sep) : at] == sep:
                message, hint = text[: at - len(sep)], text[at + len(_HINT) :]
                if with_hint(message, hint) == text:
                    return message, hint
        at = text.find(_HINT, at + 1)
    return text, None


class SessionkitError(Exception):
    """Base class of every error sessionkit raises on purpose.

    Attributes:
        message: what was wrong and where, without the hint.
        hint: what to do about it, or ``None``. Given as ``hint=``, or else read from a
            message that ends with ``Hint: ...``; ``str(err)`` is the message with the hint.
    """

    message: str
    hint: str | None

    def __init__(self, message: str = "", *, hint: str | None = None) -> None:
        if hint is None:
            message, hint = _split_hint(message)
        self.message = message
        self.hint = hint
        super().__init__(with_hint(message, hint))


class SessionFormatError(SessionkitError, ValueError):
    """A session file (or JSON text) is not a valid oxios session.

    Attributes:
        source: the file (or ``"<text>"``) that was being read.
        path: the JSON path of the offending value, e.g. ``$.user_messages[2].timestamp``,
            or ``None`` when the text is not JSON at all.
        offset: the byte offset of a JSON syntax error, when known.
        reason: the bare description, without source and path.
    """

    def __init__(
        self,
        reason: str,
        *,
        source: str = "<text>",
        path: str | None = None,
        offset: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.reason = reason
        self.source = source
        self.path = path
        self.offset = offset
        where = source
        if path is not None:
            where += f": at {path}"
        elif offset is not None:
            where += f": at byte {offset}"
        super().__init__(f"{where}: {reason}", hint=hint or None)

    def __reduce__(self) -> tuple[Any, ...]:  # keep the keyword attributes across pickling (worker processes)
        return (
            _rebuild_format_error,
            (self.reason, self.source, self.path, self.offset, self.hint),
        )


def _rebuild_format_error(
    reason: str, source: str, path: str | None, offset: int | None, hint: str | None
) -> SessionFormatError:
    return SessionFormatError(reason, source=source, path=path, offset=offset, hint=hint)


class SourceNotFoundError(SessionkitError, FileNotFoundError):
    """A path given as a source of sessions or as a dataset does not exist."""


class DatasetError(SessionkitError, ValueError):
    """A Parquet dataset is missing, incomplete or not a sessionkit dataset."""


class DatasetExistsError(DatasetError, FileExistsError):
    """An export was pointed at a folder that already holds other files."""


class DatasetLockedError(DatasetError, BlockingIOError):
    """Another export is writing the same dataset right now."""


class PrivacyError(SessionkitError, ValueError):
    """A key file, a privacy option or a SQL lock-down is missing or wrong.

    Messages name the file or option and never quote key material.
    """


class ExportError(SessionkitError, ValueError):
    """Some source files could not be read as sessions or agent records (raised by ``strict`` exports).

    Attributes:
        errors: one row per bad file, as in the ``errors`` table.
        total: how many files the export read.
        summary: what the export did, when it got as far as publishing.
    """

    summary: ExportSummary | None = None

    def __init__(self, errors: Sequence[dict[str, Any]], total: int, *, published: bool = True) -> None:
        self.errors = list(errors)
        self.total = total
        self.published = published
        shown = "\n".join(f"  {err['file']}: {err['message']}" for err in self.errors[:10])
        more = f"\n  ... and {len(self.errors) - 10} more" if len(self.errors) > 10 else ""
        done = "the good files were exported and the bad ones quarantined" if published else "nothing was written"
        super().__init__(
            f"{len(self.errors)} of {total} files are not valid oxios sessions or agent records; {done}:\n{shown}{more}",
            hint="`sessionkit errors OUT` lists them; fix or remove them, then export again",
        )

    def __reduce__(self) -> tuple[Any, ...]:
        state = {"summary": self.summary} if self.summary is not None else None
        return (_rebuild_export_error, (self.errors, self.total, self.published), state)


def _rebuild_export_error(errors: list[dict[str, Any]], total: int, published: bool) -> ExportError:
    return ExportError(errors, total, published=published)


class TargetExistsError(SessionkitError, FileExistsError):
    """A file that ``restore`` (or ``write_sessions``) would write is already there and may not be
    replaced: pass ``overwrite=True`` (``--overwrite``), or it is not a regular file at all."""


class MissingDependencyError(SessionkitError, ModuleNotFoundError):
    """An optional dependency is not installed (or too old); the hint is the ``pip install``
    that brings it. ``name`` is the missing module, as on any ``ImportError``."""

    def __init__(self, message: str = "", *, name: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.name = name


class SparkResultError(SessionkitError, RuntimeError):
    """Spark's result of a helper's SQL does not have the columns or types DuckDB gives: the
    transpiled query went wrong, so it is refused rather than returned different."""


class SessionkitWarning(UserWarning):
    """Something worked, but not quite as asked: e.g. a restore that skipped sessions, or
    whose files are not the original ones. The command line prints these as ``warning: ...``."""
