"""Reconciliation against the reference central server over real HTTP."""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import text

from opd_fallback.application import reports
from opd_fallback.application.reconcile import reconcile_day
from opd_fallback.application.services import CounterService, PaymentInput
from opd_fallback.domain.clock import today_ist
from opd_fallback.store import outbox
from opd_fallback.store.engine import Store, open_store
from opd_fallback.sync.client import CentralClient, TransientError
from opd_fallback.sync.engine import sync_once
from tests.helpers import db as db_helper
from tests.helpers.central import run_central

PATIENT = {"name": "Sita Devi", "sex": "F", "age_years": 33}


def push_all(store: Store, client: CentralClient, **kw: Any) -> Any:
    """Send every pending op with the sync engine."""
    summary = sync_once(store, client, **kw)
    return summary


def make_day(store: Store, n: int = 5, *, amount: int = 1000) -> list[Any]:
    svc = CounterService(store, "C07")
    regs = []
    for i in range(n):
        regs.append(svc.register_new("op-1", {**PATIENT, "name": f"Sita Devi {chr(65 + i)}"}, department="MED",
                                     payment=PaymentInput(mode="cash" if i % 2 else "upi", amount_paise=amount,
                                                          mode_ref=None if i % 2 else f"UTR{i:010d}")))
    return regs


def central_count(db: Path, sql: str, *args: Any) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute(sql, args).fetchone()[0])
    finally:
        conn.close()


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return open_store(tmp_path / "counter.db")


def test_clean_day_reconciles_with_matching_digests(tmp_path: Path, store: Store) -> None:
    make_day(store, 6)
    with run_central(tmp_path) as central, CentralClient(central.url, central.tokens["C07"]) as client:
        push_all(store, client)
        rep = reconcile_day(store, client, "C07", today_ist())
        empty = reconcile_day(store, client, "C07", date(2026, 1, 1))  # a day with nothing on either side
    assert empty.exit_code == 0 and empty.local is not None and empty.local.ops_applied == 0
    assert rep.exit_code == 0 and rep.status == "clean", rep.reasons()
    assert rep.digests_match and rep.local is not None and rep.central is not None
    assert rep.local.op_ids_sha256 == rep.central.op_ids_sha256
    assert rep.central.ops_applied == 18 and rep.central.by_kind == {
        "patient.register": 6, "visit.open": 6, "payment.record": 6}
    assert rep.central.payments_total_paise == 6000 and rep.central.payments_by_mode == {"cash": 3000, "upi": 3000}
    assert rep.differences_found == [] and rep.central_pages == 0  # no paging needed when it matches
    d = rep.as_dict()
    assert d["schema"] == "opd-fallback/reconcile/1" and d["exit_code"] == 0
    assert sum(h["ops"] for h in d["ops_per_hour"]) == 18


def test_voids_reconcile_by_amount(tmp_path: Path, store: Store) -> None:
    from opd_fallback.store import operators

    operators.add_operator(store, "sup1", "Supervisor", "654321", role="supervisor")
    regs = make_day(store, 3, amount=1000)
    svc = CounterService(store, "C07")
    svc.void("op-1", regs[1].payment.extra["receipt_no"], "wrong patient", approved_by="sup1")
    with run_central(tmp_path) as central, CentralClient(central.url, central.tokens["C07"]) as client:
        push_all(store, client)
        rep = reconcile_day(store, client, "C07", today_ist())
        assert rep.exit_code == 0, rep.reasons()
        assert rep.local is not None and (rep.local.voids_count, rep.local.voids_total_paise) == (1, 1000)
        assert rep.central is not None and rep.central.voids_total_paise == 1000
        # central loses the void: the money differs and the void is found
        conn = sqlite3.connect(central.db_path)
        with conn:
            void_op = conn.execute("SELECT op_id FROM payment_void").fetchone()[0]
            conn.execute("DELETE FROM payment_void WHERE op_id=?", (void_op,))
            conn.execute("DELETE FROM op_outcome WHERE op_id=?", (void_op,))
            conn.execute("UPDATE payment SET voided=0")
        conn.close()
        rep = reconcile_day(store, client, "C07", today_ist())
    assert rep.exit_code == 1 and [m["kind"] for m in rep.missing_centrally] == ["payment.void"]
    assert {"field": "voids.total_paise", "local": 1000, "central": 0} in rep.differences


def test_op_deleted_centrally_is_missing_then_requeued_and_clean(tmp_path: Path, store: Store) -> None:
    regs = make_day(store, 4)
    lost = regs[2].payment
    with run_central(tmp_path) as central, CentralClient(central.url, central.tokens["C07"]) as client:
        push_all(store, client)
        # central loses one payment (e.g. its database was restored from an older backup)
        conn = sqlite3.connect(central.db_path)
        with conn:
            conn.execute("DELETE FROM op_outcome WHERE op_id=?", (lost.op_id,))
            conn.execute("DELETE FROM payment WHERE op_id=?", (lost.op_id,))
            conn.execute("DELETE FROM ref_map WHERE op_id=?", (lost.op_id,))
        conn.close()

        rep = reconcile_day(store, client, "C07", today_ist())
        assert rep.exit_code == 1 and rep.status == "attention"
        assert [m["op_id"] for m in rep.missing_centrally] == [lost.op_id]
        assert rep.missing_centrally[0]["requeued"] is False
        assert any("CENTRAL HAS LOST 1" in r for r in rep.reasons())
        assert {d["field"] for d in rep.differences} >= {"payments.total_paise", "op_ids_sha256"}
        with store.read() as s:
            assert outbox.op_state(s, lost.op_id) == "synced"  # nothing changed without --requeue-missing

        rep2 = reconcile_day(store, client, "C07", today_ist(), requeue_missing=True)
        assert rep2.exit_code == 1 and rep2.missing_centrally[0]["requeued"] is True
        assert [w["op_id"] for w in rep2.waiting] == [lost.op_id]
        assert "PUT BACK IN THE QUEUE" in reports.to_html(rep2.as_dict())
        with store.read() as s:
            assert outbox.op_state(s, lost.op_id) == "pending"

        push_all(store, client)
        rep3 = reconcile_day(store, client, "C07", today_ist())
    assert rep3.exit_code == 0, rep3.reasons()
    assert rep3.digests_match and rep3.central is not None and rep3.central.payments_total_paise == 4000


@pytest.mark.chaos  # a long run (> 10 s): make chaos
def test_lost_response_is_marked_synced_without_second_application(tmp_path: Path, store: Store) -> None:
    make_day(store, 3)
    with run_central(tmp_path, lost_response_rate=1.0, seed=1) as central, \
            CentralClient(central.url, central.tokens["C07"], read_timeout=5) as client:
        with store.read() as s:
            envelopes = [outbox.envelope(op) for op in outbox.pending(s)]
        with pytest.raises(TransientError):  # applied and committed, then the answer is dropped
            client.push_batch_raw(envelopes)
        with store.read() as s:
            assert outbox.counts_by_state(s)["pending"] == 9  # the counter never heard back
        applied = central_count(central.db_path, "SELECT count(*) FROM op_outcome WHERE status='applied'")
        assert applied == 9
        central.restart()  # answers flow again; nothing is resent by reconciliation
        rep = reconcile_day(store, client, "C07", today_ist())
        assert rep.exit_code == 0, rep.reasons()
        assert len(rep.marked_synced) == 9 and rep.differences_found and not rep.differences
        assert {m["previous_state"] for m in rep.marked_synced} == {"pending"}
        with store.read() as s:
            assert outbox.counts_by_state(s)["synced"] == 9
            receipts = [r[0] for r in s.execute(text("SELECT central_id FROM payment")).all()]
        assert all(receipts) and len(set(receipts)) == 3  # the records learnt their central ids
        assert central_count(central.db_path, "SELECT count(*) FROM payment") == 3  # applied once
        assert central_count(central.db_path, "SELECT ops_applied FROM device WHERE device_id='C07'") == 9


def test_price_mismatch_reported_with_both_amounts(tmp_path: Path, store: Store) -> None:
    svc = CounterService(store, "C07")
    reg = svc.register_new("op-1", PATIENT, department="MED", payment=PaymentInput(mode="cash", amount_paise=1500))
    with run_central(tmp_path) as central, CentralClient(central.url, central.tokens["C07"]) as client:
        push_all(store, client)
        rep = reconcile_day(store, client, "C07", today_ist())
    assert rep.exit_code == 1 and rep.digests_match
    assert rep.differences_found == []
    [w] = rep.payment_warnings
    assert w["code"] == "amount_mismatch" and w["item"] == "OPD-NEW"
    assert (w["paid_paise"], w["expected_paise"]) == (1500, 1000)
    assert w["receipt_no"] == reg.payment.extra["receipt_no"]
    text = reports.to_html(rep.as_dict())
    assert "₹15.00" in text and "₹10.00" in text
    csv_text = reports.to_csv(rep.as_dict())
    assert "payment_warning" in csv_text and ",1500,1000," in csv_text


def test_unreachable_central_exits_3(store: Store) -> None:
    make_day(store, 1)
    with CentralClient("http://127.0.0.1:9", "t", connect_timeout=1) as client:
        rep = reconcile_day(store, client, "C07", today_ist())
    assert rep.exit_code == 3 and rep.status == "unreachable" and rep.error
    assert rep.local is not None and len(rep.waiting) == 3  # the local side is still reported


def test_report_formats(tmp_path: Path, store: Store) -> None:
    make_day(store, 2)
    with run_central(tmp_path) as central, CentralClient(central.url, central.tokens["C07"]) as client:
        push_all(store, client)
        rep = reconcile_day(store, client, "C07", today_ist()).as_dict()
    for ext in ("html", "csv", "json"):
        p = reports.write_report(rep, tmp_path / f"r.{ext}")
        assert p.stat().st_size > 200
    assert orjson.loads((tmp_path / "r.json").read_text())["digests_match"] is True
    html = (tmp_path / "r.html").read_text()
    assert "<table>" in html and "Ops per hour" in html and "<script" not in html
    with pytest.raises(ValueError, match=r"\.html, \.csv or \.json"):
        reports.write_report(rep, tmp_path / "r.txt")


# ---------------------------------------------------------------- the commands
def _cli(data_dir: Path, *args: str, input: str | None = None) -> Any:
    from typer.testing import CliRunner

    from opd_fallback.cli import app

    return CliRunner().invoke(app, ["--data-dir", str(data_dir), *args], input=input)


def test_reconcile_and_nightly_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "counter"
    monkeypatch.setenv("OPD_DATA_DIR", str(data))  # --data-dir sets it; undone after the test
    with run_central(tmp_path) as central:
        r = _cli(data, "init", "--device", "C07", "--hospital", "KGMU", "--server", central.url,
                 "--token", central.tokens["C07"])
        assert r.exit_code == 0, r.output
        store = open_store(data / "counter.db")
        regs = make_day(store, 3)
        store.close()

        r = _cli(data, "nightly", "--json")
        out = orjson.loads(r.stdout)
        assert r.exit_code == 0, (r.output, out["reasons"])
        assert out["schema"] == "opd-fallback/nightly/1" and out["status"] == "clean"
        assert [d["date"] for d in out["days"]][-1] == today_ist().isoformat()
        assert out["days"][-1]["central"]["ops_applied"] == 9 and out["days"][-1]["digests_match"]
        assert out["backup"]["integrity"] == "ok" and Path(out["backup"]["path"]).exists()
        assert (data / "reports" / f"nightly-{today_ist().isoformat()}.html").exists()

        conn = sqlite3.connect(central.db_path)
        with conn:
            for table in ("op_outcome", "payment", "ref_map"):
                conn.execute(f"DELETE FROM {table} WHERE op_id=?", (regs[0].payment.op_id,))
        conn.close()
        day = today_ist().isoformat()
        r = _cli(data, "reconcile", "--date", day, "--report", str(tmp_path / "r.csv"))
        assert r.exit_code == 1 and "CENTRAL HAS LOST 1" in r.stdout
        assert regs[0].payment.op_id in (tmp_path / "r.csv").read_text()
        r = _cli(data, "reconcile", "--date", day, "--requeue-missing", "--json")
        assert r.exit_code == 1 and orjson.loads(r.stdout)["ops"]["missing_centrally"][0]["requeued"]
        r = _cli(data, "nightly", "--report", str(tmp_path / "n.html"))
        assert r.exit_code == 0, r.output
        assert "CLEAN" in (tmp_path / "n.html").read_text()
        r = _cli(data, "reconcile", "--date", "2026-02-30")
        assert r.exit_code == 2 and "YYYY-MM-DD" in r.output  # a usage error, not "differences"
        r = _cli(data, "reconcile", "--date", day, "--report", str(tmp_path / "r.pdf"))
        assert r.exit_code == 2 and ".html, .csv or .json" in r.output
    r = _cli(data, "reconcile", "--date", day)
    assert r.exit_code == 3
    r = _cli(data, "nightly", "--json")
    assert r.exit_code == 3 and orjson.loads(r.stdout)["backup"]["integrity"] == "ok"


def test_nightly_still_backs_up_when_reconciling_the_local_database_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = tmp_path / "counter"
    monkeypatch.setenv("OPD_DATA_DIR", str(data))
    with run_central(tmp_path) as central:
        r = _cli(data, "init", "--device", "C07", "--hospital", "KGMU", "--server", central.url,
                 "--token", central.tokens["C07"])
        assert r.exit_code == 0, r.output
        store = open_store(data / "counter.db")
        regs = make_day(store, 2)
        with CentralClient(central.url, central.tokens["C07"]) as client:
            assert push_all(store, client).synced == 6
        store.close()
        conn = db_helper.connect(data / "counter.db")
        with conn:  # a stored payment op this code can no longer read
            conn.execute("UPDATE op SET payload='{}' WHERE op_id=?", (regs[0].payment.op_id,))
        conn.close()
        r = _cli(data, "nightly", "--json")
    out = orjson.loads(r.stdout)
    assert r.exit_code == 1 and out["status"] == "attention", r.output
    failed = [st for st in out["steps"] if st["name"].startswith("reconcile") and not st["ok"]]
    assert failed and "reconcile failed" in failed[0]["detail"]
    assert any("reconcile failed: KeyError" in why for why in out["reasons"])
    assert out["backup"]["integrity"] == "ok" and Path(out["backup"]["path"]).exists()


def _tamper(db: Path, op_id: str, change: dict[str, Any]) -> None:
    """Change a queued op's payload behind the application's back (a bug, a bad tool, a bad disk)."""
    conn = db_helper.connect(db)
    payload = orjson.loads(conn.execute("SELECT payload FROM op WHERE op_id=?", (op_id,)).fetchone()[0])
    payload.update(change)
    conn.execute("UPDATE op SET payload=? WHERE op_id=?", (orjson.dumps(payload).decode(), op_id))
    conn.commit()
    conn.close()


def test_payload_that_no_longer_matches_its_record_is_reported_not_clean(tmp_path: Path, store: Store) -> None:
    """Reconcile once said CLEAN while a payment's payload (1000 paise) differed from its record (50000)."""
    from opd_fallback.store import operators

    operators.add_operator(store, "sup1", "Supervisor", "654321", role="supervisor")
    regs = make_day(store, 3, amount=50000)
    paid = regs[1].payment
    _tamper(store.path, paid.op_id, {"amount_paise": 1000, "items": [{"code": "OPD-NEW", "qty": 1,
                                                                       "amount_paise": 1000}]})
    svc = CounterService(store, "C07")
    void = svc.void("op-1", regs[2].payment.extra["receipt_no"], "wrong patient", approved_by="sup1")
    _tamper(store.path, void.op_id, {"payment": {"local_ref": regs[0].payment.local_ref}})
    with run_central(tmp_path) as central, CentralClient(central.url, central.tokens["C07"]) as client:
        push_all(store, client)
        rep = reconcile_day(store, client, "C07", today_ist())
    assert rep.status == "attention" and rep.exit_code == 1
    by_field = {(m["op_id"], m["field"]): m for m in rep.payload_mismatches}
    amount = by_field[(paid.op_id, "amount_paise")]
    assert (amount["queued"], amount["record"]) == (1000, 50000)
    assert "₹10.00" in amount["words"] and "₹500.00" in amount["words"]
    assert (paid.op_id, "items") in by_field
    assert by_field[(void.op_id, "payment")]["record"] == regs[2].payment.local_ref
    assert any("no longer match the record" in r for r in rep.reasons())
    assert rep.as_dict()["payload_mismatches"]


def test_a_waiver_central_does_not_see_approved_is_named_as_such(tmp_path: Path, store: Store) -> None:
    """Contract 1.2: a waived fee the patient's category does not exempt at central (here central
    no longer exempts BPL patients, the counter still does) comes back as ``waiver_unapproved``,
    and reconcile names it by what it is, not as an item central does not know."""
    demo = orjson.loads((Path(__file__).parents[2] / "opd_fallback/central/demo_master_data.json").read_bytes())
    demo["exemptions"] = [e for e in demo["exemptions"] if e["category"] != "bpl"]
    svc = CounterService(store, "C07")
    svc.register_new("op-1", {**PATIENT, "category": "bpl"}, department="MED", payment=PaymentInput(mode="waived"))
    with run_central(tmp_path, master_data=demo) as central, CentralClient(central.url, central.tokens["C07"]) as c:
        push_all(store, c)
        rep = reconcile_day(store, c, "C07", today_ist())
    assert rep.exit_code == 1 and rep.digests_match
    assert [(w["code"], w["item"], w["mode"]) for w in rep.payment_warnings] == [
        ("waiver_unapproved", "OPD-NEW", "waived")]
    reasons = rep.reasons()
    assert "1 waived payment line(s) with no approved waiver (the category does not exempt the fee)" in reasons
    assert not [r for r in reasons if "does not know" in r or "price list" in r]
    from rich.console import Console

    con = Console(record=True, width=200)
    reports.render_terminal(rep.as_dict(), con)
    assert "item OPD-NEW: waived without an approved waiver" in con.export_text()
