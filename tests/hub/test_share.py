"""Sharing through a real hub process: a patient registered at C01 is found at
C02, which orders tests on that visit; C03 takes payment for that order. Each
counter's outbox holds only its own ops, which carry the other counters'
offline numbers; a dead hub is exit 3 and costs nothing else."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest

from opd_fallback.application.services import CounterService, PaymentInput
from opd_fallback.application.share import share_once
from opd_fallback.application.status import hub_status
from opd_fallback.domain.errors import DomainError
from opd_fallback.domain.shared import ref_key
from opd_fallback.store import open_store
from opd_fallback.store.tables import Op, SharedRecord
from tests.conftest import put_master_data
from tests.helpers import db as db_helper
from tests.helpers.hub import run_hub

PATIENT = {"name": "Sita Devi", "sex": "F", "age_years": 34, "mobile": "9123456780"}


@pytest.fixture
def counters(tmp_path):
    stores = {}
    for dev in ("C01", "C02", "C03"):
        stores[dev] = open_store(tmp_path / dev / "counter.db")
        put_master_data(stores[dev])
    yield stores
    for st in stores.values():
        st.close()


def exchange(hub, stores, dev):
    with hub.hub_client(dev, deadline_s=10) as client:
        res = share_once(stores[dev], client, dev)
    assert res.outcome == "ok", res.message
    return res


def own_ops(store):
    with store.read() as s:
        return list(s.exec(Op.__table__.select()).all())  # type: ignore[attr-defined]


def test_cross_counter_lab_order_and_payment(tmp_path, counters) -> None:
    with run_hub(tmp_path, devices=("C01", "C02", "C03")) as hub:
        c1, c2, c3 = (CounterService(counters[d], d) for d in ("C01", "C02", "C03"))
        reg = c1.register_new("op-1", PATIENT, department="MED", payment=PaymentInput(mode="cash"))
        assert exchange(hub, counters, "C01").pushed == 3
        got = exchange(hub, counters, "C02")
        assert got.pulled_records == 3  # patient, visit, payment of C01
        hits = c2.search_patients("sita")  # the counter's own search finds the LAN's patient
        assert [(h.source, h.local_ref) for h in hits] == [("lan", reg.patient.local_ref)]
        assert [h.source for h in c2.search_patients("9123456780")] == ["lan"]
        lab = c2.lab_request("op-2", reg.patient.local_ref, reg.visit.local_ref, ["CBC"])
        assert lab.info.name == "Sita Devi"  # found from the LAN's records, not a blank name
        exchange(hub, counters, "C02")
        exchange(hub, counters, "C03")
        paid = c3.pay_lab_order("op-3", lab.order.local_ref, PaymentInput(mode="cash"))
        assert paid.payment is not None and paid.payment.extra["amount_paise"] == 15000
        # a payment for this order naming another patient's visit is refused
        other = c1.register_new("op-1", {**PATIENT, "name": "Other Person"}, department="MED",
                                payment=PaymentInput(mode="cash"))
        exchange(hub, counters, "C01")
        exchange(hub, counters, "C02")
        with pytest.raises(DomainError):
            c2.lab_request("op-2", other.patient.local_ref, reg.visit.local_ref, ["CBC"])

        (lab_op,) = [o for o in own_ops(counters["C02"]) if o.kind == "lab.order"]
        body = orjson.loads(lab_op.payload)
        assert ref_key(body["patient"]) == reg.patient.local_ref
        assert ref_key(body["visit"]) == reg.visit.local_ref
        (pay_op,) = [o for o in own_ops(counters["C03"]) if o.kind == "payment.record"]
        body = orjson.loads(pay_op.payload)
        assert ref_key(body["lab_order"]) == lab.order.local_ref
        assert ref_key(body["visit"]) == reg.visit.local_ref
        assert ref_key(body["patient"]) == reg.patient.local_ref
        for dev, st in counters.items():  # never another counter's op in an outbox
            assert {o.device_id for o in own_ops(st)} <= {dev}
        exchange(hub, counters, "C03")
        with counters["C03"].read() as s:
            kinds = sorted(r.kind for r in s.exec(SharedRecord.__table__.select()).all())  # type: ignore[attr-defined]
        assert kinds.count("lab_order") == 1 and kinds.count("patient") == 2
        status = hub_status(counters["C03"], configured=True)
        assert status["state"] == "online" and status["records_by_counter"]["C02"] == 1

        # a second exchange with nothing new moves nothing and stores nothing twice
        again = exchange(hub, counters, "C03")  # with nothing new
        assert (again.pulled_records, again.pushed) == (0, 0)
        hub.stop()
        with hub.hub_client("C03", deadline_s=2) as client:
            down = share_once(counters["C03"], client, "C03")
        assert down.outcome == "unreachable" and down.exit_code == 3
        assert hub_status(counters["C03"], configured=True)["state"] == "offline"


@pytest.mark.chaos  # a long run (> 10 s): make chaos
def test_share_cli_exit_codes(tmp_path) -> None:
    data = tmp_path / "c09"

    def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "opd_fallback", "--data-dir", str(data), *args],
                              input=stdin, capture_output=True, text=True, timeout=60)

    with run_hub(tmp_path, devices=("C09",)) as hub:
        out = cli("init", "--device", "C09", "--hospital", "KGMU", "--hub", hub.url, "--hub-pairing-stdin",
                  stdin=hub.pairing("C09") + "\n")
        assert out.returncode == 0, out.stderr
        assert hub.tokens["C09"] not in (data / "config.toml").read_text()
        assert oct((data / "hub.token").stat().st_mode & 0o777) == "0o600"
        ok = cli("share", "--json")
        assert ok.returncode == 0, ok.stderr
        assert orjson.loads(ok.stdout)["outcome"] == "ok"
        hub_state = orjson.loads(cli("status", "--json").stdout)["hub"]
        assert (hub_state["configured"], hub_state["state"], hub_state["last_outcome"]) == (True, "online", "ok")
        (data / "hub.token").write_text("wrong\n")
        refused = cli("share")
        assert refused.returncode == 9 and "token refused" in refused.stderr  # its own code: not "unreachable"
        hub_state = orjson.loads(cli("status", "--json").stdout)["hub"]
        assert (hub_state["state"], hub_state["last_outcome"]) == ("offline", "unauthorized")
    gone = cli("share")
    assert gone.returncode == 3 and "hub unreachable" in gone.stderr


def test_review_decisions_and_cancellations_reach_the_hub(tmp_path, counters) -> None:

    from opd_fallback.store import outbox

    with run_hub(tmp_path, devices=("C01", "C02")) as hub:
        c1 = CounterService(counters["C01"], "C01")
        reg = c1.register_new("op-1", PATIENT, department="MED", payment=PaymentInput(mode="cash"))
        exchange(hub, counters, "C01")
        exchange(hub, counters, "C02")
        with counters["C01"].write() as s:  # central said possible_duplicate; a supervisor chose create_new
            outbox.transition(s, "flagged", [{"id": reg.patient.op_id, "state": "conflict", "st": "conflict",
                                              "err": None, "why": "possible duplicate"}])
            outbox.transition(s, "resubmitted", [{"id": reg.patient.op_id, "res": '{"action":"create_new"}'}])
            outbox.transition(s, "cancelled", [{"id": reg.payment.op_id, "why": "entered twice"}])
        exchange(hub, counters, "C01")
        con = db_helper.connect(hub.db_path)
        try:
            env = orjson.loads(con.execute("SELECT envelope FROM op WHERE op_id=?", (reg.patient.op_id,)).fetchone()[0])
            gone = con.execute("SELECT op_id FROM withdrawn").fetchall()
        finally:
            con.close()
        assert env["resolution"] == {"action": "create_new"}
        assert gone == [(reg.payment.op_id,)]
        got = exchange(hub, counters, "C02")
        assert got.pulled_updates == 1  # the cancelled payment's record is dropped at C02
        with counters["C02"].read() as s:
            kinds = sorted(r.kind for r in s.exec(SharedRecord.__table__.select()).all())  # type: ignore[attr-defined]
        assert kinds == ["patient", "visit"]


@pytest.mark.parametrize("stop_with", ["SIGINT, inherited ignored", "SIGTERM"])
def test_share_watch_keeps_pulling_until_interrupted(tmp_path, counters, stop_with) -> None:
    """Ctrl-C or a service manager's SIGTERM ends the watch with exit 0, also when the
    parent passed SIGINT on ignored (a job started with `&`: the KeyboardInterrupt
    the command relied on before never came, and the watch ran on)."""
    import os
    import signal
    import time

    sig = signal.SIGTERM if stop_with == "SIGTERM" else signal.SIGINT

    def ignore_sigint() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    from sqlalchemy import text

    from opd_fallback.config import load_settings, write_config, write_hub_token

    with run_hub(tmp_path, devices=("C01", "C09")) as hub:
        data = tmp_path / "c09"
        base = load_settings(data)
        write_config(base, {"device_id": "C09", "hospital": "KGMU", "hub_url": hub.url, "hub_fingerprint": hub.fingerprint})
        write_hub_token(base, hub.tokens["C09"])
        open_store(data / "counter.db").close()
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPD_")}
        proc = subprocess.Popen([sys.executable, "-m", "opd_fallback", "--data-dir", str(data), "share", "--watch",
                                 "--interval", "0.2"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, preexec_fn=ignore_sigint if sig == signal.SIGINT else None)
        try:
            reg = CounterService(counters["C01"], "C01").register_new(
                "op-1", PATIENT, department="MED", payment=PaymentInput(mode="cash"))
            exchange(hub, counters, "C01")
            watcher = open_store(data / "counter.db")
            try:
                for _ in range(300):
                    with watcher.read() as s:
                        n = s.execute(text("SELECT count(*) FROM shared_record WHERE patient_ref=:r OR local_ref=:r"),
                                      {"r": reg.patient.local_ref}).scalar()
                    if n == 3 or proc.poll() is not None:
                        break
                    time.sleep(0.1)
            finally:
                watcher.close()
            assert n == 3, proc.stderr.read() if proc.poll() is not None else "not pulled"
        finally:
            proc.send_signal(sig)
            _out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
