"""The collection desk (F1) through real key presses at 80x24: a scan is the
tube id typed in one burst and Enter; Enter records it collected, ctrl+r and
a reason record it refused and print its label again; an unpaid order and a
double scan record nothing; the list shows today's tubes of this counter and
of the LAN still to draw; Hindi with F9."""

from __future__ import annotations

from pathlib import Path

import orjson
from sqlalchemy import text
from sqlmodel import select

from opd_fallback.application.services import CounterService, PaymentInput
from opd_fallback.store import open_store, outbox
from opd_fallback.store import shared as shared_records
from opd_fallback.store.engine import Store
from opd_fallback.store.tables import Op
from opd_fallback.tui.screens.collect import CollectScreen

from .conftest import login, put_master_data, settle, type_text

KAMLA = {"name": "Kamla Devi", "name_local": "कमला देवी", "sex": "F", "age_years": 52}
SITA = {"name": "Sita Ram", "name_local": "सीता राम", "sex": "M", "age_years": 8}


def _text(app, selector: str) -> str:
    return str(app.screen.query_one(selector).render())


def _collect_ops(store: Store) -> list[dict]:
    with store.read() as s:
        rows = s.exec(select(Op).where(Op.kind == "lab.sample_collect").order_by(Op.seq)).all()
    return [{**orjson.loads(o.payload), "operator": o.operator_id} for o in rows]


async def test_scan_collect_refuse_and_the_list_at_80x24(make_app, store: Store, tmp_path: Path) -> None:
    # C01 registered and ordered for another patient, not paid yet; a share with the hub left it here
    other = open_store(tmp_path / "c01.db")
    put_master_data(other)
    c01 = CounterService(other, "C01")
    reg1 = c01.register_new("op-9", SITA, department="MED", payment=PaymentInput(mode="cash"))
    lab1 = c01.lab_request("op-9", reg1.patient.local_ref, reg1.visit.local_ref, ["CBC"])
    with other.read() as s:
        pulled = [{"hub_seq": i + 1, "op": outbox.envelope(o)} for i, o in enumerate(s.exec(select(Op)).all())]
    other.close()
    with store.write() as s:
        shared_records.store_page(s, "C07", pulled, [])
    svc = CounterService(store, "C07")
    reg = svc.register_new("op1", KAMLA, department="MED", payment=PaymentInput(mode="cash"))
    lab = svc.lab_request("op1", reg.patient.local_ref, reg.visit.local_ref, ["CBC", "FBS"],
                          payment=PaymentInput(mode="cash"))
    edta, fluoride = (t["sample_id"] for t in lab.order.extra["samples"])
    unpaid = lab1.order.extra["sample_id"]

    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot)
        await pilot.press("f1")
        await settle(pilot)
        assert isinstance(app.screen, CollectScreen)
        assert "Still to collect today, whole hospital: 3" in _text(app, "#todo-title")
        table = app.screen.query_one("#todo")
        # oldest order first (C01's was placed first)
        assert [table.get_row_at(i)[1] for i in range(table.row_count)] == [unpaid, edta, fluoride]

        await type_text(pilot, edta, then="enter")  # the scanner: id + Enter in one burst
        await settle(pilot)
        shown = _text(app, "#tube")
        assert "Kamla Devi / कमला देवी  52Y/F" in shown
        assert f"{edta}  EDTA whole blood: CBC Complete Blood Count" in shown
        assert f"Order {lab.order.local_ref} (C07) · PAID · to collect" in shown
        assert _collect_ops(store) == []  # a scan alone records nothing
        await pilot.press("enter")
        await settle(pilot)
        assert f"Collected {edta} at " in _text(app, "#form-msg")
        assert "Still to collect today, whole hospital: 2" in _text(app, "#todo-title")
        assert [(o["sample_id"], o["status"], o["operator"]) for o in _collect_ops(store)] == [
            (edta, "collected", "op1")]

        await type_text(pilot, edta, then="enter")  # a double scan
        await settle(pilot)
        assert f"{edta} was already collected at " in _text(app, "#form-msg")
        await pilot.press("enter")
        await settle(pilot)
        assert len(_collect_ops(store)) == 1

        await type_text(pilot, unpaid, then="enter")
        await settle(pilot)
        assert "Sita Ram / सीता राम  8Y/M" in _text(app, "#tube")
        assert f"Order {lab1.order.local_ref} is NOT PAID" in _text(app, "#form-msg")
        await pilot.press("enter")
        await settle(pilot)
        assert len(_collect_ops(store)) == 1

        prints = tmp_path / "prints"
        prints_before = set(prints.iterdir()) if prints.exists() else set()
        await type_text(pilot, fluoride, then="enter")
        await settle(pilot)
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert f"Why is {fluoride} refused?" in _text(app, "#form-msg")
        await pilot.press("down", "enter")  # the second reason: clotted
        await settle(pilot)
        assert f"Refused {fluoride} (clotted)" in _text(app, "#form-msg")
        ops = _collect_ops(store)
        assert [(o["sample_id"], o["status"], o.get("reason")) for o in ops] == [
            (edta, "collected", None), (fluoride, "rejected", "clotted")]
        new_prints = set(prints.iterdir()) - prints_before
        assert len(new_prints) == 1 and fluoride in next(iter(new_prints)).name
        # a refused tube is to be drawn again: it stays in the list
        assert "Still to collect today, whole hospital: 2" in _text(app, "#todo-title")

        # the list: Tab to it, Enter arms the highlighted tube, Enter (back in the scan field) records it
        await pilot.press("tab")
        await settle(pilot)
        assert app.focused is table
        await pilot.press("down", "enter")  # the second row: the refused tube
        await settle(pilot)
        assert f"{fluoride}  Fluoride plasma: FBS" in _text(app, "#tube")
        assert "refused: draw again (clotted)" in _text(app, "#tube")
        await pilot.press("enter")
        await settle(pilot)
        assert f"Collected {fluoride} at " in _text(app, "#form-msg")

        # everything in sight at 80x24, and in Hindi with F9
        for sel in ("#scan", "#tube", "#form-msg", "#todo-title", "#todo"):
            region = app.screen.query_one(sel).region
            assert region.bottom <= 24 - 2 and region.right <= 80, (sel, region)
        await pilot.press("f9")
        await settle(pilot)
        assert "सैंपल संग्रह" in _text(app, ".title")
        assert "आज लेना बाकी, पूरा अस्पताल: 1" in _text(app, "#todo-title")
        await type_text(pilot, unpaid, then="enter")
        await settle(pilot)
        assert "का भुगतान नहीं हुआ" in _text(app, "#form-msg")
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, CollectScreen)

    with store.read() as s:
        events = s.execute(text("SELECT sample_id, status, reason, operator_id, source FROM sample_event "
                                "ORDER BY id")).all()
    assert [tuple(e) for e in events] == [(edta, "collected", None, "op1", "here"),
                                          (fluoride, "rejected", "clotted", "op1", "here"),
                                          (fluoride, "collected", None, "op1", "here")]
