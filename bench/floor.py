"""The floor: read every file's bytes and decode it with a typed msgspec struct, on N cores.

Nothing is kept or written; this is the least any exporter has to do.
usage: python bench/floor.py SESSIONS_DIR JOBS
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import msgspec


class Message(msgspec.Struct, gc=False):
    content: str
    timestamp: str


class Response(msgspec.Struct, gc=False):
    content: str
    timestamp: str
    session_id: str | None = None
    seed_id: str | None = None
    phase_reached: str | None = None
    evaluation_passed: bool | None = None


class Session(msgspec.Struct, gc=False):
    id: str
    user_id: str
    created_at: str
    updated_at: str
    user_messages: list[Message] = []
    agent_responses: list[Response] = []
    active_seed_id: str | None = None
    active_persona_id: str | None = None
    metadata: dict[str, Any] = {}


_DECODER = msgspec.json.Decoder(Session)


def work(paths: list[str]) -> tuple[int, int]:
    nbytes = sessions = 0
    for path in paths:
        with open(path, "rb") as handle:
            data = handle.read()
        nbytes += len(data)
        _DECODER.decode(data)
        sessions += 1
    return sessions, nbytes


def main() -> None:
    folder, jobs = sys.argv[1], int(sys.argv[2])
    paths = sorted(os.path.join(folder, name) for name in os.listdir(folder) if name.endswith(".json"))
    chunks = [paths[i : i + 2048] for i in range(0, len(paths), 2048)]
    if jobs == 1:
        results = list(map(work, chunks))
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            results = list(pool.map(work, chunks))
    print(sum(r[0] for r in results), sum(r[1] for r in results))


if __name__ == "__main__":
    main()
