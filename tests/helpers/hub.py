"""Run the LAN hub in a subprocess for tests (real HTTPS on 127.0.0.1, as it serves by default).

    with run_hub(tmp_path, devices=("C01", "C02")) as hub:
        hub.url, hub.api, hub.tokens["C01"], hub.fingerprint
        hub.pairing("C01")    # the line 'hub add-device' prints (token + certificate fingerprint)
        hub.hub_client("C01") # the counter's HubClient, pinned to the hub's certificate
        hub.kill()            # SIGKILL, no goodbye
        hub.start()           # same DB, same port, same certificate

The hub makes its certificate beside its database on first start; the helper
makes it first (the same code) so the fingerprint is known before the start.
``client()`` (plain httpx for API tests) verifies the hub's certificate as a
trust anchor, name included (127.0.0.1 is in it). ``insecure=True`` runs the
hub with ``--insecure-http``.
"""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from opd_fallback.hub import tls
from opd_fallback.hub.db import add_device
from tests.helpers import forkserver
from tests.helpers.central import free_port

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class HubHandle:
    db_path: Path
    port: int
    log_path: Path
    host: str = "127.0.0.1"
    tokens: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    prefix: list[str] = field(default_factory=list)  # e.g. ["ip", "netns", "exec", "ns"]
    insecure: bool = False  # --insecure-http

    def __post_init__(self) -> None:
        if not self.insecure:  # what 'hub serve' makes on its first start (and 'hub add-device' reads)
            tls.ensure_certificate(*tls.default_paths(self.db_path), hosts=[self.host])

    @property
    def url(self) -> str:
        return f"{'http' if self.insecure else 'https'}://{self.host}:{self.port}"

    @property
    def cert_path(self) -> Path:
        return tls.default_paths(self.db_path)[0]

    @property
    def fingerprint(self) -> str | None:
        return None if self.insecure else tls.fingerprint(self.cert_path)

    def verify(self) -> Any:
        """What a test's httpx client verifies the hub with: its certificate as the only trust anchor."""
        return True if self.insecure else ssl.create_default_context(cafile=str(self.cert_path))

    def pairing(self, device: str) -> str:
        """The pairing line 'hub add-device' prints for ``device``."""
        return tls.Pairing(device, self.tokens[device], self.fingerprint).line()

    def hub_client(self, device: str, **kw: Any) -> Any:
        """The counter's HubClient for ``device``, pinned as after 'init --hub-pairing-stdin'."""
        from opd_fallback.sync.hub_client import HubClient

        return HubClient(self.url, self.tokens[device], fingerprint=self.fingerprint, **kw)

    @property
    def api(self) -> str:
        return self.url + "/hub/v1"

    def headers(self, device: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[device]}"}

    def client(self, device: str) -> httpx.Client:
        return httpx.Client(base_url=self.api, headers=self.headers(device), timeout=10.0, verify=self.verify())

    def add_device(self, device: str) -> str:
        self.tokens[device] = add_device(self.db_path, device)
        return self.tokens[device]

    def start(self, wait: bool = True) -> None:
        cmd = [*self.prefix, sys.executable, "-m", "opd_fallback.hub", "serve", "--db", str(self.db_path),
               "--host", self.host, "--port", str(self.port), *(["--insecure-http"] if self.insecure else [])]
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPD_")}
        env["PYTHONUNBUFFERED"] = "1"
        with self.log_path.open("ab") as log:
            if self.prefix:  # in a network namespace: a fresh interpreter under the prefix, as before
                self.proc = subprocess.Popen(cmd, stdout=log, stderr=log, env=env, cwd=str(ROOT))
            else:  # the same command, forked from a process that has imported it (helpers/forkserver.py)
                self.proc = forkserver.popen(cmd[2], cmd[3:], env=env, cwd=ROOT, stdout=log, stderr=log)
        if wait:
            self.wait_up()

    def wait_up(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"hub exited ({self.proc.returncode}):\n{self.log()}")
            if not self.prefix:
                try:
                    if httpx.get(self.api + "/health", timeout=1, verify=self.verify()).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
            elif subprocess.run([*self.prefix, sys.executable, "-c",
                                 f"import httpx; httpx.get('{self.api}/health', timeout=1, "
                                 f"verify={str(self.cert_path)!r} if {not self.insecure} else True).raise_for_status()"],
                                capture_output=True).returncode == 0:
                return
            time.sleep(0.05)
        raise RuntimeError(f"hub did not answer within {timeout}s:\n{self.log()}")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
            forkserver.wait_gone(self.proc)
            self.proc = None

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        forkserver.wait_gone(self.proc)
        self.proc = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextmanager
def run_hub(tmp_path: Path, *, devices: tuple[str, ...] | list[str] = ("C01",), host: str = "127.0.0.1",
            prefix: list[str] | None = None, start: bool = True, insecure: bool = False) -> Iterator[HubHandle]:
    handle = HubHandle(db_path=Path(tmp_path) / "hub.db", port=free_port(), log_path=Path(tmp_path) / "hub.log",
                       host=host, prefix=list(prefix or []), insecure=insecure)
    for dev in devices:
        handle.add_device(dev)
    if start:
        handle.start()
    try:
        yield handle
    finally:
        handle.stop()
