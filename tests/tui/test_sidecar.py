"""The counter's background sync runs in its sidecar process (application/sidecar.py):
a registration made with keys is synced and the status bar says so, the sidecar is
another process, and it never outlives the counter (quit, or the counter killed);
a sidecar that died is started again and its lost job said in words."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from sqlmodel import select

from opd_fallback.application.sidecar import STOPPED, Sidecar, SidecarFailed
from opd_fallback.config import Settings, load_settings, write_config, write_token
from opd_fallback.store.engine import open_store
from opd_fallback.store.operators import add_operator
from opd_fallback.store.tables import Op
from opd_fallback.tui.widgets.status_bar import StatusBar
from opd_fallback.tui.wiring import app_from_settings
from tests.helpers.central import run_central

from .clerk import NEW_PATIENT, play
from .conftest import login, put_master_data, settle


def _gone(pid: int, within_s: float) -> bool:
    """The process ended (a zombie nobody reaped counts as ended) within ``within_s``."""
    end = time.monotonic() + within_s
    while time.monotonic() < end:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


def _counter(tmp_path: Path, **config: str) -> Settings:
    settings = load_settings(tmp_path / "counter")
    write_config(settings, {"device_id": "C07", "hospital": "KGMU", **config})
    return load_settings(tmp_path / "counter")


async def test_a_registration_made_with_keys_is_synced_by_the_sidecar_and_the_status_bar_says_so(
        tmp_path: Path) -> None:
    with run_central(tmp_path / "central", devices=("C07",)) as central:
        settings = _counter(tmp_path, central_url=central.url)
        write_token(settings, central.tokens["C07"])
        settings = load_settings(tmp_path / "counter")
        store = open_store(settings.db_path)
        put_master_data(store)
        add_operator(store, "op1", "Asha", "1234")
        app = app_from_settings(settings, status_interval_s=0.2)
        async with app.run_test(size=(160, 40)) as pilot:
            await login(pilot)
            await play(pilot, NEW_PATIENT)
            with store.read() as s:
                assert s.exec(select(Op)).all(), "F10 saved nothing"
            bar = ""
            for _ in range(150):
                await settle(pilot, 1)
                with store.read() as s:
                    states = {o.state for o in s.exec(select(Op)).all()}
                bar = str(app.screen.query_one(StatusBar).render())
                if states == {"synced"} and "To sync: 0" in bar and "Last sync: never" not in bar:
                    break
                await pilot.pause(0.1)
            assert states == {"synced"}
            assert "To sync: 0" in bar and "Last sync:" in bar and "never" not in bar, bar
            sidecar = app.sidecar()
            assert isinstance(sidecar, Sidecar) and sidecar.pid not in (None, os.getpid())
            pid = sidecar.pid
            assert pid is not None and not _gone(pid, 0)
        assert _gone(pid, 10), "the sidecar outlived the counter's quit"
        store.close()


_PARENT = """
import sys, time
from pathlib import Path
from opd_fallback.application.sidecar import Sidecar
from opd_fallback.config import load_settings
s = load_settings(Path(sys.argv[1]))
car = Sidecar(lambda: s, s.db_path)
try:
    car.sync()
except Exception:
    pass  # no central configured: the job fails, the sidecar is up
print(car.pid, flush=True)
time.sleep(60)
"""


def test_the_sidecar_ends_when_the_counter_is_killed(tmp_path: Path) -> None:
    settings = _counter(tmp_path)
    open_store(settings.db_path).close()
    parent = subprocess.Popen([sys.executable, "-c", _PARENT, str(settings.data_dir)], stdout=subprocess.PIPE,
                              cwd=Path(__file__).resolve().parents[2])
    try:
        assert parent.stdout is not None
        pid = int(parent.stdout.readline())
        assert not _gone(pid, 0)
        parent.send_signal(signal.SIGKILL)  # no clean-up of any kind in the counter
        parent.wait(5)
        assert _gone(pid, 10), "the sidecar outlived a killed counter"
    finally:
        parent.kill()
        parent.wait(5)


def test_a_sidecar_killed_mid_sync_fails_that_sync_in_words_and_is_started_again(tmp_path: Path) -> None:
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(8)  # accepts connections and never answers: the sync waits on central
    settings = _counter(tmp_path, central_url=f"http://127.0.0.1:{hang.getsockname()[1]}")
    write_token(settings, "t" * 32)
    settings = load_settings(tmp_path / "counter")
    open_store(settings.db_path).close()
    given = [settings]
    car = Sidecar(lambda: given[0], settings.db_path)
    outcome: list[BaseException | object] = []
    t = threading.Thread(target=lambda: outcome.append(_catch(car.sync)), daemon=True)
    try:
        t.start()
        hang.settimeout(20)
        conn, _ = hang.accept()  # the sidecar's sync is waiting for central's answer
        first = car.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        t.join(5)
        assert not t.is_alive(), "the sync request did not end with its process"
        assert isinstance(outcome[0], SidecarFailed) and str(outcome[0]) == STOPPED
        assert len(f"failed: {STOPPED}") <= 40  # the status bar keeps 40 characters of a failed sync
        given[0] = load_settings(tmp_path / "counter").model_copy(update={"central_url": None})
        _catch(car.sync)  # the next request starts a new sidecar (no central now: its sync ends at once)
        assert car.restarts == 1 and car.pid not in (None, first)
        conn.close()
    finally:
        car.close()
        hang.close()
    assert car.pid is None


def _catch(fn: object) -> object:
    try:
        return fn()  # type: ignore[operator]
    except BaseException as exc:
        return exc
