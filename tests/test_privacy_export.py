"""Privacy end to end: `sessionkit keygen`, `export --pseudonymize --redact mask`, every byte checked."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from conftest import FIXTURE_NAMES, FIXTURES, fixture_files
from polars.testing import assert_frame_equal

import sessionkit as sk
from sessionkit.archive import export, runs
from sessionkit.cli import main
from sessionkit.exceptions import PrivacyError, SessionkitWarning
from sessionkit.model import Session
from sessionkit.privacy import Privacy, load_key

PLANTED = [
    "alice.liddell@example.com",
    "+1 (415) 555-0132",
    "4111 1111 1111 1111",
    "AKIAIOSFODNN7EXAMPLE",
    "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
    "sk-proj-9aB8cD7eF6gH5iJ4kL3mN2oP1qR0sT9u",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "https://admin:hunter2@internal.example.org/db",
    "10.20.30.40",
]


def _plant(src: Path, name: str) -> set[str]:
    """Copy a fixture and plant personal data and secrets in some contents and metadata."""
    users: set[str] = set()
    for i, path in enumerate(fixture_files(name)):
        data = json.loads(path.read_text())
        users.add(data["user_id"])
        if i % 5 == 0 and data["user_messages"]:
            data["user_messages"][0]["content"] += " reach me: " + " ; ".join(PLANTED)
            data["metadata"]["contact"] = PLANTED[i % len(PLANTED)]
        (src / path.name).write_text(json.dumps(data, indent=2, ensure_ascii=False))
    return {u for u in users if u}


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _json_or_none(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _every_text(out: Path) -> tuple[list[str], list[bytes]]:
    """Every string cell of every Parquet file under ``out`` (decompressed), and the raw bytes of every file."""
    cells: list[str] = []
    raws: list[bytes] = []
    for folder, _, names in os.walk(out):
        for name in names:
            path = Path(folder) / name
            raws.append(path.read_bytes())
            if name.endswith(".parquet"):
                table = pq.read_table(path)
                for column in table.columns:
                    if column.type in ("string", "large_string") or str(column.type).startswith(("string", "large")):
                        cells += [v for v in column.to_pylist() if v is not None]
                        cells += [
                            s for v in column.to_pylist() if v and v[:1] in "{[" for s in _strings(_json_or_none(v))
                        ]
    return cells, raws


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_a_private_export_holds_no_user_id_and_no_planted_secret(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "sessions"
    src.mkdir()
    users = _plant(src, name)
    key = tmp_path / "secret.key"
    assert main(["keygen", str(key)]) == 0
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    out = tmp_path / "shared"
    code = main(["export", str(src), str(out), "--pseudonymize", str(key), "--redact", "mask", "-j", "1"])
    assert code == 0, capsys.readouterr().err
    cells, raws = _every_text(out)
    secret = key.read_text().strip()
    for raw in raws:
        assert secret.encode() not in raw and bytes.fromhex(secret) not in raw
        for planted in PLANTED:
            assert planted.encode() not in raw
        for user in users:
            if len(user) >= 4:
                assert user.encode() not in raw
    for cell in cells:
        assert cell not in users, cell
        for planted in PLANTED:
            assert planted not in cell, (planted, cell[:200])
    # what was applied is recorded and shown, never the key
    record = json.loads(runs(out)["privacy"][0].as_py())
    assert record["redact"] == "mask" and record["key_fingerprint"].startswith("sha256:")
    assert sum(record["counts"]["masked"].values()) >= len(PLANTED)
    capsys.readouterr()
    assert main(["stats", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "redact mask" in shown and record["key_fingerprint"] in shown and secret not in shown


def test_analytics_give_the_same_answers_on_the_private_dataset(tmp_path: Path) -> None:
    src = tmp_path / "sessions"
    src.mkdir()
    _plant(src, "oxios-v1")
    clear = tmp_path / "clear"
    export(src, clear, jobs=1)
    private = tmp_path / "private"
    key = sk.privacy.generate_key()
    export(src, private, jobs=1, privacy=Privacy(key, pseudonymize_sessions=True, redact="mask"))
    assert_frame_equal(sk.seed_usage(clear), sk.seed_usage(private))
    assert_frame_equal(sk.persona_usage(clear), sk.persona_usage(private))
    counts = lambda d: sorted(sk.exchange_counts(d)["exchange_count"].to_list())  # noqa: E731
    assert counts(clear) == counts(private)
    assert_frame_equal(sk.turn_latency(clear), sk.turn_latency(private))
    by_user = lambda d: sorted(sk.user_summary(d)["sessions"].to_list())  # noqa: E731
    assert by_user(clear) == by_user(private)
    ids = sk.exchange_counts(private)
    assert ids["session_id"].str.starts_with("s_").all() and ids["user_id"].str.starts_with("u_").all()


def test_the_same_key_gives_the_same_pseudonyms_and_another_key_others(tmp_path: Path) -> None:
    src = FIXTURES / "oxios-edge"
    key_file = tmp_path / "k"
    sk.privacy.write_key(key_file)
    one, two, other = tmp_path / "one", tmp_path / "two", tmp_path / "other"
    export(src, one, jobs=1, privacy=Privacy.from_key_file(key_file))
    export(src, two, jobs=2, privacy=Privacy.from_key_file(key_file))
    export(src, other, jobs=1, privacy=Privacy(sk.privacy.generate_key()))
    users = lambda d: set(sk.read_parquet(d).sessions["user_id"].to_pylist())  # noqa: E731
    assert users(one) == users(two)
    assert not (users(one) - {""}) & users(other)


def test_one_dataset_keeps_one_key(tmp_path: Path) -> None:
    export(FIXTURES / "oxios-v2", tmp_path / "out", jobs=1, privacy=Privacy(sk.privacy.generate_key()))
    with pytest.raises(PrivacyError, match="key_fingerprint"):
        export(FIXTURES / "oxios-v2", tmp_path / "out", jobs=1, privacy=Privacy(sk.privacy.generate_key()))
    with pytest.raises(PrivacyError, match="without"):
        export(FIXTURES / "oxios-v2", tmp_path / "out", jobs=1)


def test_a_private_dataset_restores_to_valid_oxios_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    export(
        FIXTURES / "oxios-v1",
        out,
        jobs=1,
        privacy=Privacy(sk.privacy.generate_key(), pseudonymize_sessions=True, redact="mask"),
    )
    with pytest.warns(
        SessionkitWarning,
        match=r"privacy settings \(user ids are pseudonyms; session ids are pseudonyms; message text was redacted \(mask\); .*not the original ones",
    ):
        assert sk.restore(out, tmp_path / "back") == 300
    for path in (tmp_path / "back" / "sessions").glob("*.json"):
        session = Session.from_json(path.read_bytes(), source=str(path))
        assert session.id.startswith("s_") and path.stem == session.id
    # and the command line says so, once, on stderr
    capsys.readouterr()
    assert main(["restore", str(out), str(tmp_path / "cli"), "-q"]) == 0
    err = capsys.readouterr().err
    assert err.count("warning: ") == 1 and "not the original ones" in err


def test_an_incremental_private_export_skips_unchanged_files(tmp_path: Path) -> None:
    src = tmp_path / "sessions"
    shutil.copytree(FIXTURES / "oxios-v2" / "sessions", src)
    privacy = Privacy(sk.privacy.generate_key(), pseudonymize_sessions=True, redact="mask")
    export(src, tmp_path / "out", jobs=1, privacy=privacy)
    again = export(src, tmp_path / "out", jobs=1, privacy=privacy)
    assert (again.exported, again.unchanged) == (0, 150)
    assert len(sk.read_parquet(tmp_path / "out")) == 150


def test_bad_files_of_a_private_export_stay_out_of_the_dataset(tmp_path: Path) -> None:
    src = tmp_path / "sessions"
    src.mkdir()
    shutil.copy(fixture_files("oxios-v1")[0], src / "good.json")
    (src / "bad.json").write_text('{"id": "x", "user_id": "mallory@example.com", "created_at": 5}')
    out = tmp_path / "out"
    summary = export(src, out, jobs=1, privacy=Privacy(sk.privacy.generate_key(), redact="mask"))
    assert summary.quarantined == 1
    assert not (out / "quarantine").exists() and (tmp_path / "out.quarantine").is_dir()
    _, raws = _every_text(out)
    assert all(b"mallory" not in raw for raw in raws)


def test_privacy_options_need_a_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["export", str(FIXTURES / "oxios-v2"), str(tmp_path / "o"), "--pseudonymize-sessions"])
    assert code == 1 and "needs a key" in capsys.readouterr().err
    code = main(
        ["export", str(FIXTURES / "oxios-v2"), str(tmp_path / "o"), "--pseudonymize", str(tmp_path / "missing.key")]
    )
    assert code == 1 and "missing.key" in capsys.readouterr().err
    assert main(["keygen", str(tmp_path / "k")]) == 0
    assert main(["keygen", str(tmp_path / "k")]) == 1  # never overwrites a key
    assert len(load_key(tmp_path / "k")) == 32


def test_metadata_keys_by_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    allow = tmp_path / "allow.txt"
    allow.write_text("channel\n# a comment\nlocale\n")
    out = tmp_path / "out"
    code = main(["export", str(Path("data/oxios-sample").resolve()), str(out), "--metadata-keys", str(allow), "-q"])
    assert code == 0, capsys.readouterr().err
    keys = set(sk.read_parquet(out).metadata["key"].to_pylist())
    assert keys <= {"channel", "locale"} and keys
    out2 = tmp_path / "out2"
    assert (
        main(
            [
                "export",
                str(Path("data/oxios-sample").resolve()),
                str(out2),
                "--drop-metadata-keys",
                "channel,tags",
                "-q",
            ]
        )
        == 0
    )
    keys2 = set(pl.from_arrow(sk.read_parquet(out2).metadata)["key"].to_list())
    assert "channel" not in keys2 and "tags" not in keys2 and keys2
