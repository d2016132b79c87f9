"""A counter rebuilt from the hub is the counter that died: table by table, row by row.

A day at C03 with every op kind (back-entered paper slips, registration with fee, a waiver approved by a
supervisor, a revisit of another counter's patient, lab orders paid at once and
later, patient edits before and after syncing, a void, a correction in review,
a cancelled payment), part synced to central, everything shared with the hub.
The PC dies, central goes down, and a new PC is set up and restored from the
hub (``init`` then ``restore --from-hub``, the CLI a person runs). Every table
of the two databases is compared; the only exclusions are named below, each
with the reason it is local by nature. The restored counter then takes new
work at once with central still down, and reconciles clean when central is back.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from opd_fallback.application.backentry import import_file
from opd_fallback.application.review import ReviewService
from opd_fallback.application.services import CounterService, PaymentInput
from opd_fallback.application.share import share_once
from opd_fallback.cli import app
from opd_fallback.config import load_settings
from opd_fallback.domain.clock import today_ist
from opd_fallback.store import open_store, outbox
from opd_fallback.store.operators import add_operator
from opd_fallback.sync.client import CentralClient
from opd_fallback.sync.engine import SyncEngine
from opd_fallback.sync.hub_client import HubClient
from tests.helpers import db as dbfile
from tests.helpers.central import run_central
from tests.helpers.hub import run_hub

run = CliRunner().invoke
BACKENTRY_HEADER = ("slip_no,visit_date,recorded_at,operator_id,uhid,name,name_local,sex,age_years,age_months,"
                    "guardian_relation,guardian_name,mobile,department,unit,fee_paise,fee_mode,fee_ref,"
                    "lab_tests,lab_paise,lab_mode,lab_ref")

# Tables that are this PC's own bookkeeping, not records: why each is not compared.
LOCAL_TABLES = {
    "meta": "this PC's cursors and marks (last sync, hub cursor, lockouts): the new PC starts its own",
    "lease": "which process on this PC holds the sync lease",
    "id_reservation": "central ids reserved for the dead PC are never used again (they may have been used "
                      "after its last share); the new PC reserves its own at its first refresh",
    "patient_index": "a cache of central's patient index: refresh fetches it again",
    "patient_index_ref": "a cache of central's patient index: refresh fetches it again",
    "alembic_version": "schema bookkeeping",
    "sqlite_sequence": "SQLite's AUTOINCREMENT bookkeeping",
}
# Columns local by nature: why each is not compared.
LOCAL_COLUMNS = {
    "*": {"id": "a row number in this file (rows are matched by their natural key)"},
    "op": {
        "attempts": "this PC's sends to central", "last_status": "this PC's last answer from central",
        "last_error": "this PC's last answer from central", "result": "this PC's last answer from central",
        "wait_reason": "why this PC is waiting now", "first_deferred_at": "this PC's sends to central",
        "synced_at": "when this PC heard central's answer", "updated_at": "when this PC last touched the row",
        "state": "compared apart: cancelled stays cancelled, the rest is pending until the new PC syncs",
    },
    "shared_record": {"pulled_at": "when this PC pulled the row from the hub"},
    "master_data": {"fetched_at": "when some counter fetched it: the hub gives the newest any counter shared "
                                  "(version, etag and body are compared)"},
}
NATURAL_KEY = {"patient": ("local_ref",), "visit": ("local_ref",), "lab_order": ("local_ref",),
               "payment": ("local_ref",), "payment_void": ("payment_local_ref",), "op": ("op_id",),
               "operator": ("id",), "counter": ("name",), "master_data": ("id",), "shared_record": ("local_ref",),
               "audit_log": ("id",), "backentry_slip": ("device_id", "visit_date", "slip_no"),
               "sample_event": ("op_id",)}


def tables(db: Path) -> dict[str, dict[tuple[Any, ...], dict[str, Any]]]:
    con = dbfile.connect(db)  # the counter's file is encrypted: opened as the program opens it
    try:
        names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        out: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {}
        for name in names:
            if name in LOCAL_TABLES or name.startswith("patient_index_fts"):
                continue  # (the full-text index of that cache, too)
            assert name in NATURAL_KEY, f"table {name} is neither compared nor listed as local: decide"
            skip = {**LOCAL_COLUMNS["*"], **LOCAL_COLUMNS.get(name, {})}
            rows = {}
            cur = con.execute(f"SELECT * FROM {name}")  # names from sqlite_master
            cols = [c[0] for c in cur.description]
            for r in cur.fetchall():
                d = dict(zip(cols, r, strict=True))
                rows[tuple(d[k] for k in NATURAL_KEY[name])] = {k: v for k, v in d.items() if k not in skip or
                                                                k in NATURAL_KEY[name]}
            out[name] = rows
        return out
    finally:
        con.close()


def init(data: Path, dev: str, central: Any, hub: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("OPD_CENTRAL_TOKEN", central.tokens[dev])
    out = run(app, ["--data-dir", str(data), "init", "--device", dev, "--hospital", "KGMU", "--server", central.url,
                    "--hub", hub.url, "--hub-pairing-stdin"], input=hub.pairing(dev) + "\n")
    monkeypatch.delenv("OPD_CENTRAL_TOKEN")
    assert out.exit_code == 0, out.output


def share(st: Any, settings: Any, dev: str) -> None:
    with HubClient.from_settings(settings) as h:
        res = share_once(st, h, dev)
    assert res.outcome == "ok" and not res.refused, res.as_dict()


def sync(st: Any, settings: Any) -> Any:
    with CentralClient.from_settings(settings) as c:
        return SyncEngine(st, c, settings, give_up_after_s=10).run()


def a_day_at_c03(st: Any, s03: Any, s01: Any) -> dict[str, Any]:
    """Every op kind, edits before and after syncing, a void, a correction, a cancel."""
    add_operator(st, "op-1", "Asha Verma", "1234")
    add_operator(st, "sup-1", "Meena Rai", "999999", role="supervisor")
    svc = CounterService(st, "C03")
    st01 = open_store(s01.db_path)
    try:  # C01 registers a patient and shares it; C03 pulls it
        other = CounterService(st01, "C01").register_new(
            "op-9", {"name": "Asha Rani", "sex": "F", "age_years": 22}, department="MED",
            payment=PaymentInput(mode="cash"))
        share(st01, s01, "C01")
        assert sync(st01, s01).exit_code == 0
    finally:
        st01.close()
    share(st, s03, "C03")
    a = svc.register_new("op-1", {"name": "Sita Devi", "sex": "F", "age_years": 34, "mobile": "9123456780"},
                         department="MED", payment=PaymentInput(mode="cash"))
    b = svc.register_new("op-1", {"name": "Ram Kumar", "sex": "M", "age_years": 61, "category": "general"},
                         department="SURG", payment=PaymentInput(mode="waived", waiver_reason="destitute",
                                                                 approved_by="sup-1"))
    rv = svc.revisit("op-1", other.patient.local_ref, department="MED", payment=PaymentInput(mode="upi",
                                                                                          mode_ref="UTR778"))
    lab = svc.lab_request("op-1", a.patient.local_ref, a.visit.local_ref, ["CBC", "FBS"],
                          payment=PaymentInput(mode="cash"))
    later = svc.lab_request("op-1", rv.info.local_ref or "", rv.visit.local_ref, ["HB"])
    svc.pay_lab_order("op-1", later.order.local_ref, PaymentInput(mode="card", mode_ref="TXN42"))
    svc.update_patient("op-1", a.patient.local_ref, {"name": "Sita Devi Verma", "mobile": "9000000001"})
    svc.update_patient("op-1", other.patient.local_ref, {"mobile": "9000000009"})  # C01's patient, edited here
    svc.void("op-1", a.payment.extra["receipt_no"], "entered twice",
             approved_by="sup-1")
    assert sync(st, s03).exit_code == 0  # this much reaches central
    svc.update_patient("op-1", b.patient.local_ref, {"mobile": "9000000002", "district": "Lucknow"})
    c = svc.register_new("op-1", {"name": "Geeta", "sex": "F", "age_years": 29, "mobile": "9000000003"},
                         department="MED", payment=PaymentInput(mode="cash"))
    with st.write() as s:  # central refused it (as the engine books a rejection); a supervisor corrects it
        op = outbox.get(s, c.patient.op_id)
        op.state, op.last_status = "rejected", "rejected"
        op.last_error = orjson.dumps({"code": "validation_failed", "message": "age: check it"}).decode()
        s.add(op)
    rs = ReviewService(st)
    rs.correct(rs.authenticate("sup-1", "999999"), c.patient.op_id, {"age_years": 30, "name": "Geeta Devi"})
    d = svc.register_new("op-1", {"name": "Mohan", "sex": "M", "age_years": 45}, department="ORTHO",
                         payment=PaymentInput(mode="cash"))
    with st.write() as s:  # a supervisor cancels that payment in review: it must never reach central
        assert outbox.transition(s, "cancelled", [{"id": d.payment.op_id, "why": "entered twice"}]) == 1
    # yesterday's paper slips entered back (back-entry import): the slips imported are records too
    slips = st.path.parent / "slips.csv"
    day = (today_ist() - timedelta(days=1)).isoformat()
    slips.write_text(BACKENTRY_HEADER + "\n" + "\n".join([
        f"201,{day},09:15,op-1,,Kamla Bai,कमला बाई,F,50,,,,,MED,,1000,cash,,,,,",
        f"202,{day},09:40,op-1,,Hari Ram,,M,64,,,,9000000004,MED,,1000,cash,,,,,"]) + "\n", encoding="utf-8")
    report = import_file(st, "C03", slips, imported_by="op-1")
    assert report.count("imported") == 2, [(r.line, r.status, r.problems) for r in report.rows]
    share(st, s03, "C03")
    return {"a": a, "b": b, "c": c, "lab": lab, "void_of": a.payment.extra["receipt_no"]}


@pytest.mark.chaos  # moved out of make test (issue 21): a long end-to-end run
def test_a_restored_counter_equals_the_original(tmp_path: Path, monkeypatch: Any) -> None:
    with run_central(tmp_path, devices=("C03", "C01")) as central, run_hub(tmp_path, devices=("C03", "C01")) as hub:
        old, c01 = tmp_path / "old-pc", tmp_path / "c01"
        init(old, "C03", central, hub, monkeypatch)
        init(c01, "C01", central, hub, monkeypatch)
        for data in (old, c01):
            assert run(app, ["--data-dir", str(data), "refresh"]).exit_code == 0
        s03, s01 = load_settings(old), load_settings(c01)
        st = open_store(s03.db_path)
        try:
            made = a_day_at_c03(st, s03, s01)
        finally:
            st.close()  # the old PC dies
        original = tables(s03.db_path)
        central.stop()  # ... and central is down

        new = tmp_path / "new-pc"
        hub.add_device("C03")  # the hub PC gives the new PC its token (the old one stops working)
        init(new, "C03", central, hub, monkeypatch)
        out = run(app, ["--data-dir", str(new), "restore", "--from-hub", "--device", "C03"])
        assert out.exit_code == 0, out.output
        assert "Ready for new work: counter C03" in out.output, out.output
        restored = tables(load_settings(new).db_path)

        assert set(restored) == set(original)
        compared = 0
        for name, rows in original.items():
            got = restored[name]
            if name == "audit_log":  # the new PC adds its own lines about the restore, after the old PC's
                extra = {k: v for k, v in got.items() if k not in rows}
                assert {v["action"] for v in extra.values()} <= {"store.restore_from_hub"}, extra
                got = {k: v for k, v in got.items() if k in rows}
            if name == "counter":  # new numbers continue well above the old PC's; the rest (tokens) equal
                assert got[("seq",)]["value"] > rows[("seq",)]["value"]
                got = {k: v for k, v in got.items() if k != ("seq",)}
                rows = {k: v for k, v in rows.items() if k != ("seq",)}
            assert set(got) == set(rows), (name, set(rows) ^ set(got))
            for key, row in rows.items():
                assert got[key] == row, (name, key, {c: (row[c], got[key].get(c)) for c in row
                                                      if row[c] != got[key].get(c)})
                compared += 1
        con_o = dbfile.connect(s03.db_path)
        con_n = dbfile.connect(load_settings(new).db_path)
        try:  # op states: cancelled stays cancelled, everything else waits for central
            was = dict(con_o.execute("SELECT op_id, state FROM op").fetchall())
            now = dict(con_n.execute("SELECT op_id, state FROM op").fetchall())
            assert {k: ("cancelled" if v == "cancelled" else "pending") for k, v in was.items()} == now
            money = con_o.execute("SELECT sum(amount_paise) FROM payment").fetchone()[0]
        finally:
            con_o.close()
            con_n.close()
        print(f"compared {compared} rows in {len(original)} tables; {len(was)} ops; payments {money} paise")
        assert compared >= 50 and money > 0

        # new work at once, with central still down, numbers above everything seen from C03
        s_new = load_settings(new)
        st = open_store(s_new.db_path)
        try:
            svc = CounterService(st, "C03")
            nxt = svc.register_new("op-1", {"name": "New Person", "sex": "M", "age_years": 5}, department="MED",
                                   payment=PaymentInput(mode="cash"))
            assert nxt.payment is not None and nxt.payment.extra["amount_paise"] > 0  # priced: master data back
            assert nxt.patient.seq > max(int(r["seq"]) for r in original["op"].values())
            central.start()
            summary = sync(st, s_new)
            assert summary.exit_code == 0, summary.as_dict()
        finally:
            st.close()
        rec = run(app, ["--data-dir", str(new), "reconcile", "--date", today_ist().isoformat(), "--json"])
        assert rec.exit_code == 0, rec.output
        assert made and date.today()
