"""One table of exit statuses and one error root (domain/exits.py): the README's
table is the enum's, no status means two things, every public error descends
from ``OpdError``, and no command spells a status as a bare number."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import sqlite3
from pathlib import Path

import opd_fallback
from opd_fallback.domain.exits import MEANINGS, ExitCode, OpdError, readme_table
from opd_fallback.store import failures, lease

ROOT = Path(__file__).resolve().parents[1]
# control flow inside one module, never shown to a person
PRIVATE_SIGNALS = {"_Outcome", "_DryRun", "_DamagedRow"}


def _readme_rows() -> list[tuple[int, str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Exit statuses", 1)[1].split("\n## ", 1)[0]
    return [(int(m[1]), m[2]) for m in re.finditer(r"^\| (\d+) \| (.+) \|$", section, re.M)]


def test_the_readme_table_is_the_enum_s() -> None:
    assert _readme_rows() == [(int(c), MEANINGS[c]) for c in ExitCode]
    assert readme_table() in (ROOT / "README.md").read_text(encoding="utf-8")
    assert set(MEANINGS) == set(ExitCode) and len(set(MEANINGS.values())) == len(ExitCode)


def test_a_sync_holding_the_lease_and_a_locked_database_are_told_apart() -> None:
    problem = failures.explain(sqlite3.OperationalError("database is locked"), Path("/tmp/x/counter.db"))
    assert problem is not None and isinstance(problem, OpdError)
    assert problem.kind == "busy" and problem.exit_code == ExitCode.DATABASE_BUSY == 7
    assert lease.LeaseHeld.exit_code == ExitCode.SYNC_RUNNING == 4


def test_every_public_error_descends_from_opd_error() -> None:
    classes: set[type[BaseException]] = set()
    for info in pkgutil.walk_packages(opd_fallback.__path__, "opd_fallback."):
        if ".migrations." in info.name or info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for obj in vars(module).values():
            if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__.startswith("opd_fallback"):
                classes.add(obj)
    roots = {c.__name__ for c in classes if not any(b in classes for b in c.__mro__[1:])}
    assert roots == {"OpdError"} | PRIVATE_SIGNALS
    assert len(classes) > 25


def test_no_command_spells_an_exit_status_as_a_number() -> None:
    bare = re.compile(r"typer\.Exit\(\d|\bcode=\d|EXIT_\w+ = \d")
    found = [f"{p.relative_to(ROOT)}:{n}: {line.strip()}"
             for p in sorted((ROOT / "opd_fallback").rglob("*.py"))
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if bare.search(line)]
    assert found == []
