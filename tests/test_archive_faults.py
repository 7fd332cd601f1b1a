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


# -- F10: what the listing meets -----------------------------------------------------------------------
def test_symlink_loops_and_dangling_links_are_ignored(tmp_path: Path) -> None:
    # before: a loop made every export fail with "[Errno 40] Too many levels of symbolic links"
    src = tmp_path / "sessions"
    src.mkdir()
    _write(src / "s.json", _session("s", 1))
    os.symlink("self.json", src / "self.json")
    os.symlink("ping.json", src / "pong.json")
    os.symlink("pong.json", src / "ping.json")
    os.symlink("gone.json", src / "dangling.json")
    summary = export(src, tmp_path / "out", jobs=1)
    _identity(summary)
    assert (summary.seen, summary.exported, summary.ignored) == (5, 1, 4)


# -- F11: what a file can turn into between listing and reading ----------------------------------------
_SWAP_AFTER_LISTING = """
import json, os, sys
from pathlib import Path

import sessionkit.archive._export as _export
from sessionkit.archive import export

src, out, kind, outside = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]
list_source = _export.list_source


def list_then_swap(source):
    listing = list_source(source)
    (src / "b.json").unlink()
    if kind == "fifo":
        os.mkfifo(src / "b.json")
    else:
        os.symlink("/dev/zero" if kind == "device" else outside, src / "b.json")
    return listing


_export.list_source = list_then_swap
summary = export(src, out, jobs=1)
print(json.dumps({k: getattr(summary, k) for k in ("seen", "exported", "quarantined", "vanished", "ignored")}))
"""


def _limited() -> None:
    """A child's address space capped at 2 GB: a runaway read fails fast instead of eating the machine."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


@pytest.mark.parametrize("kind", ["fifo", "device", "outside"])
def test_a_file_swapped_after_listing_is_vanished_not_read(tmp_path: Path, kind: str) -> None:
    # before: a FIFO hung the export for good, /dev/zero grew memory without bound, and a
    # link out of the folder had that file's bytes copied into quarantine/
    import json
    import subprocess
    import sys

    src = tmp_path / "sessions"
    src.mkdir()
    _write(src / "a.json", _session("a", 1))
    _write(src / "b.json", _session("b", 1))
    outside = tmp_path / "secret.txt"
    outside.write_text("root:x:0:0:not a session, and not for the quarantine\n")
    result = subprocess.run(
        [sys.executable, "-c", _SWAP_AFTER_LISTING, str(src), str(tmp_path / "out"), kind, str(outside)],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_limited,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary == {"seen": 2, "exported": 1, "quarantined": 0, "vanished": 1, "ignored": 0}
    assert not (tmp_path / "out" / "quarantine").exists()
    assert errors(tmp_path / "out").num_rows == 0
    assert set(_contents(tmp_path / "out")) == {"a"}


def test_a_link_swapped_in_is_followed_only_inside_the_folder(tmp_path: Path, monkeypatch) -> None:
    from sessionkit.archive import _export

    src = tmp_path / "sessions"
    src.mkdir()
    _write(src / "a.json", _session("a", 1))
    _write(src / "b.json", _session("b", 1))
    _write(src / "real-c.txt", _session("c", 1))
    list_source = _export.list_source

    def list_then_swap(source):
        listing = list_source(source)
        (src / "b.json").unlink()
        os.symlink("real-c.txt", src / "b.json")  # a link that stays in the folder is still read
        return listing

    monkeypatch.setattr(_export, "list_source", list_then_swap)
    summary = export(src, tmp_path / "out", jobs=1)
    assert (summary.exported, summary.vanished) == (2, 0)
    assert set(_contents(tmp_path / "out")) == {"a", "c"}


def test_a_file_over_the_size_cap_is_quarantined_unread(tmp_path: Path, monkeypatch) -> None:
    from sessionkit.archive import _parts

    monkeypatch.setattr(_parts, "MAX_FILE_BYTES", 4096)
    src = tmp_path / "sessions"
    src.mkdir()
    _write(src / "a.json", _session("a", 1))
    big = _session("big", 1)
    big.user_messages[0].content = "x" * 5000
    _write(src / "big.json", big)
    summary = export(src, tmp_path / "out", jobs=1)
    assert (summary.exported, summary.quarantined, summary.bytes_read) == (1, 1, (src / "a.json").stat().st_size)
    (row,) = errors(tmp_path / "out").to_pylist()
    assert "too large to be a session" in row["message"] and row["size"] == 0
    assert os.path.getsize(tmp_path / "out" / row["quarantined_as"]) == 0  # no copy of the bytes


# -- the quarantine's own files --------------------------------------------------------------------------
def test_half_written_quarantine_copies_are_cleared(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    src = tmp_path / "sessions"
    src.mkdir()
    _write(src / "a.json", _session("a", 1))
    export(src, tmp_path / "out", jobs=1)
    folder = tmp_path / "out" / "quarantine"
    folder.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    left = folder / f"0123456789abcdef-x.json.tmp-{int(dead.stdout)}"  # its run was killed
    left.write_bytes(b"{")
    old = folder / f"0123456789abcdef-y.json.tmp-{os.getpid()}"  # a live pid, but hours old
    old.write_bytes(b"{")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    busy = folder / f"0123456789abcdef-z.json.tmp-{os.getpid()}"  # being written now
    busy.write_bytes(b"{")
    (src / "bad.json").write_text("{")
    export(src, tmp_path / "out", jobs=1)
    assert sorted(p.name for p in folder.iterdir() if ".tmp-" in p.name) == [busy.name]


def test_a_quarantine_copy_cut_by_a_full_disk_leaves_no_half_copy(tmp_path: Path) -> None:
    import resource
    import subprocess
    import sys

    src = tmp_path / "sessions"
    src.mkdir()
    (src / "bad.json").write_bytes(b"[" + b" " * 64_000)  # not a session, and larger than the disk allows
    quarantine = tmp_path / "q"

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024, 16 * 1024))

    code = "import sys; from sessionkit.archive import export; export(sys.argv[1], sys.argv[2], jobs=1, quarantine_dir=sys.argv[3])"
    result = subprocess.run(
        [sys.executable, "-c", code, str(src), str(tmp_path / "out"), str(quarantine)],
        capture_output=True,
        text=True,
        preexec_fn=limit,
        check=False,
    )
    assert result.returncode != 0 and "File too large" in result.stderr
    assert not [p.name for p in quarantine.iterdir() if ".tmp-" in p.name]


# -- F12: ids that cannot be file names, at restore ---------------------------------------------------------
def test_restore_skips_and_reports_ids_that_cannot_be_file_names(tmp_path: Path, monkeypatch) -> None:
    # a dataset written before export quarantined such ids: before, restore wrote part of the
    # sessions and then stopped with a raw "[Errno 36] File name too long" or a DatasetError
    from sessionkit.archive import _parts, restore
    from sessionkit.exceptions import SessionkitWarning

    src = tmp_path / "sessions"
    src.mkdir()
    poisoned = ["../x", "a/b", "nul\x00", "s" * 300]
    for i, sid in enumerate(["a", *poisoned, "z"]):
        _write(src / f"f{i}.json", _session(sid, 1))
    with monkeypatch.context() as m:
        m.setattr(_parts, "file_name_problem", lambda sid: None)
        assert export(src, tmp_path / "old", jobs=1).exported == 6
    for jobs in (1, 2):
        dest = tmp_path / f"back{jobs}"
        with pytest.warns(SessionkitWarning, match="4 sessions were not restored: their ids cannot be file names"):
            assert restore(tmp_path / "old", dest, jobs=jobs) == 2
        assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*")) == [
            "sessions",
            "sessions/a.json",
            "sessions/z.json",
        ]


def test_restore_overwrite_replaces_a_link_and_never_writes_through_it(tmp_path: Path) -> None:
    from sessionkit.archive import restore

    src = tmp_path / "sessions"
    src.mkdir()
    _write(src / "a.json", _session("a", 1))
    export(src, tmp_path / "out", jobs=1)
    dest = tmp_path / "dest" / "sessions"
    dest.mkdir(parents=True)
    victim = tmp_path / "victim.txt"
    victim.write_text("not yours")
    os.symlink(victim, dest / "a.json")
    with pytest.raises(FileExistsError, match="already exists"):
        restore(tmp_path / "out", tmp_path / "dest")
    assert restore(tmp_path / "out", tmp_path / "dest", overwrite=True) == 1
    assert victim.read_text() == "not yours"
    assert not (dest / "a.json").is_symlink()
    assert (dest / "a.json").read_bytes() == (src / "a.json").read_bytes()


def test_restore_overwrite_refuses_a_fifo_at_once(tmp_path: Path) -> None:
    import threading

    from sessionkit.archive import restore

    src = tmp_path / "sessions"
    src.mkdir()
    _write(src / "a.json", _session("a", 1))
    export(src, tmp_path / "out", jobs=1)
    dest = tmp_path / "dest" / "sessions"
    dest.mkdir(parents=True)
    os.mkfifo(dest / "a.json")
    outcome: list[BaseException | int] = []

    def run() -> None:
        try:
            outcome.append(restore(tmp_path / "out", tmp_path / "dest", overwrite=True, jobs=1))
        except BaseException as err:  # the test looks at what it was
            outcome.append(err)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(30)
    if worker.is_alive():  # before: blocked for good opening the FIFO; free it, then fail
        os.close(os.open(dest / "a.json", os.O_RDONLY | os.O_NONBLOCK))
        worker.join(30)
        pytest.fail("restore --overwrite waited on a FIFO")
    (err,) = outcome
    assert isinstance(err, FileExistsError) and "is not a regular file" in str(err), err


def test_numbers_restore_would_respell_are_reported_at_export(tmp_path: Path) -> None:
    # before: -0, 1E2, 1e+308 and 1.50 were exported without a word and restored as 0, 100.0,
    # 1e308 and 1.5, so a "byte-identical" restore silently was not
    from sessionkit.archive import restore
    from sessionkit.exceptions import SessionkitWarning

    src = tmp_path / "sessions"
    src.mkdir()
    plain = encode_session(_session("plain", 1))
    _write(src / "plain.json", _session("plain", 1))
    odd = plain.replace(b'"version": 1', b'"version": 1E2, "neg": -0, "big": 1e+308, "x": 1.50, "ok": [1.5, -0.0, 10]')
    assert odd != plain
    (src / "odd.json").write_bytes(odd.replace(b'"plain"', b'"odd"'))
    with pytest.warns(SessionkitWarning, match=r"1 files hold numbers .*odd\.json \(1E2, -0, 1e\+308\)") as caught:
        export(src, tmp_path / "out", jobs=1)
    assert len(caught) == 1
    restore(tmp_path / "out", tmp_path / "back")
    assert (tmp_path / "back" / "sessions" / "plain.json").read_bytes() == plain
    back = (tmp_path / "back" / "sessions" / "odd.json").read_bytes()
    assert b'"version": 100.0' in back and b'"neg": 0' in back and b'"big": 1e308' in back and b'"x": 1.5,' in back


def test_files_oxios_wrote_export_without_a_number_warning(tmp_path: Path) -> None:
    import warnings

    from conftest import FIXTURES

    from sessionkit.exceptions import SessionkitWarning

    for fixture in sorted(FIXTURES.iterdir()):
        if (fixture / "sessions").is_dir():
            with warnings.catch_warnings():
                warnings.simplefilter("error", SessionkitWarning)
                export(fixture, tmp_path / fixture.name, jobs=1)


def test_numbers_are_reported_for_files_the_fast_path_takes(tmp_path: Path) -> None:
    # the fast path looks for respelled numbers in the metadata only, where serde's layout has them
    from sessionkit._fastjson import fast_tables
    from sessionkit.exceptions import SessionkitWarning

    src = tmp_path / "sessions"
    src.mkdir()
    plain = encode_session(_session("plain", 1))
    odd = plain.replace(b'"version": 1', b'"version": 1.50').replace(b'"plain"', b'"odd"')
    assert odd != plain
    (src / "odd.json").write_bytes(odd)
    taken = fast_tables([odd])
    assert taken is not None and taken.taken == [True] and taken.changed_numbers == {0: ["1.50"]}
    with pytest.warns(SessionkitWarning, match=r"1 files hold numbers .*odd\.json \(1\.50\)"):
        export(src, tmp_path / "out", jobs=1)
