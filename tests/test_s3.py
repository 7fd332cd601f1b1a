"""Datasets on S3, against a real S3-compatible server (moto, in server mode on 127.0.0.1)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
from conftest import BAD, FIXTURES, by_session_id, fixture_files, oracle
from polars.testing import assert_frame_equal
from stores import listed, objects

import sessionkit as sk
from sessionkit import _s3
from sessionkit.archive import errors, export, restore, runs
from sessionkit.exceptions import DatasetLockedError, SourceNotFoundError
from sessionkit.tables import TABLE_NAMES

pytest.importorskip("moto")  # a test dependency; listed in pyproject.toml


def _objects(bucket: str, prefix: str) -> set[str]:
    return objects(f"s3://{bucket}/{prefix}")


def _listed(bucket: str, prefix: str) -> set[str]:
    return listed(f"s3://{bucket}/{prefix}")


def _some_files(tmp_path: Path, fixture: str, n: int) -> Path:
    """A source folder holding the first ``n`` files of a fixture."""
    src = tmp_path / "sessions"
    src.mkdir(parents=True)
    for path in fixture_files(fixture)[:n]:
        shutil.copy(path, src / path.name)
    return src


def _same(a: sk.SessionTables, b: sk.SessionTables) -> None:
    a, b = by_session_id(a), by_session_id(b)
    for name in TABLE_NAMES:
        assert a[name].equals(b[name]), name


def test_export_read_helpers_and_restore_on_s3(bucket: str, tmp_path: Path) -> None:
    uri = f"s3://{bucket}/oxios/v1"
    summary = export(FIXTURES / "oxios-v1", uri, jobs=2)
    assert summary.exported == 300 and summary.out == uri
    local = tmp_path / "local"
    export(FIXTURES / "oxios-v1", local, jobs=1)
    _same(sk.read_parquet(uri), sk.read_parquet(local))
    # the layout: one file per table and worker, side by side
    objects = _objects(bucket, "oxios/v1")
    assert objects == _listed(bucket, "oxios/v1")
    for name in TABLE_NAMES:
        files = [p for p in objects if p.split("/")[3] == name]
        assert 1 <= len(files) <= 2 and all(p.count("/") == 4 for p in files), files
    # the helpers, on a locked connection over S3
    con = sk.connect(uri)
    for helper in (sk.seed_usage, sk.persona_usage, sk.turn_latency):  # every helper: test_spark, test_analytics
        assert_frame_equal(helper(con), helper(local))
    assert_frame_equal(sk.exchange_counts(uri), sk.exchange_counts(local))
    exchanges = oracle("oxios-v1")["exchanges"]
    assert con.sql("SELECT count(*) FROM exchanges").fetchall() == [(exchanges,)]
    frames = sk.scan_parquet(uri)
    assert frames["exchanges"].select("session_id").collect().height == exchanges
    # restore: byte for byte
    assert restore(uri, tmp_path / "back") == 300
    for path in fixture_files("oxios-v1"):
        assert (tmp_path / "back" / "sessions" / path.name).read_bytes() == path.read_bytes()
    assert runs(uri).num_rows == 1 and errors(uri).num_rows == 0


def test_incremental_export_on_s3_equals_a_fresh_one(bucket: str, tmp_path: Path) -> None:
    src = tmp_path / "sessions"
    src.mkdir()
    files = fixture_files("oxios-v2")
    for path in files[:150]:
        shutil.copy(path, src / path.name)
    uri = f"s3://{bucket}/inc"
    first = export(src, uri, jobs=1)
    assert first.exported == 150
    # add files, change one (newer updated_at), prune one
    for path in files[150:]:
        shutil.copy(path, src / path.name)
    changed = src / files[3].name
    raw = json.loads(changed.read_text())
    raw["updated_at"] = "2030-01-01T00:00:00.123456789Z"
    raw["metadata"]["touched"] = True
    changed.write_text(json.dumps(raw, indent=2))
    pruned = src / files[7].name
    pruned_id = json.loads(pruned.read_text())["id"]
    pruned.unlink()
    second = export(src, uri, jobs=2)
    assert second.unchanged == 148 and second.files_rewritten >= 1 and second.files_written == len(TABLE_NAMES)
    # equals a fresh export of the same files plus the pruned session, which the archive keeps
    fresh_src = tmp_path / "fresh"
    shutil.copytree(src, fresh_src)
    shutil.copy(files[7], fresh_src / files[7].name)
    export(fresh_src, tmp_path / "fresh-out", jobs=1)
    _same(sk.read_parquet(uri), sk.read_parquet(tmp_path / "fresh-out"))
    assert pruned_id in sk.read_parquet(uri).sessions["session_id"].to_pylist()
    # the replaced files are gone: a plain glob of the prefix reads exactly the new version
    assert _objects(bucket, "inc") == _listed(bucket, "inc")
    assert runs(uri).num_rows == 2
    # unchanged again: nothing read, nothing uploaded but the run's own tables
    third = export(src, uri, jobs=1)
    assert third.exported == 0 and third.files_written == third.files_rewritten == 0


def test_bad_files_are_quarantined_on_s3(bucket: str, tmp_path: Path) -> None:
    src = tmp_path / "sessions"
    src.mkdir()
    for path in fixture_files("oxios-v1")[:5]:
        shutil.copy(path, src / path.name)
    bad = sorted(BAD.glob("*.json"))[0]
    shutil.copy(bad, src / "broken.json")
    uri = f"s3://{bucket}/q"
    summary = export(src, uri, jobs=1)
    assert summary.quarantined == 1
    table = errors(uri).to_pylist()
    assert len(table) == 1 and table[0]["quarantined_as"].startswith(f"{uri}/quarantine/")
    copy = table[0]["quarantined_as"][len("s3://") :]
    with _s3.filesystem().open_input_stream(copy) as stream:
        assert stream.read() == bad.read_bytes()


def test_a_second_writer_fails_at_once_and_a_stale_lock_is_taken_over(bucket: str) -> None:
    uri = f"s3://{bucket}/locked"
    location = _s3.S3Location.parse(uri)
    with _s3.S3Lock(location, _s3.client(), run_id="first"):
        with pytest.raises(DatasetLockedError, match="is writing this dataset"):
            export(FIXTURES / "oxios-v1", uri, jobs=1)
        assert export(FIXTURES / "oxios-v1", uri, jobs=1, break_lock=True).exported == 300
    # a lock that was not refreshed for longer than its time to live is taken over
    held = _s3.S3Lock(location, _s3.client(), run_id="dead")
    held.__enter__()
    held._stop.set()  # the holder "dies": no refresh, no release
    with mock.patch.object(_s3, "LOCK_TTL_S", 0.0):
        assert export(FIXTURES / "oxios-v1", uri, jobs=1).unchanged == 300


def test_two_writers_cannot_publish_the_same_version(bucket: str, tmp_path: Path) -> None:
    uri = f"s3://{bucket}/race"
    src = _some_files(tmp_path, "oxios-v2", 20)
    export(src, uri, jobs=1)
    for path in fixture_files("oxios-v2")[20:30]:
        shutil.copy(path, src / path.name)
    # a writer that read version 0 (nothing) while another published version 1 meanwhile
    with (
        mock.patch.object(_s3, "latest_manifest", return_value=None),
        pytest.raises(DatasetLockedError, match="another writer published version 1"),
    ):
        export(src, uri, jobs=1)
    assert sk.read_parquet(uri).sessions.num_rows == 20  # version 1, untouched


def test_the_command_line_takes_s3_uris(bucket: str, tmp_path: Path) -> None:
    uri = f"s3://{bucket}/cli"
    run = [sys.executable, "-m", "sessionkit"]
    src = _some_files(tmp_path, "oxios-edge", 40)
    done = subprocess.run([*run, "export", str(src), uri, "-q"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    stats = subprocess.run([*run, "stats", uri, "--json"], capture_output=True, text=True, check=True)
    assert json.loads(stats.stdout)["sessions"] == sk.read_parquet(uri).sessions.num_rows
    sql = subprocess.run(
        [*run, "sql", uri, "SELECT count(*) AS n FROM sessions", "--format", "csv"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert sql.stdout.splitlines()[1] == str(sk.read_parquet(uri).sessions.num_rows)
    back = subprocess.run([*run, "restore", uri, str(tmp_path / "back"), "-q"], capture_output=True, text=True)
    assert back.returncode == 0, back.stderr
    assert len(list((tmp_path / "back" / "sessions").iterdir())) == sk.read_parquet(uri).sessions.num_rows


def test_what_is_not_there_is_said_clearly(bucket: str) -> None:
    with pytest.raises(SourceNotFoundError, match="no sessionkit dataset there"):
        sk.read_parquet(f"s3://{bucket}/nothing")
    with pytest.raises(SourceNotFoundError, match="no bucket"):
        sk.read_parquet("s3://")
    done = subprocess.run(
        [sys.executable, "-m", "sessionkit", "stats", f"s3://{bucket}/nothing"], capture_output=True, text=True
    )
    assert done.returncode != 0 and "Traceback" not in done.stderr and "no sessionkit dataset" in done.stderr


def test_nodes_take_turns_in_one_dataset_and_skip_their_unchanged_files(bucket: str, tmp_path: Path) -> None:
    uri = f"s3://{bucket}/fleet"
    node_a = _some_files(tmp_path / "a", "oxios-v1", 15)
    node_b = _some_files(tmp_path / "b", "oxios-v2", 15)
    assert export(node_a, uri, jobs=1).exported == 15
    assert export(node_b, uri, jobs=1).exported == 15
    again_a, again_b = export(node_a, uri, jobs=1), export(node_b, uri, jobs=1)
    assert (again_a.exported, again_a.unchanged) == (0, 15)  # node b's run did not make node a start over
    assert (again_b.exported, again_b.unchanged) == (0, 15)
    assert sk.read_parquet(uri).sessions.num_rows == 30
    runs_in_files = {
        "-".join(p.rsplit("/", 1)[1].split("-")[1:3]) for p in _objects(bucket, "fleet") if "/sessions/" in p
    }
    assert len(runs_in_files) == 2  # each node's files, named by its own run: none overwrote another's


def _three_exports(tmp_path: Path, uri: str, per_run: int) -> Path:
    """Export ``per_run`` more oxios-v2 files into ``uri`` three times: three files per table."""
    src = tmp_path / "sessions"
    src.mkdir()
    for part in range(3):
        for path in fixture_files("oxios-v2")[part * per_run : (part + 1) * per_run]:
            shutil.copy(path, src / path.name)
        export(src, uri, jobs=1)
    return src


def test_compaction_on_s3(bucket: str, tmp_path: Path) -> None:
    uri = f"s3://{bucket}/compact"
    src = _three_exports(tmp_path, uri, 50)
    before = sk.read_parquet(uri)
    assert all(len([p for p in _objects(bucket, "compact") if f"/{name}/" in p]) == 3 for name in TABLE_NAMES)
    # kills at each step: test_compact.py, on both stores
    result = subprocess.run(
        [sys.executable, "-m", "sessionkit", "compact", uri, "--break-lock"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    _same(sk.read_parquet(uri), before)
    summary = sk.compact(uri)  # nothing left to do
    assert summary.merged == 0
    objects = _objects(bucket, "compact")
    assert objects == _listed(bucket, "compact")
    for name in TABLE_NAMES:
        assert len([p for p in objects if f"/{name}/" in p]) == 1, name
    assert summary.files_after == dict.fromkeys(TABLE_NAMES, 1)
    assert export(src, uri, jobs=1).files_written == 0
    assert restore(uri, tmp_path / "back") == 150


def test_a_stale_file_alone_in_its_date_does_not_stick_an_s3_dataset(bucket: str, tmp_path: Path) -> None:
    # issue 16, F1: on S3 too, a part left empty by the merge once failed every later run
    src = _some_files(tmp_path, "oxios-v1", 3)
    uri = f"s3://{bucket}/stale"
    export(src, uri, jobs=1)
    before = sk.read_parquet(uri)
    path = sorted(src.iterdir())[1]
    raw = json.loads(path.read_text())
    raw["updated_at"] = "2001-01-01T00:00:00Z"  # the clock went back
    raw["created_at"] = "2001-01-01T00:00:00Z"  # and the file is alone in its creation date
    path.write_text(json.dumps(raw, indent=2))
    summary = export(src, uri, jobs=1)
    assert (summary.exported, summary.unchanged, summary.quarantined) == (0, 3, 0)
    _same(sk.read_parquet(uri), before)
    assert _objects(bucket, "stale") == _listed(bucket, "stale")


def test_compaction_deletes_the_replaced_files_in_batches(bucket: str, tmp_path: Path) -> None:
    uri = f"s3://{bucket}/batched"
    _three_exports(tmp_path, uri, 10)
    before = _objects(bucket, "batched")
    calls: list[tuple[str, list[str]]] = []
    real_client = _s3.client

    def spying_client() -> object:
        client = real_client()
        for name in ("delete_object", "delete_objects"):
            real = getattr(client, name)

            def spy(*args: object, _real: object = real, _name: str = name, **kwargs: object) -> object:
                keys = [o["Key"] for o in kwargs["Delete"]["Objects"]] if _name == "delete_objects" else [kwargs["Key"]]
                calls.append((_name, keys))
                return _real(*args, **kwargs)  # type: ignore[operator]

            setattr(client, name, spy)
        return client

    with mock.patch.object(_s3, "client", spying_client):
        sk.compact(uri)
    replaced = before - _objects(bucket, "batched")
    assert len(replaced) >= 3 * len(TABLE_NAMES)  # three files of each table merged into one
    batches = [keys for name, keys in calls if name == "delete_objects"]
    assert len(batches) == 1 and {f"{bucket}/{key}" for key in batches[0]} == replaced
    assert all(keys == [f"batched/{_s3.LOCK}"] for name, keys in calls if name == "delete_object")  # the lease
    # and no empty "folder/" objects, which pyarrow's delete_file leaves when a prefix empties
    listing = _s3.client().list_objects_v2(Bucket=bucket, Prefix="batched/")["Contents"]
    assert not [o["Key"] for o in listing if o["Key"].endswith("/")]


def test_files_s3_refuses_to_delete_are_named_in_a_warning(bucket: str, tmp_path: Path) -> None:
    uri = f"s3://{bucket}/refused"
    _three_exports(tmp_path, uri, 5)
    real_client = _s3.client

    def refusing_client() -> object:
        client = real_client()

        def refuse(**kwargs: object) -> dict[str, object]:
            keys = [o["Key"] for o in kwargs["Delete"]["Objects"]]  # type: ignore[index]
            return {"Errors": [{"Key": key, "Code": "AccessDenied", "Message": "Access Denied"} for key in keys]}

        client.delete_objects = refuse
        return client

    with mock.patch.object(_s3, "client", refusing_client), pytest.warns(sk.SessionkitWarning) as caught:
        sk.compact(uri)
    message = str(caught[0].message)
    assert "could not be deleted (AccessDenied on refused/" in message and "s3:DeleteObject" in message
    assert _objects(bucket, "refused") > _listed(bucket, "refused")  # left, unlisted: reads are right
    assert sk.read_parquet(uri).sessions.num_rows == 15
    sk.compact(uri)  # the next write deletes them
    assert _objects(bucket, "refused") == _listed(bucket, "refused")
