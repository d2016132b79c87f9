"""Start fast: the login screen shows (and takes typing) before the store and
the backend are open (status's quick start is tests/test_cli_start.py's)."""

from __future__ import annotations

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
