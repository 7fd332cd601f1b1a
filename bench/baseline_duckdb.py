"""Baseline: DuckDB read_json over the glob, then COPY the four tables to Parquet.

usage: python bench/baseline_duckdb.py SESSIONS_DIR OUT_DIR
"""

from __future__ import annotations

import os
import sys

import duckdb


def main() -> None:
    folder, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")  # DuckDB's advice for large loads: half the time
    glob = os.path.join(folder, "*.json")
    # metadata is an open-ended object: keep it as JSON so keys are not dropped by sampling
    con.execute(
        f"""CREATE TABLE raw AS SELECT * FROM read_json('{glob}', format = 'auto',
            columns = {{id: 'VARCHAR', user_id: 'VARCHAR',
                user_messages: 'STRUCT(content VARCHAR, "timestamp" VARCHAR)[]',
                agent_responses: 'STRUCT(content VARCHAR, session_id VARCHAR, seed_id VARCHAR, phase_reached VARCHAR, evaluation_passed BOOLEAN, "timestamp" VARCHAR)[]',
                active_seed_id: 'VARCHAR', active_persona_id: 'VARCHAR',
                created_at: 'TIMESTAMPTZ', updated_at: 'TIMESTAMPTZ', metadata: 'JSON'}})"""
    )
    queries = {
        "sessions": "SELECT id AS session_id, user_id, active_seed_id, active_persona_id, created_at, updated_at, "
        "len(user_messages) AS n_user_messages, len(agent_responses) AS n_agent_responses FROM raw",
        "messages": "SELECT id AS session_id, generate_subscripts(user_messages, 1) - 1 AS seq, "
        "unnest(user_messages, recursive := true) FROM raw",
        "responses": "SELECT id AS session_id, generate_subscripts(agent_responses, 1) - 1 AS seq, "
        "unnest(agent_responses, recursive := true) FROM raw",
        "metadata": "SELECT id AS session_id, unnest(json_keys(metadata)) AS key FROM raw",
    }
    for name, query in queries.items():
        con.execute(f"COPY ({query}) TO '{os.path.join(out, name + '.parquet')}' (FORMAT parquet, COMPRESSION zstd)")
    print(con.sql("SELECT count(*) FROM raw").fetchall()[0][0])


if __name__ == "__main__":
    main()
