"""The hub as a peer you can trust (issue 18 items 1, 2, 4, 5), through the
entry points people use (`share`, `status --json`, `hub serve|backup|restore|
remove-device`) against a real hub process, real files and real disks:

- an op the hub refused is never counted as shared; `share` exits 1 and names it;
- another counter's token, a revoked counter, an unreachable hub, a full disk
  and a damaged or deleted hub database are five different sentences and exit codes;
- the hub refuses a damaged file at start in one sentence naming it;
- a correction after sharing reaches every counter and the hub's index, and a
  restore from the hub keeps it; a withdrawn op leaves the index;
- a counter cannot set the central id of another counter's record, and a
  central id learnt through the hub never outranks central's own index;
- bad input is a 4xx, never a 500.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from ulid import ULID

from opd_fallback.application.review import ReviewService
from opd_fallback.application.services import CounterService, PaymentInput
from opd_fallback.application.share import restore_from_hub
from opd_fallback.store import open_store, outbox, patient_index
from opd_fallback.store.operators import add_operator
from opd_fallback.store.tables import Op, Patient, SharedRecord
from tests.conftest import put_master_data
from tests.helpers.hub import run_hub
from tests.helpers.landay import hub_cli, hub_ops, own_op_ids, share, work
from tests.helpers.mounts import fill, small_tmpfs

PATIENT = {"name": "Sita Devi", "sex": "F", "age_years": 34, "mobile": "9123456780"}


def cli(data: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "opd_fallback", "--data-dir", str(data), *args], input=stdin,
                          capture_output=True, text=True, timeout=120)


def counter(tmp_path: Path, dev: str, hub: Any, token: str | None = None) -> Path:
    data = tmp_path / dev.lower()
    out = cli(data, "init", "--device", dev, "--hospital", "KGMU", "--hub", hub.url, "--hub-pairing-stdin",
              stdin=hub.pairing(dev) + "\n")
    assert out.returncode == 0, out.stderr
    if token:
        (data / "hub.token").write_text(token + "\n")
    st = open_store(data / "counter.db")
    put_master_data(st)
    st.close()
    return data


def status(data: Path) -> dict[str, Any]:
    out = cli(data, "status", "--json")
    assert out.returncode in (0, 1), out.stderr
    return dict(json.loads(out.stdout)["hub"])


def make_ops(data: Path, dev: str, n: int) -> None:
    st = open_store(data / "counter.db")
    try:
        work(st, dev, n, 0)
    finally:
        st.close()


def test_a_refused_op_is_never_counted_as_shared(tmp_path) -> None:
    with run_hub(tmp_path, devices=("C01",)) as hub:
        data = counter(tmp_path, "C01", hub)
        make_ops(data, "C01", 6)
        st = open_store(data / "counter.db")
        with st.read() as s:
            second = s.exec(Op.__table__.select().where(Op.seq == 2)).one()  # type: ignore[attr-defined]
        st.close()
        # the hub holds that op_id with other content (a counter restored from a wrong copy, say)
        forged = {"op_id": second.op_id, "kind": "patient.update", "device_id": "C01", "operator_id": "x", "seq": 99,
                  "recorded_at": "2026-11-30T09:00:00+05:30", "depends_on": [], "resolution": None,
                  "payload": {"patient": {"local_ref": "C01-261130-000001"}, "base_version": 0,
                              "changes": {"name": "Someone Else"}}}
        with hub.client("C01") as c:
            assert c.post("/ops:push", json={"ops": [forged]}).json()["results"][0]["status"] == "stored"
        for _ in range(2):  # every exchange says it again: the op is not forgotten
            out = cli(data, "share")
            assert out.returncode == 1, out.stderr
            assert "refused" in out.stderr and second.op_id in out.stderr and "other content" in out.stderr
            hub_state = status(data)
            assert hub_state["ops_refused"] == 1 and hub_state["ops_not_yet_shared"] == 5
        assert len(hub_ops(hub.db_path)) == 6  # the other five went


@pytest.mark.chaos  # moved out of make test (issue 21): a long end-to-end run
def test_five_hub_problems_five_sentences_five_exit_codes(tmp_path) -> None:
    with run_hub(tmp_path, devices=("C01", "C02")) as hub:
        # another counter's token: the hub knows it as C02
        data = counter(tmp_path, "C01", hub, token=hub.tokens["C02"])
        make_ops(data, "C01", 3)
        out = cli(data, "share")
        assert out.returncode == 9 and "as counter C02, not C01" in out.stderr, out.stderr
        assert hub_ops(hub.db_path) == [] and status(data)["ops_not_yet_shared"] == 3
        # its own token: shared; then revoked on the hub PC
        (data / "hub.token").write_text(hub.tokens["C01"] + "\n")
        assert cli(data, "share").returncode == 0
        done = hub_cli("remove-device", "C01", "--db", str(hub.db_path))
        assert done.returncode == 0, done.stderr
        out = cli(data, "share")
        assert out.returncode == 9 and "refused this counter's hub token" in out.stderr
        hub.add_device("C01")
        (data / "hub.token").write_text(hub.tokens["C01"] + "\n")
        # the hub's file deleted while it runs: noticed, not acknowledged into a file nobody reads
        make_ops(data, "C01", 3)
        hub.db_path.unlink()
        out = cli(data, "share")
        assert out.returncode == 6 and "deleted or replaced while the hub was running" in out.stderr, out.stderr
        assert str(hub.db_path) in out.stderr
        assert "deleted or replaced" in hub.log()
        hub.stop()
        # unreachable
        out = cli(data, "share")
        assert out.returncode == 3 and "hub unreachable" in out.stderr
        # restarted on a new, empty file (the token is made again): the counter sends everything again
        hub.start()
        hub.add_device("C01")
        (data / "hub.token").write_text(hub.tokens["C01"] + "\n")
        out = cli(data, "share", "--json")
        assert out.returncode == 0, out.stderr
        res = json.loads(out.stdout)
        assert res["hub_went_back"] and res["pushed"] == 6 and res["resent"] == 3
        st = open_store(data / "counter.db")
        assert {o for o, _, _ in hub_ops(hub.db_path)} == own_op_ids(st)
        st.close()
        back = status(data)["went_back"]
        assert back["healed"] and "replaced" in back["reason"]
        assert "WENT BACK" in cli(data, "status").stdout


@pytest.mark.chaos  # moved out of make test (issue 21): a long end-to-end run
def test_a_full_disk_at_the_hub_is_said_as_such_and_heals(tmp_path) -> None:
    with small_tmpfs(tmp_path / "disk", "3m") as disk, run_hub(disk, devices=("C01",)) as hub:
        data = counter(tmp_path, "C01", hub)
        make_ops(data, "C01", 3)
        assert cli(data, "share").returncode == 0
        make_ops(data, "C01", 600)
        fill(disk)
        out = cli(data, "share")
        assert out.returncode == 5 and "disk is full" in out.stderr, out.stderr
        assert status(data)["last_outcome"] == "hub_disk_full"
        (disk / "filler").unlink()
        out = cli(data, "share")
        assert out.returncode == 0, out.stderr
        st = open_store(data / "counter.db")
        assert {o for o, _, _ in hub_ops(hub.db_path)} == own_op_ids(st)
        st.close()


def test_a_damaged_hub_database_is_refused_at_start_in_one_sentence(tmp_path) -> None:
    with run_hub(tmp_path, devices=("C01",)) as hub:
        with hub.client("C01") as c:
            for i in range(40):
                c.post("/ops:push", json={"ops": [op("C01", i + 1)]})
        hub.stop()
    from tests.helpers import db as db_helper

    con = db_helper.connect(hub.db_path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page = int(con.execute("PRAGMA page_size").fetchone()[0])
    con.close()
    with open(hub.db_path, "r+b") as fh:  # a page in the middle of the op table, as a bad sector leaves it
        fh.seek(page * 3)
        fh.write(b"\xde\xad" * (page // 2))
    done = subprocess.run([sys.executable, "-m", "opd_fallback", "hub", "serve", "--db", str(hub.db_path),
                           "--host", "127.0.0.1", "--port", "1"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and str(hub.db_path) in lines[0] and "damaged" in lines[0] and "hub restore" in lines[0]
    assert "Traceback" not in done.stderr


def op(device: str, seq: int, **payload: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"local_ref": f"{device}-261130-{seq:06d}", "name": f"Ram {device}", "sex": "M",
                            "age_years": 40, "mobile": "9876543210", **payload}
    return {"op_id": str(ULID()), "kind": "patient.register", "device_id": device, "operator_id": "op-1", "seq": seq,
            "recorded_at": "2026-11-30T09:14:00+05:30", "depends_on": [], "payload": body, "resolution": None}


def test_bad_input_is_a_4xx_never_a_500(tmp_path) -> None:
    with run_hub(tmp_path, devices=("C01",)) as hub, hub.client("C01") as c:
        for cursor in (2**53 + 1, 10**30):
            r = c.get("/changes", params={"cursor": cursor})
            assert r.status_code == 422 and r.json()["error"]["code"] == "validation_failed"
        deep: Any = "x"
        for _ in range(900):
            deep = {"a": deep}
        r = c.post("/ops:push", json={"ops": [op("C01", 1, extra=deep)]})
        assert r.status_code == 422 and "deeper" in r.json()["error"]["message"]
        r = c.post("/ops:push", json={"ops": [op("C01", 2**53)]})
        assert r.status_code == 200
        assert r.json()["results"][0]["error"]["code"] == "validation_failed"
        assert "9007199254740991" in r.json()["results"][0]["error"]["message"]  # 2^53 - 1, said
        r = c.post("/pull", json={"vector": {"C02": 2**53}})
        assert r.status_code == 422
        r = c.post("/exchange", json={"known": {"acked_seq": -1}})
        assert r.status_code == 422
        assert c.post("/ops:push", json={"ops": [op("C01", 1, name="Ram_Kumar"), op("C01", 2, name="Ramesh")]}
                      ).status_code == 200
        for q, names in (("%", []), ("_", []), ("ram_", ["Ram_Kumar"]), ("r%", []), ("ram", ["Ramesh", "Ram_Kumar"])):
            r = c.get("/index", params={"q": q})
            assert r.status_code == 200
            assert sorted(x["name"] for x in r.json()["records"]) == sorted(names), q
        assert hub_ops(hub.db_path) and len(hub_ops(hub.db_path)) == 2
        assert "Traceback" not in hub.log()


def test_a_correction_after_sharing_reaches_every_counter_the_index_and_restore(tmp_path) -> None:
    stores = {d: open_store(tmp_path / d / "counter.db") for d in ("C01", "C02")}
    try:
        for st in stores.values():
            put_master_data(st)
        add_operator(stores["C01"], "sup1", "Sup One", "222222", role="supervisor")
        with run_hub(tmp_path, devices=("C01", "C02", "C09")) as hub:
            svc = CounterService(stores["C01"], "C01")
            reg = svc.register_new("op-1", PATIENT, department="MED", payment=PaymentInput(mode="cash"))
            gone = svc.register_new("op-1", {**PATIENT, "name": "Entered Twice"}, department="MED")
            for d in ("C01", "C02"):
                assert share(hub, stores[d], d).outcome == "ok"
            with stores["C01"].write() as s:  # central rejected both registrations (as the sync engine writes it)
                for op_id, why in ((reg.patient.op_id, "Mobile: wrong"), (gone.patient.op_id, "entered twice")):
                    o = outbox.get(s, op_id)
                    assert o is not None
                    o.state, o.last_status = "rejected", "rejected"
                    o.last_error = orjson.dumps({"code": "validation_failed", "message": why}).decode()
                    s.add(o)
            rs = ReviewService(stores["C01"])
            sup = rs.authenticate("sup1", "222222")
            rs.correct(sup, reg.patient.op_id, {"mobile": "9000000001"})
            rs.cancel(sup, gone.patient.op_id, "entered twice", cascade=True)
            for d in ("C01", "C02"):
                assert share(hub, stores[d], d).outcome == "ok"
            with stores["C02"].read() as s:
                got = {r.local_ref: r for r in s.exec(SharedRecord.__table__.select()).all()}  # type: ignore[attr-defined]
            assert got[reg.patient.local_ref].mobile == "9000000001"  # the corrected record, not dropped
            assert gone.patient.local_ref not in got and gone.visit.local_ref not in got  # withdrawn
            with hub.client("C02") as c:
                [rec] = c.get("/index", params={"q": reg.patient.local_ref, "kind": "patient"}).json()["records"]
                assert rec["mobile"] == "9000000001"
                assert c.get("/index", params={"q": "Entered"}).json()["records"] == []
            # restore of C01 from the hub on a new PC: no UNIQUE error, the corrected record back
            fresh = open_store(tmp_path / "new-pc" / "counter.db")
            try:
                with hub.hub_client("C01") as client:
                    restore_from_hub(fresh, client, "C01")
                with fresh.read() as s:
                    [p] = [p for p in s.exec(Patient.__table__.select()).all()  # type: ignore[attr-defined]
                           if p.local_ref == reg.patient.local_ref]
                assert p.mobile == "9000000001"
            finally:
                fresh.close()
    finally:
        for st in stores.values():
            st.close()


def test_a_forged_central_id_is_refused_and_never_outranks_central(tmp_path) -> None:
    stores = {d: open_store(tmp_path / d / "counter.db") for d in ("C01", "C02", "C03")}
    try:
        for st in stores.values():
            put_master_data(st)
        with run_hub(tmp_path, devices=("C01", "C02", "C03")) as hub:
            reg = CounterService(stores["C01"], "C01").register_new("op-1", PATIENT, department="MED")
            assert share(hub, stores["C01"], "C01").outcome == "ok"
            # C02's token tries to say which central patient C01's registration is
            with hub.client("C02") as c:
                body = c.post("/ops:push", json={"central_ids": [
                    {"local_ref": reg.patient.local_ref, "kind": "patient", "central_id": "KGMU000000777"},
                    {"local_ref": "C01-261130-999999", "kind": "patient", "central_id": "KGMU000000778"}]}).json()
            assert body["central_ids_new"] == 0
            assert [x["local_ref"] for x in body["central_ids_refused"]] == [reg.patient.local_ref,
                                                                            "C01-261130-999999"]
            assert body["central_ids_refused"][0]["error"]["code"] == "device_mismatch"
            # its own counter may (central's answer, once C01 synced)
            with hub.client("C01") as c:
                body = c.post("/ops:push", json={"central_ids": [
                    {"local_ref": reg.patient.local_ref, "kind": "patient", "central_id": "KGMU000000555"}]}).json()
            assert body["central_ids_new"] == 1 and body["central_ids_refused"] == []
            assert share(hub, stores["C03"], "C03").outcome == "ok"
            # central's own index says KGMU000000555 is someone else: central's index wins at C03
            with stores["C03"].write() as s:
                patient_index.upsert_many(s, [{"uhid": "KGMU000000555", "name": "Mohan Lal", "sex": "M",
                                               "age_years": 60, "mobile": "9000000555"}])
            svc = CounterService(stores["C03"], "C03")
            with svc.transaction("op-3") as tx:
                who = tx.patient("KGMU000000555")
                assert (who.name, who.ref.model_dump(exclude_none=True)) == ("Mohan Lal", {"central_id": "KGMU000000555"})
                assert tx.patient(reg.patient.local_ref).name == "Sita Devi"  # its offline number still finds it
    finally:
        for st in stores.values():
            st.close()


def test_hub_backup_is_checked_and_refuses_a_bad_file(tmp_path) -> None:
    with run_hub(tmp_path, devices=("C01",)) as hub:
        with hub.client("C01") as c:
            c.post("/ops:push", json={"ops": [op("C01", 1)]})
        done = hub_cli("backup", str(tmp_path / "b.db"), "--db", str(hub.db_path))
        assert done.returncode == 0 and "1 ops of 1 counters, checked" in done.stderr
        assert oct((tmp_path / "b.db").stat().st_mode & 0o777) == "0o600"
        (tmp_path / "junk.db").write_bytes(b"not a database" * 100)
        done = hub_cli("restore", str(tmp_path / "junk.db"), "--db", str(hub.db_path))
        # not a hub database: refused in words (1), or, the file being no database this PC has a key for, 8
        assert done.returncode in (1, 8) and "Traceback" not in done.stderr and done.stderr.strip()
        with hub.client("C01") as c:
            assert c.get("/health").status_code == 200  # untouched
