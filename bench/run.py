"""The sessionkit benchmark: export, restore and helpers against the floor and the baselines.

Everything is measured in this one run, on this machine, warm cache, as the median of
``--runs`` runs (at least 3), each a separate process whose peak memory (PSS of the whole
process tree, workers included) is sampled. Results go to bench/results/ as JSON and a
markdown table.

usage: python bench/run.py [--quick] [--runs N] [--sizes 20000,200000] [--helpers-sessions 1000000]
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
def _generate_chunk(args: tuple[str, int, int]) -> int:
    from sessionkit.generate import generate_sessions
    from sessionkit.model import encode_session

    folder, seed, count = args
    for session in generate_sessions(count, seed=seed, users=max(5, count // 12)):
        path = os.path.join(folder, f"{session.id}.json")
        with open(path, "wb") as handle:
            handle.write(encode_session(session))
        os.utime(path, ns=(session.updated_at.ns, session.updated_at.ns))  # as oxios leaves it
    return count


def dataset_of(size: int, data: Path) -> Path:
    """``data/s<size>/sessions`` from the demo generator (seeded, cached between runs)."""
    folder = data / f"s{size}" / "sessions"
    stamp = folder.parent / "complete-v2"  # v2: files' mtimes are their sessions' updated_at
    if stamp.exists():
        return folder.parent
    shutil.rmtree(folder.parent, ignore_errors=True)
    folder.mkdir(parents=True)
    chunk = 5000
    tasks = [(str(folder), 1000 + i, min(chunk, size - i * chunk)) for i in range((size + chunk - 1) // chunk)]
    started = time.perf_counter()
    with Pool(os.cpu_count() or 2) as pool:
        pool.map(_generate_chunk, tasks)
    stamp.write_text(f"{size}\n")
    print(f"generated {size:,} sessions in {time.perf_counter() - started:.0f} s", flush=True)
    return folder.parent


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
    # restore from one export
    dataset = scratch / "dataset"
    shutil.rmtree(dataset, ignore_errors=True)
    run_tree([EXE, "export", str(state), str(dataset), "--quiet"])
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


HELPER_CALLS = {
    "exchange_counts": "sk.exchange_counts(data)",
    "seed_usage by day": "sk.seed_usage(data, by='day')",
    "persona_usage by user": "sk.persona_usage(data, by='user')",
    "evaluation_rates by seed": "sk.evaluation_rates(data, by='seed')",
    "turn_latency": "sk.turn_latency(data)",
}

POLARS_CALLS = {
    "exchange_counts": "lf['sessions'].select('session_id', 'user_id', 'exchange_count').sort('session_id').collect()",
    "seed_usage by day": (
        "lf['sessions'].group_by(pl.col('created_at').dt.truncate('1d').alias('day'), pl.col('active_seed_id'))"
        ".agg(pl.len().alias('sessions'), pl.col('user_id').n_unique().alias('users')).sort('day', 'sessions').collect()"
    ),
    "persona_usage by user": (
        "lf['sessions'].group_by('user_id', 'active_persona_id').agg(pl.len().alias('sessions'),"
        " pl.col('exchange_count').sum().alias('exchanges')).sort('user_id', 'active_persona_id').collect()"
    ),
    "evaluation_rates by seed": (
        "lf['responses'].group_by('seed_id').agg((pl.col('evaluation_passed') == True).sum().alias('passed'),"
        " (pl.col('evaluation_passed') == False).sum().alias('failed'), pl.col('evaluation_passed').null_count().alias('unknown'))"
        ".sort('seed_id').collect()"
    ),
    "turn_latency": (
        "lf['exchanges'].select(pl.len(), pl.col('latency_s').mean().alias('mean'), pl.col('latency_s').quantile(0.5).alias('p50'),"
        " pl.col('latency_s').quantile(0.9).alias('p90'), pl.col('latency_s').quantile(0.99).alias('p99'), pl.col('latency_s').max()).collect()"
    ),
}


def bench_helpers(sessions: int, runs: int, data: Path) -> list[Measure]:
    folder = data / f"synth{sessions}"
    if not (folder / "_sessionkit.json").exists():
        shutil.rmtree(folder, ignore_errors=True)
        run_tree([PY, str(HERE / "synth.py"), str(folder), str(sessions)])
    results = []
    for label, call in HELPER_CALLS.items():
        code = f"import sessionkit as sk, time; data = {str(folder)!r}; t = time.perf_counter(); {call}; print(time.perf_counter() - t)"
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
    for label, call in POLARS_CALLS.items():
        code = (
            f"import sessionkit as sk, polars as pl, time; lf = sk.scan_parquet({str(folder)!r}); "
            f"t = time.perf_counter(); {call}; print(time.perf_counter() - t)"
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


def ratios(results: list[Measure]) -> list[str]:
    lines = []
    by = {(m.name, m.size): m for m in results}
    for size in sorted({m.size for m in results if m.mb}):
        floor = by.get(("floor: read + typed msgspec decode", size))
        export = by.get(("sessionkit export (all cores)", size))
        if not (floor and export):
            continue
        lines.append(
            f"size {size:,}: export {export.mb / export.median:.0f} MB/s = {export.median / floor.median:.2f}x the floor's time"
        )
        for base in ("baseline: json + pandas.json_normalize", "baseline: DuckDB read_json + COPY"):
            if (base, size) in by:
                lines.append(
                    f"size {size:,}: export is {by[(base, size)].median / export.median:.1f}x faster than {base[10:]}"
                )
        rerun = by.get(("sessionkit export re-run, nothing changed", size))
        if rerun:
            lines.append(
                f"size {size:,}: a re-run with nothing changed takes {rerun.median / export.median:.0%} of a full export"
            )
        restore = by.get(("sessionkit restore (all cores)", size))
        if restore:
            lines.append(f"size {size:,}: restore {restore.sessions / restore.median:,.0f} sessions/s")
    return lines


def markdown(results: list[Measure], info: dict, notes: list[str]) -> str:
    lines = [
        f"# sessionkit benchmark ({info['date']})",
        "",
        f"Machine: {info['cores']} cores, {info['memory_gb']} GiB, {info['platform']}, Python {info['python']}. "
        "Warm cache; median of the runs; peak memory is the PSS of the whole process tree (pages shared by forked workers counted once).",
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
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="20k sessions, 3 runs, helpers on 200k: a few minutes")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes", default="20000,200000")
    parser.add_argument("--helpers-sessions", type=int, default=1_000_000)
    parser.add_argument("--data", type=Path, default=HERE / "data", help="where generated data sets are cached")
    args = parser.parse_args()
    runs = max(3, args.runs)
    sizes = [20_000] if args.quick else [int(s) for s in args.sizes.split(",")]
    helper_sessions = 200_000 if args.quick else args.helpers_sessions
    args.data.mkdir(parents=True, exist_ok=True)
    info = machine()
    print(f"sessionkit benchmark on {info}", flush=True)
    results: list[Measure] = []
    with tempfile.TemporaryDirectory(dir=args.data) as scratch:
        for size in sizes:
            results += bench_files(size, runs, args.data, Path(scratch), with_baselines=True)
    results += bench_helpers(helper_sessions, runs, args.data)
    spark_rows = bench_spark(helper_sessions, runs, args.data)
    notes = ratios(results)
    print("\n".join(notes))
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "results.json").write_text(
        json.dumps(
            {"machine": info, "results": [m.row() for m in results], "notes": notes, "spark_vs_duckdb": spark_rows},
            indent=2,
        )
        + "\n"
    )
    (out / "results.md").write_text(markdown(results, info, notes) + "\n" + spark_markdown(spark_rows, helper_sessions))
    print(f"\nwrote {out / 'results.json'} and {out / 'results.md'}")


if __name__ == "__main__":
    main()
