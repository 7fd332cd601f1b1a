"""What an export did (``ExportSummary``); a strict export raises it with ``ExportError``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ExportSummary:
    """What an export did: every file's bucket, the dataset's size, bytes read, time taken."""

    source: str
    out: str
    run_id: str = ""
    seen: int = 0
    exported: int = 0
    unchanged: int = 0
    quarantined: int = 0
    vanished: int = 0
    ignored: int = 0
    sessions: int = 0
    messages: int = 0
    responses: int = 0
    metadata: int = 0
    exchanges: int = 0
    bytes_read: int = 0
    seconds: float = 0.0
    jobs: int = 1
    files_written: int = 0  # Parquet files of the session tables written from the files read
    files_rewritten: int = 0  # files of the previous version rewritten without sessions replaced
    files_kept: int = 0  # files of the previous version kept as they are
    compacted: int = 0  # small files the run merged (see ``sessionkit.archive.compact``)
    compacted_into: int = 0  # the files they became
    row_groups: dict[str, int] = field(default_factory=dict)
    # the agent-run records (``SRC/agents/*.json``), in buckets of their own
    agents_seen: int = 0
    agents_exported: int = 0
    agents_unchanged: int = 0
    agents_quarantined: int = 0
    agents_vanished: int = 0
    agents_ignored: int = 0
    agents: int = 0  # rows of the agents table
    agent_tool_calls: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list, repr=False)

    @property
    def files(self) -> int:
        """Session files seen (everything but the ignored entries)."""
        return self.seen - self.ignored

    def check(self) -> None:
        """Every file seen is in exactly one bucket."""
        total = self.exported + self.unchanged + self.quarantined + self.vanished + self.ignored
        if total != self.seen:
            msg = f"export accounting is off: {self.seen} seen but {total} in buckets"
            raise AssertionError(msg)

    def line(self) -> str:
        """A one-line human summary."""
        mb = self.bytes_read / 1e6
        rate = mb / self.seconds if self.seconds else 0.0
        return (
            f"{self.seen} seen: {self.exported} exported, {self.unchanged} unchanged, "
            f"{self.quarantined} quarantined, {self.vanished} vanished, {self.ignored} ignored; "
            f"dataset {self.out}: {self.sessions} sessions ({self.messages} messages, {self.responses} responses, "
            f"{self.exchanges} exchanges); read {mb:.1f} MB in {self.seconds:.2f} s ({rate:.0f} MB/s, {self.jobs} jobs)"
            + (f"; compacted {self.compacted} small files into {self.compacted_into}" if self.compacted else "")
            + (
                f"; agent records: {self.agents_seen} seen: {self.agents_exported} exported, {self.agents_unchanged} unchanged, "
                f"{self.agents_quarantined} quarantined, {self.agents_vanished} vanished, {self.agents_ignored} ignored; "
                f"{self.agents} agent runs ({self.agent_tool_calls} tool calls)"
                if self.agents_seen or self.agents
                else ""
            )
        )
