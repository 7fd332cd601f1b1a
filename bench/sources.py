"""State directories for the benchmark, shaped like real installations.

``random_source``: sessions created over ``days`` days, in files whose names and modification
times tell nothing of when the session was created (as after a copy, a backup restore or any
bulk write). ``cron_day``: what a daily cron sees of an installation that oxios prunes to the
last 7 days, with 50-500 new sessions a day, some of which go on for a day or two.

Sessions come from sessionkit's seeded generator, each shifted as a whole (every timestamp by
the same whole number of seconds) to its day, so files stay in oxios' own format.

usage: python bench/sources.py OUT_DIR SESSIONS [DAYS]
"""

from __future__ import annotations

import os
import random
import sys
from collections.abc import Iterator
from pathlib import Path

from sessionkit.generate import generate_sessions
from sessionkit.model import Session, Timestamp, encode_session

NS_PER_S = 1_000_000_000
NS_PER_DAY = 86_400 * NS_PER_S
START = 1_780_272_000 * NS_PER_S  # 2026-06-01T00:00:00Z


def _shift(session: Session, ns: int) -> Session:
    """The session with every timestamp moved by ``ns`` (whole seconds keep chrono's digits)."""
    session.created_at = Timestamp(session.created_at.ns + ns)
    session.updated_at = Timestamp(session.updated_at.ns + ns)
    for message in session.user_messages:
        message.timestamp = Timestamp(message.timestamp.ns + ns)
    for response in session.agent_responses:
        response.timestamp = Timestamp(response.timestamp.ns + ns)
    return session


def sessions_on(day: int, count: int, *, seed: int) -> Iterator[Session]:
    """``count`` generated sessions created on ``day`` (days after 2026-06-01), at random times."""
    rng = random.Random(seed)
    for session in generate_sessions(count, seed=seed, users=max(5, count // 4)):
        at = START + day * NS_PER_DAY + rng.randrange(86_400) * NS_PER_S
        yield _shift(session, at - session.created_at.ns + session.created_at.ns % NS_PER_S)


def write(folder: Path, session: Session, mtime_ns: int) -> None:
    path = folder / f"{session.id}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_bytes(encode_session(session))
    os.replace(tmp, path)
    os.utime(path, ns=(mtime_ns, mtime_ns))


def random_source(folder: Path, count: int, *, days: int = 180, seed: int = 1) -> Path:
    """A ``sessions/`` folder of ``count`` sessions created over ``days`` days, with random
    modification times (unrelated to creation)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    per_day = [count // days + (1 if d < count % days else 0) for d in range(days)]
    for day, n in enumerate(per_day):
        for session in sessions_on(day, n, seed=seed * 100_003 + day):
            write(folder, session, START + rng.randrange(days * 86_400) * NS_PER_S)
    return folder


class CronSource:
    """An oxios state directory as a daily cron sees it: each day 50-500 new sessions, a tenth
    of the last two days' sessions going on (a newer ``updated_at``, one more exchange), and
    everything older than 7 days pruned, as oxios does."""

    def __init__(self, state: Path, *, seed: int = 7, low: int = 50, high: int = 500) -> None:
        self.folder = state / "sessions"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.rng = random.Random(seed)
        self.low, self.high, self.seed = low, high, seed
        self.live: dict[str, tuple[int, Session]] = {}  # id -> (day created, session)

    def day(self, day: int) -> int:
        """Advance to ``day``: write its new sessions, continue some, prune; returns files written."""
        written = 0
        for sid, (born, session) in list(self.live.items()):
            if day - born > 7:
                (self.folder / f"{sid}.json").unlink(missing_ok=True)
                del self.live[sid]
            elif day - born <= 2 and self.rng.random() < 0.1:
                session.updated_at = Timestamp(session.updated_at.ns + NS_PER_DAY // 2)
                if session.user_messages:
                    session.user_messages[-1].content += " (and one more thing)"
                write(self.folder, session, START + day * NS_PER_DAY + self.rng.randrange(86_400) * NS_PER_S)
                written += 1
        count = self.rng.randint(self.low, self.high)
        for session in sessions_on(day, count, seed=self.seed * 1_000_003 + day):
            self.live[session.id] = (day, session)
            write(self.folder, session, session.updated_at.ns)
            written += 1
        return written


if __name__ == "__main__":
    out, total = Path(sys.argv[1]), int(sys.argv[2])
    days = int(sys.argv[3]) if len(sys.argv) > 3 else 180
    random_source(out / "sessions", total, days=days)
