"""Start fast, through the real entry point (``opd-fallback counter`` in a
fresh interpreter): by the time the login screen is first written to the
terminal, no database, network, printing, matching, settings (pydantic) or
command-line library is loaded, and nothing has touched central; a damaged
database is still refused in one sentence afterwards, and a setting the full
settings refuse in one sentence before any screen (benchmarks/counter_start.py
has the figure). The settings the login screen needs are read without
pydantic (``datadir.counter_start``); they must agree with ``load_settings``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest

from opd_fallback.config import Settings, load_settings
from opd_fallback.datadir import START_CHOICES, START_STRINGS, counter_start
from opd_fallback.tui.i18n import tr
from opd_fallback.tui.wiring import start_of

# The entry point as the console script runs it, headless; when the login screen
# is first written to the terminal, the loaded modules are written down.
_RUN = r"""
import json, sys
from opd_fallback.tui.app import CounterApp

out, then, args = sys.argv[1], sys.argv[2], sys.argv[3:]
run, display = CounterApp.run, CounterApp._display
painted = []

def headless_run(self, **kw):
    return run(self, headless=True, size=(80, 24))

def first_paint(self, screen, renderable):
    display(self, screen, renderable)
    from opd_fallback.tui.screens.login import LoginScreen
    if painted or renderable is None or not isinstance(screen, LoginScreen):
        return
    painted.append(True)
    title = str(screen.query_one(".title").render())
    with open(out, "w") as f:
        json.dump({"modules": sorted(sys.modules), "login_shown": "Log in to the counter" in title,
                   "title": title}, f)
    if then == "quit":
        self.set_timer(1.0, self.exit)

CounterApp.run = headless_run
CounterApp._display = first_paint
sys.argv = ["opd-fallback", "counter", *args]
from opd_fallback.cli import main
main()
"""

HEAVY = ("sqlalchemy", "sqlmodel", "sqlcipher3", "alembic", "httpx", "httpcore", "fastapi", "starlette",
         "uvicorn", "escpos", "fpdf", "rapidfuzz", "argon2", "typer", "click", "PIL", "pydantic",
         "pydantic_core", "pydantic_settings")


def _env(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("OPD_")}
    env["OPD_DATA_DIR"] = str(data)
    return env


@pytest.fixture
def counter(tmp_path: Path) -> Path:
    data = tmp_path / "counter"
    cli = [sys.executable, "-m", "opd_fallback"]
    # central configured (a closed port): a probe or a sync before first paint would show as httpx loaded
    subprocess.run([*cli, "init", "--device", "C07", "--hospital", "KGMU", "--server", "http://127.0.0.1:9",
                    "--token-stdin"], env=_env(data), input="t0ken\n", text=True, check=True,
                   capture_output=True, timeout=60)
    return data


def _run(data: Path, tmp_path: Path, then: str, *args: str) -> tuple[subprocess.CompletedProcess[str],
                                                                     dict[str, object]]:
    out = tmp_path / "at_first_paint.json"
    res = subprocess.run([sys.executable, "-c", _RUN, str(out), then, *args], env=_env(data), capture_output=True,
                         text=True, timeout=120)
    return res, json.loads(out.read_text()) if out.exists() else {}


def test_the_login_screen_paints_before_any_heavy_library_loads(counter: Path, tmp_path: Path) -> None:
    res, seen = _run(counter, tmp_path, "quit")
    assert res.returncode == 0, res.stderr
    assert seen["login_shown"] is True
    modules = set(seen["modules"])  # type: ignore[arg-type]
    loaded = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    assert not loaded, f"loaded before the login screen was painted: {loaded[:10]}"
    # nor the counter's own store, sync or printing (they open behind the login screen)
    ours = sorted(m for m in modules if m.startswith(("opd_fallback.store", "opd_fallback.sync",
                                                      "opd_fallback.printing", "opd_fallback.application",
                                                      "opd_fallback.cli.root", "opd_fallback.config")))
    assert not ours, ours


def test_a_damaged_database_is_still_refused_in_one_sentence(counter: Path, tmp_path: Path) -> None:
    db = counter / "counter.db"
    db.write_bytes(b"this is not a database, it was overwritten " * 500)
    for side in ("-wal", "-shm"):
        Path(str(db) + side).unlink(missing_ok=True)
    res, seen = _run(counter, tmp_path, "wait")
    assert seen["login_shown"] is True
    lines = [x for x in res.stderr.splitlines() if x.strip()]
    assert res.returncode == 6, res.stderr  # ExitCode.DAMAGED
    assert len(lines) == 1 and lines[0].startswith("error: ") and "is damaged" in lines[0], res.stderr
    assert "Traceback" not in res.stderr


def test_a_counter_set_up_with_its_district_desk_and_hub_still_paints_first_in_hindi(counter: Path,
                                                                                   tmp_path: Path) -> None:
    with (counter / "config.toml").open("a") as fh:
        fh.write('hospital_district = "Lucknow"\nhospital_state = "Uttar Pradesh"\ndesk = "registration"\n'
                 'hub_url = "http://127.0.0.1:9"\n')
    (counter / "hub.token").write_text("hub-t0ken\n")
    res, seen = _run(counter, tmp_path, "quit", "--lang", "hi")
    assert res.returncode == 0, res.stderr
    assert seen["title"] == tr("login.title", "hi")
    loaded = sorted(m for m in seen["modules"] if m.split(".")[0] in HEAVY)  # type: ignore[union-attr]
    assert not loaded, loaded


def test_a_setting_the_settings_refuse_is_said_in_one_sentence_before_any_screen(counter: Path,
                                                                                 tmp_path: Path) -> None:
    with (counter / "config.toml").open("a") as fh:
        fh.write("batch_size = 9999\n")
    res, seen = _run(counter, tmp_path, "quit")
    assert seen == {}, "a screen was shown"
    lines = [x for x in res.stderr.splitlines() if x.strip()]
    assert res.returncode != 0 and len(lines) == 1 and "batch" in lines[0].lower(), res.stderr
    assert "Traceback" not in res.stderr


def _clean_env(monkeypatch: pytest.MonkeyPatch, data: Path) -> None:
    for k in list(os.environ):
        if k.upper().startswith("OPD_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("OPD_DATA_DIR", str(data))


def test_the_quick_start_settings_agree_with_the_full_settings(counter: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _clean_env(monkeypatch, counter)
    config = counter / "config.toml"
    as_init = config.read_text()

    def same() -> None:
        quick = counter_start()
        assert quick is not None
        assert quick == start_of(load_settings())

    same()  # as init leaves it: central configured (token in its file)
    config.write_text(as_init + 'hospital_district = "Lucknow"\nlanguage = "hi"\ndesk = "billing"\n'
                      'hub_url = "http://127.0.0.1:9"\n')
    same()  # a hub URL without its token: no sharing
    (counter / "hub.token").write_text("hub-t0ken\n")
    same()
    monkeypatch.setenv("OPD_HOSPITAL", "SGPGI")
    monkeypatch.setenv("OPD_DESK", "collection")
    monkeypatch.setenv("OPD_CENTRAL_TOKEN", "")  # set but empty: no central, the token file is not read
    same()
    monkeypatch.delenv("OPD_CENTRAL_TOKEN")
    (counter / "device.token").unlink()
    same()
    # the defaults the quick start assumes (idle lock, background sync) are the settings' own: same() compared them
    assert set(Settings.model_fields) >= START_STRINGS | set(START_CHOICES)
    for name, choices in START_CHOICES.items():
        assert get_args(Settings.model_fields[name].annotation) == choices


@pytest.mark.parametrize("unusual", ['language = "fr"\n', 'desk = "pharmacy"\n', "idle_lock_seconds = 60\n",
                                     "background_sync = false\n", "verify_tls = false\n", 'hospital = 7\n',
                                     "hub_interval_s = 1.0\n", "not toml ["])
def test_anything_unusual_takes_the_full_settings(counter: Path, monkeypatch: pytest.MonkeyPatch,
                                                  unusual: str) -> None:
    _clean_env(monkeypatch, counter)
    config = counter / "config.toml"
    config.write_text(config.read_text() + unusual)
    assert counter_start() is None


def test_a_device_id_the_settings_refuse_takes_the_full_settings(counter: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    _clean_env(monkeypatch, counter)
    assert counter_start() is not None
    monkeypatch.setenv("OPD_DEVICE_ID", "C 07")
    assert counter_start() is None
