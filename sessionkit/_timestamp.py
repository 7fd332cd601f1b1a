"""Nanosecond UTC timestamps, parsed and printed exactly as chrono does for oxios.

oxios stores ``chrono::DateTime<Utc>`` values, which serde prints with
``to_rfc3339_opts(SecondsFormat::AutoSi, true)``: RFC 3339 with ``Z`` and 0, 3, 6 or 9
fraction digits, whichever is the shortest exact form. A Python ``datetime`` holds only
microseconds, so sessionkit keeps the integer count of nanoseconds since the Unix epoch
and offers a ``datetime`` view for convenience.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, date, datetime, timedelta

__all__ = ["NS_MAX", "NS_MIN", "RFC3339_PATTERN", "Timestamp"]

_NS_PER_S = 1_000_000_000
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()

# The range of Arrow's timestamp[ns] (a signed 64-bit count of nanoseconds): about
# 1677-09-21 to 2262-04-11. Arrow refuses its very lowest value, so sessionkit does too.
NS_MIN = -(2**63) + 1
NS_MAX = 2**63 - 1

#: The RFC 3339 date-time shapes sessionkit (like chrono) accepts: ``T``, ``t`` or a space
#: between date and time, at most 9 fraction digits, ``Z``/``z`` or a ``±hh:mm`` offset.
RFC3339_PATTERN = (
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))$"
)
_RFC3339 = re.compile(RFC3339_PATTERN)


class Timestamp:
    """A UTC instant with nanosecond precision, printed the way oxios writes it.

    Example:
        >>> ts = Timestamp.parse("2026-06-03T17:26:17.743926847Z")
        >>> ts.ns
        1780507577743926847
        >>> str(ts)
        '2026-06-03T17:26:17.743926847Z'
        >>> ts.to_datetime().microsecond
        743926
    """

    __slots__ = ("ns",)

    ns: int

    def __init__(self, ns: int) -> None:
        if type(ns) is not int:
            msg = f"Timestamp takes an int count of nanoseconds since 1970-01-01, got {type(ns).__name__}"
            raise TypeError(msg)
        if not NS_MIN <= ns <= NS_MAX:
            msg = f"{ns} ns since the epoch is outside the nanosecond range (1677-09-21 to 2262-04-11)"
            raise ValueError(msg)
        object.__setattr__(self, "ns", ns)

    def __setattr__(self, name: str, value: object) -> None:
        msg = "Timestamp is immutable"
        raise AttributeError(msg)

    @classmethod
    def now(cls) -> Timestamp:
        """The current time, to the nanosecond the clock gives (like chrono's ``Utc::now()``)."""
        return cls(time.time_ns())

    @classmethod
    def parse(cls, text: str) -> Timestamp:
        """Parse an RFC 3339 date-time; an offset other than ``Z`` is converted to UTC.

        Raises:
            ValueError: the text is not RFC 3339, names an impossible date or time, has more
                than 9 fraction digits, or lies outside 1677-09-21 .. 2262-04-11.
        """
        match = _RFC3339.match(text) if type(text) is str else None
        if match is None:
            msg = f"{text!r} is not an RFC 3339 date-time such as '2026-06-03T17:26:17.743926847Z'"
            if type(text) is str and re.search(r"\.\d{10,}", text):
                msg = f"{text!r} has more than 9 fraction digits; nanoseconds are the finest unit"
            raise ValueError(msg)
        year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
        try:
            ordinal = date(int(year), int(month), int(day)).toordinal()
        except ValueError as err:
            msg = f"{text!r} names no real date ({err})"
            raise ValueError(msg) from None
        h, m, s = int(hour), int(minute), int(second)
        if h > 23 or m > 59 or s > 59:
            msg = f"{text!r} names no real time of day"
            raise ValueError(msg)
        seconds = (ordinal - _EPOCH_ORDINAL) * 86400 + h * 3600 + m * 60 + s
        if zulu is None:
            oh, om = int(off_h), int(off_m)
            if oh > 23 or om > 59:
                msg = f"{text!r} has an impossible UTC offset"
                raise ValueError(msg)
            offset = oh * 3600 + om * 60
            seconds -= offset if sign == "+" else -offset
        ns = seconds * _NS_PER_S + (int(fraction.ljust(9, "0")) if fraction else 0)
        if not NS_MIN <= ns <= NS_MAX:
            msg = f"{text!r} is outside the nanosecond range (1677-09-21 to 2262-04-11)"
            raise ValueError(msg)
        return cls(ns)

    @classmethod
    def from_datetime(cls, value: datetime) -> Timestamp:
        """The instant of a timezone-aware ``datetime`` (naive ones are refused)."""
        if value.tzinfo is None or value.utcoffset() is None:
            msg = "a naive datetime has no known instant; attach a timezone, e.g. tzinfo=timezone.utc"
            raise ValueError(msg)
        delta = value - datetime(1970, 1, 1, tzinfo=UTC)
        return cls((delta.days * 86400 + delta.seconds) * _NS_PER_S + delta.microseconds * 1000)

    def to_datetime(self) -> datetime:
        """This instant as an aware UTC ``datetime``; nanoseconds beyond the microsecond are cut."""
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=self.ns // 1000)

    def isoformat(self) -> str:
        """RFC 3339 with ``Z`` and 0, 3, 6 or 9 fraction digits, as chrono's ``AutoSi`` prints."""
        seconds, nanos = divmod(self.ns, _NS_PER_S)
        days, seconds = divmod(seconds, 86400)
        day = date.fromordinal(_EPOCH_ORDINAL + days)
        hour, seconds = divmod(seconds, 3600)
        minute, second = divmod(seconds, 60)
        if nanos == 0:
            fraction = ""
        elif nanos % 1_000_000 == 0:
            fraction = f".{nanos // 1_000_000:03d}"
        elif nanos % 1000 == 0:
            fraction = f".{nanos // 1000:06d}"
        else:
            fraction = f".{nanos:09d}"
        return f"{day.year:04d}-{day.month:02d}-{day.day:02d}T{hour:02d}:{minute:02d}:{second:02d}{fraction}Z"

    __str__ = isoformat

    def __repr__(self) -> str:
        return f"Timestamp('{self.isoformat()}')"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Timestamp):
            return self.ns == other.ns
        return NotImplemented

    def __lt__(self, other: Timestamp) -> bool:
        if isinstance(other, Timestamp):
            return self.ns < other.ns
        return NotImplemented

    def __le__(self, other: Timestamp) -> bool:
        if isinstance(other, Timestamp):
            return self.ns <= other.ns
        return NotImplemented

    def __gt__(self, other: Timestamp) -> bool:
        if isinstance(other, Timestamp):
            return self.ns > other.ns
        return NotImplemented

    def __ge__(self, other: Timestamp) -> bool:
        if isinstance(other, Timestamp):
            return self.ns >= other.ns
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.ns)

    def __reduce__(self):
        return (Timestamp, (self.ns,))
