"""Wrong PINs at the command line lock the ID (the same lockout as the
counter's login), say how long to wait, and are written to the audit log."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from argon2 import PasswordHasher
from sqlalchemy import text
from typer.testing import CliRunner

from opd_fallback.cli import app
from opd_fallback.store import open_store
from opd_fallback.store import operators as ops

runner = CliRunner()


@pytest.fixture
def counter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # a cheap argon2id: these tests are about the lockout, not the cost (tests/store/test_operators.py)
    monkeypatch.setattr(ops, "HASHER", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    ops._dummy_hash.cache_clear()
    monkeypatch.setenv("OPD_DATA_DIR", str(tmp_path))
    assert runner.invoke(app, ["init", "--device", "C07", "--hospital", "KGMU"]).exit_code == 0
    return tmp_path


def test_supervisor_pin_needs_six_digits(counter: Path) -> None:
    res = runner.invoke(app, ["operator", "add", "sup1", "--name", "Meena", "--role", "supervisor", "--pin-stdin"],
                        input="9999\n")
    assert res.exit_code == 1 and "supervisor's PIN must be 6 to 8 digits" in res.output
    res = runner.invoke(app, ["operator", "add", "sup1", "--name", "Meena", "--role", "supervisor", "--pin-stdin"],
                        input="482913\n")
    assert res.exit_code == 0, res.output


def test_wrong_pins_lock_the_supervisor_in_review_and_are_audited(counter: Path) -> None:
    runner.invoke(app, ["operator", "add", "sup1", "--name", "Meena", "--role", "supervisor", "--pin-stdin"],
                  input="482913\n")

    def resolve(pin: str):  # authentication comes before the op is even looked up
        return runner.invoke(app, ["review", "resolve", "01ABC", "--retry", "--supervisor", "sup1", "--pin-stdin"],
                             input=pin + "\n")

    for left in (4, 3, 2, 1):
        res = resolve("000000")
        assert res.exit_code == 1 and f"{left} more wrong" in res.output
        assert "Traceback" not in res.output
    res = resolve("000000")
    assert res.exit_code == 1
    assert "Too many wrong PINs for sup1: this ID is locked; wait 30 s" in res.output
    res = resolve("482913")  # the right PIN, still locked
    assert res.exit_code == 1 and "locked; wait" in res.output
    store = open_store(counter / "counter.db")
    try:
        with store.read() as s:
            rows = s.execute(text("SELECT actor, action, detail FROM audit_log "
                                  "WHERE action LIKE 'operator.pin%' ORDER BY id")).all()
    finally:
        store.close()
    actions = [r[1] for r in rows]
    assert actions == ["operator.pin_wrong"] * 5 + ["operator.pin_lockout", "operator.pin_while_locked"]
    assert all(r[0] == "sup1" and orjson.loads(r[2])["purpose"] == "review" for r in rows)
    assert all("000000" not in r[2] and "482913" not in r[2] for r in rows)


def test_a_supervisor_lifts_a_lockout_early(counter: Path) -> None:
    for op, role, pin in (("op1", "operator", "4826"), ("sup1", "supervisor", "482913")):
        assert runner.invoke(app, ["operator", "add", op, "--name", op, "--role", role, "--pin-stdin"],
                             input=pin + "\n").exit_code == 0
    for _ in range(5):
        runner.invoke(app, ["review", "resolve", "01ABC", "--retry", "--supervisor", "op1", "--pin-stdin"],
                      input="0000\n")
    res = runner.invoke(app, ["operator", "unlock", "op1", "--supervisor", "sup1", "--pin-stdin"], input="000000\n")
    assert res.exit_code == 1 and "Wrong operator ID or PIN" in res.output
    res = runner.invoke(app, ["operator", "unlock", "op1", "--supervisor", "sup1", "--pin-stdin"], input="482913\n")
    assert res.exit_code == 0 and "op1 may try a PIN again" in res.output
    res = runner.invoke(app, ["review", "resolve", "01ABC", "--retry", "--supervisor", "op1", "--pin-stdin"],
                        input="4826\n")
    assert "not a supervisor" in res.output  # the right PIN is checked again, not "locked"
