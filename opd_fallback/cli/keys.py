"""``opd-fallback encrypt | rotate-key | recovery-code | recover-key``: the database key's custody.

* ``encrypt``: encrypt a plain database left by an older version now (every
  command also does it on its first open), then show the recovery code.
* ``rotate-key``: a new key for the counter database and its print spool
  (``PRAGMA rekey``; a kill at any moment leaves them opening with the old or
  the new key, see cipher/keys.py); shows the new recovery code. Stop the
  counter app first (refused, exit 4, while another program has the file open).
* ``recovery-code``: shows the recovery code once, when ``init`` could not
  (a database encrypted on its first open after an upgrade).
* ``recover-key --recovery-code-stdin``: this PC lost the key file (a new disk,
  a moved data folder): the recovery code, typed on stdin, becomes the key
  file again once it is checked to open the database.

The code is read from stdin, never from the command line (``ps`` shows that).
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from opd_fallback.cli.common import fail
from opd_fallback.cli.common import settings as load_settings

CodeStdinOpt = Annotated[bool, typer.Option(
    "--recovery-code-stdin", help="Read the recovery code from the first line of stdin (never the command line)")]


def read_code(code_stdin: bool) -> str | None:
    """The recovery code on stdin's first line with ``--recovery-code-stdin``, else None."""
    if not code_stdin:
        return None
    line = sys.stdin.readline().strip()
    if not line:
        fail("--recovery-code-stdin: no recovery code on the first line of stdin")
    return line


def show_code(code: str, *, why: str) -> None:
    """The recovery code on stdout, with what to do with it on stderr."""
    typer.echo(f"recovery code: {code}")
    typer.echo(f"{why}: write the recovery code above on paper for the IT cell's safe. It is shown only this "
               "once; with it this counter's backups open on a new PC (`opd-fallback restore BACKUP "
               "--recovery-code-stdin`). Keep it away from the counter and its backups.", err=True)


def encrypt_cmd() -> None:
    """Encrypt this counter's database now (an older version left it plain)."""
    from opd_fallback.cipher import custody, keys
    from opd_fallback.cipher import db as cipher_db

    s = load_settings()
    if not s.db_path.exists():
        fail(f"there is no counter database at {s.db_path}: run `opd-fallback init` first")
    if not cipher_db.is_plain(s.db_path):
        typer.echo(f"{s.db_path} is already encrypted")
        return
    key = custody.key_for(s.db_path)
    custody.ensure_encrypted(s.db_path, key)
    typer.echo(f"{s.db_path} is now encrypted (key file {key.source}, mode 0600)")
    if key.source is not None and not keys.code_shown(key.source):
        keys.mark_shown(key.source)
        show_code(key.recovery_code, why="the counter's database is encrypted")


def recovery_code_cmd() -> None:
    """Show the recovery code of this counter's key, once (when init did not)."""
    from opd_fallback.cipher import custody, keys
    from opd_fallback.store import open_store

    s = load_settings()
    open_store(s.db_path).close()  # encrypts a plain database; a wrong key stops here
    key = custody.key_for(s.db_path)
    if key.source is None or keys.code_shown(key.source):
        fail("the recovery code of this counter's key was already shown once (at init, encrypt or rotate-key); "
             "if it is lost, make a new one with `opd-fallback rotate-key`")
    keys.mark_shown(key.source)
    show_code(key.recovery_code, why="this counter's key")


def rotate_key_cmd() -> None:
    """Give the counter database (and its print spool) a new key; shows the new recovery code."""
    from opd_fallback.cipher import custody, keys
    from opd_fallback.store import open_store

    s = load_settings()
    if not s.db_path.exists():
        fail(f"there is no counter database at {s.db_path}: run `opd-fallback init` first")
    open_store(s.db_path).close()  # encrypted and migrated first
    new = custody.rotate(s.db_path, extra=(s.data_dir / "spool" / "spool.db",))
    assert new.source is not None
    keys.mark_shown(new.source)
    typer.echo(f"the database {s.db_path} has a new key (key file {new.source}, mode 0600, key id {new.key_id})")
    show_code(new.recovery_code, why="the key was replaced; the old recovery code opens only backups taken before")


def recover_key_cmd(code_stdin: CodeStdinOpt = False) -> None:
    """Bring this counter's key file back from its recovery code (typed on stdin)."""
    from opd_fallback.cipher import custody, keys
    from opd_fallback.cipher import db as cipher_db

    code = read_code(code_stdin)
    if code is None:
        fail("give the recovery code on stdin: opd-fallback recover-key --recovery-code-stdin")
    try:
        key = keys.key_from_code(code)
    except ValueError as exc:
        fail(f"the recovery code: {exc}; type it as it is written, e.g. ABCD-EFGH-...")
    s = load_settings()
    if not s.db_path.exists() or cipher_db.is_plain(s.db_path):
        fail(f"there is no encrypted counter database at {s.db_path} to open with it")
    if not cipher_db.opens(s.db_path, key):
        typer.echo(f"error: that recovery code does not open {s.db_path} (a code of another counter, or one "
                   "replaced by rotate-key)", err=True)
        from opd_fallback.domain.exits import ExitCode

        raise typer.Exit(ExitCode.DATABASE_KEY)
    path = custody.adopt(s.db_path, key)
    typer.echo(f"the key of {s.db_path} is back in {path} (mode 0600)")


def register(app: typer.Typer) -> None:
    app.command("encrypt")(encrypt_cmd)
    app.command("rotate-key")(rotate_key_cmd)
    app.command("recovery-code")(recovery_code_cmd)
    app.command("recover-key")(recover_key_cmd)
