"""Open a database file of the program (counter, backup, spool, hub) the way the
program does, for tests that check its rows with plain SQL: SQLCipher through
the one opener (opd_fallback.cipher.db.connect), with the key this PC keeps for
the file (store/backup.py ``known_keys``, the hub's key file too)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opd_fallback.cipher import db as cipher_db
from opd_fallback.cipher import keys as cipher_keys
from opd_fallback.cipher.keys import Key


def key_of(path: Path | str) -> Key | None:
    """The key that opens ``path`` (None for a plain file); AssertionError if none does."""
    from opd_fallback.store.backup import known_keys

    p = Path(path)
    if cipher_db.header(p) == cipher_db.PLAIN_HEADER:
        return None
    tried = known_keys(p)
    kf = cipher_keys.default_key_file(p, name="hub")
    if kf is not None:
        tried += cipher_keys.candidates(kf)
    for k in tried:
        if cipher_db.opens(p, k):
            return k
    raise AssertionError(f"no key of this PC opens {p}")


def connect(path: Path | str, **kwargs: Any) -> Any:
    """A DB-API connection (``sqlite3``'s API) to the encrypted file at ``path``."""
    kwargs.setdefault("isolation_level", "")
    return cipher_db.connect(Path(path), key_of(path), **kwargs)
