"""The API description is served only to a device with a valid token (it maps
every route and field for an attacker), or to anyone when the server was
started with ``--dev-docs`` on a developer's machine."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.helpers.central import CentralHandle, run_central


def test_openapi_needs_a_token_and_docs_pages_are_off(central: CentralHandle) -> None:
    r = httpx.get(central.url + "/openapi.json", timeout=10)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    assert httpx.get(central.url + "/openapi.json", headers={"Authorization": "Bearer nope"},
                     timeout=10).status_code == 401
    r = httpx.get(central.url + "/openapi.json", headers=central.headers("C07"), timeout=10)
    assert r.status_code == 200 and "/api/v1/ops:batch" in r.json()["paths"]
    assert "/openapi.json" not in r.json()["paths"]
    for page in ("/docs", "/redoc"):
        assert httpx.get(central.url + page, timeout=10).status_code == 404


def test_dev_docs_serves_them_without_a_token(tmp_path: Path) -> None:
    with run_central(tmp_path, dev_docs=True) as central:
        r = httpx.get(central.url + "/openapi.json", timeout=10)
        assert r.status_code == 200 and "/api/v1/health" in r.json()["paths"]
        assert httpx.get(central.url + "/docs", timeout=10).status_code == 200
        assert httpx.get(central.api + "/health", timeout=10).status_code == 401  # the API itself still needs one
