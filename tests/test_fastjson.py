"""The export's fast path gives exactly the rows of the general path, and takes only what it can."""

from __future__ import annotations

import json

import pytest
from conftest import FIXTURE_NAMES, fixture_files
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import sessions as session_strategy

from sessionkit import _fastjson
from sessionkit._fastjson import fast_tables
from sessionkit.model import Session, decode_json, encode_session
from sessionkit.tables import TABLE_NAMES, SessionTables, TableBuilder


def _general(datas: list[bytes]) -> SessionTables:
    builder = TableBuilder()
    for i, data in enumerate(datas):
        builder.add_raw(decode_json(data), f"f{i}", data)
    return builder.finish()


def _same(a: SessionTables, b: SessionTables) -> None:
    for name in TABLE_NAMES:
        assert a[name].equals(b[name]), name


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixture_files_give_the_same_rows_on_both_paths(name: str) -> None:
    datas = [p.read_bytes() for p in fixture_files(name)]
    result = fast_tables(datas)
    assert result is not None
    tables, taken, _ = result
    _same(tables, _general([d for d, t in zip(datas, taken, strict=True) if t]))
    if name == "oxios-v1":
        assert all(taken)  # the documented shape always takes the fast path
    if name == "oxios-v2":
        assert sum(taken) <= 1  # newer fields: the general path keeps them


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_files_of_todays_oxios_skip_arrows_parse_and_lose_nothing_by_it(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    datas = [p.read_bytes() for p in fixture_files(name)]
    skipped = [_fastjson._may_qualify(data) is None for data in datas]
    with_filter = fast_tables(datas)
    monkeypatch.setattr(
        _fastjson,
        "_may_qualify",
        lambda data: _fastjson._KEY.findall(data) if data.startswith(_fastjson._START) else None,
    )
    without = fast_tables(datas)
    assert (with_filter and with_filter[1]) == (without and without[1])  # the same files take the fast path
    if name == "oxios-v2":
        assert sum(skipped) >= len(datas) - 1  # today's files: not parsed twice
    else:
        assert not any(skipped)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(session_strategy(), min_size=1, max_size=5))
def test_hostile_sessions_give_the_same_rows_on_both_paths(sessions: list[Session]) -> None:
    datas = [encode_session(s) for s in sessions]
    result = fast_tables(datas)
    if result is None:
        return
    tables, taken, _ = result
    _same(tables, _general([d for d, t in zip(datas, taken, strict=True) if t]))


def _depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(session_strategy(), min_size=1, max_size=5))
def test_sessions_in_oxios_own_layout_take_the_fast_path(sessions: list[Session]) -> None:
    for s in sessions:  # the layout serde writes: no extra fields, the fields in struct order
        s.extra, s.field_order = {}, None
        for record in (*s.user_messages, *s.agent_responses):
            record.extra, record.field_order = {}, None
    sessions = [s for s in sessions if _depth(s.metadata) < 20]
    datas = [encode_session(s) for s in sessions]
    if not datas:
        return
    result = fast_tables(datas)
    assert result is not None
    tables, taken, _ = result
    assert all(taken)  # escaped keys, astral text, any nanosecond: all of it
    _same(tables, _general(datas))


BASE = json.loads(fixture_files("oxios-v1")[0].read_text())


def _variant(change) -> bytes:
    data = json.loads(json.dumps(BASE))
    change(data)
    return json.dumps(data, indent=2, ensure_ascii=False).encode()


def _reordered(d: dict) -> None:
    items = list(d.items())
    d.clear()
    d.update(items[::-1])


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.__setitem__("active_seed_id", None),  # an explicit null serde would leave out
        lambda d: d["agent_responses"][0].pop("seed_id"),  # a missing field, as newer oxios writes
        lambda d: d["agent_responses"][0].__setitem__("trajectory_range", [0, 3]),  # a newer field
        lambda d: d.__setitem__("project_id", "p-1"),  # a newer top-level field
        _reordered,  # another key order
        lambda d: _reordered(d["user_messages"][0]),
    ],
    ids=["explicit-null", "missing-field", "extra-field", "extra-top-field", "top-order", "message-order"],
)
def test_what_the_columns_would_lose_goes_the_general_way(change) -> None:
    datas = [fixture_files("oxios-v1")[1].read_bytes(), _variant(change)]
    tables, taken, _ = fast_tables(datas)
    assert taken == [True, False]
    _same(tables, _general(datas[:1]))


def test_a_repeated_key_goes_the_general_way_and_is_refused_there() -> None:
    text = fixture_files("oxios-v1")[0].read_text()
    repeated = text.replace('"content": ', '"content": "first",\n      "content": ', 1).encode()
    result = fast_tables([repeated])
    assert result is None or result[1] == [False]
    with pytest.raises(Exception, match="appears twice"):
        TableBuilder().add_raw(decode_json(repeated), "r.json", repeated)


def test_a_batch_arrow_refuses_is_left_whole_to_the_general_path() -> None:
    good = fixture_files("oxios-v1")[0].read_bytes()
    assert fast_tables([good, good[:-1]]) is None  # the closing brace missing: not JSON
    truncated = fast_tables([good, good[:100]])  # cut before its keys: not even offered to Arrow
    assert truncated is not None and truncated.taken == [True, False]
    assert fast_tables([good.replace(b'"user_id": "', b'"user_id": 5, "x": "', 1)]) is None
