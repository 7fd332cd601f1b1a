"""One exception hierarchy for sessionkit.

Every class also inherits the builtin it resembles, so ``except ValueError`` keeps
working for callers who do not know sessionkit. Messages say what was wrong, where,
and end with a ``Hint:`` on what to do.
"""

from __future__ import annotations

__all__ = [
    "DatasetError",
    "DatasetExistsError",
    "DatasetLockedError",
    "PrivacyError",
    "SessionFormatError",
    "SessionkitError",
    "SessionkitWarning",
    "SourceNotFoundError",
]


class SessionkitError(Exception):
    """Base class of every error sessionkit raises on purpose."""


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
        self.hint = hint
        where = source
        if path is not None:
            where += f": at {path}"
        elif offset is not None:
            where += f": at byte {offset}"
        message = f"{where}: {reason}"
        if hint:
            message += f". Hint: {hint}"
        super().__init__(message)

    def __reduce__(self):  # keep the keyword attributes across pickling (worker processes)
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


class SessionkitWarning(UserWarning):
    """Something worked, but not quite as asked: e.g. a restore that skipped sessions, or
    whose files are not the original ones. The command line prints these as ``warning: ...``."""
