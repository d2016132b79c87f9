"""The counter on a disk that fills up while it runs: the save says, in one
sentence, that the disk is full and nothing was saved; the app keeps running,
shows no traceback and no patient data, and saves once space is freed."""

from __future__ import annotations

import shutil
from pathlib import Path

from opd_fallback.store.engine import open_store
from opd_fallback.tui.app import create_app
from opd_fallback.tui.backend import StoreBackend
from opd_fallback.tui.screens.register import RegisterScreen
from tests.helpers.mounts import fill, small_tmpfs

from .conftest import login, settle
from .test_register import counts
from .test_register import fill as fill_form


async def test_a_full_disk_at_save_is_one_sentence_and_the_counter_goes_on(
    seeded_db: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    with small_tmpfs(tmp_path / "disk", "2m") as disk:
        data = disk / "counter"
        data.mkdir()
        shutil.copyfile(seeded_db, data / "counter.db")
        store = open_store(data / "counter.db")
        try:
            app = create_app(StoreBackend(store, device_id="C07", hospital="KGMU"),
                             print_dir=tmp_path / "prints", spool_dir=tmp_path / "spool")
            async with app.run_test(size=(80, 24)) as pilot:
                await login(pilot)
                await pilot.press("f2")
                await settle(pilot)
                assert isinstance(app.screen, RegisterScreen)
                await fill_form(pilot, {"name": "Ramesh Chandra", "sex": "m", "age_years": "42",
                                        "department": "med", "unit": "med-u1"})
                before = counts(store)
                fill(disk)
                await pilot.press("f10")
                await settle(pilot)
                msg = str(app.screen.query_one("#form-msg").render())
                assert f"NOT SAVED: The disk holding {data} is full: free space on it and try again" in msg
                assert "Ramesh" not in msg and "Traceback" not in msg
                assert isinstance(app.screen, RegisterScreen) and app.is_running
                assert counts(store) == before
                (disk / "filler").unlink()
                await pilot.press("f10")
                await settle(pilot)
                assert "Saved C07-" in str(app.screen.query_one("#form-msg").render())
            assert (data / "logs" / "errors.log").exists() or (tmp_path / "state").exists()
        finally:
            store.close()


async def test_a_database_damaged_while_the_counter_runs_is_said_once_in_words(
    seeded_db: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    db = tmp_path / "counter" / "counter.db"
    db.parent.mkdir()
    shutil.copyfile(seeded_db, db)
    store = open_store(db)
    try:
        app = create_app(StoreBackend(store, device_id="C07", hospital="KGMU"),
                         print_dir=tmp_path / "prints", spool_dir=tmp_path / "spool")
        async with app.run_test(size=(80, 24)) as pilot:
            await login(pilot)
            store.engine.dispose()  # as after a restart of the pool: the next read opens the file afresh
            with open(db, "r+b") as fh:
                fh.write(b"garbage, not SQLite" * 300)
            app.refresh_status()
            await settle(pilot)
            said = [str(n.message) for n in app._notifications]
            assert any(f"The counter's database at {db} is damaged: restore the last backup" in m for m in said)
            assert app.is_running
    finally:
        store.close()
