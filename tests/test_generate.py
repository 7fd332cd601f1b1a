"""The synthetic session generator: deterministic, valid, and realistic."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from sessionkit.generate import generate_sessions, write_demo_state
from sessionkit.model import Session, encode_session
from sessionkit.oxios import read_sessions


def test_same_seed_same_sessions() -> None:
    a = [encode_session(s) for s in generate_sessions(30, seed=4)]
    b = [encode_session(s) for s in generate_sessions(30, seed=4)]
    c = [encode_session(s) for s in generate_sessions(30, seed=5)]
    assert a == b and a != c


def test_generated_sessions_are_valid_and_varied(tmp_path: Path) -> None:
    write_demo_state(tmp_path, 400, seed=1)
    sessions = read_sessions(tmp_path)
    assert len(sessions) == 400
    for s in sessions:
        assert Session.from_json(s.to_json()) == s
    users = Counter(s.user_id for s in sessions)
    assert len(users) >= 20 and users.most_common(1)[0][1] > 3 * (400 / len(users)) / 2
    seeds = Counter(s.active_seed_id for s in sessions)
    assert None in seeds and len(seeds) > 15
    counts = [s.exchange_count() for s in sessions]
    assert min(counts) == 0 and max(counts) <= 20
    assert any(len(s.user_messages) != len(s.agent_responses) for s in sessions)
    fractions = Counter(len(str(m.timestamp)) for s in sessions for m in s.user_messages)
    assert {20, 24, 27, 30} <= set(fractions)  # 0, 3, 6 and 9 fraction digits all occur
    keys = Counter(k for s in sessions for k in s.metadata)
    assert keys["client"] and keys["client_version"]  # a renamed key: drift to discover
    latencies = [r.timestamp.ns - m.timestamp.ns for s in sessions for m, r in s.exchanges()]
    assert min(latencies) < 0 < max(latencies)


def test_the_bundled_sample_is_the_generators_seed_7() -> None:
    """data/oxios-sample is 300 sessions of seed 7 (the demo's default): regenerate it with
    ``write_demo_state("data/oxios-sample", 300, seed=7)`` when the generator changes."""
    folder = Path(__file__).parent.parent / "data" / "oxios-sample" / "sessions"
    expected = {f"{s.id}.json": encode_session(s) for s in generate_sessions(300, seed=7)}
    assert sorted(p.name for p in folder.glob("*.json")) == sorted(expected)
    assert all((folder / name).read_bytes() == data for name, data in expected.items())
    phases = Counter(r.phase_reached for s in read_sessions(folder.parent) for r in s.agent_responses)
    assert set(phases) == {"interview", "seed", "execute", "evaluate", "evolve", None}  # as oxios writes them
