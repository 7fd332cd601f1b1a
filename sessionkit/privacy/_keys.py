"""Keys and keyed pseudonyms: the secret that makes a pseudonym unguessable, and its fingerprint."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import Literal

from sessionkit.exceptions import PrivacyError

#: Bytes of a key made by ``generate_key`` (256 bits), and the fewest ``load_key`` accepts.
KEY_BYTES = 32
MIN_KEY_BYTES = 16
#: Hex digits of a pseudonym after its prefix: 96 bits, so collisions need ~2**48 distinct ids.
PSEUDONYM_HEX_DIGITS = 24
_PREFIXES = {"user": "u_", "session": "s_", "content": "h_"}
_MAX_KEY_FILE_BYTES = 4096


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
    key = generate_key() if key is None else check_key(key, "the key to write")
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


def check_key(key: object, what: str) -> bytes:
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
    key = check_key(key, "the key")
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
