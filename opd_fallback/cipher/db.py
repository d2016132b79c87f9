"""The one opener of every SQLite file that holds patient data: SQLCipher 4 through ``sqlcipher3``.

The counter's database (store/engine.py through SQLAlchemy, store/readonly.py
for ``status``), its backups (store/backup.py), the print spool
(printing/spool.py) and the LAN hub's database (hub/db.py) are all opened by
:func:`connect`. ``sqlcipher3`` has the DB-API of the standard library's
``sqlite3`` (errors carry ``sqlite_errorcode`` too), so the WAL, ``synchronous=
FULL``, foreign keys, busy timeout and triggers work as before.

Decisions:

* A file is **plain** when its first 16 bytes are ``SQLite format 3``; an
  encrypted file begins with its random salt. A key that does not open an
  encrypted file gives SQLITE_NOTADB on the first read: :func:`connect` checks
  at once (``PRAGMA user_version``: page 1 alone, so damage further in stays
  "damaged") and raises
  :class:`~opd_fallback.cipher.keys.KeyProblem` (``wrong``), so no half-opened
  store ever exists.
* SQLCipher's own log (``hmac check failed`` on stderr) is off
  (``cipher_log_level=NONE``): our one sentence is what a person sees.
* **In-place conversion** of a plain database (:func:`encrypt_in_place`): the
  plain file is switched out of WAL (SQLite refuses while another program has
  it open: then we answer busy and nothing changes) and locked exclusively; a
  copy is exported into ``<db>.encrypting`` with ``sqlcipher_export``, given
  the schema version and WAL mode, checked (``quick_check`` and every table's
  row count against the original), fsynced, and only then renamed over the
  database (an atomic rename of a file with no ``-wal``/``-shm`` beside it). A
  kill -9 before the rename leaves the plain database and a stray copy
  (removed on the next try); after it, the encrypted one. Never none, never half.
* **Rekey** (:func:`rekey`) is SQLCipher's ``PRAGMA rekey``, one transaction
  in WAL: a kill before its commit leaves the old key's database, after it the
  new key's; keys.py keeps both keys until the file says which it is.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

import sqlcipher3.dbapi2 as dbapi2

if TYPE_CHECKING:
    import sqlite3

from opd_fallback.cipher.keys import Key, KeyProblem, fsync_dir, read_ref
from opd_fallback.domain.exits import ExitCode, OpdError

__all__ = ["Connection", "DBConnection", "DatabaseError", "Error", "OperationalError", "dbapi2"]

Error = dbapi2.Error
DatabaseError = dbapi2.DatabaseError
OperationalError = dbapi2.OperationalError
Connection = dbapi2.Connection
# sqlcipher3 ships no types; its connections have sqlite3's interface, so mypy
# reads them as sqlite3's (the one name for a DB-API connection across the package)
DBConnection: TypeAlias = "sqlite3.Connection"

PLAIN_HEADER = b"SQLite format 3\x00"
SQLITE_NOTADB = 26
PAGE_SIZE = 4096  # SQLCipher 4's default and SQLite's: the fastest here (benchmarks/encryption_cost.py)
ENCRYPTING_SUFFIX = ".encrypting"


def header(path: Path | str) -> bytes:
    """The first 16 bytes of the file (b"" when it is missing or empty)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(16)
    except FileNotFoundError:
        return b""


def is_plain(path: Path | str) -> bool:
    """True for an unencrypted SQLite database."""
    return header(path) == PLAIN_HEADER


def _is_notadb(exc: BaseException) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return (isinstance(code, int) and code & 0xFF == SQLITE_NOTADB) or "not a database" in str(exc)


def wrong_key_sentence(path: Path | str, key: Key | None) -> str:
    where = f"the key in {key.source}" if key is not None and key.source is not None else "the key given"
    return (f"{where} does not open the database {path} (a key of another PC or counter, or one replaced by "
            "rotate-key): put this database's key file back, or give its recovery code (README, 'Security at "
            "the counter'); if the key is surely right, the file is damaged: restore the last backup")


def apply_key(conn: DBConnection, key: Key | None) -> None:
    """Key a fresh connection (before anything reads the file)."""
    conn.execute("PRAGMA cipher_log_level = NONE")
    if key is not None:
        conn.execute(f"PRAGMA key = {key.pragma_value}")
        conn.execute(f"PRAGMA cipher_page_size = {PAGE_SIZE}")


def connect(
    path: Path | str, key: Key | None, *, readonly: bool = False, timeout: float = 15.0,
    check_same_thread: bool = True, isolation_level: str | None = "", uri: str | None = None,
) -> DBConnection:
    """A DB-API connection to the database at ``path``, keyed with ``key``
    (``None``: a plain file, for conversion and tests only), checked to open.

    Raises KeyProblem (``wrong``) when the key does not open the file; other
    errors (a missing folder, a damaged file) are the driver's, as with ``sqlite3``."""
    target = uri if uri is not None else (f"{Path(path).resolve().as_uri()}?mode=ro" if readonly else str(path))
    kwargs: dict[str, float | bool | str | None] = {"timeout": timeout, "check_same_thread": check_same_thread,
                              "uri": uri is not None or readonly}
    if isolation_level != "":
        kwargs["isolation_level"] = isolation_level
    conn: DBConnection = dbapi2.connect(target, **kwargs)
    try:
        apply_key(conn, key)
        conn.execute("PRAGMA user_version").fetchone()  # reads page 1 only: a wrong key, not a damaged page
    except DatabaseError as exc:
        conn.close()
        if _is_notadb(exc) and key is not None and header(path) not in (b"", PLAIN_HEADER):
            ref = read_ref(path)
            if ref is None or ref.key_id != key.key_id:  # the right key (its fingerprint beside the file): damage
                raise KeyProblem("wrong", wrong_key_sentence(path, key)) from None
        raise
    except BaseException:
        conn.close()
        raise
    return conn


def opens(path: Path | str, key: Key) -> bool:
    """Whether ``key`` opens the (encrypted) database at ``path``."""
    try:
        conn = connect(path, key, readonly=True)
    except (KeyProblem, Error):
        return False
    conn.close()
    return True


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _tables(conn: DBConnection, schema: str = "main") -> list[str]:
    return [str(r[0]) for r in conn.execute(
        f"SELECT name FROM {schema}.sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' "
        "AND sql NOT LIKE 'CREATE VIRTUAL TABLE%' ORDER BY name")]


def _counts(conn: DBConnection, schema: str = "main") -> dict[str, int]:
    return {t: int(conn.execute(f'SELECT count(*) FROM {schema}."{t}"').fetchone()[0]) for t in _tables(conn, schema)}


class ConversionFailed(OpdError):
    """The encrypted copy did not check out; the plain database is untouched."""

    exit_code = ExitCode.DISK


def _sole_and_locked(conn: DBConnection) -> None:
    """Prove no other program has the database open (leaving WAL needs that),
    then keep an exclusive lock until ``conn`` closes."""
    mode = conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
    if str(mode).lower() != "delete":
        raise OperationalError("database is locked")
    conn.execute("PRAGMA locking_mode=EXCLUSIVE")
    conn.execute("BEGIN EXCLUSIVE")
    conn.execute("COMMIT")


def export_copy(src: DBConnection, dst_path: Path, key: Key, *, wal: bool) -> None:
    """Export the open database ``src`` into a fresh encrypted file ``dst_path``,
    with the schema version, checked against ``src``. ``src`` holds its lock."""
    dst_path.unlink(missing_ok=True)
    fd = os.open(dst_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    os.close(fd)
    version = int(src.execute("PRAGMA main.user_version").fetchone()[0])
    src.execute(f"ATTACH DATABASE ? AS enc KEY {key.pragma_value}", (str(dst_path),))
    try:
        src.execute("SELECT sqlcipher_export('enc')")
        src.execute(f"PRAGMA enc.user_version = {version}")
        want = _counts(src, "main")
    finally:
        src.execute("DETACH DATABASE enc")
    dst = connect(dst_path, key, isolation_level=None)
    try:
        verdict = [str(r[0]) for r in dst.execute("PRAGMA quick_check").fetchall()]
        have = _counts(dst)
        if verdict != ["ok"] or have != want:
            raise ConversionFailed(f"the encrypted copy {dst_path} did not check out "
                                   f"({'; '.join(verdict)[:200]}; {len(have)} of {len(want)} tables match)")
        if wal:
            dst.execute("PRAGMA journal_mode=WAL")
    finally:
        dst.close()  # the last connection: SQLite checkpoints and removes its -wal
    for side in ("-wal", "-shm"):
        Path(str(dst_path) + side).unlink(missing_ok=True)
    _fsync(dst_path)


def encrypt_in_place(path: Path | str, key: Key, *, timeout: float = 15.0) -> bool:
    """Encrypt the plain database at ``path`` with ``key`` (see the module
    docstring for why a kill -9 at any moment leaves one good database).
    False when it was already encrypted (another program did it first)."""
    p = Path(path)
    tmp = p.with_name(p.name + ENCRYPTING_SUFFIX)
    for side in ("", "-wal", "-shm", "-journal"):
        Path(str(tmp) + side).unlink(missing_ok=True)  # a copy an earlier, killed try left
    if not is_plain(p):
        return False
    src = dbapi2.connect(str(p), timeout=timeout, isolation_level=None)
    try:
        src.execute("PRAGMA cipher_log_level = NONE")
        src.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        _sole_and_locked(src)
        if not is_plain(p):  # another program converted it while we waited for the lock
            return False
        try:
            export_copy(src, tmp, key, wal=True)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        for side in ("-wal", "-shm"):
            Path(str(p) + side).unlink(missing_ok=True)
        os.replace(tmp, p)  # the one step that changes which database is there
        fsync_dir(p.parent)
    finally:
        src.close()
    return True


def rekey(path: Path | str, old: Key, new: Key, *, timeout: float = 15.0) -> None:
    """Re-encrypt the database at ``path`` from ``old`` to ``new`` with ``PRAGMA rekey``
    (one transaction in WAL). Refused (busy) while another program has it open."""
    conn = connect(path, old, timeout=timeout, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        mode = conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0]  # only when nobody else has it open
        if str(mode).lower() != "delete":
            raise OperationalError("database is locked")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA rekey = {new.pragma_value}")
        with contextlib.suppress(Error):
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def quick_check(path: Path | str, key: Key | None) -> str:
    """``"ok"``, or SQLite's first complaints, for the database at ``path`` opened with ``key``."""
    try:
        conn = connect(path, key, readonly=True)
    except KeyProblem as exc:
        return f"cannot open: {exc.sentence}"
    except Error as exc:
        return f"cannot open: {exc}"
    conn.text_factory = lambda b: b.decode("utf-8", errors="replace")
    try:
        rows = [str(r[0]) for r in conn.execute("PRAGMA quick_check(20)").fetchall()]
    except (Error, ValueError) as exc:
        return f"not a sound database: {exc}"
    finally:
        conn.close()
    return "ok" if rows == ["ok"] else "; ".join(rows)
