"""Worker processes for export and restore: started ahead of need, results in order."""

from __future__ import annotations

import gc
import multiprocessing
import os
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from typing import Any, TypeVar

import pyarrow as pa

from sessionkit import _s3

T = TypeVar("T")
R = TypeVar("R")


# -- parallel machinery --------------------------------------------------------------------------
def default_jobs() -> int:
    """All the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@contextmanager
def no_gc() -> Iterator[None]:
    """Decoding makes millions of short-lived containers that reference counting frees;
    the cyclic collector would only walk them over and over."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _pool_context() -> multiprocessing.context.BaseContext:
    """``fork`` when this process runs no other thread (the workers then start at once and share
    what is already imported), else a fork server (safe beside threads, as in a notebook)."""
    # the AWS SDK under pyarrow's S3 file system runs native threads that threading cannot see,
    # and a forked child of a process that started it crashes on its first request
    if sys.platform.startswith("linux") and threading.active_count() == 1 and not _s3.started():
        return multiprocessing.get_context("fork")
    method = "forkserver" if sys.platform.startswith("linux") else "spawn"
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload(["sessionkit._worker"])
    return context


#: Where ``report_progress`` counts: in a worker, the pool's shared counter; in the main
#: process, a callback set while a task runs there (``jobs`` = 1).
_progress_sink: Callable[[int], None] | None = None


def report_progress(done: int) -> None:
    """Called by a task as it advances (``done`` more items), for the caller's progress bar."""
    if _progress_sink is not None:
        _progress_sink(done)


def _start_worker(environ: dict[str, str], counter: Any = None) -> None:
    """In a new worker: the caller's environment as it is now, no cyclic collector, and the
    pool's progress counter.

    A fork server's children inherit the server's environment, from when it started, so an
    ``AWS_ENDPOINT_URL`` set since (in a notebook cell, say) would not reach them."""
    global _progress_sink
    gc.disable()
    os.environ.clear()
    os.environ.update(environ)
    if counter is not None:

        def add(done: int) -> None:
            with counter.get_lock():
                counter.value += done

        _progress_sink = add


def _warm() -> None:
    """In a new worker: the one-time costs (pyarrow imports pandas on its first conversion)."""
    pa.array([0])


class WorkerPool:
    """``jobs`` worker processes, started ahead of need (their start overlaps the caller's work)
    or, with ``start=False``, by the first ``map`` that uses more than one; none for ``jobs`` =
    1, where ``map`` runs in this process."""

    def __init__(self, jobs: int, *, start: bool = True) -> None:
        self.jobs = jobs
        self.pool: ProcessPoolExecutor | None = None
        self.counter: Any = None  # what the workers' tasks reported done (report_progress)
        self._warming: threading.Thread | None = None
        if start:
            self._start()

    def _start(self) -> None:
        jobs = self.jobs
        if jobs > 1 and self.pool is None:
            context = _pool_context()
            self.counter = context.Value("q", 0)
            self.pool = ProcessPoolExecutor(
                max_workers=jobs,
                mp_context=context,
                initializer=_start_worker,
                initargs=(dict(os.environ), self.counter),
            )
            # start the workers now, warming them up while the caller lists files; a fork server
            # takes a while to come up, so from a thread, not to hold up the caller
            submit = lambda: [self.pool.submit(_warm) for _ in range(jobs)]  # noqa: E731
            if context.get_start_method() == "fork":
                submit()
                self._warming = None
            else:
                self._warming = threading.Thread(target=submit, daemon=True)
                self._warming.start()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            if self._warming is not None:
                self._warming.join()
            self.pool.shutdown(wait=True, cancel_futures=True)

    def map(
        self,
        func: Callable[[T], R],
        tasks: Iterable[T],
        jobs: int | None = None,
        *,
        progress: Callable[[int], None] | None = None,
    ) -> Iterator[R]:
        """``map(func, tasks)``, results in order, at most twice ``jobs`` tasks in flight.

        ``progress(done)`` is called with the running total the tasks report
        (``report_progress``), as it grows, also while a long task runs.
        """
        global _progress_sink
        jobs = self.jobs if jobs is None else min(jobs, self.jobs)
        if jobs > 1:
            self._start()
        if self.pool is None or jobs <= 1:
            done = [0]

            def local(step: int) -> None:
                done[0] += step
                if progress is not None:
                    progress(done[0])

            _progress_sink = local
            try:
                with no_gc():
                    yield from map(func, tasks)
            finally:
                _progress_sink = None
            return
        with self.counter.get_lock():
            self.counter.value = 0
        shown = 0

        def wait(future: Future[R]) -> R:
            nonlocal shown
            while True:
                try:
                    return future.result(timeout=0.2)
                except FutureTimeout:
                    pass
                finally:
                    if progress is not None and self.counter.value != shown:
                        shown = self.counter.value
                        progress(shown)

        window: deque[Future[R]] = deque()
        pending = iter(tasks)
        for task in pending:
            window.append(self.pool.submit(func, task))
            if len(window) >= 2 * jobs:
                break
        while window:
            result = wait(window.popleft())
            following = next(pending, None)
            if following is not None:
                window.append(self.pool.submit(func, following))
            yield result


def ordered_map(func: Callable[[T], R], tasks: Iterable[T], jobs: int) -> Iterator[R]:
    """``map(func, tasks)`` over ``jobs`` worker processes, results in order, few tasks in flight."""
    with WorkerPool(jobs) as pool:
        yield from pool.map(func, tasks)
