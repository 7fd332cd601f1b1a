"""A large synthetic dataset built straight at the Arrow level (generating a million session
files would take longer than the benchmark itself), with the shapes of real oxios data:
skewed users, seeds and personas, 0-20 exchanges, heavy-tailed latencies, phases and
evaluations. Written with sessionkit's own schemas and writer, so every helper runs on it.

It is laid out as an export of a randomly ordered source leaves a dataset: the sessions,
created over ``DAYS`` days, come in units of 20,000 in no order of time (each unit about what
one export worker reads before it writes), and each unit is one file per table, its rows in
clustering order; then, with ``--compact``, ``sessionkit compact`` merges them.

usage: python bench/synth.py OUT_DIR SESSIONS [--days 180] [--compact]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from sessionkit.model import PHASES
from sessionkit.tables import SCHEMAS, TABLE_NAMES

PART = 20_000
_TEXTS = [f"text {i} " + "lorem ipsum dolor sit amet " * (1 + i % 7) for i in range(1000)]
_TS = pa.timestamp("ns", tz="UTC")


def _zipf(rng: np.random.Generator, n: int, size: int, s: float) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1) ** s
    return rng.choice(n, size=size, p=weights / weights.sum())


def _strings(prefix: str, codes: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    labels = (
        pa.array([f"{prefix}{i:03d}" for i in range(int(codes.max()) + 1)]) if len(codes) else pa.array([], pa.string())
    )
    array = pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32(), mask=null), labels).cast(pa.string())
    return array


def build_part(
    rng: np.random.Generator, start: int, n: int, days: tuple[float, float] = (0, 365)
) -> dict[str, pa.Table]:
    """``n`` sessions from id ``start`` on, created between ``days[0]`` and ``days[1]`` days into 2026."""
    ids = np.arange(start, start + n)
    session_ids = pa.array([f"{i:08x}-0000-4000-8000-{i:012x}" for i in ids])
    users = _zipf(rng, 20_000, n, 1.1)
    seeds = _zipf(rng, 50, n, 1.2)
    no_seed = rng.random(n) < 0.35
    personas = _zipf(rng, 8, n, 1.0)
    no_persona = rng.random(n) < 0.45
    first, last = (int(d * 86400 * 10**9) for d in days)
    created = (np.datetime64("2026-06-01", "ns").astype(np.int64) + rng.integers(first, last, n)).astype(np.int64)
    exchanges = np.minimum(20, rng.geometric(1 / 6.0, n) - 1)
    n_msg = exchanges + (rng.random(n) < 0.08)
    n_resp = exchanges + (rng.random(n) < 0.03)
    owner_m = np.repeat(np.arange(n), n_msg)
    seq_m = np.concatenate([np.arange(k) for k in n_msg]) if n else np.array([], int)
    owner_r = np.repeat(np.arange(n), n_resp)
    seq_r = np.concatenate([np.arange(k) for k in n_resp]) if n else np.array([], int)
    asked = created[owner_m] + (seq_m * 120 + rng.integers(0, 60, len(seq_m))) * 10**9
    latency = (rng.lognormal(1.3, 0.8, len(seq_r)) * 10**9).astype(np.int64)
    answered = created[owner_r] + seq_r * 120 * 10**9 + 30 * 10**9 + latency
    updated = np.maximum(
        created,
        np.maximum.reduceat(np.concatenate([answered, [0]]), np.r_[0, np.cumsum(n_resp)[:-1]])[:n]
        if len(answered)
        else created,
    )
    phase = np.minimum(len(PHASES) - 1, rng.exponential(1 / 0.6, len(seq_r)).astype(int))
    no_phase = rng.random(len(seq_r)) < 0.12
    passed = rng.random(len(seq_r)) < 0.7
    no_eval = phase < 3
    r_seeds = np.where(rng.random(len(seq_r)) < 0.85, seeds[owner_r], _zipf(rng, 50, len(seq_r), 1.2))
    r_no_seed = (no_seed[owner_r] & (rng.random(len(seq_r)) < 0.9)) | (rng.random(len(seq_r)) < 0.05)
    texts = pa.array(_TEXTS)
    sid_m = session_ids.take(pa.array(owner_m))
    sid_r = session_ids.take(pa.array(owner_r))
    n_keys = rng.integers(1, 5, n)
    owner_d = np.repeat(np.arange(n), n_keys)
    ord_d = np.concatenate([np.arange(k) for k in n_keys])
    keys = pa.array(["channel", "client_version", "locale", "priority", "tags"]).take(pa.array(ord_d))
    values = pa.array(['"web"', '"1.2.0"', '"en-US"', "3", '["beta"]']).take(pa.array(ord_d))
    n_msg32, n_resp32 = pa.array(n_msg, pa.int32()), pa.array(n_resp, pa.int32())
    projects = _zipf(rng, 40, n, 1.1)
    no_project = rng.random(n) < 0.4
    # today's oxios: 0-6 tool calls per response, a dozen tools, a few errors, heavy-tailed durations
    n_calls = np.where(rng.random(len(seq_r)) < 0.35, 0, rng.integers(1, 7, len(seq_r)))
    owner_t = np.repeat(np.arange(len(seq_r)), n_calls)  # the response of each call
    first_call = np.cumsum(n_calls) - n_calls  # global index of each response's first call
    in_response = np.arange(len(owner_t)) - first_call[owner_t]
    # steps are numbered within their session: calls before this response's, in the session
    session_first = np.zeros(n, np.int64)
    has = n_resp > 0
    session_first[has] = first_call[np.cumsum(n_resp)[has] - n_resp[has]]
    step = first_call[owner_t] - session_first[owner_r[owner_t]] + in_response
    tools = pa.array(["read", "bash", "grep", "edit", "write", "glob", "web_fetch", "test", "ls", "diff", "git", "sql"])
    n_t = len(owner_t)
    called = answered[owner_t] - (n_calls[owner_t] - in_response) * 10**9  # a second apart, before the answer
    return {
        "sessions": pa.Table.from_arrays(
            [
                session_ids,
                _strings("user-", users),
                _strings("seed-", seeds, no_seed),
                _strings("persona-", personas, no_persona),
                pa.array(created).cast(_TS),
                pa.array(updated).cast(_TS),
                n_msg32,
                n_resp32,
                pa.array(np.minimum(n_msg, n_resp), pa.int32()),
                pa.nulls(n, pa.string()),
                pa.nulls(n, pa.string()),
                pa.array(n_keys, pa.int32()),
                _strings("project-", projects, no_project),
                pa.nulls(n, pa.string()),
            ],
            schema=SCHEMAS["sessions"],
        ),
        "messages": pa.Table.from_arrays(
            [
                sid_m,
                pa.array(seq_m, pa.int32()),
                texts.take(pa.array(rng.integers(0, len(_TEXTS), len(seq_m)))),
                pa.array(asked).cast(_TS),
                pa.nulls(len(seq_m), pa.string()),
                pa.nulls(len(seq_m), pa.string()),
            ],
            schema=SCHEMAS["messages"],
        ),
        "responses": pa.Table.from_arrays(
            [
                sid_r,
                pa.array(seq_r, pa.int32()),
                texts.take(pa.array(rng.integers(0, len(_TEXTS), len(seq_r)))),
                sid_r,
                _strings("seed-", r_seeds, r_no_seed),
                pa.DictionaryArray.from_arrays(pa.array(phase, pa.int32(), mask=no_phase), pa.array(PHASES)).cast(
                    pa.string()
                ),
                pa.array(passed, mask=no_eval),
                pa.array(answered).cast(_TS),
                pa.nulls(len(seq_r), pa.string()),
                pa.nulls(len(seq_r), pa.string()),
            ],
            schema=SCHEMAS["responses"],
        ),
        "metadata": pa.Table.from_arrays(
            [session_ids.take(pa.array(owner_d)), pa.array(ord_d, pa.int32()), keys, values],
            schema=SCHEMAS["metadata"],
        ),
        "tool_calls": pa.Table.from_arrays(
            [
                sid_r.take(pa.array(owner_t)),
                pa.array(step, pa.int32()),
                pa.array(seq_r[owner_t], pa.int32()),
                tools.take(pa.array(_zipf(rng, len(tools), n_t, 1.0))),
                pa.array(['{"path":"src/"}'] * n_t, pa.string()),
                pa.array(np.ones(n_t, bool)),
                texts.take(pa.array(rng.integers(0, len(_TEXTS), n_t))),
                pa.array((rng.lognormal(5.5, 1.5, n_t)).astype(np.int64)),
                pa.array(rng.random(n_t) < 0.03),
                pa.array([f"call-{i}" for i in range(n_t)], pa.string()),
                pa.array(called).cast(_TS),
                pa.nulls(n_t, pa.string()),
                pa.nulls(n_t, pa.string()),
            ],
            schema=SCHEMAS["tool_calls"],
        ),
        "reasoning": SCHEMAS["reasoning"].empty_table(),
    }


def main() -> None:
    import argparse

    from sessionkit._layout import Layout, files_record, write_clustered, write_empty
    from sessionkit._versions import new_staging, publish, write_manifest, writer_lock
    from sessionkit.archive import compact
    from sessionkit.storage import ALL_TABLES

    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("sessions", type=int)
    parser.add_argument("--days", type=float, default=180)
    parser.add_argument("--compact", action="store_true")
    args = parser.parse_args()
    out, total = args.out, args.sessions
    rng = np.random.default_rng(2026)
    counts = dict.fromkeys(TABLE_NAMES, 0)
    out.mkdir(parents=True, exist_ok=True)
    with writer_lock(out):
        staging = new_staging(out, "synth")
        files: dict[str, list] = {name: [] for name in ALL_TABLES}
        for index, start in enumerate(range(0, total, PART)):
            tables = build_part(rng, start, min(PART, total - start), (0, args.days))
            for name, written in write_clustered(tables, staging, f"part-synth-{index:05d}.parquet").items():
                files[name] += written
                counts[name] += tables[name].num_rows
        for name in ("runs", "errors"):
            files[name] = [write_empty(staging, name, "part-synth.parquet")]
        info = {"counts": counts, "synthetic": True, "layout": Layout().record(), **files_record(files)}
        write_manifest(staging, info, name="manifest.json")
        publish(out, staging, durable=False)
    if args.compact:
        print(compact(out).line())
    print(counts)


if __name__ == "__main__":
    main()
