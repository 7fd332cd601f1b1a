"""Reading and writing oxios state directories; every shared fixture file byte for byte."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import FIXTURES, fixture_files

from sessionkit.exceptions import SessionFormatError, SourceNotFoundError
from sessionkit.model import Session
from sessionkit.oxios import (
    find_sessions_dir,
    list_session_files,
    read_session,
    read_sessions,
    session_filename,
    write_sessions,
)


@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_read_then_write_gives_identical_bytes(path: Path) -> None:
    data = path.read_bytes()
    session = Session.from_json(data, source=str(path))
    assert session.to_json().encode() == data


def test_v2_fields_are_kept() -> None:
    sessions = read_sessions(FIXTURES / "oxios-v2")
    assert any("trajectory_steps" in s.extra for s in sessions)
    assert any("trajectory_range" in r.extra for s in sessions for r in s.agent_responses)
    assert all(r.seed_id is None for s in sessions for r in s.agent_responses)


def test_three_ways_to_name_a_source(tmp_path: Path) -> None:
    state = FIXTURES / "oxios-v1"
    by_state = read_sessions(state)
    assert len(by_state) == 300
    assert [s.id for s in read_sessions(state / "sessions")] == [s.id for s in by_state]
    one = fixture_files("oxios-v1")[0]
    assert [s.id for s in read_sessions(one)] == [one.stem]
    assert find_sessions_dir(state) == state / "sessions"


def test_only_json_files_are_sessions(tmp_path: Path) -> None:
    folder = tmp_path / "state" / "sessions"
    folder.mkdir(parents=True)
    src = fixture_files("oxios-v1")[0]
    shutil.copy(src, folder / src.name)
    (folder / "half-written.json.tmp").write_text("{")
    (folder / "notes.txt").write_text("x")
    (folder / "dir.json").mkdir()
    os.symlink(src, folder / "outside.json")  # a link out of the folder: not a session file
    os.symlink(folder / src.name, folder / "link.json")
    files = [p.name for p in list_session_files(tmp_path / "state")]
    assert files == [src.name, "link.json"]


def test_missing_and_wrong_sources(tmp_path: Path) -> None:
    with pytest.raises(SourceNotFoundError, match="no such file"):
        read_sessions(tmp_path / "nope")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.txt").write_text("")
    with pytest.raises(SourceNotFoundError, match="no sessions/ folder"):
        read_sessions(tmp_path / "other")
    empty = tmp_path / "sessions"
    empty.mkdir()
    assert read_sessions(empty) == []


def test_a_bad_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "sessions" / "bad.json"
    bad.parent.mkdir()
    bad.write_text('{"id": 1}')
    with pytest.raises(SessionFormatError, match=r"bad\.json: at \$\.id"):
        read_session(bad)


def test_write_sessions_round_trip_and_refuses_overwrite(tmp_path: Path) -> None:
    sessions = read_sessions(FIXTURES / "oxios-edge")
    assert write_sessions(sessions, tmp_path / "out") == len(sessions)
    for src in fixture_files("oxios-edge"):
        assert (tmp_path / "out" / "sessions" / src.name).read_bytes() == src.read_bytes()
    with pytest.raises(FileExistsError, match="already exists"):
        write_sessions(sessions[:1], tmp_path / "out")
    assert write_sessions(sessions[:1], tmp_path / "out", overwrite=True) == 1


@pytest.mark.parametrize("bad_id", ["../escape", "a/b", "a\\b", "nul\x00"])
def test_unsafe_ids_are_not_file_names(bad_id: str) -> None:
    with pytest.raises(ValueError, match="cannot be a file name"):
        session_filename(bad_id)


def test_ordinary_ids_are_file_names() -> None:
    assert session_filename("043E2034-26C1-4DCF-853B-0B7E53A70784") == "043E2034-26C1-4DCF-853B-0B7E53A70784.json"
