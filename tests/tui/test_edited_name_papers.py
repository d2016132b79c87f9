"""A patient's name edited since her papers were printed (here, another counter's edit pulled from the
LAN) is on every paper printed again and on the void screen: read from her row now, never from the copy
her visit and payment rows took when they were made (decided in store/tables.py)."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest
from sqlmodel import select

from opd_fallback.application.services import CounterService, PaymentInput
from opd_fallback.store import outbox
from opd_fallback.store.engine import Store, open_store
from opd_fallback.store.tables import Patient, Payment
from opd_fallback.tui.screens.reprint import ReprintScreen
from opd_fallback.tui.screens.void import VoidScreen
from tests.helpers.hub import run_hub
from tests.helpers.landay import share

from .conftest import OPERATOR, SUPERVISOR, SUPERVISOR_PIN, login, searched, settle, type_text

NEW_NAME = "Ram Kumar Singh"


def _edited_at_another_counter(tmp_path: Path, store: Store, ref: str) -> None:
    """C02 pulls the patient, corrects her name at its counter and shares; this counter (C07) pulls it."""
    other = open_store(tmp_path / "C02" / "counter.db")
    try:
        with run_hub(tmp_path / "hub", devices=("C07", "C02")) as hub:
            for st, dev in ((store, "C07"), (other, "C02")):
                assert share(hub, st, dev).outcome == "ok"
            CounterService(other, "C02").update_patient("op-2", ref, {"name": NEW_NAME})
            assert share(hub, other, "C02").outcome == "ok"
            assert share(hub, store, "C07").pulled_updates == 1
    finally:
        other.close()


def _printed(prints: Path, kind: str) -> list[Path]:
    return sorted(prints.glob(f"*-{kind}-*.txt"), key=lambda p: p.stat().st_mtime_ns)


async def _reprint(pilot, kind: str) -> None:
    await pilot.press("f6")
    await settle(pilot)
    assert isinstance(pilot.app.screen, ReprintScreen)
    await type_text(pilot, kind)
    await searched(pilot)
    await pilot.press("enter")  # to the list
    await pilot.press("enter")  # reprint the selected one
    await settle(pilot)
    await pilot.press("escape")
    await settle(pilot)


RULE, END = "-" * 42, "\n" + "=" * 42 + "\n\n"  # the file printer's rule and end of a paper


def _as_reprinted(first: str, reprint: str, operator: str) -> str:
    """``first`` as a reprint of it by ``operator`` reads, its time taken from ``reprint``: the
    DUPLICATE lines at the head and the foot, every other line as it was."""
    stamp = re.search(rf"Reprinted (\S+ \S+) by {operator}", reprint)
    assert stamp is not None, reprint
    assert first.endswith(END), first
    return (f"            *** DUPLICATE ***\n    Reprinted {stamp[1]} by {operator}\n{RULE}\n"
            f"{first[:-len(END)]}{RULE}\n    DUPLICATE {stamp[1]} by {operator}\n{END}")


async def test_edited_name_on_reprints_and_void_screen(make_app, store: Store, tmp_path: Path) -> None:
    prints = tmp_path / "prints"
    app = make_app(print_dir=prints)
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot)
        # saved by the service the registration form calls, its papers printed as the form prints them
        reg = CounterService(store, "C07").register_new(
            OPERATOR, {"name": "Ram Kumar", "sex": "M", "age_years": 42}, department="MED",
            payment=PaymentInput(mode="cash", amount_paise=1000))
        app.print_docs(app.work.printouts.for_visit(reg.visit.local_ref))
        await settle(pilot)
        (slip,), (receipt,) = _printed(prints, "slip"), _printed(prints, "receipt")
        first = {"slip": slip.read_text(encoding="utf-8"), "receipt": receipt.read_text(encoding="utf-8")}
        with store.read() as s:
            (patient,) = s.exec(select(Patient)).all()
            (payment,) = s.exec(select(Payment)).all()
        assert "Ram Kumar" in first["slip"] and NEW_NAME not in first["slip"]

        _edited_at_another_counter(tmp_path, store, patient.local_ref)

        for kind in ("slip", "receipt"):
            await _reprint(pilot, kind)
            again = _printed(prints, kind)[-1].read_text(encoding="utf-8")
            # the whole paper: as first printed, but for her new name and the reprint's marks
            assert again == _as_reprinted(first[kind].replace("Ram Kumar\n", NEW_NAME + "\n"), again, OPERATOR), kind

        await pilot.press("f5")
        await settle(pilot)
        assert isinstance(app.screen, VoidScreen)
        await type_text(pilot, payment.receipt_no, then="enter")
        await settle(pilot)
        box = str(app.screen.query_one("#payment-info").render())
        assert box.startswith(f"  {NEW_NAME} · ₹10.00 · cash · "), box


def _corrected_in_review(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: Store, op_id: str) -> None:
    """Central rejected the registration; a supervisor corrects the name by the CLI
    (``opd-fallback review resolve OP --correct name=...``), on this counter's store."""
    import typer
    from typer.testing import CliRunner

    from opd_fallback.cli.review import review_app
    from opd_fallback.config import load_settings, write_config

    with store.write() as s:
        op = outbox.get(s, op_id)
        assert op is not None
        op.state, op.last_status = "rejected", "rejected"
        op.last_error = orjson.dumps({"code": "validation_failed", "message": "Name: spell it as on the card",
                                      "fields": [{"field": "name", "code": "invalid",
                                                  "message": "spell it as on the card"}]}).decode()
        s.add(op)
    monkeypatch.setenv("OPD_DATA_DIR", str(tmp_path))
    write_config(load_settings(), {"device_id": "C07", "hospital": "KGMU"})
    root = typer.Typer()
    root.add_typer(review_app, name="review")
    out = CliRunner().invoke(root, ["review", "resolve", op_id, "--correct", f"name={NEW_NAME}", "--supervisor",
                                    SUPERVISOR, "--pin-stdin"], input=SUPERVISOR_PIN + "\n")
    assert out.exit_code == 0, out.output


async def test_name_corrected_in_review_on_receipt_and_void_screen(
        make_app, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prints = tmp_path / "prints"
    app = make_app(print_dir=prints)
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot)
        reg = CounterService(store, "C07").register_new(
            OPERATOR, {"name": "Ram Kumar", "sex": "M", "age_years": 42}, department="MED",
            payment=PaymentInput(mode="cash", amount_paise=1000))
        app.print_docs(app.work.printouts.for_visit(reg.visit.local_ref))
        await settle(pilot)
        (receipt,) = _printed(prints, "receipt")
        first = receipt.read_text(encoding="utf-8")
        assert reg.payment is not None

        _corrected_in_review(tmp_path, monkeypatch, store, reg.patient.op_id)

        await _reprint(pilot, "receipt")
        again = _printed(prints, "receipt")[-1].read_text(encoding="utf-8")
        assert again == _as_reprinted(first.replace("Ram Kumar\n", NEW_NAME + "\n"), again, OPERATOR)

        await pilot.press("f5")
        await settle(pilot)
        assert isinstance(app.screen, VoidScreen)
        await type_text(pilot, reg.payment.local_ref, then="enter")  # by its offline number this time
        await settle(pilot)
        box = str(app.screen.query_one("#payment-info").render())
        assert box.startswith(f"  {NEW_NAME} · ₹10.00 · cash · "), box
