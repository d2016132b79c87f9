"""The review screen with real key presses over a real store: the PIN gate
refuses an operator, a supervisor links a duplicate, merges a stale update and
cancels a rejected payment; each decision lands in the outbox and the audit log."""

from __future__ import annotations

import io
from typing import Any

import orjson
from rich.console import Console
from textual.app import App
from textual.widgets import DataTable, Input, Static

from opd_fallback.application.review import ReviewService
from opd_fallback.application.services import CounterService, PaymentInput
from opd_fallback.store import outbox
from opd_fallback.store.engine import Store
from opd_fallback.tui.screens.review import ReviewScreen

from .conftest import OPERATOR, OPERATOR_PIN, SUPERVISOR, SUPERVISOR_PIN, settle, type_text

CANDIDATE = {"uhid": "KGMU000000001", "name": "Ram Kumaar", "sex": "M", "age_years": 41,
             "guardian_name": None, "mobile": "9876543210", "district": "Lucknow"}


class Host(App[None]):
    def __init__(self, store: Store, supervisor_id: str | None) -> None:
        super().__init__()
        self.store, self.sup = store, supervisor_id

    def on_mount(self) -> None:
        self.push_screen(ReviewScreen(ReviewService(self.store), self.sup))


def flag(store: Store, op_id: str, state: str, status: str, error: dict[str, Any]) -> None:
    with store.write() as s:
        op = outbox.get(s, op_id)
        assert op is not None
        op.state, op.last_status, op.last_error = state, status, orjson.dumps(error).decode()
        s.add(op)


def shown(widget: Static) -> str:
    """What a Static shows, as plain text (Rich renderables included)."""
    console = Console(width=120, file=io.StringIO(), record=True)
    console.print(widget.content)
    return console.export_text()


def op_of(store: Store, op_id: str) -> Any:
    with store.read() as s:
        return outbox.get(s, op_id)


def seed(store: Store) -> tuple[Any, str]:
    svc = CounterService(store, "C07")
    reg = svc.register_new(OPERATOR, {"name": "Ram Kumar", "sex": "M", "age_years": 40, "mobile": "9876543210",
                                      "district": "Lucknow"}, department="MED",
                           payment=PaymentInput(mode="cash"))
    flag(store, reg.patient.op_id, "conflict", "conflict",
         {"code": "possible_duplicate", "message": "1 existing", "candidates": [CANDIDATE]})
    upd = svc.update_patient(OPERATOR, "KGMU000000007", {"mobile": "9000000001", "district": "Kanpur"},
                             base_version=1)
    flag(store, upd.op_id, "conflict", "conflict", {"code": "stale_update", "message": "v3", "current": {
        "uhid": "KGMU000000007", "name": "Sita", "mobile": "9111111111", "district": "Agra", "version": 3}})
    return reg, upd.op_id


async def test_operator_is_refused_at_the_gate(store: Store) -> None:
    reg, _ = seed(store)
    app = Host(store, OPERATOR)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ReviewScreen)
        assert not screen.query_one("#review-main").display
        await type_text(pilot, OPERATOR_PIN)
        await pilot.press("enter")
        await settle(pilot)
        assert "not a supervisor" in shown(screen.query_one("#gate-msg", Static))
        assert screen.supervisor is None and not screen.query_one("#review-main").display
        await pilot.press("l")  # keys of the list do nothing behind the gate
        await settle(pilot)
    assert op_of(store, reg.patient.op_id).state == "conflict"
    assert [e.action for e in ReviewService(store).history()] == ["review.refused"]


async def test_supervisor_links_and_merges_with_keys(store: Store) -> None:
    reg, upd_id = seed(store)
    app = Host(store, None)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ReviewScreen)
        await type_text(pilot, SUPERVISOR)
        await pilot.press("enter")
        await type_text(pilot, SUPERVISOR_PIN)
        await pilot.press("enter")
        await settle(pilot)
        assert screen.supervisor is not None and screen.query_one("#review-main").display
        assert screen.query_one("#review-list", DataTable).row_count == 2
        detail = shown(screen.query_one("#review-detail", Static))
        assert "Candidate KGMU000000001" in detail and "2 difference(s)" in detail
        await pilot.press("m")  # a duplicate takes no merge: explained, nothing changes
        await settle(pilot)
        assert "possible: link" in shown(screen.query_one("#review-msg", Static))
        await pilot.press("l")
        await settle(pilot)
        assert screen.query_one("#prompt-input", Input).value == "KGMU000000001"
        await pilot.press("enter")
        await settle(pilot)
        op = op_of(store, reg.patient.op_id)
        assert op.state == "pending"
        assert orjson.loads(op.resolution) == {"action": "link", "uhid": "KGMU000000001"}
        assert screen.query_one("#review-list", DataTable).row_count == 1
        assert "stale update" in str(screen.query_one("#review-list", DataTable).get_row_at(0))
        await pilot.press("m")
        await settle(pilot)
        assert screen.query_one("#prompt-input", Input).value == "mobile=central district=central"
        inp = screen.query_one("#prompt-input", Input)
        inp.value = ""
        await type_text(pilot, "mobile=counter district=central")
        await pilot.press("enter")
        await settle(pilot)
        assert screen.query_one("#review-list", DataTable).row_count == 0
        assert "Nothing waits" in shown(screen.query_one("#review-detail", Static))
    old = op_of(store, upd_id)
    assert old.state == "cancelled"
    history = ReviewService(store).history()
    assert [e.action for e in history] == ["review.merge", "review.link"]
    assert all(e.actor == SUPERVISOR for e in history)


async def test_cancel_payment_asks_what_happened_to_the_money(store: Store) -> None:
    reg, _ = seed(store)
    flag(store, reg.payment.op_id, "rejected", "rejected",
         {"code": "validation_failed", "message": "Fee items: bad",
          "fields": [{"field": "items", "code": "invalid", "message": "bad"}]})
    sup = ReviewService(store).authenticate(SUPERVISOR, SUPERVISOR_PIN)
    app = App[None]()
    async with app.run_test(size=(140, 40)) as pilot:
        screen = ReviewScreen(CounterService(store, "C07"), supervisor=sup)
        await app.push_screen(screen)
        await settle(pilot)
        table = screen.query_one("#review-list", DataTable)
        assert table.row_count == 3
        await pilot.press("down")  # oldest first: registration, payment, update
        await settle(pilot)
        assert "Payment" in shown(screen.query_one("#review-detail", Static))
        await pilot.press("x")
        await type_text(pilot, "receipt written twice")
        await pilot.press("enter")
        assert "money" in shown(screen.query_one("#prompt-label", Static))
        await type_text(pilot, "refunded in cash")
        await pilot.press("enter")
        await settle(pilot)
        assert table.row_count == 2
    op = op_of(store, reg.payment.op_id)
    assert op.state == "cancelled" and "refunded in cash" in op.wait_reason


async def test_inside_the_counter_app_with_its_backend(make_app, store: Store) -> None:
    """How the counter opens it: F11, then the supervisor's PIN again."""
    from .conftest import login

    reg, _ = seed(store)
    app = make_app()
    async with app.run_test(size=(140, 40)) as pilot:
        await login(pilot, SUPERVISOR, SUPERVISOR_PIN)
        home = app.screen
        await pilot.press("f11")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ReviewScreen) and screen.supervisor is None  # the PIN again, always
        assert screen.query_one("#gate-id", Input).value == SUPERVISOR
        assert app.focused is screen.query_one("#gate-pin", Input)
        await type_text(pilot, SUPERVISOR_PIN)
        await pilot.press("enter")
        await settle(pilot)
        assert screen.query_one("#review-list", DataTable).row_count == 2
        await pilot.press("n")
        await pilot.press("enter")
        await settle(pilot)
        assert op_of(store, reg.patient.op_id).state == "pending"
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is home


async def test_f11_from_an_operator_session_still_asks_for_a_supervisor(make_app, store: Store) -> None:
    from .conftest import login

    reg, _ = seed(store)
    app = make_app()
    async with app.run_test(size=(140, 40)) as pilot:
        await login(pilot)  # an operator
        await pilot.press("f11")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ReviewScreen) and not screen.query_one("#review-main").display
        assert app.focused is screen.query_one("#gate-id", Input)
        await type_text(pilot, OPERATOR)
        await pilot.press("enter")
        await type_text(pilot, OPERATOR_PIN)
        await pilot.press("enter")
        await settle(pilot)
        assert "not a supervisor" in shown(screen.query_one("#gate-msg", Static))
        assert not screen.query_one("#review-main").display
    assert op_of(store, reg.patient.op_id).state == "conflict"
