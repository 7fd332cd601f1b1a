"""The sessionkit benchmark: export, compaction, restore and helpers against the floor and the
baselines, a year of daily cron runs, and start-up.

Everything is measured in this one run, on this machine, warm cache, as the median of
``--runs`` runs (at least 3), each a separate process whose peak memory (PSS of the whole
process tree, workers included) is sampled. The sources are randomly ordered (sessions created
over 180 days, file names and modification times unrelated to creation, as after a copy or a
backup restore; ``sources.py``). Results go to bench/results/ as JSON and a markdown table.

usage: python bench/run.py [--quick] [--runs N] [--sizes 20000,200000] [--helpers-sessions 1000000]
                           [--cron-days 365] [--no-spark]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from multiprocessing import Pool
from pathlib import Path

import polars_counterparts
import psutil
from spark_vs_duckdb import markdown as spark_markdown

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
EXE = str(Path(PY).parent / "sessionkit")


@dataclass
class Measure:
    """One measured item: median seconds and peak RSS over the runs."""

    name: str
    size: int
    seconds: list[float] = field(default_factory=list)
    peak_rss_mb: list[float] = field(default_factory=list)
    mb: float = 0.0  # MB of JSON processed
    sessions: int = 0
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def rss(self) -> float:
        return max(self.peak_rss_mb) if self.peak_rss_mb else 0.0

    def row(self) -> dict:
        out = asdict(self)
        out.update(
            median_s=round(self.median, 3),
            sessions_per_s=round(self.sessions / self.median) if self.sessions else None,
            mb_per_s=round(self.mb / self.median, 1) if self.mb else None,
            peak_rss_mb=round(self.rss, 1),
        )
        out.pop("seconds")
        out["runs_s"] = [round(s, 3) for s in self.seconds]
        return out


def _pss(pid: int) -> int:
    """The proportional set size of a process in bytes, from the cheap smaps_rollup
    (reading the full smaps of a process with many mappings stalls it)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0
    return 0


def run_tree(args: list[str], *, cwd: Path | None = None) -> tuple[float, float, str]:
    """Run a command; return (seconds, peak memory (PSS) of it and its children in MB, stdout)."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(args, cwd=cwd, stdout=out, stderr=err)
        peaks = [0]
        done = threading.Event()

        def sample() -> None:  # PSS: the pages forked workers share are counted once, not once per process
            handle = psutil.Process(proc.pid)
            while not done.wait(0.1):
                with contextlib.suppress(psutil.Error):
                    peaks[0] = max(peaks[0], sum(_pss(p.pid) for p in [handle, *handle.children(recursive=True)]))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        proc.wait()
        seconds = time.perf_counter() - started
        done.set()
        sampler.join()
        peak = peaks[0]
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}):\n{stderr[-2000:]}")
    return seconds, peak / 1e6, stdout


def measure(
    name: str,
    size: int,
    runs: int,
    command: Callable[[int], list[str]],
    *,
    cleanup: Callable[[], None] | None = None,
    mb: float = 0.0,
    sessions: int = 0,
    self_timed: bool = False,
) -> Measure:
    """Run ``command`` ``runs`` times; with ``self_timed`` the command prints its own seconds last
    (to leave out the interpreter's start-up, for the helpers)."""
    result = Measure(name, size, mb=mb, sessions=sessions)
    for i in range(runs):
        if cleanup:
            cleanup()
        os.sync()  # each run starts without the previous runs' writes still queued for the disk
        seconds, rss, stdout = run_tree(command(i))
        if self_timed:
            seconds = float(stdout.split()[-1])
        result.seconds.append(seconds)
        result.peak_rss_mb.append(rss)
        print(f"  {name:<34} size {size:>8,}  run {i + 1}: {seconds:7.2f} s  {rss:7.0f} MB", flush=True)
    if cleanup:
        cleanup()
    return result


# -- data -----------------------------------------------------------------------------------------
def dataset_of(size: int, data: Path) -> Path:
    """``data/random<size>/sessions``: a randomly ordered 180-day source (cached between runs)."""
    folder = data / f"random{size}" / "sessions"
    stamp = folder.parent / "complete-v3"  # v3: randomly ordered, 180 days (sources.random_source)
    if stamp.exists():
        return folder.parent
    shutil.rmtree(folder.parent, ignore_errors=True)
    started = time.perf_counter()
    chunk = 20_000  # in parallel: each process writes its own days
    tasks = [(str(folder), size, i) for i in range(max(1, size // chunk))]
    with Pool(os.cpu_count() or 2) as pool:
        pool.map(_generate_days, tasks)
    stamp.write_text(f"{size}\n")
    print(f"generated {size:,} sessions in {time.perf_counter() - started:.0f} s", flush=True)
    return folder.parent


def _generate_days(args: tuple[str, int, int]) -> None:
    from sources import random_source

    folder, size, index = args
    parts = max(1, size // 20_000)
    random_source(Path(folder), size // parts, days=180, seed=1 + index)


def files_per_table(out: Path) -> dict[str, dict[str, int]]:
    """The Parquet files and bytes of each session table of a dataset."""
    result = {}
    for name in ("sessions", "messages", "responses", "metadata"):
        paths = list((out / name).rglob("*.parquet"))
        result[name] = {"files": len(paths), "bytes": sum(p.stat().st_size for p in paths)}
    return result


def json_megabytes(folder: Path) -> float:
    return sum(entry.stat().st_size for entry in os.scandir(folder)) / 1e6


def warm(folder: Path) -> None:
    for entry in os.scandir(folder):
        with open(entry.path, "rb") as handle:
            handle.read()


# -- the benchmark ------------------------------------------------------------------------------------
def bench_files(size: int, runs: int, data: Path, scratch: Path, with_baselines: bool) -> list[Measure]:
    state = dataset_of(size, data)
    sessions_dir = state / "sessions"
    mb = json_megabytes(sessions_dir)
    warm(sessions_dir)
    jobs = str(os.cpu_count() or 2)
    out = scratch / "out"

    def clean() -> None:
        shutil.rmtree(out, ignore_errors=True)

    results = [
        measure(
            "floor: read + typed msgspec decode",
            size,
            runs,
            lambda i: [PY, str(HERE / "floor.py"), str(sessions_dir), jobs],
            mb=mb,
            sessions=size,
        ),
        measure(
            "sessionkit export (all cores)",
            size,
            runs,
            lambda i: [EXE, "export", str(state), str(out), "--quiet"],
            cleanup=clean,
            mb=mb,
            sessions=size,
        ),
        measure(
            "sessionkit export --jobs 1",
            size,
            runs,
            lambda i: [EXE, "export", str(state), str(out), "--quiet", "--jobs", "1"],
            cleanup=clean,
            mb=mb,
            sessions=size,
        ),
    ]
    if with_baselines:
        results += [
            measure(
                "baseline: json + pandas.json_normalize",
                size,
                runs,
                lambda i: [PY, str(HERE / "baseline_pandas.py"), str(sessions_dir), str(out)],
                cleanup=clean,
                mb=mb,
                sessions=size,
            ),
            measure(
                "baseline: DuckDB read_json + COPY",
                size,
                runs,
                lambda i: [PY, str(HERE / "baseline_duckdb.py"), str(sessions_dir), str(out)],
                cleanup=clean,
                mb=mb,
                sessions=size,
            ),
        ]
    # one export kept: its files, an unchanged re-run, compaction, restore
    dataset = scratch / "dataset"
    shutil.rmtree(dataset, ignore_errors=True)
    run_tree([EXE, "export", str(state), str(dataset), "--quiet"])
    LAYOUT[f"after export, {size:,} sessions"] = files_per_table(dataset)
    results.append(
        measure(
            "sessionkit export re-run, nothing changed",
            size,
            runs,
            lambda i: [EXE, "export", str(state), str(dataset), "--quiet"],
            mb=mb,
            sessions=size,
        )
    )
    copy = scratch / "compacted"

    def fresh_copy() -> None:  # each run compacts the export as it was
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(dataset, copy, symlinks=True)

    results.append(
        measure(
            "sessionkit compact (after the export)",
            size,
            runs,
            lambda i: [EXE, "compact", str(copy), "--quiet"],
            cleanup=fresh_copy,
            sessions=size,
        )
    )
    fresh_copy()
    run_tree([EXE, "compact", str(copy), "--quiet"])
    LAYOUT[f"after compact, {size:,} sessions"] = files_per_table(copy)
    shutil.rmtree(copy, ignore_errors=True)
    # each run restores into a new folder, removed only after all runs: deleting 20,000 files
    # (with the discard some filesystems do) would slow the next run down, not this one
    restored = [scratch / f"restored-{i}" for i in range(runs)]
    results.append(
        measure(
            "sessionkit restore (all cores)",
            size,
            runs,
            lambda i: [EXE, "restore", str(dataset), str(restored[i]), "--quiet"],
            mb=mb,
            sessions=size,
        )
    )
    for folder in restored:
        shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(dataset, ignore_errors=True)
    return results


#: Files and bytes per table of the datasets the benchmark made (filled as it goes).
LAYOUT: dict[str, dict[str, dict[str, int]]] = {}


def bench_unchanged(runs: int, data: Path, scratch: Path) -> list[Measure]:
    """An unchanged re-run of 3,000 files, and the interpreter's own start-up, in the same run."""
    source = data / "unchanged3000" / "sessions"
    if not (source.parent / "complete").exists():
        from sources import random_source

        shutil.rmtree(source.parent, ignore_errors=True)
        random_source(source, 3000, days=7, seed=3)
        (source.parent / "complete").write_text("3000\n")
    out = scratch / "unchanged"
    shutil.rmtree(out, ignore_errors=True)
    run_tree([EXE, "export", str(source.parent), str(out), "--quiet"])
    results = [
        measure("python -c pass (interpreter start-up)", 0, max(runs, 7), lambda i: [PY, "-c", "pass"]),
        measure(
            "sessionkit export re-run, nothing changed",
            3000,
            max(runs, 7),
            lambda i: [EXE, "export", str(source.parent), str(out), "--quiet"],
            sessions=3000,
        ),
        measure("sessionkit --help", 0, max(runs, 7), lambda i: [EXE, "--help"]),
        measure("sessionkit sql OUT 'SELECT 1'", 0, max(runs, 7), lambda i: [EXE, "sql", str(out), "SELECT 1"]),
    ]
    shutil.rmtree(out, ignore_errors=True)
    return results


def bench_cron(days: int, data: Path) -> dict:
    """The year of daily cron runs (cron.py), in a process of its own."""
    work = data / "cron-work"
    _, _, stdout = run_tree([PY, str(HERE / "cron.py"), str(work), "--days", str(days), "--json"], cwd=HERE)
    shutil.rmtree(work, ignore_errors=True)
    return json.loads(stdout.splitlines()[-1])


def bench_helpers(sessions: int, runs: int, data: Path) -> list[Measure]:
    """Every helper on the dataset folder (each call opens its connection), in a fresh process
    whose imports are done before the clock starts; and the polars-lazy counterparts of five."""
    from spark_vs_duckdb import CALLS

    folder = data / f"synth{sessions}"
    if not (folder / "_sessionkit.json").exists() or not (folder / "complete-v2").exists():
        shutil.rmtree(folder, ignore_errors=True)
        run_tree([PY, str(HERE / "synth.py"), str(folder), str(sessions)])
        (folder / "complete-v2").write_text("random order, default layout\n")
    LAYOUT[f"synthetic {sessions:,} sessions (helpers)"] = files_per_table(folder)
    warm = "import sessionkit as sk, sessionkit.analytics, duckdb, polars, time, json, sys; "
    results = []
    calls = [
        (f"{name}({', '.join(f'{k}={v!r}' for k, v in options.items())})", name, options) for name, options in CALLS
    ]
    for label, name, options in calls:
        code = (
            f"{warm}data = {str(folder)!r}; t = time.perf_counter(); "
            f"sk.{name}(data, **json.loads({json.dumps(json.dumps(options))})); print(time.perf_counter() - t)"
        )
        results.append(
            measure(
                f"helper {label} (DuckDB)",
                sessions,
                runs,
                lambda i, code=code: [PY, "-c", code],
                sessions=sessions,
                self_timed=True,
            )
        )
    problems = polars_counterparts.check(str(folder))  # only a counterpart that answers the same counts
    if problems:
        raise SystemExit("a polars counterpart differs from its helper:\n" + "\n".join(problems))
    for label in polars_counterparts.COUNTERPARTS:
        code = (
            f"{warm}sys.path.insert(0, {str(HERE)!r}); from polars_counterparts import COUNTERPARTS; "
            f"lf = sk.scan_parquet({str(folder)!r}); call = COUNTERPARTS[{label!r}][0]; "
            f"t = time.perf_counter(); call(lf); print(time.perf_counter() - t)"
        )
        results.append(
            measure(
                f"helper {label} (polars lazy)",
                sessions,
                runs,
                lambda i, code=code: [PY, "-c", code],
                sessions=sessions,
                self_timed=True,
            )
        )
    return results


def bench_spark(sessions: int, runs: int, data: Path) -> list[dict]:
    """The helpers on DuckDB and on Spark local[2], warm, on bench_helpers' dataset (spark_vs_duckdb.py)."""
    folder = data / f"synth{sessions}"
    command = [PY, str(HERE / "spark_vs_duckdb.py"), str(folder), "--runs", str(runs), "--json"]
    _, peak, stdout = run_tree(command)
    rows = json.loads(stdout.splitlines()[-1])
    for row in rows:
        print(f"  spark vs duckdb: {row['helper']:<34} {row['duckdb_s']:8.3f} s {row['spark_s']:8.3f} s", flush=True)
    print(f"  (peak memory of the Spark run: {peak:.0f} MB)", flush=True)
    return rows


def machine() -> dict:
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%d"),
    }


def _verdict(ok: bool) -> str:
    return "holds" if ok else "MISSED"


def ratios(results: list[Measure], cron: dict | None = None) -> list[str]:
    """The issue's targets, each with the numbers of this run and whether it holds."""
    lines = []
    by = {(m.name, m.size): m for m in results}
    for size in sorted({m.size for m in results if m.mb}):
        floor = by.get(("floor: read + typed msgspec decode", size))
        export = by.get(("sessionkit export (all cores)", size))
        one = by.get(("sessionkit export --jobs 1", size))
        if not (floor and export):
            continue
        rate, times = export.mb / export.median, export.median / floor.median
        lines.append(
            f"size {size:,}: export {rate:.0f} MB/s (target >= 150: {_verdict(rate >= 150)}), "
            f"{times:.2f}x the floor's time (target <= 2: {_verdict(times <= 2)}), peak {export.rss:.0f} MB "
            f"(target <= 600: {_verdict(export.rss <= 600)})"
        )
        if one:
            rate = one.mb / one.median
            lines.append(f"size {size:,}: export on one core {rate:.0f} MB/s (target >= 80: {_verdict(rate >= 80)})")
        for base in ("baseline: json + pandas.json_normalize", "baseline: DuckDB read_json + COPY"):
            if (base, size) in by:
                lines.append(
                    f"size {size:,}: export is {by[(base, size)].median / export.median:.1f}x faster than {base[10:]}"
                )
        rerun = by.get(("sessionkit export re-run, nothing changed", size))
        if rerun:
            share = rerun.median / export.median
            lines.append(
                f"size {size:,}: a re-run with nothing changed takes {share:.0%} of a full export"
                + (f" (target <= 10%: {_verdict(share <= 0.10)})" if size >= 200_000 else "")
            )
        compact = by.get(("sessionkit compact (after the export)", size))
        if compact:
            lines.append(f"size {size:,}: compacting the export takes {compact.median:.2f} s")
        restore = by.get(("sessionkit restore (all cores)", size))
        if restore:
            lines.append(f"size {size:,}: restore {restore.sessions / restore.median:,.0f} sessions/s")
    sizes = sorted(size for (name, size) in by if name == "sessionkit export (all cores)")
    if len(sizes) >= 2:
        small, large = by[("sessionkit export (all cores)", sizes[0])], by[("sessionkit export (all cores)", sizes[-1])]
        lines.append(
            f"peak memory of export: {small.rss:.0f} MB at {sizes[0]:,} sessions, {large.rss:.0f} MB at {sizes[-1]:,}"
        )
    start = by.get(("python -c pass (interpreter start-up)", 0))
    if start:
        rerun = by.get(("sessionkit export re-run, nothing changed", 3000))
        if rerun:
            extra = rerun.median - start.median
            lines.append(
                f"3,000 unchanged files: the re-run takes {rerun.median:.2f} s, {extra:.2f} s beyond the interpreter's "
                f"{start.median:.2f} s start-up (target <= 0.3: {_verdict(extra <= 0.3)})"
            )
        for name in ("sessionkit --help", "sessionkit sql OUT 'SELECT 1'"):
            m = by.get((name, 0))
            if m:
                extra = m.median - start.median
                lines.append(
                    f"`{name[11:]}` takes {extra:.2f} s beyond the interpreter (target <= 0.25: {_verdict(extra <= 0.25)})"
                )
    helpers = [m for m in results if m.name.startswith("helper ") and m.name.endswith("(DuckDB)")]
    if helpers:
        slow = [m for m in helpers if m.median > 1.0]
        lines.append(
            f"helpers on {helpers[0].size:,} sessions (DuckDB): {min(m.median for m in helpers):.2f} to "
            f"{max(m.median for m in helpers):.2f} s (target <= 1 s each: {_verdict(not slow)}"
            + (f"; over: {', '.join(m.name[7:-9] + f' {m.median:.2f} s' for m in slow)})" if slow else ")")
        )
        for label, (_, helper, options) in polars_counterparts.COUNTERPARTS.items():
            call = f"{helper}({', '.join(f'{k}={v!r}' for k, v in options.items())})"
            duck = by.get((f"helper {call} (DuckDB)", helpers[0].size))
            lazy = by.get((f"helper {label} (polars lazy)", helpers[0].size))
            if duck and lazy:
                times = duck.median / lazy.median
                lines.append(
                    f"{label}: DuckDB {duck.median:.2f} s, polars lazy {lazy.median:.2f} s (the same frame, checked), "
                    f"{times:.1f}x (target <= 2: {_verdict(times <= 2)})"
                )
    if cron:
        s = cron
        lines.append(
            f"cron, {s['days']} days ({s['sessions']:,} sessions): a run takes {s['export_day5_s']:.2f} s on day 5, "
            f"{s['export_last30_median_s']:.2f} s over the last 30 days ({s['export_last30_ratio']:.2f}x; target <= 1.5: "
            f"{_verdict(s['export_last30_ratio'] <= 1.5)}); the slowest run after day 5, day {s['export_slowest_after_day5']['day']}, "
            f"{s['export_slowest_after_day5']['s']:.2f} s ({s['export_slowest_after_day5']['ratio']:.2f}x); "
            f"{s['runs_over_1_5x']} runs over 1.5x; {s['compacting_runs']} runs compacted"
        )
        lines.append(
            f"cron: files per table at the end {s['files_per_table_final']}, at most {s['max_files_per_table']} "
            f"(target < 50: {_verdict(s['max_files_per_table'] < 50)})"
        )
        worst = max(s["helpers"].items(), key=lambda kv: kv[1]["ratio"] or 0) if s["helpers"] else None
        if worst:
            over = [name for name, h in s["helpers"].items() if (h["ratio"] or 0) > 1.5]
            lines.append(
                f"cron helpers: the largest growth from day 5 is {worst[0]} ({worst[1]['day5_s']:.2f} -> "
                f"{worst[1]['worst_later_s']:.2f} s, {worst[1]['ratio']:.1f}x; target <= 1.5: {_verdict(not over)}"
                + (f"; over: {', '.join(over)})" if over else ")")
            )
            layout = {
                n: h["vs_compacted_worst_ratio"] for n, h in s["helpers"].items() if "vs_compacted_worst_ratio" in h
            }
            if layout:
                name, ratio = max(layout.items(), key=lambda kv: kv[1])
                lines.append(
                    f"cron helpers against the same rows compacted to one file per table, on each probed day: "
                    f"at most {ratio:.2f}x ({name}); the rest of the growth is the archive's {s['sessions']:,} sessions"
                )
        for failure in s.get("compact_failures", []):
            lines.append(
                f"cron: `sessionkit compact` of a copy of the dataset FAILED on day {failure['day']}: {failure['error']}"
            )
    return lines


def layout_markdown() -> list[str]:
    lines = ["", "| dataset | table | files | MB |", "| --- | --- | ---: | ---: |"]
    for dataset, tables in LAYOUT.items():
        for table, found in tables.items():
            lines.append(f"| {dataset} | {table} | {found['files']} | {found['bytes'] / 1e6:.1f} |")
    return lines


def cron_markdown(cron: dict) -> list[str]:
    days = cron["days"]
    lines = ["", "| cron day | files changed | export s | messages files | compacted | stats (CLI) s |"]
    lines.append("| ---: | ---: | ---: | ---: | ---: | ---: |")
    shown = {1, 5, 10, 20, 30, 60, 90, 120, 180, 240, 300, len(days)}
    for row in days:
        if row["day"] in shown or row.get("compacted"):
            stats = f"{row['stats_cli_s']:.2f}" if "stats_cli_s" in row else ""
            lines.append(
                f"| {row['day']} | {row['files_written']} | {row['export_s']:.2f} | "
                f"{row['tables']['messages']['files']} | {row.get('compacted') or ''} | {stats} |"
            )
    return lines


def markdown(results: list[Measure], info: dict, notes: list[str]) -> str:
    lines = [
        f"# sessionkit benchmark ({info['date']})",
        "",
        f"Machine: {info['cores']} cores, {info['memory_gb']} GiB, {info['platform']}, Python {info['python']}; "
        f"load average at the start and after each part: {info.get('load_average')}. "
        "Warm cache, bytecode cached (as after pip install); median of the runs; peak memory is the PSS of the whole process tree (pages shared by forked workers counted once).",
        "",
        "| what | sessions | median s | sessions/s | MB/s | peak memory MB |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for m in results:
        r = m.row()
        lines.append(
            f"| {m.name} | {m.size:,} | {r['median_s']:.2f} | {r['sessions_per_s'] or '':,} | {r['mb_per_s'] or ''} | {r['peak_rss_mb']:.0f} |"
            if r["sessions_per_s"]
            else f"| {m.name} | {m.size:,} | {r['median_s']:.2f} | | | {r['peak_rss_mb']:.0f} |"
        )
    lines += ["", *[f"- {n}" for n in notes], ""]
    lines += layout_markdown()
    return "\n".join(lines)


def cache_bytecode() -> None:
    """Measure sessionkit as an installed copy runs: with its bytecode cached.

    pip writes the ``.pyc`` files of what it installs, and Python those of an editable install
    on first import, unless ``PYTHONDONTWRITEBYTECODE`` is set (some CI images and sandboxes
    set it): then every process compiles sessionkit's ~100 modules from source again, which
    adds about 0.07 s to each start-up measured here. So the bytecode is written once, and
    the measured processes may use and write it.
    """
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([PY, "-m", "compileall", "-q", str(ROOT / "sessionkit")], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="20k sessions, 3 runs, helpers on 200k: a few minutes")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes", default="20000,200000")
    parser.add_argument("--helpers-sessions", type=int, default=1_000_000)
    parser.add_argument("--cron-days", type=int, default=365)
    parser.add_argument("--no-spark", action="store_true", help="leave out Spark against DuckDB (the longest part)")
    parser.add_argument("--data", type=Path, default=HERE / "data", help="where generated data sets are cached")
    args = parser.parse_args()
    runs = max(3, args.runs)
    sizes = [20_000] if args.quick else [int(s) for s in args.sizes.split(",")]
    helper_sessions = 200_000 if args.quick else args.helpers_sessions
    cron_days = 40 if args.quick else args.cron_days
    args.data.mkdir(parents=True, exist_ok=True)
    cache_bytecode()
    info = machine()
    print(f"sessionkit benchmark on {info}", flush=True)
    results: list[Measure] = []
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(dir=args.data) as scratch:
        for size in sizes:
            results += bench_files(size, runs, args.data, Path(scratch), with_baselines=True)
            load.append(os.getloadavg()[0])
        results += bench_unchanged(runs, args.data, Path(scratch))
    results += bench_helpers(helper_sessions, runs, args.data)
    load.append(os.getloadavg()[0])
    cron = bench_cron(cron_days, args.data)
    load.append(os.getloadavg()[0])
    spark_rows = [] if args.no_spark else bench_spark(helper_sessions, runs, args.data)
    info["load_average"] = [round(x, 1) for x in load]
    notes = ratios(results, cron["summary"])
    print("\n".join(notes))
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "results.json").write_text(
        json.dumps(
            {
                "machine": info,
                "results": [m.row() for m in results],
                "notes": notes,
                "layout": LAYOUT,
                "cron": cron,
                "spark_vs_duckdb": spark_rows,
            },
            indent=2,
        )
        + "\n"
    )
    text = markdown(results, info, notes) + "\n" + "\n".join(cron_markdown(cron)) + "\n"
    if spark_rows:
        text += "\n" + spark_markdown(spark_rows, helper_sessions)
    (out / "results.md").write_text(text)
    print(f"\nwrote {out / 'results.json'} and {out / 'results.md'}")


if __name__ == "__main__":
    main()
