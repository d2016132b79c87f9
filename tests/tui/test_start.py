"""Start fast: the login screen shows (and takes typing) before the store and
the backend are open; `status` and `counter` import only what they use."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from opd_fallback.config import load_settings, write_config
from opd_fallback.store.engine import open_store
from opd_fallback.store.operators import add_operator
from opd_fallback.tui.screens.home import HomeScreen
from opd_fallback.tui.screens.login import LoginScreen
from opd_fallback.tui.wiring import app_from_settings

from .clerk import play
from .conftest import settle


async def test_login_screen_first_and_the_store_behind_it(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "counter")
    write_config(settings, {"device_id": "C07", "hospital": "KGMU"})
    settings = load_settings(tmp_path / "counter")
    store = open_store(settings.db_path)
    add_operator(store, "op1", "Asha", "1234")
    store.close()
    app = app_from_settings(settings, status_interval_s=3600)
    release = threading.Event()
    real_loader = app._loader
    assert real_loader is not None

    def slow_loader():  # a slow disk: the store opens late
        release.wait(10)
        return real_loader()

    app._loader = slow_loader
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, LoginScreen) and app.backend is None
        # typed while the store is still opening
        await play(pilot, ["op1", "<enter>", "1234", "<enter>"], wait_for_workers=False)
        assert isinstance(app.screen, LoginScreen)
        release.set()
        for _ in range(50):
            await settle(pilot, 1)
            if isinstance(app.screen, HomeScreen):
                break
        assert isinstance(app.screen, HomeScreen) and app.session is not None
    app.backend.store.close()


def _imports_after(args: list[str], data_dir: Path) -> set[str]:
    code = ("import sys; sys.argv = ['opd-fallback', *sys.argv[1:]]\n"
            "from opd_fallback.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('MODULES', ' '.join(sorted(sys.modules)))\n")
    out = subprocess.run([sys.executable, "-c", code, "--data-dir", str(data_dir), *args], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    return set(out.split("MODULES", 1)[1].split())


def test_status_imports_only_what_it_uses(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "counter")
    write_config(settings, {"device_id": "C07", "hospital": "KGMU"})
    open_store(load_settings(tmp_path / "counter").db_path).close()
    loaded = _imports_after(["status", "--json"], tmp_path / "counter")
    assert "opd_fallback.application.status" in loaded
    for heavy in ("textual", "rapidfuzz", "fastapi", "opd_fallback.application.backentry", "opd_fallback.cli.sync",
                  "opd_fallback.application.reconcile", "opd_fallback.cli.central"):
        assert heavy not in loaded, heavy
