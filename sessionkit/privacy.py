"""Privacy at export: keyed pseudonyms for user and session ids, and redaction of free text.

Three layers, each usable alone:

* **Keys**: ``generate_key``, ``write_key`` (a new hex file of mode 0600), ``load_key`` and
  ``key_fingerprint`` (safe to record; never the key).
* **Text**: ``pseudonym`` (HMAC-SHA-256 under the key, ``u_``/``s_``/``h_`` + 24 hex digits)
  and ``mask_text`` (typed placeholders such as ``<EMAIL>`` for personal data and secrets).
* **Tables**: ``Privacy(...).apply(tables)`` rewrites the four Arrow tables of a batch and
  returns ``PrivacyCounts`` of what it did; both are picklable for worker processes.

Pseudonyms are keyed, not plain or salted hashes: user ids such as ``user-1`` are easy to guess,
and anyone could hash guesses. Without the key nobody can, and the same key gives the same
pseudonyms in every run and dataset, so joins and per-user analytics keep working.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import re
import secrets
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import msgspec
import pyarrow as pa

from sessionkit.exceptions import PrivacyError
from sessionkit.model import encode_compact
from sessionkit.tables import SCHEMAS, SessionTables

__all__ = [
    "KEY_BYTES",
    "MIN_KEY_BYTES",
    "PLACEHOLDERS",
    "PSEUDONYM_HEX_DIGITS",
    "REDACT_MODES",
    "Privacy",
    "PrivacyCounts",
    "RedactMode",
    "generate_key",
    "key_fingerprint",
    "load_key",
    "mask_text",
    "pseudonym",
    "read_key_list",
    "scan_text",
    "write_key",
]

#: Bytes of a key made by ``generate_key`` (256 bits), and the fewest ``load_key`` accepts.
KEY_BYTES = 32
MIN_KEY_BYTES = 16
#: Hex digits of a pseudonym after its prefix: 96 bits, so collisions need ~2**48 distinct ids.
PSEUDONYM_HEX_DIGITS = 24
_PREFIXES = {"user": "u_", "session": "s_", "content": "h_"}
_MAX_KEY_FILE_BYTES = 4096

#: ``none`` keeps text; ``drop`` empties it; ``mask`` replaces personal data and secrets with
#: placeholders; ``hash`` replaces each text with its keyed hash (equal texts stay equal).
REDACT_MODES = ("none", "drop", "mask", "hash")
RedactMode = Literal["none", "drop", "mask", "hash"]

#: What each kind of finding becomes in masked text.
PLACEHOLDERS = {
    kind: f"<{kind}>"
    for kind in (
        "PRIVATE_KEY",
        "JWT",
        "URL_CREDENTIALS",
        "TOKEN",
        "AWS_KEY",
        "SECRET",
        "EMAIL",
        "CARD",
        "IPV6",
        "IPV4",
        "PHONE",
    )
}


# -- keys ------------------------------------------------------------------------------------------
def generate_key() -> bytes:
    """A new random key of ``KEY_BYTES`` bytes from the operating system's CSPRNG.

    Example:
        >>> len(generate_key())
        32
    """
    return secrets.token_bytes(KEY_BYTES)


def write_key(path: str | os.PathLike[str], key: bytes | None = None) -> bytes:
    """Create a key file holding ``key`` (default: a new one) as hex, with mode 0600; return the key.

    The file appears complete or not at all, and an existing file (or symlink) is never
    overwritten: losing a key makes every pseudonym made with it unmatchable.

    Raises:
        PrivacyError: ``path`` already exists, or its folder cannot be written.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "sessionkit.key"
        >>> key = write_key(path)
        >>> oct(path.stat().st_mode & 0o777), load_key(path) == key
        ('0o600', True)
    """
    key = generate_key() if key is None else _check_key(key, "the key to write")
    path = Path(path)
    text = (key.hex() + "\n").encode("ascii")
    if os.path.lexists(path):
        raise _exists(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        _write_new(tmp, text)
        try:
            os.link(tmp, path)  # atomic, and fails when path exists
        except FileExistsError:
            raise _exists(path) from None
        except OSError:  # a file system without hard links: create the file in place
            _write_new(path, text)
    except FileExistsError:
        raise _exists(path) from None
    except OSError as err:
        msg = f"{path}: cannot create the key file ({err.strerror or err}). Hint: choose a folder you can write to"
        raise PrivacyError(msg) from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return key


def _write_new(path: Path, data: bytes) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, 0o600)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)  # exactly 0600, whatever the umask
        os.write(fd, data)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)


def _exists(path: Path) -> PrivacyError:
    return PrivacyError(
        f"{path}: already exists; a key file is never overwritten. "
        "Hint: keep using that key, or choose a new file name for a new key"
    )


def load_key(path: str | os.PathLike[str]) -> bytes:
    """Read a key file: hex text (whitespace ignored) of at least ``MIN_KEY_BYTES`` bytes.

    Raises:
        PrivacyError: the file is missing, unreadable, empty, not hex, or too short. The
            message names the file and never quotes its content.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "k"
        >>> _ = path.write_text("00" * 32)
        >>> load_key(path) == bytes(32)
        True
    """
    path = Path(path)
    hint = f"Hint: create a key with `sessionkit keygen {path}` and keep it secret"
    try:
        with open(path, "rb") as handle:
            data = handle.read(_MAX_KEY_FILE_BYTES + 1)
    except FileNotFoundError:
        raise PrivacyError(f"{path}: no such key file. {hint}") from None
    except IsADirectoryError:
        raise PrivacyError(f"{path}: is a folder, not a key file. {hint}") from None
    except OSError as err:
        msg = f"{path}: cannot read the key file ({err.strerror or err}). Hint: check the file's permissions"
        raise PrivacyError(msg) from None
    if len(data) > _MAX_KEY_FILE_BYTES:
        raise PrivacyError(f"{path}: too large to be a key file (over {_MAX_KEY_FILE_BYTES} bytes). {hint}")
    text = b"".join(data.split())
    if not text:
        raise PrivacyError(f"{path}: the key file is empty. {hint}")
    try:
        key = bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise PrivacyError(
            f"{path}: the key file is not hex text (0-9, a-f, an even number of digits). {hint}"
        ) from None
    if len(key) < MIN_KEY_BYTES:
        msg = f"{path}: the key is {len(key)} bytes; at least {MIN_KEY_BYTES} are needed ({KEY_BYTES} recommended). {hint}"
        raise PrivacyError(msg)
    return key


def _check_key(key: object, what: str) -> bytes:
    if not isinstance(key, (bytes, bytearray)):
        msg = f"{what} must be bytes, got {type(key).__name__}. Hint: read it with sessionkit.privacy.load_key"
        raise PrivacyError(msg)
    if len(key) < MIN_KEY_BYTES:
        msg = f"{what} is {len(key)} bytes; at least {MIN_KEY_BYTES} are needed. Hint: make one with generate_key()"
        raise PrivacyError(msg)
    return bytes(key)


def key_fingerprint(key: bytes) -> str:
    """A short fingerprint that tells keys apart without revealing them (for run records).

    It is a domain-separated SHA-256 of the key, cut to 64 bits: it says whether two datasets
    used the same key, and gives nothing that helps to compute pseudonyms.

    Example:
        >>> key_fingerprint(bytes(32))
        'sha256:f1f24d3439889519'
        >>> key_fingerprint(bytes(32)) == key_fingerprint(bytes(32)) != key_fingerprint(bytes(31) + b"x")
        True
    """
    key = _check_key(key, "the key")
    return "sha256:" + hashlib.sha256(b"sessionkit key fingerprint v1\x00" + key).hexdigest()[:16]


# -- pseudonyms -------------------------------------------------------------------------------------
def pseudonym(value: str, *, key: bytes, kind: Literal["user", "session", "content"] = "user") -> str:
    """The keyed pseudonym of ``value``: a prefix (``u_``, ``s_``, ``h_``) and 24 hex digits.

    HMAC-SHA-256 under ``key``, with the kind in the message so a user and a session with the
    same id get unrelated pseudonyms. Deterministic for a key; unguessable without it.

    Example:
        >>> p = pseudonym("user-1", key=bytes(32))
        >>> p.startswith("u_"), len(p), p == pseudonym("user-1", key=bytes(32))
        (True, 26, True)
    """
    prefix = _PREFIXES[kind]
    digest = hmac.digest(key, f"sessionkit/{kind}/v1\x00".encode() + value.encode("utf-8", "surrogatepass"), "sha256")
    return prefix + digest.hex()[:PSEUDONYM_HEX_DIGITS]


# -- masking ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Rule:
    """One kind of finding: its pattern, when to try it, what to replace, and a final check.

    The rule runs only when one of ``needles`` occurs in the text (of ``lower``: in the text
    lower-cased) and ``gate``, a pattern that starts with a literal, finds something.
    ``groups`` hold the value to replace (the first that took part); without them the whole
    match is replaced. Other groups are separators kept for back-references.
    """

    kind: str
    pattern: re.Pattern[str]
    needles: tuple[str, ...] = ()
    lower: tuple[bytes, ...] = ()
    gate: re.Pattern[str] | None = None
    groups: tuple[int, ...] = ()
    check: Callable[[re.Match[str]], bool] | None = None

    def wanted(self, text: str, lowered: Callable[[], bytes]) -> bool:
        """Whether the rule can match ``text`` at all: a few substring tests, much cheaper than a scan."""
        if self.needles and not any(needle in text for needle in self.needles):
            return False
        if self.lower:
            low = lowered()
            if not any(needle in low for needle in self.lower):
                return False
        return self.gate is None or self.gate.search(text) is not None


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_ok(match: re.Match[str]) -> bool:
    digits = match.group(0).replace(" ", "").replace("-", "")
    return digits[0] in "23456" and _luhn(digits)


_VERSION_BEFORE = re.compile(r"(?i)(?:\b(?:version|ver|release|rel|rev|build|v)\.?|[=<>~!]=)\s*$")
_PHONE_BEFORE = re.compile(r"(?i)\b(?:phone|tel|mobile|cell|fax)(?:\s*(?:no|number|nr)\.?)?\s*[:.#]?\s*$")


def _ipv4_ok(match: re.Match[str]) -> bool:
    if any((len(part) > 1 and part[0] == "0") or int(part) > 255 for part in match.group(0).split(".")):
        return False
    return not _VERSION_BEFORE.search(match.string, max(0, match.start() - 12), match.start())


def _ipv6_ok(match: re.Match[str]) -> bool:
    text = match.group(0)
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    address = text.split("%", 1)[0]
    return "." in address or sum(1 for part in address.split(":") if part) >= 2


def _phone_ok(match: re.Match[str]) -> bool:
    return 7 <= sum(ch.isdigit() for ch in match.group(0)) <= 15


# Speed: ``re`` skips fast to where a pattern can start only when the pattern starts with a
# literal (or a class of rare characters). So the patterns that scan whole texts start with one
# and test the character *before* the match with a look-behind placed after it:
# ``sk-(?<![\w-]sk-)`` starts only where ``sk-`` does not continue a word. Patterns that must
# start with a common letter run only when a cheap substring test says they can match.
# Numbers are found once, as runs of digits and separators (``_NUMBER``); only those runs go
# through the card, IPv4 and phone patterns, which may then be as plain as clarity wants.
#
# Idempotence: the rules run in order, each over the output of the one before; no placeholder
# (``<KIND>``) can be matched by any rule, and ``_Masker`` repeats until nothing changes, so
# ``mask_text(mask_text(t)) == mask_text(t)``.
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_RULES: tuple[_Rule, ...] = (
    _Rule(
        "PRIVATE_KEY",
        re.compile(
            r"-----BEGIN[A-Z0-9 ]{0,30} PRIVATE KEY(?: BLOCK)?-----"
            r"(?:[\s\S]*?-----END[A-Z0-9 ]{0,30} PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\s:,-]*)"
        ),
    ),
    _Rule("JWT", re.compile(r"eyJ(?<![\w-]eyJ)[\w-]{5,}\.eyJ[\w-]{5,}\.[\w-]*")),
    _Rule("URL_CREDENTIALS", re.compile(r"://([^\s/?#@:<>\"']*:[^\s/?#<>\"']*)@"), groups=(1,)),
    _Rule("TOKEN", re.compile(r"gh(?<![\w-]gh)[pousr]_[A-Za-z0-9]{30,255}(?![\w-])")),
    _Rule("TOKEN", re.compile(r"github_pat_(?<![\w-]github_pat_)\w{22,255}(?![\w-])")),
    _Rule("TOKEN", re.compile(r"sk-(?<![\w-]sk-)(?=[\w-]*\d)[\w-]{20,}(?![\w-])")),
    _Rule(
        "TOKEN",
        re.compile(r"(?<![\w-])[srp]k_(?:live|test)_[A-Za-z0-9]{16,}(?![\w-])"),
        needles=("k_live_", "k_test_"),
    ),
    _Rule("TOKEN", re.compile(r"xox(?<![\w-]xox)[abposr]-[A-Za-z0-9-]{10,}|xapp-(?<![\w-]xapp-)[A-Za-z0-9-]{10,}")),
    _Rule("TOKEN", re.compile(r"AIza(?<![\w-]AIza)[\w-]{35}(?![\w-])")),
    _Rule("TOKEN", re.compile(r"hooks\.slack\.com/services/[A-Za-z0-9/_-]{20,}")),
    _Rule(
        "AWS_KEY",
        re.compile(r"A(?<![A-Za-z0-9]A)(?:KIA|SIA|BIA|CCA|GPA|IDA|IPA|NPA|NVA|ROA|PKA|SCA)[A-Z0-9]{16}(?![A-Za-z0-9])"),
    ),
    _Rule(
        "AWS_KEY",
        re.compile(
            r"(?i)(?<![\w-])aws_?secret_?(?:access_?)?key[\"']?\s*[:=]\s*[\"']?([A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])"
        ),
        lower=(b"secret",),
        groups=(1,),
    ),
    _Rule(
        "TOKEN",
        re.compile(
            r"(?<![\w-])(?:[Bb]earer\s+((?=[\w.~+/-]*\d)[\w.~+/-]{16,}=*)"
            r"|(?i:authorization)[\"']?\s*[:=]\s*[\"']?(?:(?i:basic|bearer|token|digest)\s+)?([\w.~+/-]{8,}=*))"
        ),
        lower=(b"bearer", b"authorization"),
        groups=(1, 2),
    ),
    _Rule(
        "SECRET",
        re.compile(
            r"(?i)(?<![\w-])(?:[\w-]*?[_-])?"  # an identifier may end in one: DB_PASSWORD, SLACK_BOT_TOKEN
            r"(?:api[_-]?key|(?:client[_-]?)?secret(?:[_-]?key)?|password|passwd|pwd|private[_-]?key"
            r"|(?<=[_-])token|(?:access|auth|refresh)[_-]?token)"
            r"[\"']?\s*[:=]\s*[\"']?([^\s\"',;<>]{6,})"
        ),
        lower=(b"pass", b"pwd", b"secret", b"key", b"token"),
        groups=(1,),
    ),
    _Rule(
        "IPV6",
        re.compile(
            r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}"
            rf"(?:{_OCTET}(?:\.{_OCTET}){{3}}|[0-9A-Fa-f]{{1,4}})?(?:%[\w.-]+)?(?![\w:]|\.\d)"
        ),
        needles=("::",),
        gate=re.compile(r"::(?:(?<=[0-9A-Fa-f]::)|(?=[0-9A-Fa-f]))"),
        check=_ipv6_ok,
    ),
    _Rule(
        "IPV6",  # the long form, without ``::``: eight groups
        re.compile(
            rf"(?<![\w:.])(?:[0-9A-Fa-f]{{1,4}}:){{6}}(?:[0-9A-Fa-f]{{1,4}}:[0-9A-Fa-f]{{1,4}}|{_OCTET}(?:\.{_OCTET}){{3}})"
            r"(?:%[\w.-]+)?(?![\w:]|\.\d)"
        ),
        gate=re.compile(r":[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:"),
        check=_ipv6_ok,
    ),
)

#: A run of digits and separators that does not continue a word and holds at least seven digits
#: or a dotted quad: where cards, IPv4 addresses and phone numbers are looked for.
_NUMBER = re.compile(
    r"[+(\d](?<![\w.+-][+(\d])"
    r"(?=[\d ().+-]*?(?:\d[ ().+-]{0,3}){5}\d|[\d ().+-]*?\.\d{1,3}\.\d{1,3}\.\d)"
    r"[\d ().+-]*\d(?!\w)"
)
_NUMBER_RULES: tuple[_Rule, ...] = (
    _Rule(
        "CARD",
        re.compile(
            r"(?<![\w.+-])(?:\d{13,19}"
            r"|\d{4}( |-)\d{4}\1\d{4}\1\d{1,4}"
            r"|\d{4}( |-)\d{6}\2\d{4,5})"
            r"(?![\w]|-\d|\.\d)"
        ),
        check=_card_ok,
    ),
    _Rule("IPV4", re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?![\w]|\.\d)"), check=_ipv4_ok),
    _Rule(
        "PHONE",
        re.compile(
            r"(?<![\w+.-])\+\d(?:[ .()-]{0,2}\d){6,14}(?!\d|\.\d)"  # international: +<country code> ...
            r"|(?<![\w+.-])(?:1([ .-]))?(?:\([2-9]\d{2}\)[ .-]?|[2-9]\d{2}([ .-]))\d{3}(?(2)\2|[ .-])\d{4}"
            r"(?![\w]|[.-]?\d)"  # North American, optionally after 1
            r"|(?<![\w+.-])0\d{1,4}( |-)\d{2,8}(?:\3\d{2,4}){0,3}(?![\w]|[.-]?\d)"  # national, after a trunk 0
        ),
        check=_phone_ok,
    ),
)
#: An email's domain, from its ``@``; the local part is found by looking back from there.
_EMAIL_DOMAIN = re.compile(r"@(?:[^\W_](?:[\w-]*[^\W_])?\.)+[^\W\d_]{2,63}(?![\w-])")
_EMAIL_LOCAL_REVERSED = re.compile(r"[\w.%+-]{1,64}(?![\w.%+-])")


_MAX_PASSES = 16


class _Masker:
    """Masks texts, counting findings by kind into ``counts`` and listing them in ``found``.

    Building one costs a few microseconds; ``mask_text`` reuses one per thread.
    """

    def __init__(self, counts: Counter[str] | None = None, found: list[tuple[str, str]] | None = None) -> None:
        self.counts = counts
        self.found = found
        self.rules = [(rule, self._replacer(rule)) for rule in _RULES]

    def __call__(self, text: str) -> str:
        # A placeholder next to the rest of the text can make a match that the original did not
        # (``+0000000::0:0`` -> ``<PHONE>::0:0``, an IPv6 address once a word no longer precedes
        # it): mask again until nothing changes. Every match is made of text outside the
        # placeholders, so each pass leaves less of it and this ends; texts in which nothing was
        # found take one pass.
        for _ in range(_MAX_PASSES):
            masked = self._pass(text)
            if masked == text:
                break
            text = masked
        return text

    def _pass(self, text: str) -> str:
        low: list[bytes] = []

        def lowered() -> bytes:  # ASCII lower case is all the needles need, and fast on bytes
            if not low:
                low.append(text.encode("utf-8", "surrogatepass").lower())
            return low[0]

        for rule, replacer in self.rules:
            if rule.wanted(text, lowered):
                masked = rule.pattern.sub(replacer, text)
                if masked != text:
                    text = masked
                    low.clear()
        if "@" in text:
            text = self._emails(text)
        return _NUMBER.sub(self._number, text)

    def _note(self, kind: str, value: str) -> None:
        if self.counts is not None:
            self.counts[kind] += 1
        if self.found is not None:
            self.found.append((kind, value))

    def _replacer(self, rule: _Rule) -> Callable[[re.Match[str]], str]:
        placeholder = PLACEHOLDERS[rule.kind]

        def replace_match(match: re.Match[str]) -> str:
            if rule.check is not None and not rule.check(match):
                return match.group(0)
            g = next((i for i in rule.groups if match.start(i) >= 0), 0)
            self._note(rule.kind, match.group(g))
            if g == 0:
                return placeholder
            whole, offset = match.group(0), match.start()
            return whole[: match.start(g) - offset] + placeholder + whole[match.end(g) - offset :]

        return replace_match

    def _emails(self, text: str) -> str:
        """``text`` with emails masked: a domain after ``@``, and the local part read backwards."""
        parts, at = [], 0
        for match in _EMAIL_DOMAIN.finditer(text):
            start = match.start()
            local = _EMAIL_LOCAL_REVERSED.match(text[max(at, start - 65) : start][::-1])
            if local is None:
                continue
            begin = start - local.end()
            self._note("EMAIL", text[begin : match.end()])
            parts += [text[at:begin], PLACEHOLDERS["EMAIL"]]
            at = match.end()
        if not parts:
            return text
        parts.append(text[at:])
        return "".join(parts)

    def _number(self, run: re.Match[str]) -> str:
        """One run of digits and separators, with the cards, then IPv4 addresses, then phones in it masked.

        Each kind is looked for in the run as the kinds before it left it, after a little of the
        text before the run, which the patterns' look-behinds and the checks may read.
        """
        start = run.start()
        context = max(0, start - 24)
        text, pos = run.string[context : run.end()], start - context
        for rule in _NUMBER_RULES:
            parts, at = [], pos
            for match in rule.pattern.finditer(text, pos):
                if rule.check is None or rule.check(match):
                    self._note(rule.kind, match.group(0))
                    parts += [text[at : match.start()], PLACEHOLDERS[rule.kind]]
                    at = match.end()
            if parts:
                text = text[:pos] + "".join(parts) + text[at:]
        if text[pos:] == run.group(0) and _PHONE_BEFORE.search(text, 0, pos) and _phone_ok(run):
            self._note("PHONE", run.group(0))  # e.g. "phone: 555 0199", "tel. 5550199"
            return PLACEHOLDERS["PHONE"]
        return text[pos:]


_PER_THREAD = threading.local()


def mask_text(text: str, *, counts: Counter[str] | None = None) -> str:
    """``text`` with personal data and secrets replaced by typed placeholders such as ``<EMAIL>``.

    Masked: private key blocks, JWTs, credentials in URLs (``scheme://user:pass@host`` keeps
    scheme and host), GitHub/OpenAI/Slack/Stripe/Google tokens and bearer or ``Authorization``
    values (``<TOKEN>``), AWS access key ids and secret keys (``<AWS_KEY>``), values assigned to
    ``password``/``api_key``/``secret``/``*_token`` (``<SECRET>``), emails, card numbers that
    pass the Luhn check and start with 2-6, IPv6 and IPv4 addresses, and phone numbers
    (international ``+``, North American, ``0``-prefixed national, or after ``phone:``/``tel``).

    Left alone: ISO timestamps, UUIDs, version numbers (``1.2.3``, ``v1.2.3.4``,
    ``version 1.2.3.4``, ``==1.2.3.4``, ``1.2.3.4.5``), dotted quads with a leading zero
    (``01.02.03.04``), ``::1``, and digits in ordinary prose. A bare ``1.2.3.4`` is masked as
    an IPv4 address: when in doubt, privacy wins. ``counts`` (a ``Counter``) gets one per
    masked item, by kind. Masking is idempotent.

    Example:
        >>> mask_text("mail bob@example.com from 10.0.0.7, key AKIAIOSFODNN7EXAMPLE, v1.2.3.4")
        'mail <EMAIL> from <IPV4>, key <AWS_KEY>, v1.2.3.4'
    """
    masker = getattr(_PER_THREAD, "masker", None)
    if masker is None:
        masker = _PER_THREAD.masker = _Masker()
    masker.counts = counts
    try:
        return masker(text)
    finally:
        masker.counts = None


def scan_text(text: str) -> list[tuple[str, str]]:
    """What ``mask_text`` would replace: ``(kind, matched text)`` pairs in the order found.

    Example:
        >>> scan_text("call +44 20 7946 0958 or mail a@b.co")
        [('EMAIL', 'a@b.co'), ('PHONE', '+44 20 7946 0958')]
    """
    found: list[tuple[str, str]] = []
    _Masker(found=found)(text)
    return found


# -- tables ---------------------------------------------------------------------------------------
@dataclass
class PrivacyCounts:
    """What ``Privacy.apply`` did to a batch; add them up over batches with ``+`` or ``sum``.

    Attributes:
        masked: masked items by kind (``EMAIL``, ``PHONE``, ...), over content, extra and metadata.
        users: session rows whose ``user_id`` became a pseudonym.
        sessions: sessions whose id became a pseudonym.
        id_references: other ids rewritten (``response_session_id``, ids in extra or metadata).
        texts_dropped, chars_dropped: contents emptied by ``drop``, and their total length.
        texts_hashed: contents replaced by their keyed hash.
        metadata_rows_dropped: metadata entries left out; ``metadata_keys_dropped`` by key.

    Example:
        >>> total = PrivacyCounts(masked={"EMAIL": 2}) + PrivacyCounts(masked={"EMAIL": 1}, users=3)
        >>> total.masked, total.users
        ({'EMAIL': 3}, 3)
    """

    masked: dict[str, int] = field(default_factory=dict)
    users: int = 0
    sessions: int = 0
    id_references: int = 0
    texts_dropped: int = 0
    chars_dropped: int = 0
    texts_hashed: int = 0
    metadata_rows_dropped: int = 0
    metadata_keys_dropped: dict[str, int] = field(default_factory=dict)

    def __add__(self, other: PrivacyCounts) -> PrivacyCounts:
        if not isinstance(other, PrivacyCounts):
            return NotImplemented
        return PrivacyCounts(
            masked=dict(Counter(self.masked) + Counter(other.masked)),
            users=self.users + other.users,
            sessions=self.sessions + other.sessions,
            id_references=self.id_references + other.id_references,
            texts_dropped=self.texts_dropped + other.texts_dropped,
            chars_dropped=self.chars_dropped + other.chars_dropped,
            texts_hashed=self.texts_hashed + other.texts_hashed,
            metadata_rows_dropped=self.metadata_rows_dropped + other.metadata_rows_dropped,
            metadata_keys_dropped=dict(Counter(self.metadata_keys_dropped) + Counter(other.metadata_keys_dropped)),
        )

    def __radd__(self, other: object) -> PrivacyCounts:
        if other == 0:  # sum() starts from 0
            return self
        return NotImplemented

    def to_dict(self) -> dict[str, Any]:
        """The counts as JSON-ready data, keys sorted, for a dataset's run record.

        Metadata key names are masked, so a key that held an email cannot leak through here.

        Example:
            >>> PrivacyCounts(masked={"PHONE": 1, "EMAIL": 2}).to_dict()["masked"]
            {'EMAIL': 2, 'PHONE': 1}
        """
        dropped: Counter[str] = Counter()
        for name, n in self.metadata_keys_dropped.items():
            dropped[mask_text(name)] += n
        return {
            "masked": dict(sorted(self.masked.items())),
            "masked_total": sum(self.masked.values()),
            "users": self.users,
            "sessions": self.sessions,
            "id_references": self.id_references,
            "texts_dropped": self.texts_dropped,
            "chars_dropped": self.chars_dropped,
            "texts_hashed": self.texts_hashed,
            "metadata_rows_dropped": self.metadata_rows_dropped,
            "metadata_keys_dropped": dict(sorted(dropped.items())),
        }


_JSON = msgspec.json.Decoder()


def _is_session_key(name: str) -> bool:
    return name == "session_id" or name.endswith("_session_id")


def _is_user_key(name: str) -> bool:
    return name == "user_id" or name.endswith("_user_id")


@dataclass(frozen=True)
class Privacy:
    """What to do to a batch of tables before they are written: pseudonyms, redaction, metadata keys.

    Attributes:
        key: the secret key (see ``load_key``); needed for pseudonyms and ``hash``. Never shown
            by ``repr`` or written anywhere; it travels to worker processes only by pickling.
        pseudonymize_users: ``user_id`` becomes ``u_`` + 24 hex digits (HMAC-SHA-256).
        pseudonymize_sessions: session ids become ``s_`` + 24 hex digits in every table,
            in ``response_session_id``, and in extra/metadata values that are session ids.
        redact: what happens to message and response ``content`` (see ``REDACT_MODES``).
            ``drop`` gives ``""`` (the columns are non-null); lengths survive only in the counts.
        keep_metadata_keys: if set, only these metadata keys are kept (an allow-list).
        drop_metadata_keys: these metadata keys are left out.
        mask_extra: mask the strings inside ``extra`` JSON and metadata values (free text such
            as ``reasoning_records``); ``None`` means: whenever ``redact`` is not ``none``.

    What is rewritten, and what is not: the ids in the columns named above; in ``extra`` and
    metadata JSON, any string under a key named ``user_id``/``*_user_id`` or
    ``session_id``/``*_session_id`` (e.g. ``parent_session_id``, also outside the batch), and
    any string equal to a user or session id of the batch. JSON object keys, numbers, seed,
    persona and phase ids, timestamps and ids inside free text are not rewritten. Empty ids
    stay empty: they identify nobody.

    Example:
        >>> import sessionkit as sk
        >>> s = sk.Session.with_id("alice", "s-1")
        >>> s.add_user_message("write to alice@example.com")
        >>> tables, counts = Privacy(bytes(32), redact="mask").apply(sk.to_tables([s]))
        >>> tables.messages["content"].to_pylist(), counts.masked
        (['write to <EMAIL>'], {'EMAIL': 1})
        >>> tables.sessions["user_id"][0].as_py().startswith("u_")
        True
    """

    key: bytes | None = field(default=None, repr=False)
    pseudonymize_users: bool = True
    pseudonymize_sessions: bool = False
    redact: RedactMode = "none"
    keep_metadata_keys: frozenset[str] | None = None
    drop_metadata_keys: frozenset[str] = frozenset()
    mask_extra: bool | None = None

    def __post_init__(self) -> None:
        if self.redact not in REDACT_MODES:
            msg = f"unknown redaction mode {self.redact!r}. Hint: use one of {', '.join(REDACT_MODES)}"
            raise PrivacyError(msg)
        needs_key = self.pseudonymize_users or self.pseudonymize_sessions or self.redact == "hash"
        if self.key is None:
            if needs_key:
                msg = "pseudonyms and redact='hash' need a key. Hint: create one with `sessionkit keygen KEYFILE` and pass load_key(KEYFILE), or set pseudonymize_users=False"
                raise PrivacyError(msg)
        else:
            object.__setattr__(self, "key", _check_key(self.key, "Privacy.key"))
        if self.keep_metadata_keys is not None:
            object.__setattr__(self, "keep_metadata_keys", frozenset(self.keep_metadata_keys))
        object.__setattr__(self, "drop_metadata_keys", frozenset(self.drop_metadata_keys))

    @classmethod
    def from_key_file(cls, path: str | os.PathLike[str], **options: Any) -> Privacy:
        """A ``Privacy`` with the key read from ``path`` (see ``load_key``) and these options.

        Example:
            >>> Privacy.from_key_file("sessionkit.key", redact="mask")  # doctest: +SKIP
        """
        return cls(load_key(path), **options)

    @property
    def fingerprint(self) -> str | None:
        """``key_fingerprint`` of the key, or None without one."""
        return key_fingerprint(self.key) if self.key is not None else None

    @property
    def masks_extra(self) -> bool:
        """Whether strings in ``extra`` and metadata values are masked."""
        return self.redact != "none" if self.mask_extra is None else self.mask_extra

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready data for a run record, with the key's fingerprint (never the key).

        Example:
            >>> Privacy(bytes(32), redact="mask").to_dict()["redact"]
            'mask'
        """
        return {
            "redact": self.redact,
            "pseudonymize_users": self.pseudonymize_users,
            "pseudonymize_sessions": self.pseudonymize_sessions,
            "pseudonym": f"HMAC-SHA-256, prefix + {PSEUDONYM_HEX_DIGITS} hex digits",
            "key_fingerprint": self.fingerprint,
            "mask_extra": self.masks_extra,
            "keep_metadata_keys": sorted(self.keep_metadata_keys) if self.keep_metadata_keys is not None else None,
            "drop_metadata_keys": sorted(self.drop_metadata_keys),
        }

    def run_record(self, counts: PrivacyCounts) -> dict[str, Any]:
        """``to_dict()`` with ``counts.to_dict()`` under ``"counts"``: the ``privacy`` entry of a run record.

        Example:
            >>> Privacy(bytes(32)).run_record(PrivacyCounts(users=2))["counts"]["users"]
            2
        """
        return {**self.to_dict(), "counts": counts.to_dict()}

    @property
    def is_noop(self) -> bool:
        """True when ``apply`` would change nothing."""
        return not (
            self.pseudonymize_users
            or self.pseudonymize_sessions
            or self.redact != "none"
            or self.masks_extra
            or self.keep_metadata_keys is not None
            or self.drop_metadata_keys
        )

    def apply(self, tables: SessionTables) -> tuple[SessionTables, PrivacyCounts]:
        """The tables rewritten by these settings, and counts of what changed.

        The result has the declared schemas, so ``to_sessions()`` and writing Parquet work as
        before, and the sessions still write out as valid oxios files.

        Example:
            >>> import sessionkit as sk
            >>> tables = sk.to_tables([sk.Session.with_id("user-1", "s-1")])
            >>> out, counts = Privacy(bytes(32), pseudonymize_sessions=True).apply(tables)
            >>> out.sessions["session_id"][0].as_py()[:2], counts.sessions
            ('s_', 1)
        """
        if not isinstance(tables, SessionTables):
            msg = f"Privacy.apply takes SessionTables, got {type(tables).__name__}. Hint: build them with sk.to_tables"
            raise TypeError(msg)
        return _Apply(self, tables).run()


class _Apply:
    """One run of ``Privacy.apply`` over one batch, with its memo of pseudonyms and its counts."""

    def __init__(self, privacy: Privacy, tables: SessionTables) -> None:
        self.p = privacy
        self.tables = tables
        self.counts = PrivacyCounts()
        self.masked: Counter[str] = Counter()
        self.mask = _Masker(self.masked)
        self.memo: dict[tuple[str, str], str] = {}
        self.session_ids: frozenset[str] = frozenset(tables.sessions["session_id"].to_pylist())
        self.user_ids: frozenset[str] = frozenset(tables.sessions["user_id"].to_pylist())

    # -- ids
    def ident(self, value: str, kind: Literal["user", "session"]) -> str:
        if not value:
            return value
        out = self.memo.get((kind, value))
        if out is None:
            assert self.p.key is not None
            out = pseudonym(value, key=self.p.key, kind=kind)
            self.memo[(kind, value)] = out
        return out

    def id_column(self, column: pa.ChunkedArray, kind: Literal["user", "session"]) -> pa.Array:
        values = column.to_pylist()
        return pa.array([None if v is None else self.ident(v, kind) for v in values], pa.string())

    # -- JSON
    def rewrite_json(self, text: str | None) -> str | None:
        """Masked strings and rewritten id references inside one cell of JSON text."""
        if text is None:
            return None
        changed = [False]
        value = self.walk(_JSON.decode(text), None, changed)
        return encode_compact(value) if changed[0] else text

    def walk(self, value: Any, key: str | None, changed: list[bool]) -> Any:
        kind = type(value)
        if kind is str:
            new = self.rewrite_string(value, key)
            if new != value:
                changed[0] = True
            return new
        if kind is dict:
            return {k: self.walk(v, k, changed) for k, v in value.items()}
        if kind is list:
            return [self.walk(v, key, changed) for v in value]
        return value

    def rewrite_string(self, value: str, key: str | None) -> str:
        p = self.p
        if (
            p.pseudonymize_sessions
            and value
            and (value in self.session_ids or (key is not None and _is_session_key(key)))
        ):
            self.counts.id_references += 1
            return self.ident(value, "session")
        if p.pseudonymize_users and value and (value in self.user_ids or (key is not None and _is_user_key(key))):
            self.counts.id_references += 1
            return self.ident(value, "user")
        return self.mask(value) if p.masks_extra else value

    def json_column(self, column: pa.ChunkedArray) -> pa.Array:
        return pa.array([self.rewrite_json(v) for v in column.to_pylist()], pa.string())

    def wants_json(self) -> bool:
        return self.p.pseudonymize_sessions or self.p.pseudonymize_users or self.p.masks_extra

    # -- content
    def content_column(self, column: pa.ChunkedArray) -> pa.Array:
        mode = self.p.redact
        texts = column.to_pylist()
        if mode == "drop":
            self.counts.texts_dropped += len(texts)
            self.counts.chars_dropped += sum(len(t) for t in texts)
            return pa.array([""] * len(texts), pa.string())
        if mode == "hash":
            self.counts.texts_hashed += len(texts)
            key = self.p.key
            assert key is not None
            return pa.array([pseudonym(t, key=key, kind="content") if t else t for t in texts], pa.string())
        return pa.array([self.mask(t) for t in texts], pa.string())

    # -- tables
    def run(self) -> tuple[SessionTables, PrivacyCounts]:
        p = self.p
        if p.is_noop:
            return self.tables, self.counts
        out = {name: table for name, table in self.tables.items()}
        out["metadata"] = self.filter_metadata(out["metadata"])
        changes: dict[str, dict[str, pa.Array]] = {name: {} for name in out}
        if p.pseudonymize_users:
            changes["sessions"]["user_id"] = self.id_column(out["sessions"]["user_id"], "user")
            self.counts.users += sum(1 for v in out["sessions"]["user_id"].to_pylist() if v)
        if p.pseudonymize_sessions:
            for name in out:
                changes[name]["session_id"] = self.id_column(out[name]["session_id"], "session")
            self.counts.sessions += sum(1 for v in out["sessions"]["session_id"].to_pylist() if v)
            rsid = out["responses"]["response_session_id"]
            self.counts.id_references += sum(1 for v in rsid.to_pylist() if v)
            changes["responses"]["response_session_id"] = self.id_column(rsid, "session")
        if p.redact != "none":
            for name in ("messages", "responses"):
                changes[name]["content"] = self.content_column(out[name]["content"])
        if self.wants_json():
            for name in ("sessions", "messages", "responses"):
                changes[name]["extra"] = self.json_column(out[name]["extra"])
            changes["metadata"]["value"] = self.json_column(out["metadata"]["value"])
        for name, columns in changes.items():
            out[name] = _with_columns(out[name], columns, name)
        self.counts.masked = dict(self.masked)
        return SessionTables(**out), self.counts

    def filter_metadata(self, table: pa.Table) -> pa.Table:
        keep, drop = self.p.keep_metadata_keys, self.p.drop_metadata_keys
        if keep is None and not drop:
            return table
        keys = table["key"].to_pylist()
        mask = [(keep is None or k in keep) and k not in drop for k in keys]
        dropped = Counter(k for k, kept in zip(keys, mask, strict=True) if not kept)
        if not dropped:
            return table
        self.counts.metadata_rows_dropped += sum(dropped.values())
        self.counts.metadata_keys_dropped = dict(Counter(self.counts.metadata_keys_dropped) + dropped)
        table = table.filter(pa.array(mask, pa.bool_()))
        # ``ord`` numbers each session's keys 0, 1, 2, ... in file order: renumber what is left.
        sids = table["session_id"].to_pylist()
        ords = table["ord"].to_pylist()
        order = sorted(range(len(sids)), key=lambda i: (sids[i], ords[i]))
        new_ord = [0] * len(sids)
        last, n = None, 0
        for i in order:
            n = n + 1 if sids[i] == last else 0
            last = sids[i]
            new_ord[i] = n
        return _with_columns(table, {"ord": pa.array(new_ord, pa.int32())}, "metadata")


def _with_columns(table: pa.Table, columns: dict[str, pa.Array], name: str) -> pa.Table:
    """``table`` with some columns replaced, keeping the declared schema (and its metadata)."""
    if not columns:
        return table
    schema = SCHEMAS[name]
    for column, array in columns.items():
        i = table.schema.get_field_index(column)
        table = table.set_column(i, schema.field(column), array)
    return table.cast(schema) if table.schema.names == schema.names else table


def read_key_list(path: str | os.PathLike[str]) -> frozenset[str]:
    """Metadata key names from a text file: one a line; blank lines and ``#`` comments ignored.

    Raises:
        PrivacyError: the file is missing or unreadable.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "allow.txt"
        >>> _ = path.write_text("# kept\\nchannel\\nproject_id\\n")
        >>> sorted(read_key_list(path))
        ['channel', 'project_id']
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        msg = f"{path}: cannot read the list of metadata keys ({err.strerror or err}). Hint: give a text file with one key a line"
        raise PrivacyError(msg) from None
    except UnicodeDecodeError:
        msg = f"{path}: the list of metadata keys is not UTF-8 text. Hint: give a text file with one key a line"
        raise PrivacyError(msg) from None
    return frozenset(line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))
