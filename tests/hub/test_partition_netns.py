"""A real network partition between a counter and the hub (``ip netns`` + a veth pair).

The hub runs in one network namespace and the counter's `share` in another,
each with only the veth link between them (no default route). The link is cut
in the middle of an exchange (thousands of ops to push, thousands to pull),
the exchange ends with exit 3 within its deadline, the link comes back and
the next exchange finishes: every op on the hub once, every pulled record at
the counter once. Where namespaces cannot be made (not root, no ``ip``), the
test skips and says why; namespaces are always removed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from opd_fallback.config import load_settings, write_config, write_hub_token
from opd_fallback.hub.db import connect, create_schema
from opd_fallback.hub.mirror import push
from opd_fallback.store import open_store, outbox
from tests.helpers import db as db_helper
from tests.helpers.central import free_port
from tests.helpers.hub import HubHandle

OWN, OTHERS = 2500, 1000


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=30, check=check)


@pytest.fixture
def netns():
    """Two namespaces joined by a veth pair; yields (hub_ns, counter_ns, counter_if, hub_ip)."""
    if shutil.which("ip") is None:
        pytest.skip("the 'ip' command is not installed, so network namespaces cannot be made")
    if os.geteuid() != 0:
        pytest.skip("making network namespaces needs root")
    tag = f"{os.getpid() % 100000}"
    hub_ns, ctr_ns = f"opdh{tag}", f"opdc{tag}"
    hub_if, ctr_if = f"vh{tag}", f"vc{tag}"
    try:
        probe = sh("ip", "netns", "add", hub_ns, check=False)
        if probe.returncode != 0:
            pytest.skip(f"cannot make a network namespace here: {probe.stderr.strip()}")
        sh("ip", "netns", "add", ctr_ns)
        sh("ip", "link", "add", hub_if, "type", "veth", "peer", "name", ctr_if)
        sh("ip", "link", "set", hub_if, "netns", hub_ns)
        sh("ip", "link", "set", ctr_if, "netns", ctr_ns)
        for ns, dev, addr in ((hub_ns, hub_if, "10.77.0.1/24"), (ctr_ns, ctr_if, "10.77.0.2/24")):
            sh("ip", "-n", ns, "addr", "add", addr, "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        yield hub_ns, ctr_ns, ctr_if, "10.77.0.1"
    finally:
        for ns in (ctr_ns, hub_ns):
            sh("ip", "netns", "del", ns, check=False)


def fake_ops(device: str, n: int, start: int = 1) -> list[dict]:
    return [{"op_id": outbox.new_op_id(), "kind": "patient.register", "device_id": device, "operator_id": "op",
             "seq": start + i, "recorded_at": "2026-11-30T09:14:00+05:30", "depends_on": [], "resolution": None,
             "payload": {"local_ref": f"{device}-261130-{start + i:06d}", "name": "Ram Kumar", "sex": "M",
                         "age_years": 40, "mobile": None}} for i in range(n)]


@pytest.mark.chaos  # a long run (> 10 s): make chaos
def test_link_cut_mid_exchange_then_restored(tmp_path: Path, netns) -> None:
    hub_ns, ctr_ns, ctr_if, hub_ip = netns
    db = tmp_path / "hub.db"
    create_schema(db)
    handle = HubHandle(db_path=db, port=free_port(), log_path=tmp_path / "hub.log", host=hub_ip,
                       prefix=["ip", "netns", "exec", hub_ns])
    for dev in ("C01", "C02"):
        handle.add_device(dev)
    conn = connect(db)  # another counter's work is already on the hub
    for i in range(0, OTHERS, 500):
        push(conn, "C01", fake_ops("C01", 500, start=1 + i), [])
    conn.close()

    data = tmp_path / "c02"
    base = load_settings(data)
    write_config(base, {"device_id": "C02", "hospital": "KGMU", "hub_url": handle.url,
                        "hub_fingerprint": handle.fingerprint})
    write_hub_token(base, handle.tokens["C02"])
    store = open_store(data / "counter.db")
    with store.write() as s:
        for op in fake_ops("C02", OWN):
            outbox.enqueue(s, seq=op["seq"], op_id=op["op_id"], kind=op["kind"], device_id="C02", operator_id="op",
                           payload=op["payload"], recorded_at=op["recorded_at"], record_kind="patient",
                           record_ref=op["payload"]["local_ref"])
    store.close()

    env = {k: v for k, v in os.environ.items() if not k.startswith("OPD_")}
    env["OPD_HUB_DEADLINE_S"] = "3"
    share = ["ip", "netns", "exec", ctr_ns, sys.executable, "-m", "opd_fallback", "--data-dir", str(data), "share"]
    handle.start()
    try:
        proc = subprocess.Popen(share, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        stored = 0
        while time.monotonic() < deadline and proc.poll() is None:
            con = db_helper.connect(db)
            stored = con.execute("SELECT count(*) FROM op WHERE device_id='C02'").fetchone()[0]
            con.close()
            if stored >= 500:
                break
            time.sleep(0.01)
        assert proc.poll() is None and 0 < stored < OWN, "the exchange ended before the link could be cut"
        sh("ip", "-n", ctr_ns, "link", "set", ctr_if, "down")  # the cable is pulled
        t0 = time.monotonic()
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 3, (out, err)
        assert "hub unreachable" in err
        assert time.monotonic() - t0 < 15  # the deadline ended it, not a hang

        sh("ip", "-n", ctr_ns, "link", "set", ctr_if, "up")  # and plugged back in
        again = subprocess.run(share, env=env, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr
    finally:
        handle.stop()
    con = db_helper.connect(db)
    try:
        rows = con.execute("SELECT op_id, seq FROM op WHERE device_id='C02'").fetchall()
    finally:
        con.close()
    assert len(rows) == OWN and {seq for _, seq in rows} == set(range(1, OWN + 1))  # nothing lost or doubled
    store = open_store(data / "counter.db")
    try:
        with store.read() as s:
            pulled = s.execute(text("SELECT count(*), count(DISTINCT local_ref) FROM shared_record")).one()
            own_ops = s.execute(text("SELECT count(*) FROM op")).scalar()
    finally:
        store.close()
    assert tuple(pulled) == (OTHERS, OTHERS) and own_ops == OWN
