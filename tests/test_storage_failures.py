"""A full disk, a read-only data folder and a damaged counter.db end every
command in one sentence (what is wrong, what to do) with the exit status the
README documents, never a traceback; the traceback goes to a 0600 log."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opd_fallback.cli import app
from opd_fallback.store.failures import EXIT_DAMAGED, EXIT_STORAGE
from tests.helpers.mounts import fill, read_only_view, small_tmpfs

runner = CliRunner()
PATIENT = "Ramesh Chandra"  # never in a message

COMMANDS = [
    ["status"],
    ["operator", "list"],
    ["operator", "add", "op2", "--name", PATIENT, "--pin-stdin"],
    ["review", "list"],
    ["backup"],
    ["counter"],
    ["nightly", "--json"],
]


@pytest.fixture(autouse=True)
def own_log_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))  # the fallback log folder
    for k in ("OPD_CENTRAL_URL", "OPD_CENTRAL_TOKEN", "OPD_VERIFY_TLS"):
        monkeypatch.delenv(k, raising=False)


def _counter(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPD_DATA_DIR", str(data))
    assert runner.invoke(app, ["init", "--device", "C07", "--hospital", "KGMU"]).exit_code == 0
    res = runner.invoke(app, ["operator", "add", "op1", "--name", "Asha", "--pin-stdin"], input="482913\n")
    assert res.exit_code == 0, res.output


def _one_line(args: list[str], expected_code: int, words: str) -> str:
    res = runner.invoke(app, args, input="482913\n")
    lines = [x for x in res.output.splitlines() if x.strip()]
    assert res.exit_code == expected_code, (args, res.output)
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], (args, res.output)
    assert "Traceback" not in res.output and PATIENT not in res.output
    return lines[0]


def _log_in(text: str) -> Path:
    log = Path(text.split("Details for IT: ")[1].rstrip(".)"))
    assert stat.S_IMODE(os.stat(log).st_mode) == 0o600 and "Traceback" in log.read_text()
    assert stat.S_IMODE(os.stat(log.parent).st_mode) == 0o700
    return log


def test_a_damaged_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "counter"
    _counter(data, monkeypatch)
    db = data / "counter.db"
    db.write_bytes(b"this is not a database, it was overwritten " * 500)
    for side in ("-wal", "-shm"):
        Path(str(db) + side).unlink(missing_ok=True)
    for args in COMMANDS:
        line = _one_line(args, EXIT_DAMAGED, f"The counter's database at {db} is damaged: restore the last backup")
    assert _log_in(line) == data / "logs" / "errors.log"


def test_a_read_only_data_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "counter"
    _counter(source, monkeypatch)
    with read_only_view(source, tmp_path / "ro") as view:
        monkeypatch.setenv("OPD_DATA_DIR", str(view))
        for args in COMMANDS:
            line = _one_line(args, EXIT_STORAGE, f"The counter's data folder {view} cannot be written")
        _log_in(line)  # in the user's log folder: the data folder cannot take it


def test_a_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with small_tmpfs(tmp_path / "disk", "1m") as disk:
        data = disk / "counter"
        _counter(data, monkeypatch)
        fill(disk)
        for args in COMMANDS:
            line = _one_line(args, EXIT_STORAGE, f"The disk holding {data} is full: free space")
        _log_in(line)


def test_a_write_that_meets_a_full_disk_keeps_nothing_half_done(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from opd_fallback.store import open_store
    from opd_fallback.store.failures import explain
    from opd_fallback.store.operators import list_operators

    with small_tmpfs(tmp_path / "disk", "1m") as disk:
        data = disk / "counter"
        _counter(data, monkeypatch)
        store = open_store(data / "counter.db")  # open (its -shm exists), as the counter app keeps it
        try:
            fill(disk)
            with pytest.raises(Exception) as info:
                with store.write() as s:
                    s.exec(__import__("sqlalchemy").text(  # type: ignore[call-overload]
                        "INSERT INTO meta(key, value) VALUES ('big', :v)").bindparams(v=PATIENT * 20000))
            problem = explain(info.value, store.path)
            assert problem is not None and problem.kind == "full", info.value
            assert PATIENT not in str(problem) and PATIENT not in str(info.value)  # parameters hidden
            assert [o.id for o in list_operators(store)] == ["op1"]
        finally:
            store.close()


def test_a_bad_setting_and_a_bug_are_one_line_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from opd_fallback.cli.root import EXIT_UNEXPECTED
    from opd_fallback.store import operators

    data = tmp_path / "counter"
    _counter(data, monkeypatch)
    monkeypatch.setenv("OPD_BATCH_SIZE", "9999")
    _one_line(["status"], 1, "a setting is not valid (batch_size: must be at most 500)")
    monkeypatch.delenv("OPD_BATCH_SIZE")

    def broken(store: object) -> None:
        raise ValueError(f"cannot show {PATIENT}")

    monkeypatch.setattr(operators, "list_operators", broken)
    line = _one_line(["operator", "list"], EXIT_UNEXPECTED, "an unexpected ValueError stopped this command")
    log = data / "logs" / "errors.log"
    assert str(log) in line and stat.S_IMODE(os.stat(log).st_mode) == 0o600
