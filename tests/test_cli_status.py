"""``opd-fallback status [--json]``: the documented, stable JSON form."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from opd_fallback.application import status as status_mod
from opd_fallback.application.services import CounterService, PaymentInput
from opd_fallback.cli import app
from opd_fallback.domain.clock import IST
from opd_fallback.store import open_store
from opd_fallback.store.operators import add_operator
from opd_fallback.store.tables import Meta

runner = CliRunner()
DOC = Path(__file__).parents[1] / "docs" / "status-json.md"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for k in list(os.environ):
        if k.startswith("OPD_"):
            monkeypatch.delenv(k)
    d = tmp_path / "counter"
    monkeypatch.setenv("OPD_DATA_DIR", str(d))
    assert runner.invoke(app, ["init", "--device", "C07", "--hospital", "KGMU"]).exit_code == 0
    return d


def _status() -> dict:
    res = runner.invoke(app, ["status", "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def _keys(d: dict, prefix: str = "") -> set[str]:
    out = set()
    for k, v in d.items():
        out.add(prefix + k)
        if isinstance(v, dict) and k not in ("by_state_and_kind", "by_mode", "voided_by_mode", "by_state"):
            out |= _keys(v, prefix + k + ".")
    return out


def test_empty_counter(data_dir: Path) -> None:
    r = _status()
    assert r["schema"] == 1 and r["device_id"] == "C07"
    assert r["ops"]["total"] == 0 and r["pending"]["oldest_age_seconds"] is None
    assert r["last_sync"]["last_attempt_at"] is None
    assert set(r["payments_today"]["by_mode"]) == {"cash", "upi", "card", "waived"}


def test_counts_ages_sync_and_money(data_dir: Path) -> None:
    store = open_store(data_dir / "counter.db")
    svc = CounterService(store, "C07")
    add_operator(store, "sup1", "Meena", "999999", role="supervisor")
    svc.register_new("op1", {"name": "Ram", "sex": "M", "age_years": 4}, department="MED",
                     payment=PaymentInput(mode="cash", amount_paise=1000))
    reg = svc.register_new("op1", {"name": "Sita", "sex": "F", "age_years": 30}, department="MED",
                           payment=PaymentInput(mode="upi", amount_paise=2500, mode_ref="UTR9"))
    assert reg.payment is not None
    svc.void("op1", reg.payment.extra["receipt_no"], "wrong amount", approved_by="sup1")
    old = (datetime.now(IST) - timedelta(hours=2)).replace(microsecond=0).isoformat()
    with store.write() as s:
        s.execute(text("UPDATE op SET recorded_at=:t WHERE seq=1"), {"t": old})
        s.execute(text("UPDATE op SET state='synced' WHERE seq=2"))
        s.execute(text("UPDATE op SET state='conflict' WHERE seq=4"))
        s.execute(text("UPDATE op SET wait_reason='its registration is flagged' WHERE seq=5"))
        s.merge(Meta(key=status_mod.SYNC_LAST_ATTEMPT_AT, value="2026-11-26T10:00:00+05:30"))
        s.merge(Meta(key=status_mod.SYNC_LAST_OUTCOME, value=json.dumps(
            {"outcome": "unreachable", "message": "could not connect", "applied": 0})))
    store.close()

    r = _status()
    assert r["ops"]["total"] == 7
    assert r["ops"]["by_state"] == {"pending": 5, "synced": 1, "rejected": 0, "conflict": 1, "cancelled": 0}
    assert r["ops"]["by_state_and_kind"]["pending"]["payment.record"] == 2
    assert r["ops"]["by_state_and_kind"]["pending"]["payment.void"] == 1
    assert r["ops"]["by_state_and_kind"]["conflict"]["patient.register"] == 1
    assert 7190 <= r["pending"]["oldest_age_seconds"] <= 7300
    assert r["pending"]["count"] == 5 and r["pending"]["with_wait_reason"] == 1
    assert r["needs_person"]["count"] == 1 and r["needs_person"]["oldest_age_seconds"] is not None
    assert r["last_sync"] == {"last_attempt_at": "2026-11-26T10:00:00+05:30", "last_outcome": "unreachable",
                              "last_success_at": None, "last_error": "could not connect"}
    pay = r["payments_today"]
    assert pay["by_mode"]["cash"] == {"count": 1, "total_paise": 1000}
    assert pay["by_mode"]["upi"] == {"count": 1, "total_paise": 2500}
    assert pay["voided_by_mode"]["upi"] == {"count": 1, "total_paise": 2500}
    assert pay["collected_paise"] == 1000

    text_out = runner.invoke(app, ["status"]).output
    assert "Needs a person (rejected or conflict): 1" in text_out and "unreachable" in text_out
    assert "₹10.00" in text_out


def test_every_key_is_documented(data_dir: Path) -> None:
    doc = DOC.read_text(encoding="utf-8")
    for key in sorted(_keys(_status())):
        assert f"`{key}`" in doc, f"{key} is not in docs/status-json.md"


def test_sync_keys_match_the_sync_engine() -> None:
    """status cannot import sync (HTTP); the key names must still agree."""
    engine = pytest.importorskip("opd_fallback.sync.engine")
    assert (status_mod.SYNC_LAST_ATTEMPT_AT, status_mod.SYNC_LAST_SUCCESS_AT, status_mod.SYNC_LAST_OUTCOME) == (
        engine.LAST_SYNC_AT, engine.LAST_SYNC_OK_AT, engine.LAST_SYNC_OUTCOME)


def test_status_needs_a_set_up_counter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPD_DATA_DIR", str(tmp_path / "none"))
    res = runner.invoke(app, ["status"])
    assert res.exit_code == 1 and "opd-fallback init" in res.output
