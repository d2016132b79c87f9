"""Fewer keys and none lost: the common registration in <= 35 keys and a
revisit in <= 18 (typed name and mobile not counted), sent as bursts straight
after F2/F3 and right before F10, as a fast clerk types; Enter in Department
takes the highlighted department; the lab picker's marker and ctrl+D."""

from __future__ import annotations

import json

from sqlmodel import select

from opd_fallback.store import patient_index
from opd_fallback.store.engine import Store
from opd_fallback.store.tables import Patient, Payment, Visit
from opd_fallback.tui.screens.lab import LabScreen

from .clerk import NEW_PATIENT, NEW_PATIENT_FREE, REVISIT, REVISIT_FREE, WAIT, count_keys, play
from .conftest import login


async def test_new_adult_patient_in_at_most_35_keys_typed_as_one_burst(make_app, store: Store) -> None:
    assert count_keys(NEW_PATIENT, NEW_PATIENT_FREE) <= 35
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot)
        await play(pilot, NEW_PATIENT)  # F2 and everything after it in one burst, F10 included
        assert "Saved C07-" in str(app.screen.query_one("#form-msg").render())
        assert "token 1" in str(app.screen.query_one("#form-msg").render())
    with store.read() as s:
        (patient,) = s.exec(select(Patient)).all()
        (visit,) = s.exec(select(Visit)).all()
        (payment,) = s.exec(select(Payment)).all()
    assert (patient.name, patient.sex, patient.age_years, patient.mobile) == ("Ram Kumar", "M", 42, "9876543210")
    assert (patient.guardian_relation, patient.guardian_name, patient.category) == ("S/O", "Shyam Lal", "general")
    assert visit.department == "MED"
    assert (payment.mode, payment.amount_paise) == ("cash", 1000)


async def test_revisit_by_mobile_in_at_most_18_keys(make_app, store: Store) -> None:
    assert count_keys(REVISIT, REVISIT_FREE) <= 18
    with store.write() as s:
        patient_index.upsert_many(s, [{"uhid": "KGMU-0042", "name": "Mohd Ali", "sex": "M", "age_years": 61,
                                       "guardian_name": "Yusuf", "mobile": "9935012345", "district": "Lucknow",
                                       "version": 3, "updated_at": None}])
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot)
        cut = REVISIT.index(WAIT)
        await play(pilot, REVISIT[:cut])
        for _ in range(40):  # the clerk looks at the list until the patient shows (a busy machine is slow)
            await pilot.pause(0.1)
            if app.screen.query_one("#picker").hits:
                break
        await play(pilot, REVISIT[cut + 1:])
        assert "Saved C07-" in str(app.screen.query_one("#form-msg").render())
    with store.read() as s:
        (visit,) = s.exec(select(Visit)).all()
    assert (visit.patient_uhid, visit.department, visit.visit_type) == ("KGMU-0042", "SURG", "revisit")


async def test_f10_right_after_typing_saves_what_was_typed(make_app, store: Store) -> None:
    """"ENT" then F10 in one burst: ENT is saved, not 'Department is required'."""
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot)
        await play(pilot, ["<f2>", "Sita Devi", "<enter>", "f", "<enter>", "30", "<enter>", "<enter>", "<enter>",
                           "<enter>", "ENT", "<f10>"])
        assert "Saved C07-" in str(app.screen.query_one("#form-msg").render())
    with store.read() as s:
        (visit,) = s.exec(select(Visit)).all()
    assert visit.department == "ENT"


async def test_department_enter_takes_the_highlighted_one_and_arrows_move_it(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot)
        await play(pilot, ["<f2>", WAIT])
        screen = app.screen
        screen.query_one("#ff-department").input.focus()
        await play(pilot, ["E", WAIT])
        dept_list = screen.query_one("#dept-list")
        assert dept_list.display and dept_list.option_count > 3  # every match, in a list that scrolls
        await play(pilot, ["<down>", "<enter>"])  # ENDO, ENT, ...: the second
        assert screen.query_one("#ff-department").input.value == "ENT"
        assert app.focused is screen.query_one("#ff-unit").input
        assert not dept_list.display


async def test_the_only_unit_is_filled_in(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot)
        await play(pilot, ["<f2>", WAIT])
        app.screen.query_one("#ff-department").input.focus()
        await play(pilot, ["ENDO", "<enter>"])
        assert app.screen.query_one("#ff-unit").input.value == "ENDO-U1"


async def test_lab_marker_moves_with_arrows_and_ctrl_d_removes_the_last_test(make_app, store: Store) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot)
        await play(pilot, ["<f4>", WAIT])
        screen = app.screen
        assert isinstance(screen, LabScreen)
        screen.query_one("#ff-tests").input.focus()
        await play(pilot, ["sugar", WAIT])
        matches = list(screen.matches)
        assert len(matches) >= 3
        await play(pilot, ["<down>", "<down>", "<enter>"])
        assert [t.code for t in screen.tests] == [matches[2].code]
        assert "→" in str(screen.query_one("#test-matches").render()) or screen.matches == []
        await play(pilot, ["cbc", WAIT, "<enter>"])
        assert [t.code for t in screen.tests] == [matches[2].code, "CBC"]
        await play(pilot, ["<ctrl+d>"])
        assert [t.code for t in screen.tests] == [matches[2].code]
        assert json.dumps(screen.field("fee").text) == json.dumps(
            f"{matches[2].price_paise // 100}.{matches[2].price_paise % 100:02d}")


async def test_district_and_state_default_to_the_hospitals(store: Store, tmp_path) -> None:
    from opd_fallback.tui.app import create_app
    from opd_fallback.tui.backend import StoreBackend

    backend = StoreBackend(store, device_id="C07", hospital="KGMU", district="Lucknow", state="Uttar Pradesh")
    app = create_app(backend, print_dir=tmp_path / "p", spool_dir=tmp_path / "s")
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot)
        await play(pilot, ["<f2>", "Geeta", "<enter>", "f", "<enter>", "30", "<enter>", "<enter>", "<enter>",
                           "<enter>", "MED", "<f10>"])
        assert "Saved C07-" in str(app.screen.query_one("#form-msg").render())
    with store.read() as s:
        (patient,) = s.exec(select(Patient)).all()
    assert (patient.district, patient.state) == ("Lucknow", "Uttar Pradesh")
