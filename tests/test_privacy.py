"""Keys, keyed pseudonyms, masking, and the table transform, down to every byte written."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import os
import pickle
import random
import stat
import time
from collections import Counter
from pathlib import Path

import msgspec
import pyarrow as pa
import pytest
from conftest import FIXTURE_NAMES, FIXTURES, in_cluster_order
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from sessionkit.analytics import exchange_counts, persona_usage, seed_usage, stats
from sessionkit.exceptions import PrivacyError, SessionkitError
from sessionkit.model import Session
from sessionkit.oxios import read_sessions
from sessionkit.privacy import (
    Privacy,
    PrivacyCounts,
    check_same_privacy,
    generate_key,
    key_fingerprint,
    load_key,
    mask_text,
    pseudonym,
    read_key_list,
    scan_text,
    write_key,
)
from sessionkit.privacy._keys import KEY_BYTES, PSEUDONYM_HEX_DIGITS
from sessionkit.query import connect
from sessionkit.storage import read_parquet, write_parquet
from sessionkit.tables import SCHEMAS, SessionTables, to_tables

# random-looking keys: bytes(range(32)) occurs by itself in Parquet's bit-packed indices
KEY = hashlib.sha256(b"sessionkit test key").digest()
OTHER_KEY = hashlib.sha256(b"sessionkit other test key").digest()


# -- keys ---------------------------------------------------------------------------------------
def test_generated_keys_are_random_and_long() -> None:
    keys = {generate_key() for _ in range(20)}
    assert len(keys) == 20
    assert all(len(k) == KEY_BYTES for k in keys)


def test_write_key_makes_a_0600_hex_file_and_never_overwrites(tmp_path: Path) -> None:
    old_umask = os.umask(0)  # even with a permissive umask the file is 0600
    try:
        key = write_key(tmp_path / "k")
    finally:
        os.umask(old_umask)
    path = tmp_path / "k"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == key.hex() + "\n"
    assert load_key(path) == key
    with pytest.raises(PrivacyError, match=r"already exists.*Hint:"):
        write_key(path)
    assert load_key(path) == key  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k"]  # no temporary file left behind


def test_write_key_refuses_a_symlink_and_a_missing_folder(tmp_path: Path) -> None:
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(PrivacyError, match="already exists"):
        write_key(tmp_path / "link")
    assert not (tmp_path / "elsewhere").exists()
    with pytest.raises(PrivacyError, match=r"cannot create the key file.*Hint:"):
        write_key(tmp_path / "no" / "such" / "k")


def test_write_key_takes_a_given_key(tmp_path: Path) -> None:
    assert write_key(tmp_path / "k", KEY) == KEY
    assert load_key(tmp_path / "k") == KEY
    with pytest.raises(PrivacyError, match="at least 16"):
        write_key(tmp_path / "short", b"x" * 8)


SECRETISH = "zz-THIS-IS-NOT-HEX-BUT-LOOKS-SECRET"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the key file is empty"),
        (b" \n\t\n", "the key file is empty"),
        (SECRETISH.encode(), "not hex text"),
        (b"abc", "not hex text"),  # odd number of digits
        (b"\xff\xfe\x00", "not hex text"),
        (b"00" * 8, "the key is 8 bytes; at least 16"),
        (b"0" * 10_000, "too large to be a key file"),
    ],
)
def test_bad_key_files_give_clear_errors(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.key"
    path.write_bytes(content)
    with pytest.raises(PrivacyError, match=message) as info:
        load_key(path)
    text = str(info.value)
    assert str(path) in text and "Hint:" in text
    assert "SECRET" not in text  # a key file's content is never quoted


def test_missing_and_unreadable_key_files(tmp_path: Path) -> None:
    with pytest.raises(PrivacyError, match=r"no such key file.*sessionkit keygen"):
        load_key(tmp_path / "nope")
    with pytest.raises(PrivacyError, match="is a folder"):
        load_key(tmp_path)
    locked = tmp_path / "locked.key"
    write_key(locked)
    locked.chmod(0)
    try:
        if os.access(locked, os.R_OK):  # root reads anything
            pytest.skip("this user can read a file of mode 000")
        with pytest.raises(PrivacyError, match=r"cannot read the key file.*Hint:"):
            load_key(locked)
    finally:
        locked.chmod(0o600)


def test_privacy_error_is_a_value_error() -> None:
    assert issubclass(PrivacyError, SessionkitError)
    assert issubclass(PrivacyError, ValueError)


def test_key_fingerprints_tell_keys_apart_and_hide_them() -> None:
    fp = key_fingerprint(KEY)
    assert fp == key_fingerprint(KEY) != key_fingerprint(OTHER_KEY)
    assert fp.startswith("sha256:") and len(fp) == len("sha256:") + 16
    assert KEY.hex()[:8] not in fp
    assert fp[7:] not in hashlib.sha256(KEY).hexdigest()  # not a plain hash of the key


# -- pseudonyms ----------------------------------------------------------------------------------
def test_pseudonyms_are_keyed_hmacs() -> None:
    p = pseudonym("user-1", key=KEY)
    assert p == pseudonym("user-1", key=KEY)
    assert p.startswith("u_") and len(p) == 2 + PSEUDONYM_HEX_DIGITS
    expected = hmac.new(KEY, b"sessionkit/user/v1\x00user-1", "sha256").hexdigest()[:PSEUDONYM_HEX_DIGITS]
    assert p == "u_" + expected
    assert p != pseudonym("user-1", key=OTHER_KEY)
    assert p[2:] not in hashlib.sha256(b"user-1").hexdigest()  # not a plain hash
    assert pseudonym("user-1", key=KEY, kind="session").startswith("s_")
    assert pseudonym("user-1", key=KEY, kind="session")[2:] != p[2:]  # kinds are separated
    assert pseudonym("hi", key=KEY, kind="content").startswith("h_")


# -- masking -------------------------------------------------------------------------------------
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkphbmUifQ.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
PRIVATE_KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n-----END RSA PRIVATE KEY-----"

POSITIVES = [
    ("mail alice.smith@example.com now", "mail <EMAIL> now", "EMAIL"),
    ("<bob+tag@mail.example.co.uk>", "<<EMAIL>>", "EMAIL"),
    ("Ünïcödé@exämple.de", "<EMAIL>", "EMAIL"),
    ("call +1 (415) 555-0132.", "call <PHONE>.", "PHONE"),
    ("or +44 20 7946 0958", "or <PHONE>", "PHONE"),
    ("(212) 555-0187", "<PHONE>", "PHONE"),
    ("212-555-0187", "<PHONE>", "PHONE"),
    ("1-800-555-0199", "<PHONE>", "PHONE"),
    ("06 12 34 56 78", "<PHONE>", "PHONE"),
    ("phone: 5550199", "phone: <PHONE>", "PHONE"),
    ("Tel. 555 0199", "Tel. <PHONE>", "PHONE"),
    ("host 192.168.13.37:8080", "host <IPV4>:8080", "IPV4"),
    ("at (10.0.0.1)", "at (<IPV4>)", "IPV4"),
    ("bare 1.2.3.4 is an address", "bare <IPV4> is an address", "IPV4"),
    ("2001:db8:85a3::8a2e:370:7334", "<IPV6>", "IPV6"),
    ("2001:0db8:85a3:0000:0000:8a2e:0370:7334", "<IPV6>", "IPV6"),
    ("fe80::1ff:fe23:4567:890a%eth0 up", "<IPV6> up", "IPV6"),
    ("::ffff:192.0.2.1", "<IPV6>", "IPV6"),
    ("card 4111 1111 1111 1111 ok", "card <CARD> ok", "CARD"),
    ("4111-1111-1111-1111", "<CARD>", "CARD"),
    ("5555555555554444", "<CARD>", "CARD"),
    ("amex 3782 822463 10005", "amex <CARD>", "CARD"),
    ("pay GB82WEST12345698765432 now", "pay <IBAN> now", "IBAN"),
    ("IBAN DE89 3704 0044 0532 0130 00, thanks", "IBAN <IBAN>, thanks", "IBAN"),  # was half a <PHONE>
    ("FR14 2004 1010 0505 0001 3M02 606 OK", "<IBAN> OK", "IBAN"),
    ("postgres://admin:s3cr3t@db.example.com/x", "postgres://<URL_CREDENTIALS>@db.example.com/x", "URL_CREDENTIALS"),
    ("key AKIAIOSFODNN7EXAMPLE", "key <AWS_KEY>", "AWS_KEY"),
    (
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "aws_secret_access_key = <AWS_KEY>",
        "AWS_KEY",
    ),
    ("ghp_" + "A1b2" * 9, "<TOKEN>", "TOKEN"),
    ("gho_" + "x" * 36, "<TOKEN>", "TOKEN"),
    ("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "<TOKEN>", "TOKEN"),
    ("OPENAI_API_KEY=sk-proj-abc123def456ghi789jkl012", "OPENAI_API_KEY=<TOKEN>", "TOKEN"),
    ("DB_PASSWORD=Tr0ub4dor&3", "DB_PASSWORD=<SECRET>", "SECRET"),
    ("export SLACK_BOT_TOKEN='abcd-1234-efgh'", "export SLACK_BOT_TOKEN='<SECRET>'", "SECRET"),
    ("use sk-proj-abc123def456ghi789jkl012 here", "use <TOKEN> here", "TOKEN"),
    ("xoxb-1234567890-abcdefghij", "<TOKEN>", "TOKEN"),
    ("sk_live_abcdefghijklmnop1234", "<TOKEN>", "TOKEN"),
    ("AIzaSyA-1234567890abcdefghijklmnopqrstu", "<TOKEN>", "TOKEN"),
    ("https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX", "https://<TOKEN>", "TOKEN"),
    ("Authorization: Bearer abcdef1234567890abcdef", "Authorization: Bearer <TOKEN>", "TOKEN"),
    ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "Authorization: Basic <TOKEN>", "TOKEN"),
    (f"token {JWT} end", "token <JWT> end", "JWT"),
    (f"key:\n{PRIVATE_KEY}\nbye", "key:\n<PRIVATE_KEY>\nbye", "PRIVATE_KEY"),
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n", "<PRIVATE_KEY>", "PRIVATE_KEY"),  # cut off
    ('password="hunter2!!"', 'password="<SECRET>"', "SECRET"),
    ("client_secret: abcd1234efgh", "client_secret: <SECRET>", "SECRET"),
    # key-aware: any value under a secret name, however short, in JSON text or plain text
    ("my secret: fun", "my secret: <SECRET>", "SECRET"),
    ('{"api_key":"zzz"}', '{"api_key":"<SECRET>"}', "SECRET"),
    ('{"token": "t1", "n": 1}', '{"token": "<SECRET>", "n": 1}', "SECRET"),
    ('{"secret": {"a": "}", "b": [1]}, "n": 1}', '{"secret": "<SECRET>", "n": 1}', "SECRET"),
    ('{"password": 1234}', '{"password": "<SECRET>"}', "SECRET"),
    ('{"Authorization": "Bearer abc"}', '{"Authorization": "Bearer <SECRET>"}', "SECRET"),
    ("{'apiKey': 'k'}", "{'apiKey': '<SECRET>'}", "SECRET"),
    ('"{\\"X-Api-Key\\":\\"q\\"}"', '"{\\"X-Api-Key\\":\\"<SECRET>\\"}"', "SECRET"),
    ("accessToken=ab&x=2", "accessToken=<SECRET>", "SECRET"),
    ("PGPASSWORD=x psql", "PGPASSWORD=<SECRET> psql", "SECRET"),
    ("credentials: [1, 2]", "credentials: <SECRET>", "SECRET"),
    ('{"password": "cut off', '{"password": "<SECRET>', "SECRET"),
]


@pytest.mark.parametrize(("text", "masked", "kind"), POSITIVES)
def test_mask_finds_each_kind(text: str, masked: str, kind: str) -> None:
    counts: Counter[str] = Counter()
    assert mask_text(text, counts=counts) == masked
    assert counts == {kind: 1}
    assert [k for k, _ in scan_text(text)] == [kind]


NEGATIVES = [
    "2026-05-11T18:14:52.089985710Z",
    "2026-05-11 18:14:52+02:00",
    "at 10:30:45 on 11.05.2026, ratio 3:2:1",
    "123e4567-e89b-12d3-a456-426614174000 and 550E8400-E29B-41D4-A716-446655440000",
    "version 1.2.3.4, v1.2.3.4, ver. 10.0.0.1, numpy==1.26.4.1, pkg>=10.0.0.1",
    "1.2.3.4.5 and 01.02.03.04 and 1.2.3 and 999.1.1.1",
    "in 2024 we had 300 users and 4000 sessions; pages 212-213; 2019-2020",
    "order 1234567890123 and ns 1780507577743926847 and 4111111111111112",
    "pi is 3.14159265358979 and e is 2.718281828459045",
    "std::vector<int> and Foo::bar() and x :: Int and ::1",
    "MAC 00:1a:2b:3c:4d:5e",
    "a-b@c and @mention and user@localhost and email me",
    "sk-learn, task-based, the-skeleton-key-is-long-enough-but-no-digits",
    "bearer bonds and the Bearer of bad news",
    "call_689310756721 and /src/please.rs and tool_call_id",
    "scores 100 200 3000 and 12 34 56",
    "the password is strong; a secret is fun; max_tokens: 4096, tokens=12, password_hint: x",
    '{"token": null, "auth": true, "secret": {}, "api_key": [], "password": ""}',
    "ref AB12CD34EF56GH78IJ and GB82WEST12345698765433 (a wrong check digit)",
    "日本語のテキスト 🚀 naïve Ω — “quotes” and <TOKEN> and <EMAIL>",
    "",
]


@pytest.mark.parametrize("text", NEGATIVES)
def test_mask_leaves_ordinary_text_alone(text: str) -> None:
    assert mask_text(text) == text
    assert scan_text(text) == []


def test_adjacent_findings_are_all_masked() -> None:
    text = "4111 1111 1111 1111 10.0.0.1 +1 (415) 555-0132 10.0.0.2 a@b.co,c@d.io 2001:db8::1 5555555555554444"
    counts: Counter[str] = Counter()
    assert mask_text(text, counts=counts) == "<CARD> <IPV4> <PHONE> <IPV4> <EMAIL>,<EMAIL> <IPV6> <CARD>"
    assert counts == {"CARD": 2, "IPV4": 2, "PHONE": 1, "EMAIL": 2, "IPV6": 1}


@pytest.mark.parametrize(
    "text",
    [
        "(" * 20_000,
        "+ " * 10_000,
        "+(" * 10_000,
        "1 " * 10_000,
        "a:" * 10_000,
        "a@" * 10_000,
        "x@" + "a-" * 10_000,
        "a_" * 10_000 + "password",
        "://a:" * 5_000,
        "authorization:" * 2_000,
        "-----BEGIN RSA PRIVATE KEY-----" * 1_000,
    ],
    ids=lambda text: repr(text[:12]),
)
def test_masking_hostile_text_takes_linear_time(text: str) -> None:
    started = time.perf_counter()
    mask_text(text)
    assert time.perf_counter() - started < 1.0  # about 10 ms each; quadratic patterns took seconds


# hypothesis: generated findings in generated filler are all masked, and masking is idempotent
_words = st.sampled_from(["please", "fix", "the", "report", "data", "Ω", "🚀", "naïve", "日本語", "and", "table", "—"])
_filler = st.lists(_words, min_size=1, max_size=4).map(" ".join)


def _luhn_complete(digits: str) -> str:
    for check in "0123456789":
        candidate = digits + check
        total = 0
        for i, ch in enumerate(reversed(candidate)):
            d = int(ch) * (2 if i % 2 else 1)
            total += d - 9 if d > 9 else d
        if total % 10 == 0:
            return candidate
    raise AssertionError


_label = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=10)
emails = st.builds(
    lambda local, labels, tld: f"{local}@{'.'.join(labels)}.{tld}",
    st.text("abcdefghijklmnopqrstuvwxyz0123456789_+", min_size=1, max_size=12).filter(lambda s: s[0] not in "_+"),
    st.lists(_label, min_size=1, max_size=3),
    st.text("abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=6),
)
ipv4s = st.lists(st.integers(0, 255), min_size=4, max_size=4).map(lambda o: ".".join(map(str, o)))
ipv6s = (
    st.integers(0, 2**128 - 1)
    .map(lambda n: str(ipaddress.IPv6Address(n)))
    .filter(lambda a: sum(1 for part in a.split(":") if part) >= 2)  # "::1", "1::" are not masked
)
cards = st.builds(
    lambda prefix, body, sep: (lambda n: sep.join(n[i : i + 4] for i in range(0, 16, 4)) if sep != "none" else n)(
        _luhn_complete(prefix + body[: 15 - len(prefix)])
    ),
    st.sampled_from(["4", "51", "55", "6011", "2221"]),
    st.text("0123456789", min_size=15, max_size=15),
    st.sampled_from([" ", "-", "none"]),
)
phones = st.one_of(
    st.builds(lambda cc, rest: f"+{cc} {rest}", st.integers(1, 99), st.text("0123456789", min_size=8, max_size=11)),
    st.builds(
        lambda a, b, c: f"({a}) {b}-{c}",
        st.integers(200, 999),
        st.integers(100, 999),
        st.integers(0, 9999).map(lambda n: f"{n:04d}"),
    ),
)
tokens = st.one_of(
    st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", min_size=36, max_size=36).map(
        lambda s: "ghp_" + s
    ),
    st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", min_size=16, max_size=16).map(lambda s: "AKIA" + s),
    st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=24, max_size=40).map(lambda s: "sk-" + s + "9"),
)
secrets = st.builds(
    lambda name, value, form: form.format(name=name, value=value),
    # not "Authorization": its values of 8+ characters are a <TOKEN> (a test above has it)
    st.sampled_from(
        ["password", "api_key", "token", "client_secret", "auth", "X-Api-Key", "accessToken", "PGPASSWORD"]
    ),
    st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=12).filter(
        lambda v: v not in ("basic", "bearer", "token", "digest", "true", "false", "null")
    ),
    st.sampled_from(["{name}={value}", "{name}: {value}", '{{"{name}": "{value}"}}', "{name}='{value}'"]),
)
findings = st.one_of(
    secrets.map(lambda v: ("SECRET", v)),
    emails.map(lambda v: ("EMAIL", v)),
    ipv4s.map(lambda v: ("IPV4", v)),
    ipv6s.map(lambda v: ("IPV6", v)),
    cards.map(lambda v: ("CARD", v)),
    phones.map(lambda v: ("PHONE", v)),
    tokens.map(lambda v: ("AWS_KEY" if v.startswith("AKIA") else "TOKEN", v)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_filler, findings), min_size=1, max_size=6), _filler)
def test_every_generated_finding_is_masked(parts: list[tuple[str, tuple[str, str]]], tail: str) -> None:
    text = " ".join(f"{filler} {value}" for filler, (_, value) in parts) + " " + tail
    counts: Counter[str] = Counter()
    masked = mask_text(text, counts=counts)
    for _, (_, value) in parts:
        assert value not in masked
    assert counts == Counter(kind for _, (kind, _) in parts)
    assert scan_text(masked) == []


hostile_text = st.text(
    alphabet=st.one_of(
        st.sampled_from("0123456789 .:-+()@/_=<>'\"\n abcdefxyzABCDEF%"),
        st.characters(blacklist_categories=("Cs",)),
    ),
    max_size=120,
)


@settings(max_examples=500, deadline=None)
@given(st.one_of(hostile_text, st.lists(st.one_of(hostile_text, findings.map(lambda f: f[1]))).map(" ".join)))
def test_masking_is_idempotent_and_leaves_no_finding(text: str) -> None:
    masked = mask_text(text)
    assert mask_text(masked) == masked
    assert scan_text(masked) == []


# -- the table transform: an export-like flow over the shared fixtures -----------------------------
PLANTS = {  # what is planted -> the part of it that must not survive
    "alice.smith@example.com": "alice.smith@example.com",
    "write to Bob.Jones+ops@mail.example.org please": "Bob.Jones+ops@mail.example.org",
    "call +1 (415) 555-0132": "555-0132",
    "or +44 20 7946 0958": "7946 0958",
    "office (212) 555-0187": "555-0187",
    "my card is 4111 1111 1111 1111": "4111 1111 1111 1111",
    "and 5555555555554444": "5555555555554444",
    "from 192.168.13.37": "192.168.13.37",
    "v6 2001:db8:85a3::8a2e:370:7334": "2001:db8:85a3::8a2e:370:7334",
    "AKIAIOSFODNN7EXAMPLE": "AKIAIOSFODNN7EXAMPLE",
    "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "ghp_" + "Zq9" * 12: "ghp_" + "Zq9" * 12,
    "sk-proj-T3stT0kenAbcdefghijklmnop": "sk-proj-T3stT0kenAbcdefghijklmnop",
    "xoxb-2048-4096-SlackTokenValue": "xoxb-2048-4096-SlackTokenValue",
    JWT: JWT,
    "Authorization: Bearer 9f8e7d6c5b4a39281706f5e4": "9f8e7d6c5b4a39281706f5e4",
    "postgres://admin:S3cr3tPassw0rd@db.internal/x": "S3cr3tPassw0rd",
    PRIVATE_KEY: "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun",
}


def _planted_sessions(name: str) -> list[Session]:
    """The fixture's sessions with the plants in message and response text, metadata and extra."""
    rng = random.Random(name)
    plants = list(PLANTS)
    sessions = read_sessions(FIXTURES / name)
    for i, s in enumerate(sessions):
        for j, m in enumerate(s.user_messages):
            if (i + j) % 3 == 0:
                m.content = f"{m.content} {rng.choice(plants)} {m.content[:20]}"
        for j, r in enumerate(s.agent_responses):
            if (i + j) % 4 == 0:
                r.content = f"{rng.choice(plants)}\n{r.content}"
        s.metadata["contact"] = {"note": rng.choice(plants), "email": "carol@example.net", "user_id": s.user_id}
        for record in s.extra.get("reasoning_records", [])[:1]:
            record["content"] = f"{record['content']} {rng.choice(plants)}"
    return sessions


@pytest.fixture(scope="module")
def clear() -> dict[str, SessionTables]:
    return {name: to_tables(_planted_sessions(name)) for name in FIXTURE_NAMES}


@pytest.fixture(scope="module")
def private(clear: dict[str, SessionTables], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The planted fixtures pseudonymised and masked, written as datasets."""
    privacy = Privacy(KEY, pseudonymize_sessions=True, redact="mask")
    out = {}
    for name, tables in clear.items():
        result, counts = privacy.apply(tables)
        assert counts.masked and counts.users and counts.sessions
        out[name] = write_parquet(result, tmp_path_factory.mktemp("private") / name)
    return out


def _strings(value: object) -> list[str]:
    """Every string in a JSON value: keys and leaves."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [k, *_strings(v)]]
    return []


def _cells(tables: SessionTables) -> list[str]:
    """Every string cell of every table, and every string inside the JSON cells."""
    cells = []
    for _, table in tables.items():
        for field in table.schema:
            if pa.types.is_string(field.type):
                for value in table[field.name].to_pylist():
                    if value is None:
                        continue
                    cells.append(value)
                    if field.name in ("extra", "value", "field_order"):
                        cells.extend(_strings(msgspec.json.decode(value)))
    return cells


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_no_id_plant_or_key_survives_in_any_byte(
    name: str, clear: dict[str, SessionTables], private: dict[str, Path]
) -> None:
    tables = clear[name]
    users = {u for u in tables.sessions["user_id"].to_pylist() if u}
    sessions = set(tables.sessions["session_id"].to_pylist())
    back = read_parquet(private[name])  # the Parquet pages, decompressed
    cells = _cells(back)
    # user ids such as "user-1" are short: they must not be any value, but may be part of free text
    assert not users & set(cells)
    # session ids are UUIDs: long enough to look for inside any text
    text = "\n".join(cells)
    assert not [sid for sid in sessions if len(sid) >= 16 and sid in text]
    assert not [core for core in PLANTS.values() if core in text]
    assert "carol@example.net" not in text
    assert KEY.hex() not in text
    # the raw bytes of every file: footers, statistics and dictionaries included
    raw = [p.read_bytes() for p in private[name].rglob("*") if p.is_file()]
    needles = [c.encode() for c in PLANTS.values()] + [KEY, KEY.hex().encode(), b"carol@example.net"]
    needles += [i.encode() for i in users | sessions if len(i) >= 8]
    assert not [n for n in needles for data in raw if n in data]


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_private_datasets_restore_to_valid_oxios_files(name: str, private: dict[str, Path]) -> None:
    back = read_parquet(private[name])
    for table_name, table in back.items():
        assert table.schema.equals(SCHEMAS[table_name], check_metadata=True)
    sessions = back.to_sessions()
    assert len(sessions) == back.sessions.num_rows
    for s in sessions:
        assert Session.from_json(s.to_json()) == s
        assert s.id.startswith("s_") and (s.user_id == "" or s.user_id.startswith("u_"))


def _pseudonyms(clear: SessionTables, result: SessionTables, *, read_back: bool = True) -> dict[str, str]:
    """Old id -> new id, users and sessions, from the rows of the sessions table; ``read_back``:
    ``result`` was read from a dataset, which holds the rows in partition order."""
    if read_back:
        clear = in_cluster_order(clear)
    mapping = dict(zip(clear.sessions["user_id"].to_pylist(), result.sessions["user_id"].to_pylist(), strict=True))
    mapping.update(
        zip(clear.sessions["session_id"].to_pylist(), result.sessions["session_id"].to_pylist(), strict=True)
    )
    return mapping


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_analytics_are_the_same_on_clear_and_private_data(
    name: str, clear: dict[str, SessionTables], private: dict[str, Path]
) -> None:
    tables = clear[name]
    back = read_parquet(private[name])
    con = connect(private[name])  # a locked connection over the written dataset
    for helper in (seed_usage, persona_usage, stats):
        assert_frame_equal(helper(con), helper(tables))
    rename = _pseudonyms(tables, back)
    clear_counts = exchange_counts(tables).rows()
    private_counts = exchange_counts(con).rows()
    assert sorted(private_counts) == sorted((rename[s], rename[u], n) for s, u, n in clear_counts)
    sql = "SELECT session_id, seq, latency_s, seed_id, phase_reached, evaluation_passed FROM exchanges"
    clear_rows = connect(tables).sql(sql).fetchall()
    private_rows = con.sql(sql).fetchall()
    assert sorted(private_rows, key=repr) == sorted(((rename[r[0]], *r[1:]) for r in clear_rows), key=repr)
    assert len(clear_rows) == tables.messages.join(tables.responses, ["session_id", "seq"], join_type="inner").num_rows


def test_references_to_sessions_follow_their_pseudonyms(
    clear: dict[str, SessionTables], private: dict[str, Path]
) -> None:
    tables, back = clear["oxios-v2"], read_parquet(private["oxios-v2"])
    rename = _pseudonyms(tables, back)
    tables = in_cluster_order(tables)  # row by row as the dataset holds them
    for old, new in zip(
        tables.responses["response_session_id"].to_pylist(),
        back.responses["response_session_id"].to_pylist(),
        strict=True,
    ):
        assert (old is None and new is None) or new == (rename.get(old) or pseudonym(old, key=KEY, kind="session"))
    parents = [json.loads(e).get("parent_session_id") for e in back.sessions["extra"].to_pylist() if e]
    originals = [json.loads(e).get("parent_session_id") for e in tables.sessions["extra"].to_pylist() if e]
    assert [p for p in parents if p] == [pseudonym(p, key=KEY, kind="session") for p in originals if p]
    contacts = [
        json.loads(v)["user_id"]
        for k, v in zip(back.metadata["key"].to_pylist(), back.metadata["value"].to_pylist(), strict=True)
        if k == "contact"
    ]
    assert contacts == back.sessions["user_id"].to_pylist()  # a user id in metadata becomes the same pseudonym


def test_same_key_same_pseudonyms_across_runs_and_datasets(clear: dict[str, SessionTables], tmp_path: Path) -> None:
    privacy = Privacy(KEY, pseudonymize_sessions=True)
    first = read_parquet(write_parquet(privacy.apply(clear["oxios-v1"])[0], tmp_path / "a"))
    second = read_parquet(
        write_parquet(pickle.loads(pickle.dumps(privacy)).apply(clear["oxios-v1"])[0], tmp_path / "b")
    )
    for name in ("sessions", "messages"):
        assert first[name]["session_id"].to_pylist() == second[name]["session_id"].to_pylist()
    assert first.sessions["user_id"].to_pylist() == second.sessions["user_id"].to_pylist()
    # another dataset, same key: the same user gets the same pseudonym
    v2 = privacy.apply(clear["oxios-v2"])[0]
    pairs_v1 = _pseudonyms(clear["oxios-v1"], first)
    pairs_v2 = _pseudonyms(clear["oxios-v2"], v2, read_back=False)
    common = {u for u in clear["oxios-v1"].sessions["user_id"].to_pylist()} & set(
        clear["oxios-v2"].sessions["user_id"].to_pylist()
    )
    assert common and all(pairs_v1[u] == pairs_v2[u] for u in common)
    # another key: nothing in common
    other = Privacy(OTHER_KEY, pseudonymize_sessions=True).apply(clear["oxios-v1"])[0]
    assert not set(first.sessions["user_id"].to_pylist()) & set(other.sessions["user_id"].to_pylist())
    assert not set(first.sessions["session_id"].to_pylist()) & set(other.sessions["session_id"].to_pylist())


def test_the_key_shows_nowhere(clear: dict[str, SessionTables]) -> None:
    privacy = Privacy(KEY, redact="hash")
    assert KEY.hex() not in repr(privacy) and str(KEY) not in repr(privacy)
    record = privacy.run_record(PrivacyCounts())
    assert KEY.hex() not in json.dumps(record)
    assert record["key_fingerprint"] == key_fingerprint(KEY)
    assert record["redact"] == "hash" and record["counts"]["texts_hashed"] == 0
    assert pickle.loads(pickle.dumps(privacy)) == privacy  # it runs in worker processes


def test_drop_empties_content_and_counts_lengths(clear: dict[str, SessionTables]) -> None:
    tables = clear["oxios-edge"]
    result, counts = Privacy(KEY, redact="drop").apply(tables)
    assert set(result.messages["content"].to_pylist()) == {""}
    assert set(result.responses["content"].to_pylist()) == {""}
    lengths = [len(t) for name in ("messages", "responses") for t in tables[name]["content"].to_pylist()]
    assert counts.texts_dropped == len(lengths) and counts.chars_dropped == sum(lengths)
    assert counts.masked  # drop masks the free text in metadata and extra too
    assert all(Session.from_json(s.to_json()) == s for s in result.to_sessions())


def test_hash_keeps_equal_texts_equal(clear: dict[str, SessionTables]) -> None:
    tables = clear["oxios-v1"]
    result, counts = Privacy(KEY, redact="hash", pseudonymize_users=False).apply(tables)
    before, after = tables.messages["content"].to_pylist(), result.messages["content"].to_pylist()
    assert all(a.startswith("h_") for a, b in zip(after, before, strict=True) if b)
    assert len(set(after)) == len(set(before))  # as many distinct texts as before: equal stays equal
    assert result.sessions["user_id"].equals(tables.sessions["user_id"])
    other, _ = Privacy(OTHER_KEY, redact="hash", pseudonymize_users=False).apply(tables)
    assert not set(other.messages["content"].to_pylist()) & set(after) - {""}
    assert counts.texts_hashed == tables.messages.num_rows + tables.responses.num_rows


def test_metadata_keys_are_kept_or_dropped_by_name(clear: dict[str, SessionTables], tmp_path: Path) -> None:
    tables = clear["oxios-v1"]
    kept, counts = Privacy(keep_metadata_keys={"channel", "project_id"}, pseudonymize_users=False).apply(tables)
    assert set(kept.metadata["key"].to_pylist()) == {"channel", "project_id"}
    assert counts.metadata_rows_dropped == tables.metadata.num_rows - kept.metadata.num_rows
    assert counts.metadata_keys_dropped["contact"] == tables.sessions.num_rows
    dropped, _ = Privacy(drop_metadata_keys={"contact"}, pseudonymize_users=False).apply(tables)
    assert "contact" not in dropped.metadata["key"].to_pylist()
    for result in (kept, dropped):  # positions renumbered: the sessions rebuild and restore
        if "n_metadata" in result.sessions.schema.names:  # and the per-session count follows the rows
            per_session = Counter(result.metadata["session_id"].to_pylist())
            assert result.sessions["n_metadata"].to_pylist() == [
                per_session[s] for s in result.sessions["session_id"].to_pylist()
            ]
        by_session: dict[str, list[int]] = {}
        for sid, ord_ in zip(
            result.metadata["session_id"].to_pylist(), result.metadata["ord"].to_pylist(), strict=True
        ):
            by_session.setdefault(sid, []).append(ord_)
        assert all(sorted(v) == list(range(len(v))) for v in by_session.values())
        back = read_parquet(write_parquet(result, tmp_path / f"m{id(result)}")).to_sessions()
        assert all(Session.from_json(s.to_json()) == s for s in back)


def test_counts_add_up_over_batches(clear: dict[str, SessionTables]) -> None:
    sessions = _planted_sessions("oxios-v2")
    privacy = Privacy(KEY, pseudonymize_sessions=True, redact="mask", drop_metadata_keys={"channel"})
    whole = privacy.apply(to_tables(sessions))[1]
    parts = [privacy.apply(to_tables(sessions[i : i + 40]))[1] for i in range(0, len(sessions), 40)]
    assert sum(parts, PrivacyCounts()) == whole
    assert sum(parts) == whole
    assert whole.to_dict()["masked_total"] == sum(whole.masked.values()) > 0


def test_extra_and_metadata_are_masked_only_when_asked(clear: dict[str, SessionTables]) -> None:
    tables = clear["oxios-v2"]
    plain, counts = Privacy(KEY).apply(tables)
    assert not counts.masked
    assert "carol@example.net" in "".join(plain.metadata["value"].to_pylist())
    forced, counts = Privacy(KEY, mask_extra=True).apply(tables)
    assert counts.masked and "carol@example.net" not in "".join(forced.metadata["value"].to_pylist())
    assert forced.messages["content"].equals(tables.messages["content"])  # content untouched with redact=none


def test_nothing_to_do_returns_the_tables_as_they_are(clear: dict[str, SessionTables]) -> None:
    tables = clear["oxios-edge"]
    result, counts = Privacy(pseudonymize_users=False).apply(tables)
    assert result is tables and counts == PrivacyCounts()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"redact": "scramble"}, "unknown redaction mode 'scramble'.*Hint: use one of none, drop, mask, hash"),
        ({}, "need a key.*sessionkit keygen"),
        ({"redact": "hash", "pseudonymize_users": False}, "need a key"),
        ({"key": b"short"}, "at least 16"),
        ({"key": "00" * 32}, "must be bytes"),
    ],
)
def test_bad_privacy_options_are_refused(options: dict, message: str) -> None:
    with pytest.raises(PrivacyError, match=message):
        Privacy(**options)


def test_privacy_from_a_key_file_and_key_lists(tmp_path: Path) -> None:
    key = write_key(tmp_path / "k")
    assert Privacy.from_key_file(tmp_path / "k", redact="mask").fingerprint == key_fingerprint(key)
    (tmp_path / "allow.txt").write_text("# metadata we keep\nchannel\n\n  project_id  \n")
    assert read_key_list(tmp_path / "allow.txt") == {"channel", "project_id"}
    with pytest.raises(PrivacyError, match="cannot read the list"):
        read_key_list(tmp_path / "nope.txt")
    with pytest.raises(TypeError, match="takes SessionTables"):
        Privacy(key).apply([])  # type: ignore[arg-type]


def test_counts_to_dict_names_only_the_keys_of_the_drop_list() -> None:
    # issue 16, F7: names of keys dropped by an allow-list are data ("alice_home_address"), and
    # masking them was not enough; only the drop-list's own names are recorded
    counts = PrivacyCounts(metadata_keys_dropped={"alice_home_address": 2, "channel": 1}, masked={"PHONE": 1})
    assert counts.to_dict()["metadata_keys_dropped"] == {"(others)": 3}
    data = counts.to_dict(named={"channel"})
    assert data["metadata_keys_dropped"] == {"(others)": 2, "channel": 1}
    assert json.loads(json.dumps(data)) == data
    record = Privacy(keep_metadata_keys={"keep"}, drop_metadata_keys={"channel"}, pseudonymize_users=False).run_record(
        counts
    )
    assert "alice" not in json.dumps(record)


def test_a_dataset_does_not_mix_privacy_settings() -> None:
    same = Privacy(KEY, redact="mask", drop_metadata_keys={"channel"})
    record = same.run_record(PrivacyCounts(users=3))
    check_same_privacy(
        json.loads(json.dumps(record)), Privacy(KEY, redact="mask", drop_metadata_keys={"channel"}), dataset="out"
    )
    check_same_privacy(None, None, dataset="out")
    cases = [
        (record, Privacy(OTHER_KEY, redact="mask", drop_metadata_keys={"channel"}), "key_fingerprint was"),
        (
            record,
            Privacy(KEY, redact="drop", drop_metadata_keys={"channel"}),
            "redact was 'mask' in its earlier runs and is 'drop' now",
        ),
        (record, Privacy(KEY, redact="mask"), "drop_metadata_keys was"),
        (record, None, "made with privacy settings, and this one is without them"),
        (None, same, "made without privacy settings, and this one is with them"),
    ]
    for previous, current, message in cases:
        with pytest.raises(PrivacyError, match=message) as info:
            check_same_privacy(previous, current, dataset="out")
        assert str(info.value).startswith("out: ") and "Hint:" in str(info.value)
        assert KEY.hex() not in str(info.value)
