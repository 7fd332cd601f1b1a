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
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "AUTOSI_DIGITS",
    "NS_MAX",
    "NS_MIN",
    "RFC3339_PATTERN",
    "Timestamp",
    "autosi_text",
    "time_text",
    "time_texts",
]

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
        return time_text(self.ns)

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


# -- timestamps as text ---------------------------------------------------------------------------
#: chrono's ``SecondsFormat::AutoSi``, the form of every timestamp in oxios' files: the fewest of
#: these fraction digits that give the instant exactly. ``time_text`` (one value) and
#: ``time_texts`` (an Arrow column) both follow this one definition.
AUTOSI_DIGITS = (0, 3, 6, 9)
_AUTOSI_DIVISORS = tuple((digits, 10 ** (9 - digits)) for digits in AUTOSI_DIGITS)
_UNIT_DIGITS = {"s": 0, "ms": 3, "us": 6, "ns": 9}
#: How many fraction digits a text shows: ``auto`` as chrono's AutoSi, ``none`` whole seconds
#: (truncated), ``all`` every digit the value holds (9 for nanoseconds, an Arrow column's unit).
Fraction = Literal["auto", "none", "all"]


def time_text(ns: int, *, fraction: Fraction = "auto", sep: str = "T") -> str:
    """An instant (integer nanoseconds since the epoch) as RFC 3339 text in UTC, ending in ``Z``.

    The default is the form oxios writes (``AUTOSI_DIGITS``); ``sep=" "`` and ``fraction="none"``
    give the report's ``2026-10-28 10:47:42Z``.

    Example:
        >>> time_text(1780507577_743_000_000), time_text(1780507577_743_000_000, fraction="none", sep=" ")
        ('2026-06-03T17:26:17.743Z', '2026-06-03 17:26:17Z')
    """
    seconds, nanos = divmod(ns, _NS_PER_S)
    days, seconds = divmod(seconds, 86400)
    day = date.fromordinal(_EPOCH_ORDINAL + days)
    hour, seconds = divmod(seconds, 3600)
    minute, second = divmod(seconds, 60)
    text = f"{day.year:04d}-{day.month:02d}-{day.day:02d}{sep}{hour:02d}:{minute:02d}:{second:02d}"
    if nanos and fraction == "auto":
        for digits, divisor in _AUTOSI_DIVISORS:
            if nanos % divisor == 0:
                text += f".{nanos // divisor:0{digits}d}"
                break
    elif fraction == "all":
        text += f".{nanos:09d}"
    return text + "Z"


def time_texts(column: pa.Array | pa.ChunkedArray, *, fraction: Fraction = "auto", sep: str = "T") -> pa.Array:
    """A timestamp column as text, all at once in Arrow: ``time_text`` for each value (nulls stay
    null). A column with a time zone is written in UTC, ending in ``Z``; one without (a wall
    clock time) without ``Z``. ``fraction="all"`` gives the digits of the column's unit.

    Example:
        >>> import pyarrow as pa
        >>> time_texts(pa.array([1_500_000_000, None], pa.timestamp("ns", "UTC"))).to_pylist()
        ['1970-01-01T00:00:01.500Z', None]
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    kind = column.type
    zone = ""
    if kind.tz is not None:
        # pc.strftime writes the wall clock of the column's zone; the instant is the same in UTC
        column, zone = column.cast(pa.timestamp(kind.unit, "UTC")), "Z"
    text = pc.strftime(column, format=f"%Y-%m-%d{sep}%H:%M:%S")  # with the unit's fraction digits
    unit = _UNIT_DIGITS[kind.unit]
    if fraction == "none" and unit:
        text = pc.utf8_slice_codeunits(text, 0, 19)
    elif fraction == "auto" and unit:
        # the shortest exact form: cut each group of three zeros at the end, as time_text does
        full = text
        for digits in sorted((d for d in AUTOSI_DIGITS if d < unit), reverse=True):  # fewest digits last, so first
            cut = pc.utf8_slice_codeunits(full, 0, 19 + (digits and digits + 1))
            text = pc.if_else(pc.ends_with(full, "0" * (unit - digits)), cut, text)
    return pc.binary_join_element_wise(text, zone, "") if zone else text


def autosi_text(column: pa.Array | pa.ChunkedArray) -> list[str | None]:
    """A ``timestamp[ns, UTC]`` column as the texts oxios writes (``time_texts``), as a list."""
    return time_texts(column).to_pylist()
