"""The link between an agent run and the exchange it served, as one SQL query.

oxios writes an ``AgentInfo`` per run but never fills its ``session_id``, so sessionkit finds
the exchange: a run belongs to the exchange whose user message has the same text as the run's
``name``, in a session of the same ``project_id`` (both none counts as the same), when the run's
``created_at`` falls between that message's and its response's timestamps (both included).
Exactly one candidate links; none or several leave the run unlinked (``ambiguous`` when
several). When oxios did store a ``session_id``, it wins: the run is linked to that session,
and to the one candidate exchange in it, if there is exactly one.

The query reads the views ``agents``, ``messages``, ``responses`` and ``sessions``; the export
runs it over the version it publishes (to fill ``linked_session_id`` / ``linked_seq``), and
``stats`` over a dataset (to count the runs linked, unlinked and ambiguous).
"""

from __future__ import annotations

#: One row per agent run: ``agent_id``, ``candidates`` (exchanges matching the rule; for a run
#: with a stored session id, those in that session), ``linked_session_id`` and ``linked_seq``.
#: (The export keeps ``candidates`` as the agents table's ``link_candidates``.)
#: ``{project}`` is the SQL of a session's project id (a column, or read from ``extra``), and
#: ``{text_match}`` false when the texts cannot be compared (redacted by dropping).
LINK_SQL = """
WITH a AS (
    SELECT agent_id, name, created_at, project_id, session_id FROM agents
),
m AS (
    SELECT session_id, seq, content, timestamp FROM messages
    WHERE {text_match} AND content IN (SELECT name FROM a)
),
c AS (
    SELECT a.agent_id, m.session_id, m.seq
    FROM a
    JOIN m ON m.content = a.name
    JOIN responses AS r ON r.session_id = m.session_id AND r.seq = m.seq
    JOIN sessions AS s ON s.session_id = m.session_id
    WHERE ({project}) IS NOT DISTINCT FROM a.project_id
      AND a.created_at BETWEEN m.timestamp AND r.timestamp
      AND (a.session_id IS NULL OR a.session_id = m.session_id)
),
n AS (
    SELECT agent_id, count(*) AS candidates, min(session_id) AS session_id, min(seq) AS seq
    FROM c GROUP BY agent_id
)
SELECT
    a.agent_id,
    coalesce(n.candidates, 0)::INTEGER AS candidates,
    CASE WHEN a.session_id IS NOT NULL THEN a.session_id WHEN n.candidates = 1 THEN n.session_id END
        AS linked_session_id,
    CASE WHEN n.candidates = 1 THEN n.seq END::INTEGER AS linked_seq
FROM a LEFT JOIN n USING (agent_id)
"""


def link_sql(session_columns: list[str], *, text_match: bool = True) -> str:
    """``LINK_SQL`` for a ``sessions`` view with these columns: its ``project_id`` column when
    it has one, else the ``project_id`` field kept in ``extra``."""
    project = "s.project_id" if "project_id" in session_columns else "json_extract_string(s.extra, '$.project_id')"
    return LINK_SQL.format(project=project, text_match="true" if text_match else "false")
