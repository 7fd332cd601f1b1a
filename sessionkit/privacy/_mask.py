"""Masking: personal data and secrets in free text replaced by typed placeholders such as ``<EMAIL>``."""

from __future__ import annotations

import bisect
import ipaddress
import re
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

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
        "IBAN",
        "IPV6",
        "IPV4",
        "PHONE",
    )
}


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
    address = text.split("%", 1)[0]
    if "." not in address and sum(1 for part in address.split(":") if part) < 2:
        return False  # ``::1``, ``1::``: cheap to tell, and common
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


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
# (``<KIND>``) can be matched by any rule, and ``Masker`` repeats until nothing changes, so
# ``mask_text(mask_text(t)) == mask_text(t)``.
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
#: Before the key-aware secrets: tokens of a known shape, so ``api_key=sk-…`` counts as a TOKEN.
_RULES: tuple[_Rule, ...] = (
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
)
#: After the key-aware secrets (``Masker._secrets``): IPv6 addresses.
_RULES_AFTER: tuple[_Rule, ...] = (
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

#: Names that say their value is a secret; ``_`` stands for an optional ``_`` or ``-``. A key
#: or variable named by one of them, or ending in one after a separator or a camelCase hump
#: (``DB_PASSWORD``, ``x-api-key``, ``accessToken``, ``client_secret``), holds a secret.
SECRET_NAMES = (
    "api_key",
    "secret",
    "secrets",
    "secret_key",
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "private_key",
    "access_key",
    "token",
    "authorization",
    "auth",
    "credential",
    "credentials",
)
#: Words that make any name ending in them a secret's, even without a separator: ``PGPASSWORD``.
SECRET_SUFFIXES = ("password", "passwd", "passphrase")
_SECRET_NAME_KEY = re.compile(
    r"(?:(?:^|_)(?:" + "|".join(name.replace("_", "_?") for name in SECRET_NAMES) + r")"
    r"|" + "|".join(SECRET_SUFFIXES) + r")$"
)
_HUMP = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def is_secret_name(name: str) -> bool:
    """Whether a JSON key or variable name says its value is a secret (see ``SECRET_NAMES``).

    Example:
        >>> [is_secret_name(k) for k in ("api_key", "X-Api-Key", "accessToken", "max_tokens", "key")]
        [True, True, True, False, False]
    """
    return _SECRET_NAME_KEY.search(_HUMP.sub("_", name).lower().replace("-", "_")) is not None


#: A scheme word before a credential, kept: ``"Authorization": "Bearer <SECRET>"``. Possessive,
#: so a value already masked after it (``Bearer <TOKEN>``) is not taken for the scheme.
_SCHEME = r"(?:(?:basic|bearer|token|digest)\s++)?+"
#: A secret name (after any identifier ending in ``_``, ``-`` or a camelCase hump; after any
#: identifier at all for ``SECRET_SUFFIXES``), matched from the start of its identifier, its
#: closing quote if quoted (group 1: ``"``, ``'``, or ``\"`` in JSON text held in a JSON
#: string), ``:`` or ``=``, then the value: a double-quoted string's content (2), a
#: single-quoted one's (3), an escaped-quoted one's (4), each up to the end of the line if
#: unclosed; the ``{`` or ``[`` opening an object or array (5; its end is found by
#: ``_json_end``); or a bare word (6: a number, ``hunter2``) without the ``}`` or ``]`` that
#: may close the JSON around it.
_SECRET = re.compile(
    r"(?i)(?:(?:[\w-]*?(?:[_-]|(?-i:(?<=[a-z0-9])(?=[A-Z]))))?"
    r"(?:" + "|".join(name.replace("_", "[_-]?") for name in SECRET_NAMES) + r")"
    r"|[\w-]*?(?:" + "|".join(SECRET_SUFFIXES) + r"))"
    r"(\\?[\"'])?\s*+[:=][ \t]*+"
    r"(?:\"" + _SCHEME + r"((?:[^\"\\\n]++|\\.?)++)(?:\"|(?=\n)|\Z)"
    r"|'" + _SCHEME + r"([^'\n]++)(?:'|(?=\n)|\Z)"
    r"|\\\"((?:[^\"\\\n]++|\\(?!\")[^\n]?)++)(?:\\\"|(?=\n)|\Z)"
    r"|([\[{])"
    r"|" + _SCHEME + r"([^\s\"',;<>]+(?<=[^\s\"',;<>}\]])))"
)
#: Where ``_SECRET`` may match: the end of a secret name and its ``:`` or ``=``, looked for in
#: the lower-cased text (fast: no case folding in the scan). A match is then tried from the
#: start of the identifier before it, at most ``_MAX_NAME`` characters back.
_SECRET_HINT = re.compile(
    r"(?:key|secrets?|passw(?:or)?d|passphrase|pwd|token|auth(?:orization)?|credentials?)\\?[\"']?\s*[:=]"
)
_SECRET_HINT_ANY_CASE = re.compile(_SECRET_HINT.pattern, re.IGNORECASE)
_IDENTIFIER_END = re.compile(r"(?<![\w-])[\w-]*+\Z")
_MAX_NAME = 256
_PLACEHOLDER_VALUES = frozenset(PLACEHOLDERS.values())
_SECRET_NEEDLES = (b"pass", b"pwd", b"secret", b"key", b"token", b"auth", b"credential")
#: A JSON string (to the end of the text if unclosed) or a bracket: what ``_json_end`` counts.
_JSON_TOKEN = re.compile(r"\"(?:[^\"\\]++|\\[\s\S]?)*+(?:\"|\Z)|[\[\]{}]")
_JSON_LITERALS = frozenset(("true", "false", "null"))


def _json_end(text: str, start: int) -> int:
    """Where the JSON object or array opening at ``start`` ends (brackets inside strings do not
    count); the end of ``text`` if it never closes. One scan, linear time."""
    depth = 0
    for token in _JSON_TOKEN.finditer(text, start):
        c = token.group(0)[0]
        if c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
            if depth == 0:
                return token.end()
    return len(text)


#: Private key blocks (PEM, OpenSSH, PGP): from a BEGIN line to the first END line after it,
#: when that is at most ``_MAX_KEY_BLOCK`` characters on; else (a block cut off) the run of
#: base64, header and blank characters after BEGIN. Each END line is found once, for all BEGINs.
_KEY_BEGIN = re.compile(r"-----BEGIN[A-Z0-9 ]{0,30} PRIVATE KEY(?: BLOCK)?-----")
_KEY_END = re.compile(r"-----END[A-Z0-9 ]{0,30} PRIVATE KEY(?: BLOCK)?-----")
_KEY_BODY = re.compile(r"[A-Za-z0-9+/=\s:,-]*")
#: Longer than any real key block: an RSA-16384 key in PEM is about 13 kB, a PGP key with subkeys a few tens.
_MAX_KEY_BLOCK = 65_536

#: An IBAN: a country code, two check digits and 11-30 letters or digits, plain or in groups
#: split by spaces (``DE89 3704 0044 0532 0130 00``); it must have its country's length and
#: pass the ISO 13616 check (mod 97), so product codes and the like are left alone.
_IBAN = re.compile(r"[A-Z]{2}\d\d(?<![A-Za-z0-9][A-Z]{2}\d\d)(?:[ ]?[A-Z0-9]){11,30}")
_IBAN_LENGTHS = {
    **dict.fromkeys(["NO"], 15),
    **dict.fromkeys(["BE"], 16),
    **dict.fromkeys(["DK", "FI", "FK", "FO", "GL", "NL", "SD"], 18),
    **dict.fromkeys(["MK", "SI"], 19),
    **dict.fromkeys(["AT", "BA", "EE", "KZ", "LT", "LU", "MN", "XK"], 20),
    **dict.fromkeys(["CH", "HR", "LI", "LV"], 21),
    **dict.fromkeys(["BG", "BH", "CR", "DE", "GB", "GE", "IE", "ME", "RS", "VA"], 22),
    **dict.fromkeys(["AE", "GI", "IL", "IQ", "OM", "SO", "TL"], 23),
    **dict.fromkeys(["AD", "CZ", "ES", "MD", "PK", "RO", "SA", "SE", "SK", "TN", "VG"], 24),
    **dict.fromkeys(["LY", "PT", "ST"], 25),
    **dict.fromkeys(["IS", "TR"], 26),
    **dict.fromkeys(["BI", "DJ", "FR", "GR", "IT", "MC", "MR", "SM"], 27),
    **dict.fromkeys(["AL", "AZ", "BY", "CY", "DO", "GT", "HU", "LB", "NI", "PL", "SV"], 28),
    **dict.fromkeys(["BR", "EG", "PS", "QA", "UA"], 29),
    **dict.fromkeys(["JO", "KW", "MU", "YE"], 30),
    **dict.fromkeys(["MT", "SC"], 31),
    **dict.fromkeys(["LC"], 32),
    **dict.fromkeys(["RU"], 33),
}


def _iban_ok(compact: str) -> bool:
    """Whether ``compact`` (no spaces) is an IBAN: its country's length and the mod-97 check."""
    if _IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return False
    digits = "".join(str(int(ch, 36)) for ch in compact[4:] + compact[:4])
    return int(digits) % 97 == 1


#: A run of digits and separators that does not continue a word and holds seven digits or a
#: dotted quad near its start: where cards, IPv4 addresses and phone numbers are looked for.
#: The look-ahead is bounded, so a long run of ``(`` or ``+ `` costs linear time, not quadratic.
_NUMBER = re.compile(
    r"[+(\d](?<![\w.+-][+(\d])"
    r"(?=[\d ().+-]{0,8}?(?:\d[ ().+-]{0,3}){5}\d|[\d ().+-]{0,24}?\.\d{1,3}\.\d{1,3}\.\d)"
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


class Masker:
    """Masks texts, counting findings by kind into ``counts`` and listing them in ``found``.

    Building one costs a few microseconds; ``mask_text`` reuses one per thread.
    """

    def __init__(self, counts: Counter[str] | None = None, found: list[tuple[str, str]] | None = None) -> None:
        self.counts = counts
        self.found = found
        self.rules = [(rule, self._replacer(rule)) for rule in _RULES]
        self.rules_after = [(rule, self._replacer(rule)) for rule in _RULES_AFTER]

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

        if "PRIVATE KEY" in text:
            text = self._private_keys(text)
        for rule, replacer in self.rules:
            if rule.wanted(text, lowered):
                masked = rule.pattern.sub(replacer, text)
                if masked != text:
                    text = masked
                    low.clear()
        if ("=" in text or ":" in text) and any(needle in lowered() for needle in _SECRET_NEEDLES):
            text = self._secrets(text)
            low.clear()
        for rule, replacer in self.rules_after:
            if rule.wanted(text, lowered):
                text = rule.pattern.sub(replacer, text)
        if "@" in text:
            text = self._emails(text)
        text = _IBAN.sub(self._iban, text)
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

    def _private_keys(self, text: str) -> str:
        """``text`` with private key blocks masked, in time linear in its length."""
        begin = _KEY_BEGIN.search(text)
        if begin is None:
            return text
        found = [(m.start(), m.end()) for m in _KEY_END.finditer(text, begin.end())]
        ends = [start for start, _ in found]
        parts, at = [], 0
        while begin is not None:
            i = bisect.bisect_left(ends, begin.end())
            if i < len(ends) and ends[i] - begin.end() <= _MAX_KEY_BLOCK:
                stop = found[i][1]
            else:
                body = _KEY_BODY.match(text, begin.end(), begin.end() + _MAX_KEY_BLOCK)
                stop = body.end() if body is not None else begin.end()
            self._note("PRIVATE_KEY", text[begin.start() : stop])
            parts += [text[at : begin.start()], PLACEHOLDERS["PRIVATE_KEY"]]
            at = stop
            begin = _KEY_BEGIN.search(text, at)
        parts.append(text[at:])
        return "".join(parts)

    def _secrets(self, text: str) -> str:
        """``text`` with the values of secret names masked (``SECRET_NAMES``), in linear time.

        A string's content becomes ``<SECRET>`` inside its quotes; a bare value, or an object or
        array, becomes the placeholder quoted as the name was, so JSON text stays JSON
        (``{"pin": 1234}`` style: ``{"password": "<SECRET>"}``). ``true``, ``false``, ``null``,
        ``{}``, ``[]`` and placeholders are left: they hide nothing.
        """
        parts, at, pos = [], 0, 0
        low = text.lower()
        hint = _SECRET_HINT
        if len(low) != len(text):  # a few characters lower-case to two: search the text itself
            low, hint = text, _SECRET_HINT_ANY_CASE
        while (found := hint.search(low, pos)) is not None:
            name_end = found.start()
            lo = max(pos, name_end - _MAX_NAME)
            ident = _IDENTIFIER_END.search(text, lo, name_end)  # each run of identifier characters tried once
            name_start = ident.start() if ident is not None else lo
            match = _SECRET.match(text, name_start)
            if match is None:
                pos = found.end()
                continue
            g = next(i for i in (2, 3, 4, 5, 6) if match.start(i) >= 0)
            start, end = match.span(g)
            pos = end
            quote = match.group(1) or ""
            if g == 5:
                end = pos = _json_end(text, start)
                value = text[start:end]
                if value.replace(" ", "") in ("{}", "[]"):
                    continue
                placeholder = quote + PLACEHOLDERS["SECRET"] + quote
            elif g == 6:
                value = match.group(g)
                if value.lower() in _JSON_LITERALS:
                    continue
                placeholder = quote + PLACEHOLDERS["SECRET"] + quote
            else:
                value = match.group(g)
                if value in _PLACEHOLDER_VALUES:
                    continue
                placeholder = PLACEHOLDERS["SECRET"]
            self._note("SECRET", value)
            parts += [text[at:start], placeholder]
            at = end
        if not parts:
            return text
        parts.append(text[at:])
        return "".join(parts)

    def _iban(self, match: re.Match[str]) -> str:
        """An IBAN candidate: the longest valid IBAN it starts with, masked (groups of a
        grouped IBAN end at a space; what follows it stays)."""
        found, text = match.group(0), match.string
        ends = [i for i, ch in enumerate(found) if ch == " "]
        if match.end() == len(text) or not text[match.end()].isalnum():
            ends.append(len(found))
        for end in reversed(ends):
            if _iban_ok(found[:end].replace(" ", "")):
                self._note("IBAN", found[:end])
                return PLACEHOLDERS["IBAN"] + found[end:]
        return found

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
    values (``<TOKEN>``), AWS access key ids and secret keys (``<AWS_KEY>``), whatever follows
    ``:`` or ``=`` after a secret name such as ``password``, ``api_key``, ``token``, ``secret``,
    ``authorization`` (``<SECRET>``: a string of any length, a number, a whole JSON object or
    array; ``{"api_key":"zzz"}`` gives ``{"api_key":"<SECRET>"}``), emails, card numbers that
    pass the Luhn check and start with 2-6, IBANs of their country's length that pass the
    mod-97 check, IPv6 and IPv4 addresses, and phone numbers
    (international ``+``, North American, ``0``-prefixed national, or after ``phone:``/``tel``).

    Left alone: ISO timestamps, UUIDs, version numbers (``1.2.3``, ``v1.2.3.4``,
    ``version 1.2.3.4``, ``==1.2.3.4``, ``1.2.3.4.5``), dotted quads with a leading zero
    (``01.02.03.04``), ``::1``, and digits in ordinary prose. A bare ``1.2.3.4`` is masked as
    an IPv4 address: when in doubt, privacy wins. ``counts`` (a ``Counter``) gets one per
    masked item, by kind. Masking is idempotent, and takes time linear in the length of
    ``text`` whatever it holds.

    Example:
        >>> mask_text("mail bob@example.com from 10.0.0.7, key AKIAIOSFODNN7EXAMPLE, v1.2.3.4")
        'mail <EMAIL> from <IPV4>, key <AWS_KEY>, v1.2.3.4'
        >>> mask_text('{"token": "t1", "secret": {"a": [1]}, "n": 2}')
        '{"token": "<SECRET>", "secret": "<SECRET>", "n": 2}'
    """
    masker = getattr(_PER_THREAD, "masker", None)
    if masker is None:
        masker = _PER_THREAD.masker = Masker()
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
    Masker(found=found)(text)
    return found
