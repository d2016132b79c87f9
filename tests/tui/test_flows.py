"""Revisit by mobile, lab order with payment and labels, void needing a
supervisor, queue and cash views: by real key presses."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from sqlmodel import select

from opd_fallback.application.services import CounterService, PaymentInput
from opd_fallback.store import patient_index
from opd_fallback.store.engine import Store
from opd_fallback.store.tables import LabOrder, Op, Payment, PaymentVoid, Visit
from opd_fallback.tui.screens.cash import CashScreen
from opd_fallback.tui.screens.lab import LabScreen
from opd_fallback.tui.screens.queue import QueueScreen
from opd_fallback.tui.screens.revisit import RevisitScreen
from opd_fallback.tui.screens.void import VoidScreen
from opd_fallback.tui.widgets.patient_picker import PatientPicker

from .conftest import SUPERVISOR_PIN, login, searched, settle, type_text


def register(store: Store, name: str = "Geeta Rani", mobile: str | None = "9811122233"):
    svc = CounterService(store, "C07")
    return svc.register_new("op1", {"name": name, "sex": "F", "age_years": 35, "mobile": mobile},
                            department="MED", payment=PaymentInput(mode="cash"))


async def test_revisit_found_by_mobile_in_the_patient_index(make_app, store: Store, tmp_path: Path) -> None:
    with store.write() as s:
        patient_index.upsert_many(s, [{"uhid": "KGMU-0042", "name": "Mohd Ali", "sex": "M", "age_years": 61,
                                       "guardian_name": "Yusuf", "mobile": "9935012345", "district": "Lucknow",
                                       "version": 3, "updated_at": "2026-11-20T10:00:00+05:30"}])
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot)
        await pilot.press("f3")
        await settle(pilot)
        assert isinstance(app.screen, RevisitScreen)
        await type_text(pilot, "99350 12345")
        await searched(pilot)
        picker = app.screen.query_one("#picker")
        assert [h.uhid for h in picker.hits] == ["KGMU-0042"]
        await pilot.press("enter")  # to the results
        await pilot.press("enter")  # pick
        await settle(pilot)
        assert picker.picked is not None and picker.picked.uhid == "KGMU-0042"
        await type_text(pilot, "SURG")  # the cursor is in Department (category stays general)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("f10")
        await settle(pilot)
        assert "Saved C07-" in str(app.screen.query_one("#form-msg").render())
    with store.read() as s:
        (visit,) = s.exec(select(Visit)).all()
        ops = s.exec(select(Op)).all()
    assert (visit.patient_uhid, visit.visit_type, visit.department) == ("KGMU-0042", "revisit", "SURG")
    assert [o.kind for o in ops] == ["visit.open"]  # free revisit: no registration, no payment
    assert json.loads(ops[0].payload)["patient"]["central_id"] == "KGMU-0042"
    (slip,) = (tmp_path / "prints").glob("*-slip-*.txt")
    assert visit.local_ref in slip.read_text(encoding="utf-8")


async def test_lab_order_with_payment_and_labels(make_app, store: Store, tmp_path: Path) -> None:
    reg = register(store)
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot)
        await pilot.press("f4")
        await settle(pilot)
        assert isinstance(app.screen, LabScreen)
        await type_text(pilot, "geeta")
        await searched(pilot)
        await pilot.press("enter", "enter")
        await settle(pilot)
        assert app.screen.visit == reg.visit.local_ref
        # a late answer for a patient picked before this one is ignored
        earlier = copy.copy(app.screen.query_one(PatientPicker).picked)
        app.screen._got_visit(earlier, "C07-261126-009999")
        assert app.screen.visit == reg.visit.local_ref
        await type_text(pilot, "cbc")
        await pilot.press("enter")
        await settle(pilot)
        await type_text(pilot, "fasting sugar")  # by name, fuzzily
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        picked = [t.code for t in app.screen.tests]
        assert picked == ["CBC", "FBS"]
        await pilot.press("f10")
        await settle(pilot)
        assert "Lab order C07-" in str(app.screen.query_one("#form-msg").render())
    cat = CounterService(store, "C07").catalog()
    assert cat is not None
    with store.read() as s:
        (order,) = s.exec(select(LabOrder)).all()
        pay = s.exec(select(Payment).where(Payment.lab_order_local_ref == order.local_ref)).one()
        op = s.exec(select(Op).where(Op.kind == "lab.order")).one()
    assert json.loads(order.tests) == picked
    assert pay.amount_paise == sum(cat.tests[c].price_paise for c in picked) and pay.mode == "cash"
    assert reg.visit.op_id in json.loads(op.depends_on)
    # CBC (EDTA) and FBS (fluoride) are two tubes: two labels, two different sample ids
    tubes = json.loads(op.payload)["samples"]
    assert len(tubes) == 2 and tubes[0]["sample_id"] == order.sample_id != tubes[1]["sample_id"]
    for tube in tubes:
        (label,) = (tmp_path / "prints").glob(f"*-labels-{tube['sample_id']}.txt")
        text = label.read_text(encoding="utf-8")
        assert f"||| {tube['sample_id']} |||" in text and "Geeta Rani" in text and tube["tests"][0] in text


async def test_void_needs_a_supervisor(make_app, store: Store, tmp_path: Path) -> None:
    reg = register(store)
    receipt = reg.payment.extra["receipt_no"]
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot)
        await pilot.press("f5")
        await settle(pilot)
        assert isinstance(app.screen, VoidScreen)
        await type_text(pilot, receipt.lower())
        await pilot.press("enter")
        await settle(pilot)
        assert "Geeta Rani" in str(app.screen.query_one("#payment-info").render())
        await type_text(pilot, "wrong patient")
        await pilot.press("enter")
        await type_text(pilot, "op1")  # an operator, not a supervisor
        await pilot.press("enter")
        await type_text(pilot, "1234")
        await pilot.press("f10")
        await settle(pilot)
        assert "supervisor" in str(app.screen.query_one("#form-msg").render()).lower()
        with store.read() as s:
            assert s.exec(select(PaymentVoid)).all() == []
        sup = app.screen.query_one("#ff-supervisor").input
        sup.action_select_all()
        await pilot.press("backspace")
        await type_text(pilot, "sup1")
        await pilot.press("enter")
        await type_text(pilot, SUPERVISOR_PIN)
        await pilot.press("f10")
        await settle(pilot)
        assert f"Voided {receipt}" in str(app.screen.query_one("#form-msg").render())
        assert all(ff.input.value == "" for ff in app.screen.fields())  # cleared for the next one
        assert str(app.screen.query_one("#payment-info").render()).strip() == ""
        (notice,) = (tmp_path / "prints").glob("*-void-*.txt")
        assert receipt in notice.read_text(encoding="utf-8")
    with store.read() as s:
        (void,) = s.exec(select(PaymentVoid)).all()
        op = s.exec(select(Op).where(Op.kind == "payment.void")).one()
    assert (void.approved_by, void.reason, op.operator_id) == ("sup1", "wrong patient", "op1")


async def test_queue_and_cash_summary(make_app, store: Store, tmp_path: Path) -> None:
    register(store)
    register(store, "Kamla", "9811100000")
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot)
        await pilot.press("f7")
        await settle(pilot)
        assert isinstance(app.screen, QueueScreen)
        table = app.screen.query_one("#queue")
        assert table.row_count == 6
        assert "waiting for the central server" in str(table.get_row_at(0)[-1])
        await pilot.press("f4")  # flagged
        await settle(pilot)
        assert table.row_count == 0
        await pilot.press("f8")
        await settle(pilot)
        assert isinstance(app.screen, CashScreen)
        cash = app.screen.query_one("#cash")
        assert cash.get_row_at(0) == ["CASH", "2", "₹20.00"]
        await pilot.press("f10")
        await settle(pilot)
    (summary,) = (tmp_path / "prints").glob("*-cash_summary-*.txt")
    assert "CASH TO HAND OVER" in summary.read_text(encoding="utf-8")


async def test_revisit_found_by_the_offline_number_on_the_slip(make_app, store: Store) -> None:
    reg = register(store, "Geeta Rani", None)
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot)
        await pilot.press("f3")
        await settle(pilot)
        await type_text(pilot, reg.visit.local_ref.lower())  # the big number on yesterday's slip
        await searched(pilot)
        hits = app.screen.query_one("#picker").hits
        assert [h.local_ref for h in hits] == [reg.patient.local_ref]
