"""The contract client against a scripted server over real HTTP."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from opd_fallback.sync.client import (
    CentralClient,
    Overloaded,
    PayloadTooLarge,
    RequestRefused,
    TransientError,
    Unauthorized,
    Unavailable,
    Unreachable,
    api_base,
    parse_retry_after,
)

from .scripted import Scripted, js


def test_api_base_normalises() -> None:
    assert api_base("https://h.example/") == "https://h.example/api/v1"
    assert api_base("https://h.example/api/v1/") == "https://h.example/api/v1"


def test_retry_after_seconds_and_garbage() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None


def test_token_sent_and_health_parsed() -> None:
    with Scripted(lambda m, p, h, b: js(200, {"status": "ok", "server_time": None})) as srv:
        with CentralClient(srv.url, "tok-1") as c:
            assert c.health().status == "ok"
    method, path, headers, _ = srv.requests[0]
    assert (method, path) == ("GET", "/api/v1/health")
    assert headers["authorization"] == "Bearer tok-1"


def test_clock_skew_warns_once_over_five_minutes() -> None:
    warnings: list[str] = []
    with Scripted(lambda m, p, h, b: js(200, {"status": "ok"}), date_offset_s=-600) as srv:
        with CentralClient(srv.url, "t", on_warning=warnings.append) as c:
            c.health()
            c.health()
            assert c.clock_skew_s is not None and c.clock_skew_s < -590
            assert c.clock_warning and "ahead of" in c.clock_warning
    assert len(warnings) == 1 and "10 minutes" in warnings[0]


def test_no_warning_for_small_skew() -> None:
    warnings: list[str] = []
    with Scripted(lambda m, p, h, b: js(200, {"status": "ok"}), date_offset_s=60) as srv:
        with CentralClient(srv.url, "t", on_warning=warnings.append) as c:
            c.health()
            assert c.clock_warning is None
    assert warnings == []


@pytest.mark.parametrize(
    ("status", "headers", "exc", "retry_after"),
    [
        (401, {}, Unauthorized, None),
        (429, {"Retry-After": "3"}, Overloaded, 3.0),
        (503, {"Retry-After": "12"}, Unavailable, 12.0),
        (500, {}, TransientError, None),
        (502, {}, TransientError, None),
        (413, {}, PayloadTooLarge, None),
        (422, {}, RequestRefused, None),
    ],
)
def test_statuses_map_to_exceptions(status: int, headers: dict[str, str], exc: type, retry_after: float | None) -> None:
    with Scripted(lambda m, p, h, b: js(status, {"detail": "x"}, **headers)) as srv:
        with CentralClient(srv.url, "t") as c:
            with pytest.raises(exc) as info:
                c.push_batch_raw([{"op_id": "a"}])
    if retry_after is not None:
        assert info.value.retry_after == retry_after


def test_reset_is_transient_and_refused_is_unreachable() -> None:
    with Scripted(lambda m, p, h, b: None) as srv:
        with CentralClient(srv.url, "t") as c:
            with pytest.raises(TransientError):
                c.push_batch_raw([{"op_id": "a"}])
        url = srv.url
    with CentralClient(url, "t", connect_timeout=1) as c:
        with pytest.raises(Unreachable):
            c.health()


def test_batch_results_must_match_ops() -> None:
    with Scripted(lambda m, p, h, b: js(200, {"results": [{"op_id": "zz", "status": "applied"}]})) as srv:
        with CentralClient(srv.url, "t") as c:
            with pytest.raises(TransientError):
                c.push_batch_raw([{"op_id": "a"}])


def test_master_data_304_and_id_block() -> None:
    def handler(m: str, p: str, h: dict[str, str], b: bytes):  # type: ignore[no-untyped-def]
        if p.endswith("/master-data"):
            if h.get("if-none-match") == '"v1"':
                return 304, {"ETag": '"v1"'}, b""
            return js(200, {"version": "v1", "departments": [], "tests": [], "fees": []}, ETag='"v1"')
        return js(200, {"kind": "uhid", "ids": ["U1", "U2"]})

    with Scripted(handler) as srv:
        with CentralClient(srv.url, "t") as c:
            md, etag, raw = c.master_data()
            assert md is not None and md.version == "v1" and etag == '"v1"' and raw
            assert c.master_data(etag) == (None, '"v1"', None)
            assert c.id_block("uhid", 2).ids == ["U1", "U2"]


def _make_ca_and_server_cert(d: Path) -> tuple[Path, Path, Path]:
    """A throwaway hospital CA and a server certificate for 127.0.0.1 (openssl CLI)."""
    run = lambda *a: subprocess.run(a, check=True, capture_output=True, cwd=d)  # noqa: E731
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Hospital Test CA")
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=127.0.0.1")
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    run("openssl", "x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "srv.pem", "-days", "2", "-extfile", "ext.cnf")
    return d / "ca.pem", d / "srv.pem", d / "srv.key"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_tls_verified_by_default_and_with_a_hospital_ca_bundle(tmp_path: Path) -> None:
    ca, cert, key = _make_ca_and_server_cert(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    with Scripted(lambda m, p, h, b: js(200, {"status": "ok"}), tls=ctx) as srv:
        assert srv.url.startswith("https://")
        with CentralClient(srv.url, "t") as c:  # an unknown CA is refused: verification is on
            with pytest.raises(Unreachable) as info:
                c.health()
            assert "CERTIFICATE_VERIFY_FAILED" in str(info.value) or "certificate" in str(info.value).lower()
        with CentralClient(srv.url, "t", ca_bundle=ca) as c:
            assert c.health().status == "ok"
