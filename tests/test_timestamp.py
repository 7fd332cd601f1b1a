"""Nanosecond timestamps: parsing and printing as chrono does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionkit._timestamp import NS_MAX, NS_MIN, Timestamp
from sessionkit.exceptions import SessionFormatError
from sessionkit.tables import TableBuilder


@pytest.mark.parametrize(
    ("text", "printed"),
    [
        ("2026-06-03T17:26:17.743926847Z", "2026-06-03T17:26:17.743926847Z"),
        ("2026-06-03T17:26:17.743926Z", "2026-06-03T17:26:17.743926Z"),
        ("2026-06-03T17:26:17.743Z", "2026-06-03T17:26:17.743Z"),
        ("2026-06-03T17:26:17Z", "2026-06-03T17:26:17Z"),
        # chrono's AutoSi picks the shortest of 0, 3, 6, 9 digits that is exact
        ("2026-06-03T17:26:17.7Z", "2026-06-03T17:26:17.700Z"),
        ("2026-06-03T17:26:17.000000Z", "2026-06-03T17:26:17Z"),
        ("2026-06-03T17:26:17.000001Z", "2026-06-03T17:26:17.000001Z"),
        ("2026-06-03T17:26:17.100000001Z", "2026-06-03T17:26:17.100000001Z"),
        # offsets are converted to UTC, as chrono does for DateTime<Utc>
        ("2026-06-03T19:26:17.5+02:00", "2026-06-03T17:26:17.500Z"),
        ("2026-06-03T00:10:00-05:30", "2026-06-03T05:40:00Z"),
        ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z"),
        ("1969-12-31T23:59:59.999999999Z", "1969-12-31T23:59:59.999999999Z"),
        ("2026-06-03t17:26:17z", "2026-06-03T17:26:17Z"),
        ("2026-06-03 17:26:17Z", "2026-06-03T17:26:17Z"),
    ],
)
def test_parse_and_print_like_chrono(text: str, printed: str) -> None:
    assert str(Timestamp.parse(text)) == printed


def test_nanoseconds_are_exact() -> None:
    ts = Timestamp.parse("2026-06-03T17:26:17.743926847Z")
    assert ts.ns == 1780507577743926847
    assert ts.to_datetime() == datetime(2026, 6, 3, 17, 26, 17, 743926, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("2026-06-03T17:26:17", "not an RFC 3339"),
        ("2026-06-03", "not an RFC 3339"),
        ("yesterday", "not an RFC 3339"),
        ("2026-02-30T00:00:00Z", "no real date"),
        ("2026-06-03T24:00:00Z", "no real time"),
        ("2026-06-03T23:59:60Z", "no real time"),
        ("2026-06-03T17:26:17.1234567891Z", "more than 9 fraction digits"),
        ("1500-01-01T00:00:00Z", "outside the nanosecond range"),
        ("2300-01-01T00:00:00Z", "outside the nanosecond range"),
        ("2026-06-03T17:26:17+25:00", "impossible UTC offset"),
    ],
)
def test_parse_refuses(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        Timestamp.parse(text)


def test_datetime_views() -> None:
    dt = datetime(2026, 6, 3, 19, 26, 17, 123456, tzinfo=timezone(timedelta(hours=2)))
    ts = Timestamp.from_datetime(dt)
    assert str(ts) == "2026-06-03T17:26:17.123456Z"
    assert ts.to_datetime() == dt
    with pytest.raises(ValueError, match="naive"):
        Timestamp.from_datetime(datetime(2026, 1, 1))


def test_ordering_hash_and_immutability() -> None:
    a, b = Timestamp(1), Timestamp(2)
    assert a < b <= b and b > a >= a and a != b and a == Timestamp(1)
    assert len({a, Timestamp(1), b}) == 2
    with pytest.raises(AttributeError):
        a.ns = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        Timestamp(1.5)
    with pytest.raises(ValueError):
        Timestamp(2**63)


def test_now_is_nanosecond_and_utc() -> None:
    before = datetime.now(UTC)
    now = Timestamp.now()
    assert abs(now.to_datetime() - before) < timedelta(seconds=5)


nanoseconds = st.integers(min_value=NS_MIN, max_value=NS_MAX)


@given(nanoseconds)
def test_print_then_parse_is_identity(ns: int) -> None:
    assert Timestamp.parse(Timestamp(ns).isoformat()).ns == ns


@given(nanoseconds, st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59))
def test_offsets_are_converted(ns: int, offset_minutes: int) -> None:
    ns = max(NS_MIN + 86400 * 10**9, min(NS_MAX - 86400 * 10**9, ns))
    seconds, nanos = divmod(ns, 10**9)
    local = datetime(1970, 1, 1) + timedelta(seconds=seconds + offset_minutes * 60)
    sign = "+" if offset_minutes >= 0 else "-"
    hh, mm = divmod(abs(offset_minutes), 60)
    text = f"{local:%Y-%m-%dT%H:%M:%S}.{nanos:09d}{sign}{hh:02d}:{mm:02d}"
    assert Timestamp.parse(text).ns == ns


@settings(deadline=None)  # the first call imports what pyarrow needs
@given(st.lists(nanoseconds, min_size=1, max_size=20))
def test_arrow_and_python_parsers_agree(values: list[int]) -> None:
    """The exporter parses timestamps in Arrow; it must agree with the model to the nanosecond."""
    builder = TableBuilder()
    builder.sources.append("x.json")
    texts = [Timestamp(ns).isoformat() for ns in values]
    parsed = builder._times(texts, lambda i: (0, "$.t"))
    assert parsed.type == pa.timestamp("ns", tz="UTC")
    assert parsed.cast(pa.int64()).to_pylist() == values


def test_arrow_path_reports_the_json_path_of_a_bad_timestamp() -> None:
    builder = TableBuilder()
    builder.sources.append("s.json")
    with pytest.raises(SessionFormatError) as info:
        builder._times(
            ["2026-06-03T17:26:17Z", "2026-02-30T00:00:00Z"], lambda i: (0, f"$.user_messages[{i}].timestamp")
        )
    assert info.value.source == "s.json"
    assert info.value.path == "$.user_messages[1].timestamp"
    assert "no real date" in str(info.value)


# -- one way to write a timestamp as text --------------------------------------------------------
_ROUND = st.sampled_from([1, 10**3, 10**6, 10**9, 7])  # values with 9, 6, 3, 0 and 9 fraction digits
_INSTANTS = st.integers(min_value=NS_MIN + 10**9, max_value=NS_MAX)


@settings(deadline=None)
@given(st.lists(st.tuples(_INSTANTS, _ROUND), min_size=1, max_size=20), st.sampled_from(["auto", "none", "all"]))
def test_one_definition_of_the_text_for_values_and_columns(values: list[tuple[int, int]], fraction: str) -> None:
    from sessionkit._timestamp import AUTOSI_DIGITS, time_text, time_texts

    ns = [value - value % step for value, step in values]
    for sep in ("T", " "):
        column = pa.array([*ns, None], pa.timestamp("ns", "UTC"))
        texts = [time_text(n, fraction=fraction, sep=sep) for n in ns]
        assert time_texts(column, fraction=fraction, sep=sep).to_pylist() == [*texts, None]
    if fraction == "auto":  # chrono's AutoSi, as the files hold it: exact, 0, 3, 6 or 9 digits
        for n in ns:
            text = time_text(n)
            digits = len(text) - 21 if "." in text else 0
            assert Timestamp.parse(text).ns == n and digits in AUTOSI_DIGITS
            assert digits == 0 or text[-4:-1] != "000"
    if fraction == "none":  # the report's form, to the second (truncated)
        old = [str(Timestamp(n - n % 10**9)).replace("T", " ") for n in ns]
        assert [time_text(n, fraction="none", sep=" ") for n in ns] == old


@given(st.lists(nanoseconds, min_size=1, max_size=20), st.sampled_from(["s", "ms", "us", "ns"]))
def test_the_terminal_shows_every_digit_of_the_unit_as_before(values: list[int], unit: str) -> None:
    import pyarrow.compute as pc

    from sessionkit._terminal import printable

    scale = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}[unit]
    for tz in ("UTC", "Pacific/Kiritimati", None):
        column = pa.array([v // scale for v in values], pa.int64()).cast(pa.timestamp(unit, tz))
        shown = printable(pa.table({"t": column})).column("t").to_pylist()
        if tz:  # what the terminal printed before the one helper
            before = pc.strftime(column.cast(pa.timestamp(unit, "UTC")), format="%Y-%m-%dT%H:%M:%SZ")
        else:
            before = pc.strftime(column, format="%Y-%m-%dT%H:%M:%S")
        assert shown == before.to_pylist()


@given(st.datetimes(min_value=datetime(1700, 1, 1), max_value=datetime(2200, 1, 1)))
def test_the_report_stamps_to_the_second_as_before(value: datetime) -> None:
    from sessionkit.report._blocks import stamp

    before = value.strftime("%Y-%m-%d %H:%M:%SZ")
    assert stamp(value) == before  # naive: UTC
    assert stamp(value.replace(tzinfo=UTC)) == before
    assert stamp(value.replace(tzinfo=UTC).astimezone(timezone(timedelta(hours=5)))) == before  # shown in UTC
