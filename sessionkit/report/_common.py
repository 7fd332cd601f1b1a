"""What the report's pieces share: a section, what the period's data has."""

from __future__ import annotations

from dataclasses import dataclass, field

from sessionkit.report._period import PeriodSource

#: Rows of a ranked table of groups (seeds, personas, tools, projects); the rest are in its folded full table.
ROWS = 8
#: Rows of a list that ranks no group against another (users, threads, metadata keys): the
#: first few, with the whole list folded below, so the page stays short enough to mail.
SHORT = 5


@dataclass
class Section:
    ident: str
    title: str
    body: str


@dataclass
class Has:
    """What the period's data holds, which decides the sections and the headline's figures."""

    sessions: int = 0
    seeds: int = 0
    personas: int = 0
    phases: list[str] = field(default_factory=list)
    phased: int = 0
    responses: int = 0
    evaluations: int = 0
    metadata: int = 0
    exchanges: int = 0
    #: Set when the data has the tables or columns of today's oxios at all (oxios 1.9 and later).
    tool_calls: int | None = None
    projects: int | None = None
    threads: int | None = None


def has(src: PeriodSource) -> Has:
    """What the sessions of ``src``'s period hold."""
    row = src.rows(
        """
        SELECT
            (SELECT count(*) FROM sessions),
            (SELECT count(*) FROM sessions WHERE active_seed_id IS NOT NULL)
                + (SELECT count(*) FROM responses WHERE seed_id IS NOT NULL),
            (SELECT count(*) FROM sessions WHERE active_persona_id IS NOT NULL),
            (SELECT list(DISTINCT phase_reached ORDER BY phase_reached) FROM responses WHERE phase_reached IS NOT NULL),
            (SELECT count(*) FROM responses WHERE phase_reached IS NOT NULL),
            (SELECT count(*) FROM responses),
            (SELECT count(*) FROM responses WHERE evaluation_passed IS NOT NULL),
            (SELECT count(*) FROM metadata),
            (SELECT count(*) FROM exchanges)
        """
    )[0]
    found = Has(row[0], row[1], row[2], list(row[3] or []), *row[4:])
    if "tool_calls" in src.columns:
        found.tool_calls = src.rows("SELECT count(*) FROM tool_calls")[0][0]
    session_columns = src.columns.get("sessions", [])
    if "project_id" in session_columns:
        found.projects = src.rows("SELECT count(*) FROM sessions WHERE project_id IS NOT NULL")[0][0]
    if "parent_session_id" in session_columns:
        found.threads = src.rows("SELECT count(*) FROM sessions WHERE parent_session_id IS NOT NULL")[0][0]
    return found
