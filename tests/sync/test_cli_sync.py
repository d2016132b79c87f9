"""``opd-fallback sync`` / ``refresh`` through the real CLI against a real server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import text

from opd_fallback.application.services import CounterService, PaymentInput
from opd_fallback.store import open_store
from tests.helpers.central import run_central

from .daygen import make_day


def _cli(data_dir: Path, *args: str) -> Any:
    from typer.testing import CliRunner

    from opd_fallback.cli import app

    return CliRunner().invoke(app, ["--data-dir", str(data_dir), *args])


def test_sync_and_refresh_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "counter"
    monkeypatch.setenv("OPD_DATA_DIR", str(data))
    with run_central(tmp_path) as central:
        r = _cli(data, "init", "--device", "C07", "--hospital", "KGMU", "--server", central.url,
                 "--token", central.tokens["C07"])
        assert r.exit_code == 0, r.output
        store = open_store(data / "counter.db")
        day = make_day(store, "C07", 6, seed=21)
        store.close()

        r = _cli(data, "sync")  # not a TTY: plain lines, then the summary
        assert r.exit_code == 0, r.output
        assert f"sync: 0/{day.ops} ops" in r.output and "all synced" in r.output
        assert f"applied {day.ops}" in r.output

        r = _cli(data, "sync", "--json")
        out = orjson.loads(r.stdout)
        assert r.exit_code == 0 and out["total"] == 0 and out["outcome"] == "ok" and out["exit_code"] == 0

        # an op the server rejects: exit 1 and the reason in the summary
        store = open_store(data / "counter.db")
        with store.write() as s:  # as if master data had never been fetched: the server decides
            s.execute(text("DELETE FROM master_data"))
        CounterService(store, "C07").register_new(
            "op-1", {"name": "Asha Verma", "sex": "F", "age_years": 30}, department="NOPE",
            payment=PaymentInput(mode="cash", amount_paise=1000))
        store.close()
        r = _cli(data, "sync", "--json")
        out = orjson.loads(r.stdout)
        assert r.exit_code == 1 and out["rejected"] == 1 and out["applied"] == 1
        assert any("unknown_department" in x for x in out["reasons"])

        r = _cli(data, "sync", "--token", "not-the-token", "--json")
        assert r.exit_code == 3 and orjson.loads(r.stdout)["outcome"] == "unauthorized"

        r = _cli(data, "refresh", "--json")
        assert r.exit_code == 0, r.output
        out = orjson.loads(r.stdout)
        assert out["master_data"] == "updated" and out["ids_free"]["uhid"] >= 300  # its cache was emptied above
        r = _cli(data, "refresh")
        assert r.exit_code == 0 and "master data unchanged" in r.output
        port = central.port
    r = _cli(data, "refresh", "--server", f"http://127.0.0.1:{port}", "--no-index", "--give-up-after", "1")
    assert r.exit_code == 3, r.output


@pytest.mark.chaos  # a long run (> 10 s): make chaos
def test_sync_watch_process_picks_up_after_maintenance(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from opd_fallback.config import load_settings, write_config, write_token

    with run_central(tmp_path) as central:
        data = tmp_path / "counter"
        store = open_store(data / "counter.db")
        day = make_day(store, "C07", 3, seed=22)
        s = load_settings(data)
        write_config(s, {"device_id": "C07", "hospital": "KGMU", "central_url": central.url})
        write_token(s, central.tokens["C07"])
        central.maintenance(True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPD_")}
        proc = subprocess.Popen([sys.executable, "-m", "opd_fallback", "--data-dir", str(data), "sync", "--watch",
                                 "--json", "--interval", "0.2"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        try:
            time.sleep(2.0)
            with store.read() as ses:
                assert ses.execute(text("SELECT count(*) FROM op WHERE state='synced'")).scalar() == 0
            central.maintenance(False)
            deadline = time.monotonic() + 30
            synced = 0
            while time.monotonic() < deadline and synced < day.ops:
                time.sleep(0.2)
                with store.read() as ses:
                    synced = int(ses.execute(text("SELECT count(*) FROM op WHERE state='synced'")).scalar() or 0)
            assert synced == day.ops
        finally:
            central.maintenance(False)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=20)
        store.close()
    lines = [orjson.loads(x) for x in out.splitlines() if x.strip().startswith(b"{")]
    assert any(x["applied"] == day.ops for x in lines), (out, err)
