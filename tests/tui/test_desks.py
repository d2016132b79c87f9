"""Desks (``init --desk``, ``OPD_DESK``): the screen a counter opens after login
and the keys its home menu shows first; every screen stays reachable."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from opd_fallback.cli import app as cli
from opd_fallback.config import load_settings
from opd_fallback.store.engine import open_store
from opd_fallback.store.operators import add_operator
from opd_fallback.tui.screens.billing import BillingScreen
from opd_fallback.tui.screens.home import HomeScreen
from opd_fallback.tui.screens.lab import LabScreen
from opd_fallback.tui.screens.register import RegisterScreen
from opd_fallback.tui.wiring import app_from_settings

from .conftest import OPERATOR, OPERATOR_PIN, login, put_master_data, settle


def _init(data: Path, *extra: str) -> str:
    res = CliRunner().invoke(cli, ["--data-dir", str(data), "init", "--device", "C02", "--hospital", "KGMU", *extra])
    assert res.exit_code == 0, res.output
    return res.output


def test_init_stores_the_desk_and_refuses_an_unknown_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "desk:     all" in _init(tmp_path / "a")
    assert load_settings(tmp_path / "a").desk == "all"
    assert "desk:     billing" in _init(tmp_path / "b", "--desk", "Billing")
    assert load_settings(tmp_path / "b").desk == "billing"
    monkeypatch.setenv("OPD_DESK", "collection")
    assert load_settings(tmp_path / "a").desk == "collection"
    res = CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "c"), "init", "--device", "C02", "--hospital", "KGMU",
                                   "--desk", "pharmacy"])
    assert res.exit_code == 1
    assert "--desk must be one of registration, billing, collection, all (got 'pharmacy')" in res.output


@pytest.mark.parametrize(("desk", "home", "first"), [
    ("billing", BillingScreen, ["home.billing", "home.reprint", "home.void", "home.cash", "home.new"]),
    ("registration", RegisterScreen, ["home.new", "home.revisit", "home.lab", "home.billing", "home.void"]),
    ("all", HomeScreen, ["home.new", "home.revisit", "home.lab", "home.billing", "home.void"]),
])
async def test_a_desk_opens_its_screen_and_shows_its_keys_first(tmp_path: Path, desk: str, home: type,
                                                               first: list[str]) -> None:
    _init(tmp_path, "--desk", desk)
    settings = load_settings(tmp_path)
    store = open_store(settings.db_path)
    put_master_data(store)
    add_operator(store, OPERATOR, "Asha Verma", OPERATOR_PIN)
    store.close()
    app = app_from_settings(settings, background_sync=False)
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(50):
            await settle(pilot, 1)
            if app.backend is not None:
                break
        await login(pilot)
        await settle(pilot)
        assert isinstance(app.screen, home)
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, HomeScreen)
        items = [w.key for w in app.screen.query(".menu-item")]
        assert items[:5] == first and len(items) == 10  # every flow is on the menu
        keys = str(app.screen.query_one("#keys").render())
        assert keys.split("  ")[0] == {"billing": "F12 Billing", "registration": "F2 New", "all": "F2 New"}[desk]
        await pilot.press("f4")  # every screen stays one key away
        await settle(pilot)
        assert isinstance(app.screen, LabScreen)
