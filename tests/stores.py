"""The two stores a dataset can live in, for tests that run once per store (as narwhals runs
its tests once per backend): a folder on disk, and ``s3://`` on a moto server in its own process.

``conftest.store`` gives a ``Store`` per test; the failpoints (``SESSIONKIT_FAILPOINT``) a
run passes on both stores are ``COMMON_POINTS``, and each store adds those of its commit step.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from sessionkit import _s3
from sessionkit.storage import STATE_DIR, writer_lock

#: Where every export stops on both stores when told to (see ``sessionkit._versions.failpoint``).
COMMON_POINTS = ("staging", "part-written", "merged", "before-publish")
#: The commit step's own: the switch on disk, the manifest on S3.
COMMIT_POINTS = {
    "disk": ("before-rename", "after-rename", "before-switch", "after-switch", "after-cleanup"),
    "s3": ("s3-uploaded", "s3-published"),
}
STORES = tuple(COMMIT_POINTS)


def kill_points(*, compaction: bool = False) -> list[tuple[str, str]]:
    """(store, failpoint) pairs: every point of an export (or a compaction) on each store."""
    common = ("compacted",) if compaction else COMMON_POINTS
    return [(store, point) for store in STORES for point in (*common, *COMMIT_POINTS[store])]


@dataclass
class Store:
    """One dataset location in a store, and what a test needs to know of that store."""

    kind: str
    uri: str

    @property
    def path(self) -> Path:
        """On disk, the dataset's folder."""
        return Path(self.uri)

    @property
    def lock_outlives_a_kill(self) -> bool:
        """On S3 a killed writer's lease stays until it goes stale (the kernel drops a flock)."""
        return self.kind == "s3"

    def held(self) -> AbstractContextManager[object]:
        """The writer's lock, held as another writer would hold it."""
        if self.kind == "disk":
            return writer_lock(self.path)
        return _s3.S3Lock(_s3.S3Location.parse(self.uri), _s3.client(), run_id="another")

    def assert_tidy(self) -> None:
        """After a run that recovered: nothing a killed run left behind."""
        if self.kind == "disk":
            state = self.path / STATE_DIR
            assert not [p for p in state.iterdir() if p.name.startswith(("staging-", "current.tmp-"))]
            assert not [p for p in (state / "versions").iterdir() if not p.name.isdigit()]
            assert len(list((state / "versions").iterdir())) <= 2
        else:
            assert objects(self.uri) == listed(self.uri)


def objects(uri: str) -> set[str]:
    """Every parquet object under ``s3://bucket/prefix`` (what a plain glob would read)."""
    location = _s3.S3Location.parse(uri)
    selector = pafs.FileSelector(location.path(), recursive=True, allow_not_found=True)
    return {
        info.path
        for info in _s3.filesystem().get_file_info(selector)
        if info.type == pafs.FileType.File and info.path.endswith(".parquet")
    }


def listed(uri: str) -> set[str]:
    """The parquet files the latest manifest of ``s3://bucket/prefix`` lists, the index included."""
    location = _s3.S3Location.parse(uri)
    latest = _s3.latest_manifest(_s3.filesystem(), location)
    assert latest is not None
    manifest = latest[1]
    keys = {key for files in manifest["files"].values() for key in files} | {manifest["index"]}
    return {location.path(key) for key in keys}


@contextmanager
def moto_server() -> Iterator[str]:
    """An S3 server on a free port of 127.0.0.1, in its own process (so it does not compete
    with the tests for this one's GIL), with the AWS variables pointing at it."""
    pytest.importorskip("moto")  # a test dependency; listed in pyproject.toml
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    running = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or running.poll() is not None:
                running.kill()
                pytest.fail("the moto S3 server did not start")
            time.sleep(0.1)
    names = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL")
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        running.kill()
        running.wait()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
