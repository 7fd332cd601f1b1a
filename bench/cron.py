"""A year of daily cron exports, simulated: how each run's time, the helpers' times and the
dataset's files evolve with the archive's history.

Each simulated day, oxios' state directory gets 50-500 new sessions, a tenth of the last two
days' sessions go on, and sessions older than 7 days are pruned (``sources.CronSource``); then
``sessionkit export STATE OUT`` runs in a process of its own, timed whole (interpreter
start-up included), as cron runs it. On the days listed in ``--probe`` the helpers are timed
too (``sessionkit stats OUT`` on the command line, and every helper of
``spark_vs_duckdb.CALLS`` on the dataset folder); every day the files and bytes of each table
are counted.

usage: python bench/cron.py WORK_DIR [--days 365] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from sources import CronSource

HERE = Path(__file__).resolve().parent
PY = sys.executable
EXE = str(Path(PY).parent / "sessionkit")
TABLES = ("sessions", "messages", "responses", "metadata")

_HELPERS = """
import json, sys, time
sys.path.insert(0, {here!r})
import sessionkit as sk
from spark_vs_duckdb import CALLS
sk.stats({data!r})  # duckdb and polars imported, the page cache warm: the helpers' own time from here
out = {{}}
for name, options in CALLS:
    best = float("inf")
    for _ in range(2):
        started = time.perf_counter()
        getattr(sk, name)({data!r}, **options)
        best = min(best, time.perf_counter() - started)
    out[name + ("" if not options else " " + json.dumps(options))] = best
print(json.dumps(out))
"""


def files_of(out: Path) -> dict[str, dict[str, int]]:
    """The Parquet files and bytes of each session table."""
    result = {}
    for name in TABLES:
        paths = list((out / name).rglob("*.parquet"))
        result[name] = {"files": len(paths), "bytes": sum(p.stat().st_size for p in paths)}
    return result


def timed(args: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, check=True)
    return time.perf_counter() - started, done.stdout


def probe(out: Path) -> dict[str, object]:
    """The helpers' times on the dataset (the best of two calls, in one process, after a warm-up
    call), and ``sessionkit stats`` on the command line, start-up included.

    The archive keeps every session ever exported, so the helpers have more rows to read as
    the year goes on, whatever the layout. To tell the layout's share from the data's, the
    helpers are also timed on a copy of the same dataset compacted to one file per table."""
    subprocess.run([EXE, "stats", str(out)], capture_output=True, check=True)  # warm the page cache
    stats_cli, _ = timed([EXE, "stats", str(out)])
    _, text = timed([PY, "-c", _HELPERS.format(here=str(HERE), data=str(out))])
    copy = out.parent / "compacted-copy"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(out, copy, symlinks=True)
    started = time.perf_counter()
    done = subprocess.run([EXE, "compact", str(copy), "--quiet"], capture_output=True, text=True)
    row: dict[str, object] = {
        "stats_cli_s": stats_cli,
        "helpers_s": json.loads(text.splitlines()[-1]),
        "compact_s": time.perf_counter() - started,
    }
    if done.returncode == 0:
        _, compacted = timed([PY, "-c", _HELPERS.format(here=str(HERE), data=str(copy))])
        row["helpers_compacted_s"] = json.loads(compacted.splitlines()[-1])
    else:  # a result too: say it, and go on with the year
        row["compact_error"] = done.stderr.strip().splitlines()[0] if done.stderr.strip() else f"exit {done.returncode}"
        print(
            f"  sessionkit compact failed on a copy of the dataset: {row['compact_error']}", file=sys.stderr, flush=True
        )
    shutil.rmtree(copy, ignore_errors=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("work", type=Path)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--probe", default="5,30,90,180,270,365", help="days on which to time the helpers")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON line at the end")
    args = parser.parse_args()
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # as an installed copy runs: bytecode cached (run.py)
    shutil.rmtree(args.work, ignore_errors=True)
    state, out = args.work / "state", args.work / "out"
    source = CronSource(state)
    probes = {int(d) for d in args.probe.split(",") if int(d) <= args.days}
    days = []
    for day in range(1, args.days + 1):
        written = source.day(day)
        seconds, line = timed([EXE, "export", str(state), str(out)])
        row = {"day": day, "files_written": written, "export_s": seconds, "tables": files_of(out)}
        sessions = re.search(r": (\d+) sessions \(", line)
        compacted = re.search(r"compacted (\d+) small files into (\d+)", line)
        row["sessions"] = int(sessions.group(1)) if sessions else None
        row["compacted"] = int(compacted.group(1)) if compacted else 0
        if day in probes:
            row.update(probe(out))
        days.append(row)
        print(
            f"  cron day {day:3d}: {written:3d} files changed, export {seconds:5.2f} s, "
            f"{row['tables']['messages']['files']} messages files"
            + (f", compacted {row['compacted']}" if row.get("compacted") else "")
            + (f", stats {row['stats_cli_s']:.2f} s" if "stats_cli_s" in row else ""),
            file=sys.stderr,
            flush=True,
        )
    summary = summarise(days)
    if args.json:
        print(json.dumps({"days": days, "summary": summary}))
    else:
        print(json.dumps(summary, indent=2))


def summarise(days: list[dict]) -> dict[str, object]:
    """Day 5 against the rest: per-run time (median of days 4-6, and of the last 30 days, and the
    slowest run after day 5), helper times, files per table."""
    if len(days) < 6:
        return {}
    by_day = {row["day"]: row for row in days}
    base = statistics.median(by_day[d]["export_s"] for d in (4, 5, 6) if d in by_day)
    late = [row["export_s"] for row in days[-30:]]
    after = [row for row in days if row["day"] > 5]
    slowest = max(after, key=lambda row: row["export_s"])
    probes = [row for row in days if "helpers_s" in row]
    helpers = {}
    if probes and probes[0]["day"] == 5:
        first = probes[0]
        for name, seconds in first["helpers_s"].items():
            worst = max(row["helpers_s"][name] for row in probes[1:]) if len(probes) > 1 else seconds
            # the layout's own cost: the same rows, one file per table, the same day
            compacted = [row for row in probes if "helpers_compacted_s" in row]
            layout = max((row["helpers_s"][name] / row["helpers_compacted_s"][name] for row in compacted), default=None)
            helpers[name] = {
                "day5_s": seconds,
                "worst_later_s": worst,
                "ratio": worst / seconds if seconds else None,
                "vs_compacted_worst_ratio": layout,
            }
        stats = [row["stats_cli_s"] for row in probes[1:]] or [first["stats_cli_s"]]
        helpers["sessionkit stats (CLI)"] = {
            "day5_s": first["stats_cli_s"],
            "worst_later_s": max(stats),
            "ratio": max(stats) / first["stats_cli_s"],
        }
    final = days[-1]
    return {
        "days": len(days),
        "sessions": final.get("sessions"),
        "export_day5_s": base,
        "export_last30_median_s": statistics.median(late),
        "export_last30_ratio": statistics.median(late) / base,
        "export_slowest_after_day5": {
            "day": slowest["day"],
            "s": slowest["export_s"],
            "ratio": slowest["export_s"] / base,
        },
        "runs_over_1_5x": sum(1 for row in after if row["export_s"] > 1.5 * base),
        "compacting_runs": sum(1 for row in days if row.get("compacted")),
        "files_per_table_final": {name: final["tables"][name]["files"] for name in TABLES},
        "max_files_per_table": max(row["tables"][name]["files"] for row in days for name in TABLES),
        "bytes_per_table_final": {name: final["tables"][name]["bytes"] for name in TABLES},
        "helpers": helpers,
        "compact_failures": [
            {"day": row["day"], "error": row["compact_error"]} for row in days if "compact_error" in row
        ],
    }


if __name__ == "__main__":
    main()
