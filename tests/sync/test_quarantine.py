"""One damaged op (a flipped byte in its stored payload) is set aside for a
person; the rest of the queue still syncs, and what depends on it waits with a
reason in words, visible in ``review list`` and ``status``."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from opd_fallback.application.services import CounterService, PaymentInput
from opd_fallback.cli import app
from opd_fallback.config import load_settings, write_config, write_token
from opd_fallback.store import open_store
from opd_fallback.sync.client import CentralClient
from opd_fallback.sync.engine import SyncEngine
from tests.helpers import db as db_helper
from tests.helpers.central import run_central

from .daygen import seed_master_data


def _flip_byte(db: Path, op_id: str, *, high_bit: bool) -> None:
    """Flip one byte of an op's stored payload, as a damaged disk would."""

    con = db_helper.connect(db)
    raw = bytearray(con.execute("SELECT CAST(payload AS BLOB) FROM op WHERE op_id=?", (op_id,)).fetchone()[0])
    i = raw.index(b'"', 2)  # a quote inside the JSON
    raw[i] ^= 0x80 if high_bit else 0x01  # 0xA2: not UTF-8; '#': not JSON
    con.execute("UPDATE op SET payload=CAST(? AS TEXT) WHERE op_id=?", (bytes(raw), op_id))
    con.commit()
    con.close()


@pytest.mark.parametrize("high_bit", [True, False], ids=["not-utf8", "not-json"])
def test_a_damaged_op_is_quarantined_and_the_rest_syncs(tmp_path: Path, high_bit: bool) -> None:
    data = tmp_path / "counter"
    store = open_store(data / "counter.db")
    with run_central(tmp_path) as central:
        seed_master_data(store)
        svc = CounterService(store, "C07")
        bad = svc.register_new("op-1", {"name": "Asha Verma", "sex": "F", "age_years": 30}, department="MED",
                               payment=PaymentInput(mode="cash", amount_paise=1000))
        good = svc.register_new("op-1", {"name": "Ram Kumar", "sex": "M", "age_years": 40}, department="MED",
                                payment=PaymentInput(mode="cash", amount_paise=1000))
        _flip_byte(store.path, bad.patient.op_id, high_bit=high_bit)
        with CentralClient(central.url, central.tokens["C07"]) as client:
            summary = SyncEngine(store, client, give_up_after_s=10).run()
        assert summary.quarantined == 1 and summary.exit_code == 1
        assert any("damaged" in r and "review" in r for r in summary.reasons), summary.reasons
        with store.read() as s:
            rows = {r[0]: r[1:] for r in s.execute(text(
                "SELECT op_id, state, last_status, wait_reason, last_error FROM op"))}
        # the good registration and everything of it went through
        for op_id in (good.patient.op_id, good.visit.op_id, good.payment.op_id):  # type: ignore[union-attr]
            assert rows[op_id][0] == "synced"
        # the damaged op is flagged with a reason in words, its dependents wait saying why
        state, last_status, _, last_error = rows[bad.patient.op_id]
        assert (state, last_status) == ("rejected", "damaged_locally") and "damaged" in last_error
        for op_id in (bad.visit.op_id, bad.payment.op_id):  # type: ignore[union-attr]
            assert rows[op_id][0] == "pending" and "damaged" in rows[op_id][2], rows[op_id]
        store.close()

        s = load_settings(data)
        write_config(s, {"device_id": "C07", "hospital": "KGMU", "central_url": central.url})
        write_token(s, central.tokens["C07"])
        r = CliRunner().invoke(app, ["--data-dir", str(data), "review", "list"])
        assert r.exit_code == 0, r.output
        assert bad.patient.op_id in r.output and "damaged" in r.output
        r = CliRunner().invoke(app, ["--data-dir", str(data), "status"])
        assert "damaged in this database" in r.output, r.output
        # a second run does not stop on it either
        r = CliRunner().invoke(app, ["--data-dir", str(data), "sync", "--json", "--give-up-after", "5"])
        assert r.exit_code == 1 and '"outcome": "needs_person"' in r.stdout, r.output
        # a damaged payment does not break the day's reconciliation: it is reported as flagged
        store = open_store(data / "counter.db")
        pay = CounterService(store, "C07").register_new(
            "op-1", {"name": "Gita Rani", "sex": "F", "age_years": 50}, department="MED",
            payment=PaymentInput(mode="cash", amount_paise=1000)).payment
        assert pay is not None
        _flip_byte(store.path, pay.op_id, high_bit=high_bit)
        with CentralClient(central.url, central.tokens["C07"]) as client:
            assert SyncEngine(store, client, give_up_after_s=10).run().quarantined == 1
            from opd_fallback.application.reconcile import reconcile_day
            from opd_fallback.domain.clock import today_ist

            rep = reconcile_day(store, client, "C07", today_ist())
        assert rep.status == "attention" and pay.op_id in {f["op_id"] for f in rep.flagged}
        assert any(m["op_id"] == pay.op_id and m["field"] == "payload" for m in rep.payload_mismatches)
        store.close()

