"""Configuration precedence, the 0600 token file and the device check."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from opd_fallback.config import Settings, load_settings, require_device, write_config, write_token
from opd_fallback.domain.errors import DomainError


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for k in list(os.environ):
        if k.startswith("OPD_"):
            monkeypatch.delenv(k)


def test_token_file_is_0600_and_not_in_config(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path)
    write_config(s, {"device_id": "C07", "central_token": "secret-token"})
    write_token(s, "secret-token")
    assert stat.S_IMODE(s.token_path.stat().st_mode) == 0o600
    assert "secret-token" not in s.config_path.read_text()
    assert load_settings(tmp_path).central_token == "secret-token"


def test_token_rewritten_stays_0600_even_if_loosened(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path)
    write_token(s, "one")
    s.token_path.chmod(0o644)
    write_token(s, "two")
    assert stat.S_IMODE(s.token_path.stat().st_mode) == 0o600
    assert s.token_path.read_text().strip() == "two"


def test_precedence_defaults_file_env_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = Settings(data_dir=tmp_path)
    assert load_settings(tmp_path).batch_size == 500  # default
    write_config(s, {"device_id": "c07", "central_url": "https://file.example", "batch_size": 100})
    got = load_settings(tmp_path)
    assert (got.device_id, got.central_url, got.batch_size) == ("C07", "https://file.example", 100)
    monkeypatch.setenv("OPD_CENTRAL_URL", "https://env.example")
    monkeypatch.setenv("OPD_CENTRAL_TOKEN", "env-token")
    got = load_settings(tmp_path)
    assert got.central_url == "https://env.example" and got.central_token == "env-token"
    assert load_settings(tmp_path, central_url="https://arg.example").central_url == "https://arg.example"


def test_data_dir_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPD_DATA_DIR", str(tmp_path))
    s = load_settings()
    assert s.data_dir == tmp_path and s.db_path == tmp_path / "counter.db"


def test_tls_verification_is_on_by_default(tmp_path: Path) -> None:
    assert load_settings(tmp_path).verify_tls is True


def test_device_id_rules_and_require_device(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        Settings(data_dir=tmp_path, device_id="C-07!")
    with pytest.raises(DomainError, match="not set up"):
        require_device(Settings(data_dir=tmp_path))
    assert require_device(Settings(data_dir=tmp_path, device_id="c07")) == "C07"


def test_sync_engine_takes_its_limits_from_settings(tmp_path, monkeypatch) -> None:
    from opd_fallback.store import open_store
    from opd_fallback.sync.client import CentralClient
    from opd_fallback.sync.engine import SyncEngine

    monkeypatch.setenv("OPD_MAX_DEFERRED_WAIT_S", "900")
    monkeypatch.setenv("OPD_BATCH_SIZE", "200")
    settings = load_settings(tmp_path)
    store = open_store(tmp_path / "c.db")
    client = CentralClient("https://central.invalid", "t")
    engine = SyncEngine(store, client, settings=settings)
    assert (engine.max_deferred_wait_s, engine.batch_size) == (900, 200)
    assert SyncEngine(store, client, settings=settings, max_deferred_wait_s=5).max_deferred_wait_s == 5
    client.close()
    store.close()


def test_one_settings_holds_the_printer_group_under_the_old_names(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """config.toml's printer, printer_target, paper_width_chars and the OPD_PRINTER*
    variables fill ``settings.printer`` (no second settings class reads the environment)."""
    from opd_fallback.config import PrinterSettings
    from opd_fallback.printing import make_printer
    from opd_fallback.printing.base import LabelRouter
    from opd_fallback.printing.file import FilePrinter

    base = load_settings(tmp_path)
    assert base.printer == PrinterSettings() and base.print_dir == tmp_path / "prints"
    write_config(base, {"printer": "escpos-network", "printer_target": "10.0.0.9:9101", "paper_width_chars": 32})
    s = load_settings(tmp_path)
    assert (s.printer.target, s.printer.host, s.printer.port, s.printer.width_chars) == (
        "escpos-network", "10.0.0.9", 9101, 32)
    monkeypatch.setenv("OPD_PRINTER", "file")
    monkeypatch.setenv("OPD_PRINTER_TARGET", str(tmp_path / "slips"))
    monkeypatch.setenv("OPD_PAPER_WIDTH_CHARS", "48")
    monkeypatch.setenv("OPD_PRINTER_LABEL_PRINTER", "zpl")
    monkeypatch.setenv("OPD_PRINTER_LABEL_TARGET", "10.0.0.7:9100")
    s = load_settings(tmp_path)
    assert s.printer == PrinterSettings(target="file", directory=tmp_path / "slips", width_chars=48,
                                        label_printer="zpl", label_target="10.0.0.7:9100")
    assert s.print_dir == tmp_path / "slips"
    printer = make_printer(s.printer, data_dir=tmp_path)
    assert isinstance(printer, LabelRouter) and isinstance(printer.main, FilePrinter) and printer.main.directory == tmp_path / "slips"
