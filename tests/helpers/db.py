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


def plain_copy(src: Path | str, dst: Path | str) -> None:
    """A plain (unencrypted) SQLite copy of the database at ``src``, as an older
    version of the program left its files (to test the in-place conversion)."""
    dst = Path(dst)
    dst.unlink(missing_ok=True)
    conn = connect(src, isolation_level=None)
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        conn.execute("ATTACH DATABASE ? AS plain KEY ''", (str(dst),))
        conn.execute("SELECT sqlcipher_export('plain')")
        conn.execute(f"PRAGMA plain.user_version = {int(version)}")
        conn.execute("PRAGMA plain.journal_mode = WAL")
        conn.execute("DETACH DATABASE plain")
    finally:
        conn.close()
    assert cipher_db.is_plain(dst)


def rows(path: Path | str, *tables: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of ``tables`` (plain or encrypted file), to compare two databases whole."""
    conn = connect(path)
    try:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in tables}
    finally:
        conn.close()
