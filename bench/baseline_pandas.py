"""Baseline: what a user would write with the standard tools — json.load per file,
pandas.json_normalize into the four tables, to_parquet.

usage: python bench/baseline_pandas.py SESSIONS_DIR OUT_DIR
"""

from __future__ import annotations

import json
import os
import sys

import pandas as pd


def main() -> None:
    folder, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    records = []
    for name in sorted(os.listdir(folder)):
        if name.endswith(".json"):
            with open(os.path.join(folder, name), encoding="utf-8") as handle:
                records.append(json.load(handle))
    sessions = pd.json_normalize(records, max_level=0).drop(columns=["user_messages", "agent_responses", "metadata"])
    messages = pd.json_normalize(records, record_path="user_messages", meta=["id"])
    responses = pd.json_normalize(records, record_path="agent_responses", meta=["id"], meta_prefix="session.")
    metadata = pd.DataFrame(
        [(r["id"], k, json.dumps(v)) for r in records for k, v in r.get("metadata", {}).items()],
        columns=["session_id", "key", "value"],
    )
    for name, frame in (
        ("sessions", sessions),
        ("messages", messages),
        ("responses", responses),
        ("metadata", metadata),
    ):
        frame.to_parquet(os.path.join(out, f"{name}.parquet"), compression="zstd")
    print(len(sessions), len(messages), len(responses), len(metadata))


if __name__ == "__main__":
    main()
