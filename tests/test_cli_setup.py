"""``init`` and ``operator``: a counter set up from the command line."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from opd_fallback.cli import app
from opd_fallback.config import load_settings
from opd_fallback.store import open_store

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for k in list(os.environ):
        if k.startswith("OPD_"):
            monkeypatch.delenv(k)
    d = tmp_path / "counter"
    monkeypatch.setenv("OPD_DATA_DIR", str(d))  # restored after the test, whatever --data-dir did
    yield d


def _init(*extra: str) -> object:
    return runner.invoke(app, ["init", "--device", "c07", "--hospital", "kgmu", *extra])


def test_init_creates_config_db_and_0600_token(data_dir: Path) -> None:
    res = _init("--server", "https://his.example.org/", "--token", "tok-123")
    assert res.exit_code == 0, res.output
    s = load_settings(data_dir)
    assert (s.device_id, s.hospital, s.central_url, s.central_token) == (
        "C07", "KGMU", "https://his.example.org", "tok-123")
    assert stat.S_IMODE(s.token_path.stat().st_mode) == 0o600
    assert "tok-123" not in s.config_path.read_text() and "tok-123" not in res.output
    assert s.db_path.exists()
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700  # patient data: owner only


def test_init_takes_server_and_token_from_env(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPD_CENTRAL_URL", "https://env.example")
    monkeypatch.setenv("OPD_CENTRAL_TOKEN", "env-tok")
    assert _init().exit_code == 0
    monkeypatch.delenv("OPD_CENTRAL_URL")
    monkeypatch.delenv("OPD_CENTRAL_TOKEN")
    s = load_settings(data_dir)
    assert s.central_url == "https://env.example" and s.central_token == "env-tok"


def test_data_dir_option(tmp_path: Path, data_dir: Path) -> None:
    other = tmp_path / "elsewhere"
    res = runner.invoke(app, ["--data-dir", str(other), "init", "--device", "C08", "--hospital", "KGMU"])
    assert res.exit_code == 0, res.output
    assert load_settings(other).device_id == "C08"
    third = tmp_path / "third"  # also accepted after the command, as sync and the others take it
    res = runner.invoke(app, ["init", "--device", "C09", "--hospital", "KGMU", "--data-dir", str(third)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["operator", "--data-dir", str(third), "add", "op1", "--name", "A", "--pin-stdin"],
                        input="1234\n")
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["status", "--json", "--data-dir", str(third)])
    assert res.exit_code == 0 and '"device_id": "C09"' in res.output


def test_init_refuses_bad_input_and_changing_device(data_dir: Path) -> None:
    res = runner.invoke(app, ["init", "--device", "C-07!", "--hospital", "KGMU"])
    assert res.exit_code == 1 and "--device" in res.output
    assert _init("--server", "ftp://x").exit_code == 1
    assert _init().exit_code == 0
    assert _init().exit_code == 0  # same device again is fine
    res = runner.invoke(app, ["init", "--device", "C09", "--hospital", "KGMU"])
    assert res.exit_code == 1 and "already belongs to counter C07" in res.output


def test_operator_add_list_disable(data_dir: Path) -> None:
    assert _init().exit_code == 0
    res = runner.invoke(app, ["operator", "add", "op1", "--name", "Asha Verma", "--pin-stdin"], input="4826\n")
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["operator", "add", "sup1", "--name", "Meena", "--role", "supervisor",
                              "--pin-stdin"], input="999999\n")
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["operator", "list"])
    assert "op1" in res.output and "supervisor" in res.output and "4826" not in res.output
    assert runner.invoke(app, ["operator", "disable", "op1"]).exit_code == 0
    res = runner.invoke(app, ["operator", "list", "--json"])
    assert '"active": false' in res.output
    store = open_store(data_dir / "counter.db")
    with store.read() as s:
        hashes = [r[0] for r in s.execute(text("SELECT pin_hash FROM operator"))]
    store.close()
    assert all(h.startswith("$argon2id$") and "4826" not in h for h in hashes)


def test_operator_add_errors(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    res = runner.invoke(app, ["operator", "add", "op1", "--name", "A", "--pin-stdin"], input="1234\n")
    assert res.exit_code == 1 and "init" in res.output  # not set up yet
    assert _init().exit_code == 0
    res = runner.invoke(app, ["operator", "add", "op1", "--name", "A", "--pin-stdin"], input="12\n")
    assert res.exit_code == 1 and "4 to 8 digits" in res.output
    res = runner.invoke(app, ["operator", "add", "op1", "--name", "A", "--role", "admin", "--pin-stdin"],
                        input="1234\n")
    assert res.exit_code == 1
    answers = iter(["1234", "4321"])
    monkeypatch.setattr("opd_fallback.cli.setup.getpass.getpass", lambda prompt="": next(answers))
    res = runner.invoke(app, ["operator", "add", "op1", "--name", "A"])
    assert res.exit_code == 1 and "differ" in res.output
    answers = iter(["1234", "1234"])
    res = runner.invoke(app, ["operator", "add", "op1", "--name", "A"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["operator", "disable", "nobody"])
    assert res.exit_code == 1 and "no operator nobody" in res.output


def test_python_dash_m_runs_the_same_cli(data_dir: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "opd_fallback", "--help"], capture_output=True, text=True,
                         timeout=60, env={**os.environ, "COLUMNS": "120"})
    assert out.returncode == 0, out.stderr
    for command in ("init", "operator", "import", "status"):
        assert command in out.stdout
