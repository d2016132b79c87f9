"""One error tree and one table of exit statuses (httpx's ``_exceptions.py`` is the model).

Every error this project raises for a person to read descends from
:class:`OpdError`, which carries the exit status a command ends with when it is
the reason: ``DomainError`` (a rule refused the request), ``SyncError`` (central
could not be used), ``StorageProblem`` (the disk or the database), ``LeaseHeld``,
``BackupError``, ``PrintError``, ... The CLI's root group turns any ``OpdError``
that reaches it into its sentence and its ``exit_code``; ``except OpdError``
catches every failure that has words for people and nothing else.

The tree (classes live beside the code that raises them)::

    OpdError
    ├── DomainError (domain/errors.py)             1   a rule refused it; field problems
    │   └── PinRefused (store/operators.py)
    ├── FileUnusable (application/backentry/)      2
    ├── ImportRefused (application/backentry/)     1
    ├── RestoreRefused (application/share.py)      1   (also a ValueError)
    ├── WrongDevice (store/readiness.py)           1   (also a ValueError)
    ├── SyncError (sync/client.py)                 3   central could not be used
    │   ├── Unauthorized, Unavailable, TransientError > Unreachable, ServerDown
    │   ├── PayloadTooLarge, RequestRefused, Stopped        1
    ├── HubError (sync/hub_client.py)              3   the LAN hub could not be used
    │   └── HubUnreachable, HubRefused
    ├── DeadlinePassed (sync/deadline.py)          3   a request's total deadline
    ├── LeaseHeld (store/lease.py)                 4   (also a RuntimeError)
    ├── StorageProblem (store/failures.py)         5, 6, 7 or 8 by what the disk said
    ├── KeyProblem (cipher/keys.py)                8   the database's key is missing or wrong
    ├── BackupError (store/backup.py)              1
    ├── IllegalTransition (store/outbox.py)        70  a bug (also a ValueError)
    ├── PrintError, FontMissing (printing/)        1
    ├── ApiError (central/errors.py)               the server's 4xx answer
    ├── HubApiError (hub/app.py)                   the hub's 4xx answer
    └── TransientWriteError (serverdb/)            a server's write lost a race: run again

Private control-flow signals (central's ``_Outcome``, the import's ``_DryRun``,
the batcher's ``_DamagedRow``) are not errors for people and stay outside.

The statuses are :class:`ExitCode`, each meaning one thing, and
:data:`MEANINGS` is the README's table ("Exit statuses"); a test checks the
README against it. Two statuses changed when the table was made one (each used
to mean two things): a refused operator or PIN for ``import`` is 1 (was 3,
which is "central unreachable"), and SQLite's "database is locked" is 7 (was 4,
which is "another sync holds the lease").

Pure and light (no imports): ``status`` and the CLI's start use it.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The exit statuses of every command: one meaning each (:data:`MEANINGS`)."""

    OK = 0
    REFUSED = 1
    UNUSABLE = 2
    UNREACHABLE = 3
    SYNC_RUNNING = 4
    DISK = 5
    DAMAGED = 6
    DATABASE_BUSY = 7
    DATABASE_KEY = 8
    HUB_TOKEN = 9  # share: the LAN hub refused this counter's hub token (unknown, revoked, another counter's)
    UNEXPECTED = 70


MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "done",
    ExitCode.REFUSED: "refused or needs a person: bad input, a wrong PIN or a locked ID, ops a supervisor must decide",
    ExitCode.UNUSABLE: "what the command was given cannot be used: a file (`import`, master data for "
                       "`central serve`) or an option (a usage error)",
    ExitCode.UNREACHABLE: "central unreachable, or it refused the token (for `share`: the LAN hub unreachable, "
                          "or it refused the hub token)",
    ExitCode.SYNC_RUNNING: "another sync of this counter is running: it holds the sync lease",
    ExitCode.DISK: "the disk: it is full, the data folder is read-only or cannot be opened, or it reported an "
                   "I/O error",
    ExitCode.DAMAGED: "the counter's database is damaged: restore the last backup with "
                      "`opd-fallback restore BACKUP`",
    ExitCode.DATABASE_BUSY: "another program holds this counter's database (a backup or a stuck process): "
                            "try again in a moment",
    ExitCode.DATABASE_KEY: "the key of the counter's (or the hub's) encrypted database is missing or does not "
                           "open it: put its key file back, or use its recovery code (`opd-fallback recover-key "
                           "--recovery-code-stdin`)",
    ExitCode.HUB_TOKEN: "`share`: the LAN hub refused this counter's hub token (unknown, revoked, or another "
                        "counter's): get its own with `opd-fallback hub add-device ID` on the hub PC",
    ExitCode.UNEXPECTED: "an unexpected error (a bug): please report it with the error log",
}


def readme_table() -> str:
    """The README's "Exit statuses" table, as Markdown."""
    rows = ["| status | meaning |", "| --- | --- |"]
    rows += [f"| {int(code)} | {MEANINGS[code]} |" for code in ExitCode]
    return "\n".join(rows)


class OpdError(Exception):
    """The root of every error with words for people. ``exit_code`` is the status
    a command ends with when this is why it stopped (a class default; an
    instance may carry its own)."""

    exit_code: int = ExitCode.REFUSED
