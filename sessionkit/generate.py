"""A seeded generator of realistic synthetic oxios sessions, for the demo, tests and benchmarks.

The sessions look like a real oxios installation: many users with skewed activity, seeds
and personas with Zipf-like popularity, 0-20 exchanges, now and then an unanswered message
or an extra response, nanosecond timestamps (and the shorter forms chrono prints when the
fraction allows), agent latencies with a heavy tail and the odd clock skew, and metadata
whose keys drift over time. The same ``seed`` always gives the same sessions.
"""

from __future__ import annotations

import json
import math
import os
import random
import uuid
from collections.abc import Iterator
from pathlib import Path

from sessionkit._timestamp import Timestamp
from sessionkit.model import PHASES, AgentResponse, Session, UserMessage, encode_compact, encode_raw, encode_session

__all__ = ["SHAPES", "generate_agent_records", "generate_modern_sessions", "generate_sessions", "write_demo_state"]

_WORDS = [
    "the",
    "a",
    "to",
    "of",
    "and",
    "in",
    "is",
    "for",
    "that",
    "it",
    "with",
    "on",
    "as",
    "this",
    "be",
    "are",
    "please",
    "can",
    "you",
    "how",
    "why",
    "what",
    "seed",
    "persona",
    "agent",
    "deploy",
    "query",
    "table",
    "file",
    "report",
    "result",
    "error",
    "fix",
    "test",
    "plan",
    "data",
    "tool",
    "summarise",
    "explain",
    "refactor",
    "review",
    "migrate",
    "schema",
    "index",
    "latency",
    "budget",
    "trace",
    "rollout",
]
_UNICODE_WORDS = ["naïve", "café", "Ω", "日本語", "한국어", "🚀", "✅", "résumé", "straße", "Zürich"]
_SEED_TOPICS = (
    "api-design",
    "bug-triage",
    "code-review",
    "data-pipeline",
    "deploy-check",
    "doc-writer",
    "etl-repair",
    "incident-review",
    "lint-fix",
    "log-search",
    "migration",
    "onboarding",
    "perf-tuning",
    "pr-summary",
    "query-builder",
    "refactor",
    "release-notes",
    "schema-diff",
    "security-audit",
    "sql-helper",
    "test-writer",
    "trace-analysis",
    "translation",
    "ui-review",
)
_PERSONAS = ("dev", "analyst", "reviewer", "writer", "ops", "teacher", "researcher", "support")
_CHANNELS = ("cli", "web", "slack", "api")
_LOCALES = ("en-US", "en-GB", "de-DE", "ja-JP", "fr-FR", "ko-KR")
_NS_PER_S = 1_000_000_000
_START = Timestamp.parse("2026-03-01T00:00:00Z").ns
_SPAN_DAYS = 120


def _zipf_weights(n: int, s: float) -> list[float]:
    return [1.0 / (rank + 1) ** s for rank in range(n)]


def _text(rng: random.Random, low: int, high: int) -> str:
    """Mostly English words; one text in five carries some accents, CJK or emoji, as real chats do."""
    words = rng.choices(_WORDS, k=rng.randint(low, high))
    if rng.random() < 0.2:
        for _ in range(1 + len(words) // 20):
            words[rng.randrange(len(words))] = rng.choice(_UNICODE_WORDS)
    return " ".join(words)


def _round_like_chrono(rng: random.Random, ns: int) -> int:
    """Most oxios timestamps carry 9 fraction digits; some land on ms, us or whole seconds."""
    roll = rng.random()
    if roll < 0.03:
        return ns - ns % _NS_PER_S
    if roll < 0.10:
        return ns - ns % 1_000_000
    if roll < 0.15:
        return ns - ns % 1000
    return ns


def generate_sessions(n: int, *, seed: int = 0, users: int | None = None) -> Iterator[Session]:
    """Yield ``n`` synthetic sessions; the same ``seed`` gives the same sessions.

    Example:
        >>> from sessionkit.generate import generate_sessions
        >>> [s.user_id for s in generate_sessions(3, seed=1)]  # doctest: +SKIP
        ['user-007', 'user-001', 'user-000']
    """
    rng = random.Random(seed)
    n_users = users or max(5, n // 12)
    user_ids = [f"user-{i:03d}" for i in range(n_users)]
    user_weights = _zipf_weights(n_users, 1.1)
    seeds = [f"seed-{topic}" for topic in _SEED_TOPICS] + [f"seed-custom-{i:02d}" for i in range(26)]
    seed_weights = _zipf_weights(len(seeds), 1.2)
    seed_quality = {s: rng.uniform(0.45, 0.95) for s in seeds}
    persona_weights = _zipf_weights(len(_PERSONAS), 1.0)
    for index in range(n):
        sid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        created = _START + int(index / max(n, 1) * _SPAN_DAYS * 86400 * _NS_PER_S) + rng.randrange(3600 * _NS_PER_S)
        created = _round_like_chrono(rng, created)
        active_seed = rng.choices(seeds, seed_weights)[0] if rng.random() < 0.65 else None
        persona = rng.choices(_PERSONAS, persona_weights)[0] if rng.random() < 0.55 else None
        exchanges = min(20, int(rng.expovariate(1 / 6.0))) if rng.random() > 0.04 else 0
        clock = created
        messages: list[UserMessage] = []
        responses: list[AgentResponse] = []
        for _ in range(exchanges):
            clock += int(rng.lognormvariate(4.0, 1.0) * _NS_PER_S)
            asked = _round_like_chrono(rng, clock)
            messages.append(UserMessage(_text(rng, 4, 70), Timestamp(asked)))
            latency = rng.lognormvariate(1.3, 0.8)
            if rng.random() < 0.005:
                latency = -rng.uniform(0.001, 2.0)  # a skewed clock now and then
            clock = asked + int(latency * _NS_PER_S)
            phase_rank = min(len(PHASES) - 1, int(rng.expovariate(0.6)))
            phase = PHASES[phase_rank].lower() if rng.random() > 0.12 else None  # oxios writes Phase::to_string()
            used_seed = active_seed if rng.random() < 0.85 else rng.choices(seeds, seed_weights)[0]
            if rng.random() < 0.1:
                used_seed = None
            passed = None
            if phase in ("evaluate", "evolve"):
                passed = rng.random() < seed_quality.get(used_seed or "", 0.6)
            elif phase is not None and rng.random() < 0.1:
                passed = False
            responses.append(
                AgentResponse(
                    content=_text(rng, 25, 260),
                    session_id=sid if rng.random() < 0.85 else None,
                    seed_id=used_seed,
                    phase_reached=phase,
                    evaluation_passed=passed,
                    timestamp=Timestamp(_round_like_chrono(rng, clock)),
                )
            )
        roll = rng.random()
        if roll < 0.08:  # the user asked and the agent has not answered (yet)
            clock += int(rng.lognormvariate(3.0, 1.0) * _NS_PER_S)
            messages.append(UserMessage(_text(rng, 3, 30), Timestamp(_round_like_chrono(rng, clock))))
        elif roll < 0.11 and responses:  # a follow-up response without a new message
            clock += int(rng.lognormvariate(2.0, 1.0) * _NS_PER_S)
            extra = AgentResponse(content=_text(rng, 10, 80), session_id=sid, timestamp=Timestamp(clock))
            responses.append(extra)
        session = Session(
            id=sid,
            user_id=rng.choices(user_ids, user_weights)[0],
            user_messages=messages,
            agent_responses=responses,
            active_seed_id=active_seed,
            active_persona_id=persona,
            created_at=Timestamp(created),
            updated_at=Timestamp(max(clock, created) + rng.randrange(_NS_PER_S)),
            metadata=_metadata(rng, index / max(n, 1)),
        )
        yield session


#: The session shapes the generator writes: oxios before 1.9 (seeds), and today's.
SHAPES = ("seeds", "modern")
_TOOLS = ("read", "bash", "grep", "edit", "write", "glob", "web_fetch", "memory_search")
_TOOL_WEIGHTS = (24, 20, 16, 14, 11, 8, 5, 2)
#: Typical duration of each tool, in ms (a lognormal's median).
_TOOL_MS = {"bash": 3000, "web_fetch": 1800, "memory_search": 400}
_TODAY_START = Timestamp.parse("2026-07-01T00:00:00Z").ns
#: serde's key order of today's oxios files (Session, AgentResponse), from state_store.rs.
_MODERN_SESSION_KEYS = (
    "id",
    "user_id",
    "user_messages",
    "agent_responses",
    "trajectory_steps",
    "reasoning_records",
    "active_persona_id",
    "project_id",
    "parent_session_id",
    "created_at",
    "updated_at",
    "metadata",
)
_MODERN_RESPONSE_KEYS = ("content", "session_id", "phase_reached", "evaluation_passed", "timestamp")


def _tool_args(rng: random.Random, tool: str) -> object:
    """Arguments as oxios keeps them: mostly the call's JSON as a string (its chat route), else an object."""
    if tool == "bash":
        args: dict = {"command": rng.choice(["cargo test", "ls -la", "git status", "make"]) + " " + _text(rng, 1, 2)}
    elif tool == "grep":
        args = {"path": "src/", "pattern": rng.choice(_WORDS)}
    elif tool == "web_fetch":
        args = {"url": f"https://docs.example.org/{rng.choice(_WORDS)}"}
    elif tool == "memory_search":
        args = {"query": _text(rng, 1, 4)}
    else:
        args = {"path": f"src/{rng.randrange(60)}.rs"}
    if rng.random() < 0.85:
        return json.dumps(args, ensure_ascii=False, separators=(",", ":"))
    return args


def generate_modern_sessions(n: int, *, seed: int = 0, users: int | None = None) -> Iterator[Session]:
    """Yield ``n`` synthetic sessions in today's oxios shape (1.9 and later); the same ``seed``
    gives the same sessions.

    No seed ids; almost every turn in phase ``execute`` with no evaluation; tool calls
    (``trajectory_steps``, with each response's ``trajectory_range``), reasoning records (some
    with ``segments``), projects, and threads (``parent_session_id``), laid out as serde does.

    Example:
        >>> from sessionkit.generate import generate_modern_sessions
        >>> s = next(generate_modern_sessions(1, seed=1))
        >>> s.active_seed_id is None and "trajectory_steps" in s.extra
        True
    """
    rng = random.Random(seed)
    n_users = users or max(5, n // 12)
    user_ids = [f"user-{i:03d}" for i in range(n_users)]
    user_weights = _zipf_weights(n_users, 1.1)
    projects = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(8)]
    project_weights = _zipf_weights(len(projects), 0.9)
    persona_weights = _zipf_weights(len(_PERSONAS), 1.0)
    earlier: list[tuple[str, str, str | None]] = []  # (id, user, project) of sessions so far
    for index in range(n):
        sid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        created = _TODAY_START + int(index / max(n, 1) * 90 * 86400 * _NS_PER_S) + rng.randrange(3600 * _NS_PER_S)
        created = _round_like_chrono(rng, created)
        parent = None
        if earlier and rng.random() < 0.12:  # a conversation continued in a new session
            parent_id, user, project = rng.choice(earlier[-40:])
            parent = parent_id
        else:
            user = rng.choices(user_ids, user_weights)[0]
            project = rng.choices(projects, project_weights)[0] if rng.random() < 0.7 else None
        persona = rng.choices(_PERSONAS, persona_weights)[0] if rng.random() < 0.45 else None
        exchanges = min(16, 1 + int(rng.expovariate(1 / 5.0))) if rng.random() > 0.03 else 0
        clock = created
        messages: list[UserMessage] = []
        responses: list[AgentResponse] = []
        steps: list[dict] = []
        reasoning: list[dict] = []
        for _ in range(exchanges):
            clock += int(rng.lognormvariate(4.0, 1.0) * _NS_PER_S)
            asked = _round_like_chrono(rng, clock)
            messages.append(UserMessage(_text(rng, 4, 60), Timestamp(asked)))
            start = len(steps)
            turn_steps = int(rng.expovariate(1 / 2.5)) if rng.random() < 0.75 else 0
            for _ in range(turn_steps):
                tool = rng.choices(_TOOLS, _TOOL_WEIGHTS)[0]
                ms = 0 if rng.random() < 0.08 else int(rng.lognormvariate(math.log(_TOOL_MS.get(tool, 60)), 1.0))
                clock += ms * 1_000_000 + rng.randrange(200_000_000)
                steps.append(
                    {
                        "tool_name": tool,
                        "tool_args": _tool_args(rng, tool),
                        "output_summary": _text(rng, 1, 16),
                        "duration_ms": ms,
                        "is_error": rng.random() < (0.04 if tool == "bash" else 0.01),
                        "tool_call_id": f"call_{rng.getrandbits(48):012x}",
                        "timestamp": "",  # the save time, set with the response below
                    }
                )
            clock += int(rng.lognormvariate(1.3, 0.8) * _NS_PER_S)
            answered = _round_like_chrono(rng, clock)
            for step in steps[start:]:
                step["timestamp"] = Timestamp(answered).isoformat()  # oxios stamps them when it saves
            extra: dict = {}
            order: tuple[str, ...] = _MODERN_RESPONSE_KEYS
            if len(steps) > start:
                extra["trajectory_range"] = {"start": start, "end": len(steps)}
                order = (*order, "trajectory_range")
            phase = "execute" if rng.random() < 0.97 else "interview"
            responses.append(
                AgentResponse(
                    content=_text(rng, 20, 200),
                    session_id=sid,
                    phase_reached=phase,
                    evaluation_passed=None if rng.random() < 0.9 else rng.random() < 0.8,
                    timestamp=Timestamp(answered),
                    extra=extra,
                    field_order=order,
                )
            )
            if rng.random() < 0.5:
                record: dict = {
                    "content": _text(rng, 10, 60),
                    "source": "thinking" if rng.random() < 0.9 else "compaction",
                    "timestamp": Timestamp(answered).isoformat(),
                }
                if len(steps) > start and rng.random() < 0.7:
                    record["segments"] = [
                        {"before_step": i - start, "text": _text(rng, 2, 10)} for i in range(start, len(steps))
                    ]
                reasoning.append(record)
        extra = {"trajectory_steps": steps, "reasoning_records": reasoning}
        if project is not None:
            extra["project_id"] = project
        if parent is not None:
            extra["parent_session_id"] = parent
        present = {"active_persona_id": persona is not None, **{key: key in extra for key in extra}}
        order = tuple(key for key in _MODERN_SESSION_KEYS if present.get(key, True))
        metadata = _metadata(rng, 1.0)
        if rng.random() < 0.2:
            metadata["compression"] = {"compacted": rng.randint(1, 4), "tokens_saved": rng.randrange(10_000)}
        yield Session(
            id=sid,
            user_id=user,
            user_messages=messages,
            agent_responses=responses,
            active_seed_id=None,
            active_persona_id=persona,
            created_at=Timestamp(created),
            updated_at=Timestamp(max(clock, created) + rng.randrange(_NS_PER_S)),
            metadata=metadata,
            extra=extra,
            field_order=order,
        )
        earlier.append((sid, user, project))


#: The models of the generated agent runs, with their price in USD per million input and output
#: tokens; the third arrives a third of the way through (the chart of cost per model shows it).
_MODELS = {"claude-sonnet-4-5": (3.0, 15.0), "gpt-5-mini": (0.25, 2.0), "qwen3-coder-32b": (0.2, 0.6)}
_RUN_ERRORS = (
    "LLM provider error: 529 overloaded",
    "tool bash failed: exit status 101",
    "max steps exceeded",
    "context window exceeded",
)


def _run_times(rng: random.Random, start: int, end: int, durations: list[int]) -> tuple[int, list[int], int]:
    """A run's start, its calls' starts and its end, in order within ``[start, end]`` (ns)."""
    started = start + rng.randrange(1, 3_000_000)
    busy = sum(durations) * 1_000_000
    slack = max(0, end - started - busy)
    clock, starts = started, []
    for ms in durations:
        clock += int(slack * rng.uniform(0.3, 0.9) / (len(durations) + 1))
        starts.append(_round_like_chrono(rng, clock))
        clock += ms * 1_000_000
    completed = min(end, clock + int(slack * rng.uniform(0.05, 0.3) / (len(durations) + 1)))
    return started, starts, max(completed, started)


def _agent_record(
    rng: random.Random,
    name: str,
    created: int,
    answered: int,
    project: str | None,
    steps: list[dict],
    progress: float,
) -> dict:
    """One ``AgentInfo`` as oxios writes it (types.rs: serde's field order, options left out
    when unset, ``session_id`` never set), for a run that served a turn of these tool calls."""
    created = _round_like_chrono(rng, created)
    failed = rng.random() < 0.05
    later = progress > 1 / 3
    model = rng.choices(list(_MODELS), (5, 3, 4) if later else (6, 4, 0))[0] if rng.random() > 0.02 else ""
    started, starts, completed = _run_times(rng, created, answered, [step["duration_ms"] for step in steps])
    calls = []
    for step, at in zip(steps, starts, strict=True):
        args = step["tool_args"]
        call: dict = {
            "tool": step["tool_name"],
            "input": args if isinstance(args, str) else encode_compact(args),
            "output": step["output_summary"],
            "duration_ms": step["duration_ms"],
            # the real outcome: the session file's flag, and failures oxios' chat route saved as false
            "is_error": step["is_error"]
            or rng.random() < (0.08 if step["tool_name"] in ("bash", "web_fetch") else 0.02),
        }
        if rng.random() < 0.97:
            call["tool_call_id"] = f"toolu_{rng.getrandbits(64):016x}"
        call["timestamp"] = Timestamp(at).isoformat()
        calls.append(call)
    record: dict = {
        "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "name": name,
        "status": "Failed" if failed else "Completed",
        "created_at": Timestamp(created).isoformat(),
    }
    if project is not None:
        record["project_id"] = project
    record["started_at"] = Timestamp(_round_like_chrono(rng, started)).isoformat()
    record["completed_at"] = Timestamp(_round_like_chrono(rng, completed)).isoformat()
    if failed:
        record["error"] = rng.choice(_RUN_ERRORS)
    record["steps_completed"] = len(calls)
    if rng.random() < 0.9:
        record["steps_total"] = len(calls)
    if calls:
        record["tool_calls"] = calls
    tokens_in = int(rng.lognormvariate(math.log(9000 + 2500 * len(calls)), 0.5))
    tokens_out = int(rng.lognormvariate(math.log(900 + 150 * len(calls)), 0.6))
    price_in, price_out = _MODELS.get(model, (0.0, 0.0))
    record["tokens_input"] = tokens_in
    record["tokens_output"] = tokens_out
    record["cost_usd"] = (tokens_in * price_in + tokens_out * price_out) / 1e6
    if model:
        record["model_id"] = model
    return record


def generate_agent_records(session: Session, *, rng: random.Random, progress: float = 0.0) -> Iterator[dict]:
    """The agent-run records oxios keeps beside ``session`` (``<state>/agents/<id>.json``).

    One run per answered turn (a few turns have none), created within the turn, named by its
    user message, of the session's project, with the turn's tool calls (their real error flags
    and start times); now and then a retry created after the response (it links to nothing),
    and a run of an older session oxios has pruned since. ``progress`` (0 to 1: how far
    through the generated period) decides which models are in use.

    Example:
        >>> import random
        >>> from sessionkit.generate import generate_agent_records, generate_modern_sessions
        >>> session = next(generate_modern_sessions(1, seed=1))
        >>> runs = list(generate_agent_records(session, rng=random.Random(1)))
        >>> all(run["name"] in {m.content for m in session.user_messages} for run in runs[:1])
        True
    """
    project = session.extra.get("project_id")
    steps = session.extra.get("trajectory_steps", [])
    for message, response in zip(session.user_messages, session.agent_responses, strict=False):
        if rng.random() < 0.04:  # a turn oxios kept no run for
            continue
        asked, answered = message.timestamp, response.timestamp
        if asked is None or answered is None or answered.ns < asked.ns:
            continue
        span = response.extra.get("trajectory_range") or {"start": 0, "end": 0}
        turn = steps[span["start"] : span["end"]]
        window = max(1, answered.ns - asked.ns)
        created = asked.ns + min(window - 1, rng.randrange(1_000_000, 40_000_000))
        yield _agent_record(rng, message.content, created, answered.ns, project, turn, progress)
        if rng.random() < 0.02:  # the request retried after the answer: no exchange holds it
            retry = answered.ns + rng.randrange(2, 60) * _NS_PER_S
            yield _agent_record(rng, message.content, retry, retry + 20 * _NS_PER_S, project, [], progress)
    if rng.random() < 0.08:  # a run of a session oxios pruned (it keeps runs longer than sessions)
        old = session.created_at.ns - rng.randrange(8, 25) * 86400 * _NS_PER_S
        yield _agent_record(rng, _text(rng, 4, 30), old, old + 30 * _NS_PER_S, project, [], progress)


def _metadata(rng: random.Random, progress: float) -> dict:
    meta: dict = {"channel": rng.choice(_CHANNELS)}
    # the key for the client's version was renamed a third of the way through
    if progress < 0.33:
        meta["client"] = f"0.{rng.randint(7, 9)}.{rng.randint(0, 5)}"
    else:
        meta["client_version"] = f"1.{rng.randint(0, 3)}.{rng.randint(0, 9)}"
    if rng.random() < 0.6:
        meta["locale"] = rng.choice(_LOCALES)
    if rng.random() < 0.4:
        meta["tags"] = rng.sample(["prod", "staging", "urgent", "internal", "beta", "long-running"], rng.randint(0, 3))
    if rng.random() < 0.3:
        meta["priority"] = rng.randint(0, 5)
    if rng.random() < 0.3:
        meta["score"] = round(rng.uniform(0, 1), rng.randint(1, 6))
    if rng.random() < 0.15:
        meta["experiment"] = {
            "name": rng.choice(["ranker-v2", "short-prompts"]),
            "arm": rng.choice(["a", "b"]),
            "weight": rng.random(),
        }
    if rng.random() < 0.1:
        meta["pinned"] = rng.random() < 0.5
    if rng.random() < 0.05:
        meta["note"] = None
    keys = list(meta)
    rng.shuffle(keys)  # oxios keeps metadata in a HashMap: its order is arbitrary
    return {key: meta[key] for key in keys}


def write_demo_state(state_dir: str | os.PathLike[str], n: int, *, seed: int = 0, shape: str = "seeds") -> Path:
    """Write ``n`` generated sessions as an oxios state directory; returns ``state_dir/sessions``.

    ``shape`` is ``"seeds"`` (oxios before 1.9) or ``"modern"`` (today's: tool calls,
    reasoning, projects, threads, and the agent-run records in ``state_dir/agents``, see
    ``generate_agent_records``). Each file's modification time is its session's
    ``updated_at`` (a run's: its ``completed_at``), as oxios leaves it."""
    if shape not in SHAPES:
        msg = f"write_demo_state: shape must be one of {', '.join(map(repr, SHAPES))}, not {shape!r}"
        raise ValueError(msg)
    folder = Path(state_dir) / "sessions"
    folder.mkdir(parents=True, exist_ok=True)
    agents = Path(state_dir) / "agents"
    if shape == "modern":
        agents.mkdir(exist_ok=True)
    runs = random.Random(f"agents-{seed}")  # apart from the sessions' stream: they stay as they were
    generate = generate_modern_sessions if shape == "modern" else generate_sessions
    for index, session in enumerate(generate(n, seed=seed)):
        path = folder / f"{session.id}.json"
        path.write_bytes(encode_session(session))
        # oxios writes a session's file when the session changes: its mtime is the last update
        os.utime(path, ns=(session.updated_at.ns, session.updated_at.ns))
        if shape == "modern":
            for record in generate_agent_records(session, rng=runs, progress=index / max(n, 1)):
                run = agents / f"{record['id']}.json"
                run.write_bytes(encode_raw(record))
                done = Timestamp.parse(record["completed_at"]).ns
                os.utime(run, ns=(done, done))
    return folder
