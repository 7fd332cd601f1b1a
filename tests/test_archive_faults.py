"""The archive against a hostile or careless source: stale and duplicate files, races on the
source, names restore cannot write (issue 16)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from sessionkit.archive import errors, export
from sessionkit.model import AgentResponse, Session, Timestamp, UserMessage, encode_session
from sessionkit.storage import read_parquet

_BASE = 1_780_000_000_000_000_000
_DAY = 86_400_000_000_000


def _session(sid: str, version: int, *, day: int = 0) -> Session:
    """A small session created on day ``day`` (0-29), whose updated_at grows with ``version``
    alone."""
    created = _BASE + day * _DAY
    s = Session(
        id=sid,
        user_id=f"user-{len(sid) % 3}",
        created_at=Timestamp(created),
        updated_at=Timestamp(_BASE + 30 * _DAY + version * 1_000_000_007),
    )
    for i in range(1 + version % 3):
        s.user_messages.append(UserMessage(f"{sid} v{version} m{i}", Timestamp(created + i)))
        s.agent_responses.append(AgentResponse(content=f"r{i}", timestamp=Timestamp(created + i + 5)))
    s.metadata = {"version": version}
    return s


def _write(path: Path, session: Session) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(encode_session(session))
    os.replace(tmp, path)  # a new version renamed into place, as oxios writes


def _contents(dataset: Path) -> dict[str, bytes]:
    return {s.id: encode_session(s) for s in read_parquet(dataset).to_sessions()}


def _identity(summary) -> None:
    assert (
        summary.seen == summary.exported + summary.unchanged + summary.quarantined + summary.vanished + summary.ignored
    )


# -- F1: a loser alone in its part no longer sticks the archive --------------------------------------
def test_a_stale_file_alone_in_its_creation_date_lands_in_unchanged(tmp_path: Path) -> None:
    # before the fix: every later run failed with "No such file or directory: '…/.rewrite'"
    src = tmp_path / "sessions"
    src.mkdir()
    _write(src / "a.json", _session("a", 5, day=0))
    _write(src / "b.json", _session("b", 5, day=1))
    export(src, tmp_path / "out", jobs=1)
    _write(src / "b.json", _session("b", 2, day=1))  # the clock went back: an older updated_at
    _write(src / "c.json", _session("c", 1, day=2))
    summary = export(src, tmp_path / "out", jobs=1)
    _identity(summary)
    assert (summary.exported, summary.unchanged, summary.quarantined) == (1, 2, 0)
    assert _contents(tmp_path / "out")["b"] == encode_session(_session("b", 5, day=1))
    again = export(src, tmp_path / "out", jobs=1)
    assert (again.exported, again.unchanged, again.bytes_read) == (0, 3, 0)
    # the emptied part left no files, and no empty date folder, behind
    for table in ("sessions", "messages", "responses", "metadata"):
        folders = [p for p in (tmp_path / "out" / table).iterdir() if p.is_dir()]
        assert all(any(f.iterdir()) for f in folders), table


def test_an_older_duplicate_alone_in_its_creation_date_is_quarantined(tmp_path: Path) -> None:
    src = tmp_path / "sessions"
    src.mkdir()
    _write(src / "a.json", _session("a", 1, day=0))
    _write(src / "a-backup.json", _session("a", 0, day=3))  # an older copy, from another day
    first = export(src, tmp_path / "full", jobs=1)
    _identity(first)
    assert (first.exported, first.quarantined) == (1, 1)
    export(src, tmp_path / "out", jobs=1, files_per_part=1)
    # and added later, to a dataset that holds the session already
    (src / "a-backup.json").unlink()
    export(src, tmp_path / "later", jobs=1)
    _write(src / "a-backup.json", _session("a", 0, day=3))
    summary = export(src, tmp_path / "later", jobs=1)
    _identity(summary)
    assert (summary.unchanged, summary.quarantined) == (1, 1)
    expected = {"a": encode_session(_session("a", 1, day=0))}
    for name in ("full", "out", "later"):
        assert _contents(tmp_path / name) == expected, name
        assert [Path(f).name for f in errors(tmp_path / name)["file"].to_pylist()] == ["a-backup.json"]


# -- F1: any interleaving of stale and duplicate files with add, modify and prune ----------------------
class SourceUnderChange(RuleBasedStateMachine):
    """A source folder that oxios writes and prunes, where files also go back in time (a clock
    set back, a backup restored) and copies of sessions appear under other names; an export
    runs between any two steps.

    Every version written gets a larger ``updated_at``, so the dataset must end up holding, for
    each session, the newest version any export saw, whatever the order of steps.
    """

    def __init__(self) -> None:
        super().__init__()
        self.versions: dict[str, list[Session]] = {}  # every version written of each session
        self.best: dict[str, int] = {}  # the newest version an export saw, by session
        self.copies = 0

    @initialize()
    def folders(self) -> None:
        import tempfile

        self.tmp = Path(tempfile.mkdtemp(prefix="sk-faults-"))
        self.src = self.tmp / "sessions"
        self.src.mkdir()

    def teardown(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _new_version(self, sid: str, *, day: int) -> Session:
        versions = self.versions.setdefault(sid, [])
        session = _session(sid, len(versions) + 1, day=day)
        versions.append(session)
        return session

    @staticmethod
    def _day(k: int) -> int:
        return k % 3  # two of the five sessions share a creation date; the rest are alone in theirs

    @rule(k=st.integers(0, 4))
    def write(self, k: int) -> None:
        """oxios adds a session or writes its new version."""
        sid = f"s{k}"
        _write(self.src / f"{sid}.json", self._new_version(sid, day=self._day(k)))

    @rule(k=st.integers(0, 4))
    def prune(self, k: int) -> None:
        (self.src / f"s{k}.json").unlink(missing_ok=True)

    @precondition(lambda self: any(len(v) > 1 for v in self.versions.values()))
    @rule(data=st.data())
    def go_back(self, data: st.DataObject) -> None:
        """The named file rewritten with an older version: a clock set back, a backup restored."""
        sid = data.draw(st.sampled_from(sorted(s for s, v in self.versions.items() if len(v) > 1)))
        older = data.draw(st.sampled_from(self.versions[sid][:-1]))
        _write(self.src / f"{sid}.json", older)

    @precondition(lambda self: self.versions)
    @rule(data=st.data(), newer=st.booleans(), elsewhere=st.booleans())
    def copy(self, data: st.DataObject, newer: bool, elsewhere: bool) -> None:
        """Another file holding a session: an old version, or a newer one (created on another
        day when ``elsewhere``), under a name that is not the session id."""
        sid = data.draw(st.sampled_from(sorted(self.versions)))
        k = int(sid[1:])
        if newer:
            session = self._new_version(sid, day=self._day(k) + 3 * elsewhere)
        else:
            session = data.draw(st.sampled_from(self.versions[sid]))
        self.copies += 1
        _write(self.src / f"copy-{self.copies}.json", session)

    @precondition(lambda self: self.copies)
    @rule(data=st.data())
    def drop_copy(self, data: st.DataObject) -> None:
        copies = sorted(self.src.glob("copy-*.json"))
        if copies:
            data.draw(st.sampled_from(copies)).unlink()

    @rule(files_per_part=st.sampled_from([1, 2, 64]))
    def export(self, files_per_part: int) -> None:
        for path in self.src.glob("*.json"):
            session = Session.from_json(path.read_bytes())
            version = self.versions[session.id].index(session) + 1
            self.best[session.id] = max(self.best.get(session.id, 0), version)
        summary = export(self.src, self.tmp / "out", jobs=1, files_per_part=files_per_part)
        _identity(summary)
        assert summary.seen == len(list(self.src.glob("*.json")))
        bad = errors(self.tmp / "out")["error_class"].to_pylist()
        assert set(bad) <= {"DuplicateSessionId"}, bad

    @invariant()
    def holds_the_newest_version_seen(self) -> None:
        if not self.best:
            return
        expected = {sid: encode_session(self.versions[sid][v - 1]) for sid, v in self.best.items()}
        assert _contents(self.tmp / "out") == expected


SourceUnderChange.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_any_interleaving_of_stale_and_duplicate_files = SourceUnderChange.TestCase


@pytest.mark.parametrize("jobs", [1, 2])
def test_stale_and_duplicates_across_workers(tmp_path: Path, jobs: int) -> None:
    src = tmp_path / "sessions"
    src.mkdir()
    for k in range(6):
        _write(src / f"s{k}.json", _session(f"s{k}", 3, day=k))
    export(src, tmp_path / "out", jobs=jobs, files_per_part=1)
    for k in range(6):
        _write(src / f"s{k}.json", _session(f"s{k}", 1, day=k))  # all stale
        _write(src / f"dup-{k}.json", _session(f"s{k}", 2, day=k + 10))  # all older duplicates
    summary = export(src, tmp_path / "out", jobs=jobs, files_per_part=1)
    _identity(summary)
    assert (summary.exported, summary.unchanged, summary.quarantined) == (0, 6, 6)
    assert _contents(tmp_path / "out") == {f"s{k}": encode_session(_session(f"s{k}", 3, day=k)) for k in range(6)}
