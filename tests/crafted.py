"""Small hand-made sessions whose helper results are written out by hand in the tests."""

from __future__ import annotations

from sessionkit.model import AgentResponse, Session, UserMessage


def _msg(ts: str) -> UserMessage:
    return UserMessage("question", ts)


def _resp(ts: str, seed: str | None, phase: str | None, passed: bool | None) -> AgentResponse:
    return AgentResponse(content="answer", seed_id=seed, phase_reached=phase, evaluation_passed=passed, timestamp=ts)


def quality_sessions() -> list[Session]:
    """Four sessions across a midnight, a week start, a month and 1970, with every odd case.

    p: three exchanges (latencies 2 s, 5 s and -1 s), phases in three cases; q: a message
    without response and a phase oxios does not know; r: no messages at all, created before 1970; s: a response
    without a message.
    """
    p = Session(
        id="p",
        user_id="ann",
        active_seed_id="s1",
        active_persona_id="dev",
        created_at="2026-01-05T10:00:00Z",  # a Monday
        updated_at="2026-01-05T10:05:00Z",
        user_messages=[_msg("2026-01-05T10:00:00Z"), _msg("2026-01-05T10:01:00Z"), _msg("2026-01-05T10:02:00Z")],
        agent_responses=[
            _resp("2026-01-05T10:00:02Z", "s1", "interview", None),  # as oxios writes phases
            _resp("2026-01-05T10:01:05Z", "s1", "Execute", True),  # as older writers did
            _resp("2026-01-05T10:01:59Z", "s2", "EVALUATE", False),
        ],
        metadata={"channel": "cli", "n": 3},
    )
    q = Session(
        id="q",
        user_id="bob",
        created_at="2026-01-04T23:59:59.999999999Z",  # the last nanosecond of a Sunday
        updated_at="2026-01-05T00:00:10Z",
        user_messages=[_msg("2026-01-04T23:59:59.999999999Z"), _msg("2026-01-05T00:00:10Z")],
        agent_responses=[_resp("2026-01-05T00:00:09.999999999Z", None, "Refine", True)],
        metadata={"channel": None, "tags": ["a"]},
    )
    r = Session(
        id="r",
        user_id="ann",
        active_persona_id="dev",
        created_at="1969-12-31T23:59:59.5Z",
        updated_at="1969-12-31T23:59:59.5Z",
        metadata={"channel": "web", "cfg": {"a": 1}},
    )
    s = Session(
        id="s",
        user_id="cy",
        active_seed_id="s1",
        active_persona_id="ops",
        created_at="2026-02-01T00:00:00Z",
        updated_at="2026-02-01T00:00:04Z",
        user_messages=[_msg("2026-02-01T00:00:00Z")],
        agent_responses=[
            _resp("2026-02-01T00:00:03Z", "s1", None, None),
            _resp("2026-02-01T00:00:04Z", "s1", "evolve", False),
        ],
    )
    return [p, q, r, s]


def phase_case_session() -> Session:
    """One session whose responses spell phases in every case, and some that are no phase of oxios."""
    phases = ["Execute", "EXECUTE", "execute", "seed", "Refine", "refine", "\u0130nterview", "eXeCuTe", None]
    return Session(
        id="phase-case",
        user_id="u",
        created_at="2026-01-01T00:00:00Z",
        updated_at="2026-01-01T00:00:00Z",
        agent_responses=[
            AgentResponse(content="", phase_reached=p, evaluation_passed=i % 2 == 0, timestamp="2026-01-01T00:00:01Z")
            for i, p in enumerate(phases)
        ],
    )
