"""Review decisions against a real counter store (no server): each flagged op
is explained, decided by a supervisor only, and every decision is audited."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import text

from opd_fallback.application import review
from opd_fallback.application.review import ReviewService
from opd_fallback.application.services import CounterService, PaymentInput
from opd_fallback.domain.errors import DomainError
from opd_fallback.store import outbox
from opd_fallback.store.engine import Store, open_store
from opd_fallback.store.operators import add_operator
from opd_fallback.store.tables import Op

PATIENT = {"name": "Ram Kumar", "sex": "M", "age_years": 40, "mobile": "9876543210", "district": "Lucknow"}


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    st = open_store(tmp_path / "counter.db")
    add_operator(st, "clerk1", "Clerk One", "1111")
    add_operator(st, "sup1", "Sup One", "222222", role="supervisor")
    return st


@pytest.fixture()
def svc(store: Store) -> CounterService:
    return CounterService(store, "C07")


def flag(store: Store, op_id: str, state: str, status: str, error: dict[str, Any]) -> None:
    """What the sync engine writes when central answers conflict/rejected."""
    with store.write() as s:
        op = outbox.get(s, op_id)
        assert op is not None
        op.state, op.last_status, op.last_error = state, status, orjson.dumps(error).decode()
        s.add(op)


def get(store: Store, op_id: str) -> Op:
    with store.read() as s:
        op = outbox.get(s, op_id)
        assert op is not None
        return op


def all_ops(store: Store) -> list[Op]:
    with store.read() as s:
        return list(outbox.list_ops(s, limit=1000))


CANDIDATE = {"uhid": "KGMU000000001", "name": "Ram Kumaar", "sex": "M", "age_years": 41,
             "guardian_name": None, "mobile": "9876543210", "district": "Lucknow"}


def registered(svc: CounterService) -> Any:
    return svc.register_new("clerk1", PATIENT, department="MED", payment=PaymentInput(mode="cash", amount_paise=1000))


def test_nothing_flagged_summary_is_zero(store: Store, svc: CounterService) -> None:
    registered(svc)
    assert review.summary(store) == (0, None)
    assert ReviewService(store).items() == []


def test_duplicate_is_explained_compared_and_linked(store: Store, svc: CounterService) -> None:
    reg = registered(svc)
    flag(store, reg.patient.op_id, "conflict", "conflict",
         {"code": "possible_duplicate", "message": "1 existing patient(s)", "candidates": [CANDIDATE]})
    count, oldest = review.summary(store)
    assert count == 1 and oldest == get(store, reg.patient.op_id).recorded_at
    rs = ReviewService(store)
    [item] = rs.items()
    assert item.category == "possible_duplicate" and "link" in item.actions
    assert "2 later record(s) wait" in item.explanation
    assert set(item.waiting) == {reg.visit.op_id, reg.payment.op_id}
    rows = {r.field: r for r in item.comparisons[0].rows}
    assert rows["name"].differs and rows["age_years"].differs
    assert not rows["mobile"].differs and not rows["district"].differs and not rows["sex"].differs

    sup = rs.authenticate("sup1", "222222")
    with pytest.raises(DomainError) as e:
        rs.link(sup, reg.patient.op_id, "KGMU999999999")
    assert e.value.problems[0].field == "uhid"
    d = rs.link(sup, reg.patient.op_id, "kgmu000000001", note="same father, same mobile")
    assert d.affected == item.waiting
    op = get(store, reg.patient.op_id)
    assert op.state == "pending" and orjson.loads(op.resolution or "null") == {"action": "link",
                                                                               "uhid": "KGMU000000001"}
    assert op.payload == get(store, reg.patient.op_id).payload  # the same op, unchanged payload
    assert review.summary(store) == (0, None)
    [entry] = rs.history()
    detail = orjson.loads(entry.detail)
    assert entry.actor == "sup1" and entry.action == "review.link" and entry.subject == op.op_id
    assert detail["uhid"] == "KGMU000000001" and detail["note"] == "same father, same mobile"
    assert set(detail["differences"]) == {"name", "age_years"}
    # a decided op cannot be decided twice
    with pytest.raises(DomainError) as e:
        rs.create_new(sup, reg.patient.op_id)
    assert e.value.code == "not_flagged"


def test_create_new_resubmits_with_resolution(store: Store, svc: CounterService) -> None:
    reg = registered(svc)
    flag(store, reg.patient.op_id, "conflict", "conflict",
         {"code": "possible_duplicate", "message": "x", "candidates": [CANDIDATE]})
    rs = ReviewService(store)
    # a prefix, as a supervisor types it: the shortest one (12 characters at least) that no other
    # op shares (ops of one millisecond share a long prefix: their ids are made in sequence)
    others = [o.op_id for o in all_ops(store) if o.op_id != reg.patient.op_id]
    n = next(n for n in range(12, 27) if not any(o.startswith(reg.patient.op_id[:n]) for o in others))
    rs.create_new(rs.authenticate("sup1", "222222"), reg.patient.op_id[:n])
    assert orjson.loads(get(store, reg.patient.op_id).resolution or "null") == {"action": "create_new"}


def test_operator_without_supervisor_role_is_refused_and_refusal_audited(store: Store) -> None:
    rs = ReviewService(store)
    with pytest.raises(DomainError) as e:
        rs.authenticate("clerk1", "1111")
    assert e.value.code == "not_supervisor" and "not a supervisor" in str(e.value)
    with pytest.raises(DomainError):
        rs.authenticate("sup1", "9999")
    with store.read() as s:
        rows = s.execute(text("SELECT actor, action, detail FROM audit_log WHERE action='review.refused'")).all()
    assert [(r[0], orjson.loads(r[2])["why"]) for r in rows] == [("clerk1", "not a supervisor"),
                                                                  ("sup1", "wrong PIN")]
    assert all("1111" not in r[2] and "9999" not in r[2] for r in rows)


def test_forged_supervisor_is_refused_inside_the_transaction(store: Store, svc: CounterService) -> None:
    reg = registered(svc)
    flag(store, reg.patient.op_id, "conflict", "conflict",
         {"code": "possible_duplicate", "message": "x", "candidates": [CANDIDATE]})
    with pytest.raises(DomainError) as e:
        ReviewService(store).create_new(review.Supervisor("clerk1", "Clerk"), reg.patient.op_id)
    assert e.value.code == "not_supervisor"
    assert get(store, reg.patient.op_id).state == "conflict"


def _stale(store: Store, svc: CounterService) -> Op:
    with svc.transaction("clerk1") as tx:
        saved = tx.update_patient("KGMU000000005", {"mobile": "9000000001", "district": "Kanpur",
                                                    "name": "Sita Devi"}, base_version=2)
    current = {"uhid": "KGMU000000005", "name": "Sita Devi", "sex": "F", "mobile": "9111111111",
               "district": "Agra", "version": 4}
    flag(store, saved.op_id, "conflict", "conflict",
         {"code": "stale_update", "message": "version 4", "current": current})
    return get(store, saved.op_id)


def test_stale_update_merge_per_field_queues_a_new_op(store: Store, svc: CounterService) -> None:
    old = _stale(store, svc)
    rs = ReviewService(store)
    [item] = rs.items()
    rows = {r.field: r for r in item.comparisons[0].rows}
    assert rows["mobile"].differs and rows["district"].differs and not rows["name"].differs
    sup = rs.authenticate("sup1", "222222")
    with pytest.raises(DomainError) as e:
        rs.merge(sup, old.op_id, {"mobile": "counter"})
    assert "district" in str(e.value)
    with pytest.raises(DomainError) as e:
        rs.merge(sup, old.op_id, {"mobile": "counter", "district": "central", "sex": "counter"})
    assert e.value.code == "unknown_field" and "sex" in str(e.value)
    assert get(store, old.op_id).state == "conflict"  # a refused merge changes nothing
    d = rs.merge(sup, old.op_id, {"mobile": "counter", "district": "central"})
    assert d.new_op_id
    old_after, new = get(store, old.op_id), get(store, d.new_op_id)
    assert old_after.state == "cancelled" and new.op_id in (old_after.wait_reason or "")
    assert new.state == "pending" and new.supersedes == old.op_id and new.seq > old.seq
    body = orjson.loads(new.payload)
    assert body["changes"] == {"mobile": "9000000001", "name": "Sita Devi"} and body["base_version"] == 4
    assert orjson.loads(new.resolution or "null") == {"action": "apply", "base_version": 4}
    detail = orjson.loads(rs.history()[0].detail)
    assert detail["picks"] == {"mobile": "counter", "district": "central", "name": "counter"}
    assert detail["new_op_id"] == new.op_id and detail["central"]["district"] == "Agra"


def test_merge_keeping_all_counter_values_resubmits_the_same_op(store: Store, svc: CounterService) -> None:
    old = _stale(store, svc)
    rs = ReviewService(store)
    d = rs.merge(rs.authenticate("sup1", "222222"), old.op_id, {"mobile": "counter", "district": "counter"})
    assert d.new_op_id is None
    op = get(store, old.op_id)
    assert op.state == "pending" and op.payload == old.payload
    assert orjson.loads(op.resolution or "null") == {"action": "apply", "base_version": 4}


def test_merge_keeping_all_central_values_cancels(store: Store, svc: CounterService) -> None:
    old = _stale(store, svc)
    rs = ReviewService(store)
    rs.merge(rs.authenticate("sup1", "222222"), old.op_id,
             {"mobile": "central", "district": "central", "name": "central"})
    op = get(store, old.op_id)
    assert op.state == "cancelled" and "central" in (op.wait_reason or "")


def _rejected_registration(store: Store, svc: CounterService) -> Any:
    reg = registered(svc)
    flag(store, reg.patient.op_id, "rejected", "rejected",
         {"code": "validation_failed", "message": "Mobile: not a valid number",
          "fields": [{"field": "mobile", "code": "invalid", "message": "not a valid number"}]})
    return reg


def test_rejected_registration_corrected_repoints_dependents(store: Store, svc: CounterService) -> None:
    reg = _rejected_registration(store, svc)
    rs = ReviewService(store)
    [item] = rs.items()
    assert item.category == "rejected" and item.field_errors[0]["label"] == "Mobile"
    sup = rs.authenticate("sup1", "222222")
    with pytest.raises(DomainError) as e:
        rs.correct(sup, reg.patient.op_id, {"mobile": "12345"})
    assert e.value.problems[0].field == "mobile"
    with pytest.raises(DomainError) as e:
        rs.correct(sup, reg.patient.op_id, {"local_ref": "C07-X"})
    assert e.value.code == "not_correctable"
    d = rs.correct(sup, reg.patient.op_id, {"mobile": "9123456780",
                                            "age_years": review.parse_value("patient.register", "age_years", "42")})
    assert d.new_op_id and set(d.affected) == {reg.visit.op_id, reg.payment.op_id}
    new, old = get(store, d.new_op_id), get(store, reg.patient.op_id)
    assert old.state == "cancelled" and new.state == "pending" and new.supersedes == old.op_id
    body = orjson.loads(new.payload)
    assert body["local_ref"] == reg.patient.local_ref and body["mobile"] == "9123456780"
    assert body["age_years"] == 42
    for dep in (reg.visit.op_id, reg.payment.op_id):
        deps = orjson.loads(get(store, dep).depends_on)
        assert new.op_id in deps and old.op_id not in deps
    with store.read() as s:
        p = s.exec(text("SELECT mobile, age_years FROM patient")).one()  # type: ignore[call-overload]
    assert tuple(p) == ("9123456780", 42)
    detail = orjson.loads(rs.history()[0].detail)
    assert detail["before"] == {"mobile": "9876543210", "age_years": 40}
    assert detail["after"] == {"mobile": "9123456780", "age_years": 42}


def test_payment_money_fields_are_not_correctable(store: Store, svc: CounterService) -> None:
    reg = registered(svc)
    flag(store, reg.payment.op_id, "rejected", "rejected", {"code": "validation_failed", "message": "x"})
    rs = ReviewService(store)
    with pytest.raises(DomainError) as e:
        rs.correct(rs.authenticate("sup1", "222222"), reg.payment.op_id, {"amount_paise": 5})
    assert e.value.code == "not_correctable" and e.value.problems[0].field == "amount_paise"


def test_cancel_needs_reason_dependents_and_money_note(store: Store, svc: CounterService) -> None:
    reg = _rejected_registration(store, svc)
    rs = ReviewService(store)
    sup = rs.authenticate("sup1", "222222")
    with pytest.raises(DomainError) as e:
        rs.cancel(sup, reg.patient.op_id, "  ")
    assert e.value.problems[0].field == "reason"
    with pytest.raises(DomainError) as e:
        rs.cancel(sup, reg.patient.op_id, "registered twice by mistake")
    assert e.value.code == "has_dependents"
    with pytest.raises(DomainError) as e:
        rs.cancel(sup, reg.patient.op_id, "registered twice by mistake", cascade=True)
    assert e.value.problems[0].field == "money"
    assert {o.state for o in all_ops(store)} == {"rejected", "pending"}  # nothing half-done
    d = rs.cancel(sup, reg.patient.op_id, "registered twice by mistake", cascade=True,
                  money="Rs 10 refunded in cash to the patient")
    assert set(d.affected) == {reg.visit.op_id, reg.payment.op_id}
    ops = all_ops(store)
    assert len(ops) == 3 and {o.state for o in ops} == {"cancelled"}
    pay = get(store, reg.payment.op_id)
    assert "refunded" in (pay.wait_reason or "") and "registered twice" in (pay.wait_reason or "")
    entries = rs.history()
    assert [e.action for e in entries] == ["review.cancel"] * 3
    money = [orjson.loads(e.detail)["money"] for e in entries if e.subject == reg.payment.op_id]
    assert money == ["Rs 10 refunded in cash to the patient"]
    with store.read() as s:  # the patient record stays: nothing is deleted
        assert s.exec(text("SELECT count(*) FROM patient")).one()[0] == 1  # type: ignore[call-overload]


def test_retry_after_waiting_too_long(store: Store, svc: CounterService) -> None:
    with svc.transaction("clerk1") as tx:
        v = tx.open_visit("C09-261126-000001", "MED")
    flag(store, v.op_id, "conflict", "deferred",
         {"code": "reference_pending", "message": "patient: C09-261126-000001 is not known here yet"})
    rs = ReviewService(store)
    [item] = rs.items()
    assert item.category == "waited_too_long" and item.actions == ("retry", "cancel")
    sup = rs.authenticate("sup1", "222222")
    with pytest.raises(DomainError) as e:
        rs.link(sup, v.op_id, "KGMU1")
    assert e.value.code == "wrong_action"
    rs.retry(sup, v.op_id)
    assert get(store, v.op_id).state == "pending"
    assert rs.history()[0].action == "review.retry"


def test_show_by_local_ref_and_unknown(store: Store, svc: CounterService) -> None:
    reg = _rejected_registration(store, svc)
    rs = ReviewService(store)
    assert rs.item(reg.patient.local_ref).op_id == reg.patient.op_id
    with pytest.raises(DomainError) as e:
        rs.item("NOPE")
    assert e.value.code == "not_found"


def test_age_words() -> None:
    assert review.age_words("2026-11-26T10:00:00+05:30", "2026-11-26T13:05:00+05:30") == "3 h 5 min"
    assert review.age_words("2026-11-24T10:00:00+05:30", "2026-11-26T13:05:00+05:30") == "2 d 3 h"
    assert review.age_words(None) == ""


def test_patient_record_keeps_central_values_after_merge(store: Store, svc: CounterService) -> None:
    reg = registered(svc)
    with store.write() as s:  # the counter's own patient, since synced
        s.execute(text("UPDATE op SET state='synced'"))
    with svc.transaction("clerk1") as tx:
        saved = tx.update_patient(reg.patient.local_ref, {"district": "Kanpur"}, base_version=1)
    flag(store, saved.op_id, "conflict", "conflict", {"code": "stale_update", "message": "v3",
         "current": {"uhid": "KGMU1", "district": "Agra", "version": 3}})
    rs = ReviewService(store)
    rs.merge(rs.authenticate("sup1", "222222"), saved.op_id, {"district": "central"})
    with store.read() as s:
        assert s.exec(text("SELECT district FROM patient")).one()[0] == "Agra"  # type: ignore[call-overload]


# --------------------------------------------------------------------------- CLI
def _cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    import typer
    from typer.testing import CliRunner

    from opd_fallback.cli.review import review_app
    from opd_fallback.config import load_settings, write_config

    monkeypatch.setenv("OPD_DATA_DIR", str(tmp_path))
    write_config(load_settings(), {"device_id": "C07", "hospital": "KGMU"})
    root = typer.Typer()
    root.add_typer(review_app, name="review")
    runner = CliRunner()
    return runner, lambda *args, stdin=None: runner.invoke(root, ["review", *args], input=stdin)


def test_cli_list_show_resolve_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: Store,
                                       svc: CounterService) -> None:
    _runner, run = _cli(tmp_path, monkeypatch)
    assert "Nothing waits" in run("list").output
    reg = registered(svc)
    flag(store, reg.patient.op_id, "conflict", "conflict",
         {"code": "possible_duplicate", "message": "1", "candidates": [CANDIDATE]})
    out = run("list", "--json")
    assert out.exit_code == 0, out.output
    body = orjson.loads(out.output)
    assert body["count"] == 1 and body["items"][0]["op_id"] == reg.patient.op_id
    shown = run("show", reg.patient.local_ref)
    assert shown.exit_code == 0 and "* Name" in shown.output and "  Mobile" in shown.output
    refused = run("resolve", reg.patient.op_id, "--link", "KGMU000000001", "--supervisor", "clerk1",
                  "--pin-stdin", stdin="1111\n")
    assert refused.exit_code == 1 and "not a supervisor" in refused.output
    both = run("resolve", reg.patient.op_id, "--create-new", "--retry", "--supervisor", "sup1")
    assert both.exit_code == 1 and "exactly one" in both.output
    ok = run("resolve", reg.patient.op_id, "--link", "KGMU000000001", "--supervisor", "sup1",
             "--pin-stdin", "--note", "checked the slip", stdin="222222\n")
    assert ok.exit_code == 0, ok.output
    assert get(store, reg.patient.op_id).state == "pending"
    hist = run("history")
    assert "review.link" in hist.output and "sup1" in hist.output and "checked the slip" in hist.output
    assert "review.refused" in hist.output


def test_cli_correct_and_cancel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: Store,
                                svc: CounterService) -> None:
    _runner, run = _cli(tmp_path, monkeypatch)
    reg = _rejected_registration(store, svc)
    bad = run("resolve", reg.patient.op_id, "--correct", "age_years=abc", "--supervisor", "sup1",
              "--pin-stdin", stdin="222222\n")
    assert bad.exit_code == 1 and "whole number" in bad.output
    ok = run("resolve", reg.patient.op_id, "--correct", "mobile=9123456780", "--correct", "age_years=41",
             "--supervisor", "sup1", "--pin-stdin", stdin="222222\n")
    assert ok.exit_code == 0, ok.output
    new_id = ok.output.split("new op: ")[1].strip()
    assert orjson.loads(get(store, new_id).payload)["age_years"] == 41
    flag(store, reg.payment.op_id, "rejected", "rejected", {"code": "unknown_reference", "message": "x"})
    nomoney = run("resolve", reg.payment.op_id, "--cancel", "--reason", "duplicate receipt",
                  "--supervisor", "sup1", "--pin-stdin", stdin="222222\n")
    assert nomoney.exit_code == 1 and "money" in nomoney.output
    ok = run("resolve", reg.payment.op_id, "--cancel", "--reason", "duplicate receipt", "--money",
             "refunded in cash", "--supervisor", "sup1", "--pin-stdin", stdin="222222\n")
    assert ok.exit_code == 0, ok.output
    assert get(store, reg.payment.op_id).state == "cancelled"
