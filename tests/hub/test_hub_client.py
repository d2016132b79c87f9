"""The hub client's total deadline: a hub that trickles its answer one byte at a
time, or never answers, cannot make a call last longer than its deadline."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from opd_fallback.sync.hub_client import HubClient, HubUnreachable


def trickling_server(stop: threading.Event) -> int:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    srv.settimeout(0.2)

    def serve() -> None:
        conns = []
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            conns.append(conn)
            conn.recv(65536)
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
            conn.sendall(head)
            while not stop.is_set():  # one byte every 0.3 s: no single read ever times out
                try:
                    conn.sendall(b" ")
                except OSError:
                    break
                time.sleep(0.3)
        for c in conns:
            c.close()
        srv.close()

    threading.Thread(target=serve, daemon=True).start()
    return int(srv.getsockname()[1])


def test_a_trickling_hub_is_cut_off_at_the_deadline() -> None:
    stop = threading.Event()
    port = trickling_server(stop)
    try:
        with HubClient(f"http://127.0.0.1:{port}", "token", deadline_s=1.5) as client:
            t0 = time.monotonic()
            with pytest.raises(HubUnreachable):
                client.health()
            assert time.monotonic() - t0 < 2.5
    finally:
        stop.set()
