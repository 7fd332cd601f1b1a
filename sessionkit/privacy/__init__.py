"""Privacy at export: keyed pseudonyms for user and session ids, and redaction of free text.

Three layers, each usable alone:

* **Keys**: ``generate_key``, ``write_key`` (a new hex file of mode 0600), ``load_key`` and
  ``key_fingerprint`` (safe to record; never the key).
* **Text**: ``pseudonym`` (HMAC-SHA-256 under the key, ``u_``/``s_``/``h_`` + 24 hex digits)
  and ``mask_text`` (typed placeholders such as ``<EMAIL>`` for personal data and secrets).
* **Tables**: ``Privacy(...).apply(tables)`` rewrites the Arrow tables of a batch and
  returns ``PrivacyCounts`` of what it did; both are picklable for worker processes.

Pseudonyms are keyed, not plain or salted hashes: user ids such as ``user-1`` are easy to guess,
and anyone could hash guesses. Without the key nobody can, and the same key gives the same
pseudonyms in every run and dataset, so joins and per-user analytics keep working.

Example:
    >>> from sessionkit.privacy import Privacy, generate_key
    >>> import sessionkit as sk
    >>> s = sk.Session.with_id("alice", "s-1")
    >>> s.add_user_message("mail me at alice@example.com")
    >>> tables, counts = Privacy(generate_key(), redact="mask").apply(sk.to_tables([s]))
    >>> tables.messages["content"].to_pylist(), counts.masked
    (['mail me at <EMAIL>'], {'EMAIL': 1})
"""

# ``x as x``: not documented, for sessionkit's other packages, which may not import this
# package's private modules; free to change. __all__ holds the documented names.
from sessionkit.privacy._keys import generate_key, key_fingerprint, load_key, pseudonym, write_key
from sessionkit.privacy._mask import mask_text, scan_text
from sessionkit.privacy._tables import Privacy, PrivacyCounts, check_same_privacy
from sessionkit.privacy._tables import read_key_list as read_key_list

__all__ = [
    "Privacy",
    "PrivacyCounts",
    "check_same_privacy",
    "generate_key",
    "key_fingerprint",
    "load_key",
    "mask_text",
    "pseudonym",
    "scan_text",
    "write_key",
]
