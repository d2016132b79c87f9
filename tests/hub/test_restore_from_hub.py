"""A dead counter PC loses nothing the hub saw: `restore --from-hub --device C03`
on a new PC brings back its records and queue, continues above every seq the hub
or central has seen, and syncs to central with nothing lost or doubled."""

from __future__ import annotations

import sqlite3

from typer.testing import CliRunner

from opd_fallback.application.services import CounterService, PaymentInput
from opd_fallback.application.share import share_once
from opd_fallback.cli import app
from opd_fallback.config import load_settings
from opd_fallback.store import open_store, outbox
from opd_fallback.store.tables import Op
from opd_fallback.sync.client import CentralClient
from opd_fallback.sync.engine import SyncEngine
from opd_fallback.sync.hub_client import HubClient
from tests.helpers.central import run_central
from tests.helpers.hub import run_hub

run = CliRunner().invoke


def init(data, dev, central, hub, monkeypatch) -> None:
    monkeypatch.setenv("OPD_CENTRAL_TOKEN", central.tokens[dev])
    out = run(app, ["--data-dir", str(data), "init", "--device", dev, "--hospital", "KGMU", "--server", central.url,
                    "--hub", hub.url, "--hub-pairing-stdin"], input=hub.pairing(dev) + "\n")
    monkeypatch.delenv("OPD_CENTRAL_TOKEN")
    assert out.exit_code == 0, out.output


def test_restore_from_hub_on_a_new_pc(tmp_path, monkeypatch) -> None:
    with run_central(tmp_path, devices=("C03", "C01")) as central, run_hub(tmp_path, devices=("C03", "C01")) as hub:
        old, other = tmp_path / "old-pc", tmp_path / "c01"
        init(old, "C03", central, hub, monkeypatch)
        init(other, "C01", central, hub, monkeypatch)
        s_old, s_c01 = load_settings(old), load_settings(other)
        st_c01 = open_store(s_c01.db_path)
        c01 = CounterService(st_c01, "C01").register_new(
            "op-9", {"name": "Asha Rani", "sex": "F", "age_years": 22}, department="MED",
            payment=PaymentInput(mode="cash", amount_paise=1000))
        with HubClient.from_settings(s_c01) as h:
            assert share_once(st_c01, h, "C01").outcome == "ok"
        st_c01.close()

        st = open_store(s_old.db_path)
        svc = CounterService(st, "C03")
        svc.register_new("op-1", {"name": "Sita Devi", "sex": "F", "age_years": 34}, department="MED",
                                 payment=PaymentInput(mode="cash", amount_paise=1000))
        with CentralClient.from_settings(s_old) as c:  # these reach central
            assert SyncEngine(st, c, s_old, give_up_after_s=5).run().exit_code == 0
        later = svc.register_new("op-1", {"name": "Ram Kumar", "sex": "M", "age_years": 61}, department="MED",
                                 payment=PaymentInput(mode="upi", amount_paise=1000, mode_ref="UTR123"))
        with st.write() as s:  # a supervisor cancels that payment in review: it must never reach central
            assert outbox.transition(s, "cancelled", [{"id": later.payment.op_id, "why": "entered twice"}]) == 1
        with HubClient.from_settings(s_old) as h:  # ... and everything reaches the hub
            assert share_once(st, h, "C03").outcome == "ok"
        with st.read() as s:
            before = {(o.op_id, o.seq, o.kind, o.payload) for o in s.exec(Op.__table__.select()).all()}  # type: ignore[attr-defined]
        st.close()  # the old PC dies

        new = tmp_path / "new-pc"
        hub.add_device("C03")  # the hub PC gives the new PC a token (the old one is replaced)
        init(new, "C03", central, hub, monkeypatch)
        refused = run(app, ["--data-dir", str(new), "restore", "--from-hub", "--device", "C09"])
        assert refused.exit_code == 1 and "belongs to counter C03" in refused.output
        out = run(app, ["--data-dir", str(new), "restore", "--from-hub", "--device", "C03"])
        assert out.exit_code == 0, out.output
        assert "6 own ops" in out.output and "1 kept cancelled" in out.output
        assert "Ready for new work" in out.output
        again = run(app, ["--data-dir", str(new), "restore", "--from-hub", "--device", "C03"])
        assert again.exit_code == 1 and "already has ops" in again.output

        s_new = load_settings(new)
        st = open_store(s_new.db_path)
        try:
            with st.read() as s:
                after = {(o.op_id, o.seq, o.kind, o.payload) for o in s.exec(Op.__table__.select()).all()}  # type: ignore[attr-defined]
            assert after == before  # the queue, op for op, verbatim
            with st.read() as s:
                assert outbox.op_state(s, later.payment.op_id) == "cancelled"
            svc = CounterService(st, "C03")
            found = svc.search_patients("Ram Kumar")
            assert [h.local_ref for h in found] == [later.patient.local_ref]
            with svc.transaction("op-1") as tx:  # another counter's patient is known by name again
                assert tx.patient(c01.patient.local_ref).name == "Asha Rani"
            nxt = svc.register_new("op-1", {"name": "New Person", "sex": "M", "age_years": 5}, department="MED",
                                   payment=PaymentInput(mode="cash", amount_paise=1000))
            assert nxt.patient.seq > max(seq for _, seq, _, _ in before)
            with CentralClient.from_settings(s_new) as c:
                summary = SyncEngine(st, c, s_new, give_up_after_s=5).run()
            assert summary.exit_code == 0, summary.as_dict()
            assert (summary.duplicate, summary.applied) == (3, 5)
        finally:
            st.close()
        con = sqlite3.connect(central.db_path)
        try:
            rows = con.execute("SELECT op_id FROM op_outcome WHERE device_id='C03' AND status='applied'").fetchall()
            assert len(rows) == len({r[0] for r in rows}) == 8
            assert later.payment.op_id not in {r[0] for r in rows}
            assert con.execute("SELECT count(*) FROM patient WHERE device_id='C03'").fetchone()[0] == 3
        finally:
            con.close()
