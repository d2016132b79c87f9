"""Quick commands import only what they use (issue 12, "Start fast").

Each check runs the command in a fresh interpreter and lists the modules it
loaded: deterministic, unlike a timing (the timings are in
benchmarks/cli_start.py). ``status`` must not load the UI, HTTP, the server,
SQLAlchemy or pydantic-settings; ``--help`` and importing the CLI must not load
what any one command needs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest

from opd_fallback.config import load_settings
from opd_fallback.datadir import counter_identity
from opd_fallback.domain import payloads, rules

UI_AND_NETWORK = ("textual", "httpx", "fastapi", "starlette", "uvicorn", "escpos", "fpdf", "rapidfuzz")
DATABASE_AND_SETTINGS = ("sqlalchemy", "sqlmodel", "pydantic_settings")

_RUN = """
import json, sys
from opd_fallback.cli import app
args = json.loads(sys.argv[1])
if args is not None:
    try:
        app(args)
    except SystemExit as exc:
        if exc.code:
            raise
json.dump(sorted({m.split(".")[0] for m in sys.modules}), open(sys.argv[2], "w"))
"""


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("OPD_")}
    env["OPD_DATA_DIR"] = str(data_dir)
    return env


def _modules_loaded_by(args: list[str] | None, data_dir: Path, tmp_path: Path) -> set[str]:
    out = tmp_path / "modules.json"
    subprocess.run([sys.executable, "-c", _RUN, json.dumps(args), str(out)], env=_env(data_dir), check=True,
                   stdout=subprocess.DEVNULL, timeout=60)
    return set(json.loads(out.read_text()))


@pytest.fixture
def counter_dir(tmp_path: Path) -> Path:
    d = tmp_path / "counter"
    subprocess.run([sys.executable, "-m", "opd_fallback", "init", "--device", "C07", "--hospital", "KGMU"],
                   env=_env(d), check=True, stdout=subprocess.DEVNULL, timeout=60)
    return d


@pytest.mark.parametrize("args", [["status"], ["status", "--json"]])
def test_status_loads_no_ui_network_database_library_or_settings_library(
    counter_dir: Path, tmp_path: Path, args: list[str]
) -> None:
    loaded = _modules_loaded_by(args, counter_dir, tmp_path)
    assert "opd_fallback" in loaded
    assert not loaded & set(UI_AND_NETWORK + DATABASE_AND_SETTINGS + ("rich",)), sorted(loaded)


def test_importing_the_cli_and_help_load_no_command_s_libraries(tmp_path: Path) -> None:
    for args in (None, ["--help"]):
        loaded = _modules_loaded_by(args, tmp_path / "none", tmp_path)
        assert not loaded & set(UI_AND_NETWORK + DATABASE_AND_SETTINGS), (args, sorted(loaded))


def test_quick_identity_agrees_with_the_settings(
    counter_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for k in list(os.environ):
        if k.upper().startswith("OPD_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("OPD_DATA_DIR", str(counter_dir))
    s = load_settings()
    assert counter_identity() == (s.db_path, s.device_id) == (counter_dir / "counter.db", "C07")
    monkeypatch.setenv("OPD_DEVICE_ID", " c09 ")
    s = load_settings()
    assert counter_identity() == (s.db_path, s.device_id) == (counter_dir / "counter.db", "C09")
    monkeypatch.setenv("OPD_DEVICE_ID", "not a device")  # the settings refuse it: the full path explains
    assert counter_identity() is None
    monkeypatch.delenv("OPD_DEVICE_ID")
    monkeypatch.setenv("OPD_BATCH_SIZE", "9999")  # a setting the full settings may refuse: they must see it
    assert counter_identity() is None
    monkeypatch.delenv("OPD_BATCH_SIZE")
    (counter_dir / "config.toml").write_text('device_id = "C07"\nlanguage = "fr"\n')
    assert counter_identity() is None
    monkeypatch.setenv("OPD_DATA_DIR", str(counter_dir.parent / "elsewhere"))  # no counter there
    assert counter_identity() is None


def test_the_light_lists_match_the_payload_models() -> None:
    assert rules.OP_KINDS == payloads.OP_KINDS
    assert get_args(payloads.PaymentMode) == rules.PAYMENT_MODES


def test_status_upgrades_a_database_it_cannot_read_then_reports(
    counter_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from opd_fallback.cli import app

    for k in list(os.environ):
        if k.upper().startswith("OPD_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("OPD_DATA_DIR", str(counter_dir))
    for p in counter_dir.glob("counter.db*"):
        p.unlink()
    (counter_dir / "counter.db").touch()  # schema version 0: no tables yet
    res = CliRunner().invoke(app, ["status", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["ops"]["total"] == 0


@pytest.mark.parametrize("how", ["env", "file"])
def test_status_still_warns_when_tls_checks_are_off(
    counter_dir: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    from typer.testing import CliRunner

    from opd_fallback.cli import app
    from opd_fallback.datadir import tls_checks_may_be_off

    for k in list(os.environ):
        if k.upper().startswith("OPD_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("OPD_DATA_DIR", str(counter_dir))
    assert not tls_checks_may_be_off() and counter_identity() is not None
    if how == "env":
        monkeypatch.setenv("OPD_VERIFY_TLS", "false")
    else:
        with (counter_dir / "config.toml").open("a") as fh:
            fh.write("verify_tls = false\n")
    assert tls_checks_may_be_off() and counter_identity() is None
    res = CliRunner().invoke(app, ["status"])
    assert res.exit_code == 0, res.output
    assert res.output.count("TLS certificate checks are OFF") == 1
