"""Datasets on S3 (``s3://bucket/prefix``): where things are, the connection, the manifest, the lock.

S3 has no rename, so a dataset there is versioned by manifests instead of a symlink::

    s3://bucket/prefix/_sessionkit/manifests/000007.json   (version 7: every file of every table)
    s3://bucket/prefix/_sessionkit/lock                     (the one writer's lease)
    s3://bucket/prefix/_sessionkit/state/files-<run>.parquet   (what the archive knows of its sources)
    s3://bucket/prefix/<table>/created_date=2026-05-01/part-<run>-00003.parquet
    s3://bucket/prefix/_sessionkit.json                      (a copy of the latest manifest)

A writer uploads new, immutable, run-named files first, then creates the next manifest with a
conditional write (``If-None-Match: *``), so two writers can never both publish version N+1;
then it deletes the files that the new version no longer lists. Readers take the highest
manifest and read exactly the files it lists: one consistent version.

Credentials, region and endpoint come from the usual AWS settings: ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_PROFILE`` and ``~/.aws``,
``AWS_REGION`` or ``AWS_DEFAULT_REGION``, and ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL``
for an S3-compatible store (MinIO, Ceph, moto). Reading needs only pyarrow; writing also
needs boto3 (``pip install 'sessionkit[s3]'``), for the conditional writes.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from sessionkit.exceptions import DatasetError, DatasetLockedError, MissingDependencyError, SourceNotFoundError

SCHEME = "s3://"
STATE = "_sessionkit"
MANIFESTS = f"{STATE}/manifests"
LOCK = f"{STATE}/lock"
#: A lock not refreshed for this long belongs to a writer that died; the next writer takes it over.
LOCK_TTL_S = 120.0


def is_s3(location: object) -> bool:
    """True when ``location`` is an ``s3://`` URI."""
    return isinstance(location, str) and location.startswith(SCHEME)


@dataclass(frozen=True)
class S3Location:
    """A dataset's place on S3: a bucket and a key prefix (without a trailing slash)."""

    bucket: str
    prefix: str

    @classmethod
    def parse(cls, uri: str) -> S3Location:
        """``s3://bucket/some/prefix`` → bucket and prefix."""
        bucket, _, prefix = uri[len(SCHEME) :].partition("/")
        if not bucket:
            msg = f"{uri}: no bucket. Hint: write s3://BUCKET/PREFIX"
            raise SourceNotFoundError(msg)
        return cls(bucket, prefix.strip("/"))

    @property
    def uri(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.prefix}".rstrip("/")

    def key(self, relative: str) -> str:
        """The object key of ``relative`` (a path inside the dataset)."""
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def path(self, relative: str = "") -> str:
        """``bucket/key``: how pyarrow's S3 file system names ``relative``."""
        return f"{self.bucket}/{self.key(relative)}".rstrip("/")


def _endpoint() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def _region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


_filesystems: dict[tuple[str | None, str], Any] = {}


def started() -> bool:
    """True once this process made an S3 file system (and so runs the AWS SDK's threads)."""
    return bool(_filesystems)


def filesystem() -> Any:
    """pyarrow's S3 file system, set up from the AWS environment (one per endpoint and region)."""
    from pyarrow import fs

    endpoint, region = _endpoint(), _region()
    cached = _filesystems.get((endpoint, region))
    if cached is not None:
        return cached
    options: dict[str, Any] = {"region": region}
    if endpoint:
        parsed = urlparse(endpoint if "://" in endpoint else f"https://{endpoint}")
        options["endpoint_override"] = parsed.netloc
        options["scheme"] = parsed.scheme
    made = fs.S3FileSystem(**options)
    _filesystems[(endpoint, region)] = made
    return made


def client() -> Any:
    """A boto3 S3 client from the AWS environment, for the writes that must be conditional."""
    try:
        import boto3
    except ImportError:
        msg = "writing a dataset to s3:// needs boto3"
        raise MissingDependencyError(msg, name="boto3", hint="pip install 'sessionkit[s3]'") from None
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=_endpoint(), region_name=_region(), config=Config(max_pool_connections=32))


def _error_code(err: Exception) -> str:
    return str(getattr(err, "response", {}).get("Error", {}).get("Code", ""))


def is_precondition_failure(err: Exception) -> bool:
    """True for S3's answer to a conditional write that lost: 412, or 409 for a race in flight."""
    return _error_code(err) in {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}


# -- manifests --------------------------------------------------------------------------------------
def manifest_versions(fs: Any, location: S3Location) -> list[int]:
    """The version numbers of the dataset's manifests, ascending."""
    from pyarrow import fs as pafs

    infos = fs.get_file_info(pafs.FileSelector(location.path(MANIFESTS), allow_not_found=True))
    numbers = []
    for info in infos:
        name = info.base_name
        if name.endswith(".json") and name[:-5].isdigit():
            numbers.append(int(name[:-5]))
    return sorted(numbers)


def manifest_name(version: int) -> str:
    return f"{MANIFESTS}/{version:06d}.json"


def read_manifest(fs: Any, location: S3Location, version: int) -> dict[str, Any]:
    with fs.open_input_stream(location.path(manifest_name(version))) as stream:
        return json.loads(stream.read())


def latest_manifest(fs: Any, location: S3Location) -> tuple[int, dict[str, Any]] | None:
    """The highest version and its manifest, or None when nothing was published yet."""
    try:
        versions = manifest_versions(fs, location)
    except OSError as err:
        msg = f"{location.uri}: cannot list the dataset ({err}). Hint: check the bucket name, AWS credentials and AWS_ENDPOINT_URL"
        raise DatasetError(msg) from err
    if not versions:
        return None
    return versions[-1], read_manifest(fs, location, versions[-1])


# -- the writer's lock -----------------------------------------------------------------------------------
class S3Lock:
    """The one-writer lease of a dataset on S3: ``_sessionkit/lock``, created only if absent.

    The holder refreshes it every ``ttl / 4`` seconds; a lock not refreshed for ``ttl``
    seconds is stale (its writer died) and the next writer takes it over with a write that
    succeeds only if the lock is still the stale one (``If-Match``). ``break_lock`` takes
    over a live lock too, for a writer known to be dead. The lock makes a second writer fail
    at once; the conditional write of each manifest guarantees, even if the lock were
    broken, that two writers cannot both publish the same version.
    """

    def __init__(
        self, location: S3Location, s3: Any, *, run_id: str, ttl: float | None = None, break_lock: bool = False
    ) -> None:
        self.location, self.s3, self.break_lock = location, s3, break_lock
        self.ttl = LOCK_TTL_S if ttl is None else ttl
        self.key = location.key(LOCK)
        self.body = json.dumps(
            {"holder": f"{socket.gethostname()} pid {os.getpid()}", "run_id": run_id, "since": time.time()}
        ).encode()
        self.etag: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> S3Lock:
        self.etag = self._acquire()
        self._thread = threading.Thread(target=self._refresh, name="sessionkit-s3-lock", daemon=True)
        self._thread.start()
        return self

    def _put(self, **condition: str) -> str:
        answer = self.s3.put_object(Bucket=self.location.bucket, Key=self.key, Body=self.body, **condition)
        return answer["ETag"]

    def _acquire(self) -> str:
        try:
            return self._put(IfNoneMatch="*")
        except Exception as err:
            if not is_precondition_failure(err):
                raise _s3_error(self.location, "cannot create the lock", err) from err
        try:
            held = self.s3.get_object(Bucket=self.location.bucket, Key=self.key)
        except Exception as err:  # released between our two requests: try once more
            if _error_code(err) in {"NoSuchKey", "404"}:
                return self._put(IfNoneMatch="*")
            raise _s3_error(self.location, "cannot read the lock", err) from err
        age = time.time() - held["LastModified"].timestamp()
        try:
            holder = json.loads(held["Body"].read()).get("holder", "another process")
        except ValueError:
            holder = "another process"
        if not (self.break_lock or age > self.ttl):
            msg = (
                f"{self.location.uri}: another sessionkit process is writing this dataset ({holder}, lock refreshed {age:.0f} s ago). "
                f"Hint: wait for it to finish; if that writer died, its lock goes stale {self.ttl:.0f} s after its last "
                "refresh, or run with --break-lock"
            )
            raise DatasetLockedError(msg)
        try:
            return self._put(IfMatch=held["ETag"])  # take over exactly the lock we judged stale
        except Exception as err:
            if is_precondition_failure(err):
                msg = f"{self.location.uri}: another export took over the stale lock first. Hint: wait for it to finish, then run again"
                raise DatasetLockedError(msg) from None
            raise _s3_error(self.location, "cannot take over the lock", err) from err

    def _refresh(self) -> None:
        while not self._stop.wait(self.ttl / 4):
            try:
                self.etag = self._put(IfMatch=self.etag or "")
            except Exception:  # taken over or unreachable: the manifest's conditional write still guards
                return

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            held = self.s3.head_object(Bucket=self.location.bucket, Key=self.key)
            if held["ETag"] == self.etag:
                self.s3.delete_object(Bucket=self.location.bucket, Key=self.key)
        except Exception:
            pass  # gone or taken over: not ours to delete


def _s3_error(location: S3Location, what: str, err: Exception) -> DatasetError:
    return DatasetError(f"{location.uri}: {what} ({err}). Hint: check the bucket, AWS credentials and AWS_ENDPOINT_URL")
