"""Which key opens a database, finishing a rotation a kill interrupted; rotation itself.

:func:`key_for` is asked before every open (store/engine.py, store/readonly.py,
store/backup.py, printing/spool.py, hub/db.py): it reads the key file (made on
first use for a new database, or for a plain one about to be encrypted), and
when a rotation was cut short it finds which of the two keys opens the file
and leaves the key files saying so. A missing or wrong key is a
:class:`~opd_fallback.cipher.keys.KeyProblem` with one sentence.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from opd_fallback.cipher import db as cdb
from opd_fallback.cipher import keys as ck
from opd_fallback.cipher.keys import Key, KeyProblem


def missing_sentence(db_path: Path | str, key_file: Path | None) -> str:
    where = f"looked for {key_file}" if key_file is not None else f"no key file of this PC is named beside it ({ck.ref_path(db_path).name})"
    return (f"the key of the encrypted database {db_path} is not on this PC ({where}): copy its key "
            f"file into {ck.keys_dir()} (or name it with {ck.ENV_KEY_FILE}), or type its recovery code into "
            "`opd-fallback recover-key --recovery-code-stdin`")


def _remember(db_path: Path | str, key_file: Path, key: Key) -> None:
    ref = ck.read_ref(db_path)
    want = ck.KeyRef(ck.tag_of(key_file), key.key_id)
    if ref != want:
        ck.write_ref(db_path, want)


def adopt(db_path: Path | str, key: Key, *, name: str = "counter") -> Path:
    """Make ``key`` the key of the database at ``db_path`` (restore, recover-key):
    its key file written (a different key already there retired first) and named beside the database."""
    path = ck.default_key_file(db_path, name=name, create=True)
    assert path is not None
    try:
        current = ck.read_key_file(path)
    except KeyProblem:
        current = None
    if current is None or current.secret != key.secret:
        if current is not None:
            ck.retire(path, current)
        ck.write_key_file(path, key)
    ck.mark_shown(path)  # it came from a recovery code or a key file someone already keeps
    _remember(db_path, path, key)
    return path


def key_for(db_path: Path | str, *, key_file: Path | None = None, name: str = "counter") -> Key:
    """The key of the database at ``db_path`` (made now, 0600, when the database
    is new or still plain and there is no key yet)."""
    head = cdb.header(db_path)
    fresh = head in (b"", cdb.PLAIN_HEADER)  # new, or plain and about to be encrypted with this key
    path = key_file or ck.default_key_file(db_path, name=name, create=fresh)
    if path is None:
        return _any_key_of_this_pc(db_path, name)
    nxt = ck.next_path(path)
    if fresh:
        if not path.exists() and nxt.exists():
            os.replace(nxt, path)
        nxt.unlink(missing_ok=True)
        key = ck.load_or_create(path)[0]
        if Path(db_path).parent.is_dir():
            _remember(db_path, path, key)
        return key
    if not nxt.exists():
        if not path.exists():
            raise KeyProblem("missing", missing_sentence(db_path, path))
        return ck.read_key_file(path)
    # a rotation was interrupted: the file says which key it holds
    for k in ck.candidates(path):
        if cdb.opens(db_path, k):
            if k.source == nxt:
                os.replace(nxt, path)
                ck.fsync_dir(path.parent)
            else:
                nxt.unlink(missing_ok=True)
            key = Key(k.secret, path)
            with contextlib.suppress(OSError):
                _remember(db_path, path, key)
            return key
    if path.exists():
        return ck.read_key_file(path)  # let the open say "wrong key" with this file's name
    raise KeyProblem("missing", missing_sentence(db_path, path))


def _any_key_of_this_pc(db_path: Path | str, name: str) -> Key:
    """No ``.keyref`` beside an encrypted database (only the file was copied
    here): the key of this PC that opens it, remembered beside it."""
    for kf in ck.all_key_files():
        if not kf.name.startswith(f"{name}-") and kf != ck.default_key_file(db_path, name=name):
            continue
        for k in ck.candidates(kf):
            if cdb.opens(db_path, k):
                with contextlib.suppress(OSError):
                    _remember(db_path, kf, Key(k.secret, kf))
                return Key(k.secret, kf)
    raise KeyProblem("missing", missing_sentence(db_path, None))


def ensure_encrypted(db_path: Path | str, key: Key) -> bool:
    """Encrypt a plain database in place (the first open after the upgrade); True when it did."""
    if cdb.is_plain(db_path):
        return cdb.encrypt_in_place(db_path, key)
    return False


def rotate(db_path: Path | str, *, key_file: Path | None = None, name: str = "counter",
           extra: tuple[Path, ...] = ()) -> Key:
    """A new key for the database at ``db_path`` (and each database in ``extra``,
    e.g. the print spool, that had the same key); returns it. Safe against a kill
    at any moment (module docstring of keys.py)."""
    old = key_for(db_path, key_file=key_file, name=name)
    path = old.source or key_file
    if path is None:
        raise KeyProblem("missing", missing_sentence(db_path, None))
    cdb.connect(db_path, old, readonly=True).close()  # a wrong key stops here, before anything changes
    new = Key(ck.new_key().secret, ck.next_path(path))
    ck.retire(path, old)  # old backups keep opening on this PC
    ck.write_key_file(ck.next_path(path), new)
    cdb.rekey(db_path, old, new)
    os.replace(ck.next_path(path), path)
    ck.fsync_dir(path.parent)
    _remember(db_path, path, Key(new.secret, path))
    for other in extra:  # after the main file: a kill leaves them on the old key, kept in the retired keys
        if Path(other).exists() and not cdb.is_plain(other) and cdb.opens(other, old):
            with contextlib.suppress(cdb.Error):  # busy: it keeps the old key, which still opens it
                cdb.rekey(other, old, new)
    with contextlib.suppress(OSError):
        ck.shown_path(path).unlink()
    return Key(new.secret, path)


def key_for_secondary(path: Path | str, main_key_file: Path) -> Key:
    """The key of a file keyed like the main database (the print spool): the
    key file's key, or, after a rotation cut short, whichever of its keys opens it."""
    if cdb.header(path) in (b"", cdb.PLAIN_HEADER):
        return ck.read_key_file(main_key_file)
    for k in [*ck.candidates(main_key_file), *ck.retired(main_key_file)]:
        if cdb.opens(path, k):
            return k
    return ck.read_key_file(main_key_file)
