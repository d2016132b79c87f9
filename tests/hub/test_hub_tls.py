"""The hub is private by default on the LAN: HTTPS with a certificate it makes on first
start, a pairing line (token + fingerprint) per counter, the fingerprint checked on every
connection before the token is sent; plain HTTP only with --insecure-http, warned on every run."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from opd_fallback.application.share import share_once
from opd_fallback.config import load_settings
from opd_fallback.hub import tls
from opd_fallback.store import open_store
from opd_fallback.sync.hub_client import HubClient, HubNotPaired
from tests.helpers.central import free_port
from tests.helpers.hub import HubHandle, run_hub


def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPD_")}
    return subprocess.run([sys.executable, "-m", "opd_fallback", *args], input=stdin, capture_output=True, text=True,
                          timeout=120, env=env)


def test_serve_makes_a_certificate_and_pairing_pins_it(tmp_path: Path) -> None:
    db = tmp_path / "hubpc" / "hub.db"
    out = cli("hub", "add-device", "C03", "--db", str(db))
    assert out.returncode == 0, out.stderr
    [line] = out.stdout.strip().splitlines()  # one pairing line on stdout, nothing else
    pairing = tls.parse_pairing(line)
    cert, key = tls.default_paths(db)
    assert pairing.device_id == "C03" and pairing.fingerprint == tls.fingerprint(cert)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and "--hub-pairing-stdin" in out.stderr

    handle = HubHandle(db_path=db, port=free_port(), log_path=tmp_path / "hub.log")
    handle.tokens["C03"] = pairing.token
    handle.start()
    try:
        assert handle.url.startswith("https://")
        assert f"certificate fingerprint {pairing.fingerprint}" in handle.log()
        with pytest.raises(httpx.HTTPError):  # no plain HTTP on the hub's port
            httpx.get(handle.api.replace("https:", "http:") + "/health", timeout=3).raise_for_status()
        with pytest.raises(httpx.ConnectError):  # and not trusted without the pin (or the hospital's CA)
            httpx.get(handle.api + "/health", timeout=3)

        data = tmp_path / "c03"
        bad = cli("--data-dir", str(data), "init", "--device", "C04", "--hospital", "KGMU", "--hub", handle.url,
                  "--hub-pairing-stdin", stdin=line + "\n")
        assert bad.returncode == 1 and "for counter C03, not C04" in bad.stderr
        http = cli("--data-dir", str(data), "init", "--device", "C03", "--hospital", "KGMU", "--hub",
                   handle.url.replace("https:", "http:"), "--hub-pairing-stdin", stdin=line + "\n")
        assert http.returncode == 1 and "serves HTTPS" in http.stderr
        ok = cli("--data-dir", str(data), "init", "--device", "C03", "--hospital", "KGMU", "--hub", handle.url,
                 "--hub-pairing-stdin", stdin=line + "\n")
        assert ok.returncode == 0, ok.stderr
        s = load_settings(data)
        assert s.hub_fingerprint == pairing.fingerprint and s.hub_token == pairing.token
        assert stat.S_IMODE(s.config_path.stat().st_mode) == 0o600
        assert stat.S_IMODE(s.hub_token_path.stat().st_mode) == 0o600
        share = cli("--data-dir", str(data), "share", "--json")
        assert share.returncode == 0, share.stderr
    finally:
        handle.stop()


def test_a_pc_with_another_certificate_never_gets_the_token(tmp_path: Path) -> None:
    """An impostor on the hub's address (its own self-signed certificate): the counter stops
    at the handshake, before the request with its token is written, and says why."""
    with run_hub(tmp_path / "real", devices=("C03",)) as real:
        paired = real.fingerprint
        token = real.tokens["C03"]
    with run_hub(tmp_path / "impostor", devices=("C03",)) as impostor:
        assert impostor.fingerprint != paired
        st = open_store(tmp_path / "c03.db")
        try:
            with HubClient(impostor.url, token, fingerprint=paired, deadline_s=5) as c:
                with pytest.raises(HubNotPaired, match="not the one this counter was paired with"):
                    c.me()
                res = share_once(st, c, "C03")
            assert res.outcome != "ok" and "paired" in res.message
        finally:
            st.close()
        assert token not in impostor.log()
        with impostor.hub_client("C03") as good:  # the right pin works
            assert good.me()["device_id"] == "C03"


def test_plain_http_only_when_asked_with_a_warning(tmp_path: Path) -> None:
    with run_hub(tmp_path, devices=("C03",), insecure=True) as hub:
        assert hub.url.startswith("http://")
        assert "WARNING: the hub is serving plain HTTP" in hub.log()
        with hub.hub_client("C03") as c:
            assert c.me()["device_id"] == "C03"
    out = cli("hub", "add-device", "C05", "--db", str(tmp_path / "hub.db"), "--insecure-http")
    assert out.returncode == 0 and out.stdout.strip().endswith("sha256:none")
    assert "WARNING: the hub is serving plain HTTP" in out.stderr
