"""Checking one row of a back-entry CSV into a ``Slip`` (pure: no database).

Decision: every problem of a row is collected (not only the first), each
naming its column in the words of the file, so staff fix a row once."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time

from pydantic import ValidationError

from opd_fallback.application.backentry.model import (
    _CONTROL,
    _DEVICE,
    _HHMM,
    _OPERATOR_ID,
    _PAISE,
    COLUMNS,
    FORMULA_CHECKED,
    INT_COLUMNS,
    MAX_CELL,
    NAME_COLUMNS,
    PATIENT_COLUMNS,
    RowProblem,
    slip_key,
)
from opd_fallback.application.people_csv import is_formula_like
from opd_fallback.application.services import PaymentInput
from opd_fallback.domain import payloads as P
from opd_fallback.domain import rules
from opd_fallback.domain.clock import IST, today_ist
from opd_fallback.domain.errors import FieldProblem, explain

# --- checking one row --------------------------------------------------------


@dataclass
class Slip:
    """One row, parsed: what the services need, and its content in normal form."""

    slip_no: str
    visit_date: date
    recorded_at: datetime
    written_by: str  # the file's operator_id: who wrote the paper slip
    uhid: str | None
    patient: dict[str, object]
    department: str
    unit: str | None
    visit_type: str
    fee: PaymentInput | None
    fee_code: str | None
    lab_tests: list[str]
    lab_payment: PaymentInput | None
    lab_items: list[tuple[str, int]] | None  # as written in the lab_items column
    content: dict[str, str] = field(default_factory=dict)  # column -> value in normal form
    slip_device: str | None = None  # 1.2: the counter the slip was written at, when not this one

    @property
    def key(self) -> tuple[str, str]:
        return self.visit_date.isoformat(), slip_key(self.slip_no)


def _cell(row: dict[str, str], col: str) -> str | None:
    v = row.get(col)
    if v is None:
        return None
    v = v.strip()
    return v or None


class _Problems:
    def __init__(self, line: int) -> None:
        self.line = line
        self.items: list[RowProblem] = []

    def add(self, column: str, reason: str) -> None:
        self.items.append(RowProblem(self.line, column, reason))

    def columns(self) -> set[str]:
        return {p.column for p in self.items}

    def from_fields(self, problems: list[FieldProblem], mapping: dict[str, str] | None = None,
                    whole: str = "", *, skip: set[str] | None = None) -> None:
        for p in problems:
            head = p.field.split(".")[0] if p.field else ""
            if not head:
                column = _column_for_message(p.message, whole)
            elif mapping and head in mapping:
                column = mapping[head]
            elif head in COLUMNS:
                column = head
            else:
                column = whole
            if skip and column in skip:
                continue
            self.add(column, p.message)


def _column_for_message(message: str, default: str) -> str:
    m = message.lower()
    if "age" in m and "birth" in m:
        return "age_years"
    if "guardian" in m:
        return "guardian_relation" if "relation" in m else "guardian_name"
    return default


@dataclass
class _Head:
    slip_no: str
    visit_date: date
    at: time
    written_by: str


def parse_row(line: int, row: dict[str, str], *, today: date | None = None) -> tuple[Slip | None, list[RowProblem]]:
    """Check every cell of a row; the parsed slip, or the problems found."""
    bad = _Problems(line)
    if "__too_many__" in row:
        bad.add("", f"has {row['__too_many__']} cells, more than the header's columns")
        return None, bad.items
    _check_cells(bad, row)
    if bad.items:
        return None, bad.items
    ints = _parse_ints(bad, row)
    head = _parse_head(bad, row, today or today_ist())
    uhid, patient, patient_content = _parse_patient(bad, row, ints)
    department, unit, visit_type = _parse_visit(bad, row, uhid)
    fee_code, fee = _parse_fee(bad, row, ints)
    lab_tests, lab_payment, lab_items = _parse_lab(bad, row, ints)
    slip_device = _cell(row, "slip_device")
    if slip_device is not None:
        slip_device = slip_device.upper()
        if not _DEVICE.match(slip_device):
            bad.add("slip_device", f"must be a counter's device id, 1-16 letters or digits, e.g. C03 (got {slip_device!r})")
    if bad.items or head is None:
        return None, bad.items
    assert department is not None
    slip = Slip(
        slip_no=head.slip_no, visit_date=head.visit_date,
        recorded_at=datetime.combine(head.visit_date, head.at, tzinfo=IST), written_by=head.written_by,
        uhid=uhid, patient=patient, department=department, unit=unit, visit_type=visit_type,
        fee=fee, fee_code=fee_code, lab_tests=lab_tests, lab_payment=lab_payment, lab_items=lab_items,
        slip_device=slip_device,
    )
    slip.content = _content(slip, patient_content, head.at)
    return slip, []


def _check_cells(bad: _Problems, row: dict[str, str]) -> None:
    """What no column may hold: control characters (a NUL byte...), cells longer
    than any column needs, and formulas in the free-text columns."""
    for col, value in row.items():
        if col not in COLUMNS or not value:
            continue
        if len(value) > MAX_CELL:
            bad.add(col, f"is too long ({len(value)} characters, at most {MAX_CELL}): check the cell")
            continue
        m = _CONTROL.search(value)
        if m is not None:
            what = "a NUL byte" if m.group() == "\x00" else f"a control character (code {ord(m.group())})"
            bad.add(col, f"contains {what}, which no column may hold: retype the cell")
            continue
        if col in FORMULA_CHECKED and is_formula_like(value.strip()):
            bad.add(col, "must not begin with =, +, - or @ (a spreadsheet would run it as a formula); "
                         "write it as it is on the slip")


def _parse_ints(bad: _Problems, row: dict[str, str]) -> dict[str, int | None]:
    ints: dict[str, int | None] = {}
    for col in INT_COLUMNS:
        v = _cell(row, col)
        ints[col] = None
        if v is None:
            continue
        if _PAISE.fullmatch(v):
            ints[col] = int(v)
        else:
            what = "an amount in paise (whole number, e.g. 1000 for ₹10)" if col.endswith("paise") else "a whole number"
            bad.add(col, f"must be {what} (got {v!r})")
    return ints


def _parse_head(bad: _Problems, row: dict[str, str], today: date) -> _Head | None:
    """slip_no, visit_date, recorded_at and operator_id: which slip, when, by whom."""
    slip_no = _cell(row, "slip_no")
    if slip_no is None:
        bad.add("slip_no", "is required (the number written on the paper slip)")
    elif len(slip_no) > 32:
        bad.add("slip_no", "is too long (at most 32 characters)")

    visit_day: date | None = None
    vd = _cell(row, "visit_date")
    if vd is None:
        bad.add("visit_date", "is required, written YYYY-MM-DD")
    elif not re.fullmatch(r"\d{4}-\d{2}-\d{2}", vd):
        bad.add("visit_date", f"must be a date written YYYY-MM-DD (got {vd!r})")
    else:
        try:
            visit_day = date.fromisoformat(vd)
        except ValueError:
            bad.add("visit_date", f"must be a date written YYYY-MM-DD (got {vd!r})")
        if visit_day is not None and visit_day > today:
            bad.add("visit_date", "cannot be in the future")
            visit_day = None

    at = time(0, 0)
    ra = _cell(row, "recorded_at")
    if ra is not None:
        m = _HHMM.match(ra)
        if m is None:
            bad.add("recorded_at", f"must be a time written HH:MM, e.g. 09:45 (got {ra!r})")
        else:
            at = time(int(m.group(1)), int(m.group(2)))

    written_by = _cell(row, "operator_id")
    if written_by is None:
        bad.add("operator_id", "is required (who wrote the slip)")
    elif not _OPERATOR_ID.match(written_by):
        bad.add("operator_id", "must be letters, digits, '-', '_' or '.' (up to 64)")
        written_by = None

    if slip_no is None or len(slip_no) > 32 or visit_day is None or written_by is None:
        return None
    return _Head(slip_no, visit_day, at, written_by)


def _parse_patient(
    bad: _Problems, row: dict[str, str], ints: dict[str, int | None],
) -> tuple[str | None, dict[str, object], dict[str, object]]:
    """uhid (a revisit) or the new patient's details: (uhid, fields for the
    service, the fields in normal form)."""
    for col in NAME_COLUMNS:
        v = _cell(row, col)
        if v is not None and is_formula_like(v):
            bad.add(col, "must not begin with =, +, - or @ (a spreadsheet would run it as a formula); "
                         "write the name as it is on the slip")
    uhid = _cell(row, "uhid")
    if uhid is not None:
        uhid = uhid.upper()
        if len(uhid) > 64:
            bad.add("uhid", "is too long (at most 64 characters)")
        return uhid, {}, {}

    patient: dict[str, object] = {}
    for col in PATIENT_COLUMNS:
        if col in INT_COLUMNS:
            if ints.get(col) is not None:
                patient[col] = ints[col]
            continue
        v = _cell(row, col)
        if v is not None:
            patient[col] = v.upper() if col in ("sex", "guardian_relation") else (
                v.lower() if col == "category" else v)
    try:
        model = P.PatientRegister.model_validate({**patient, "local_ref": "X-000000"})
    except ValidationError as exc:
        bad.from_fields(explain(exc), whole="name", skip=bad.columns())
        return None, patient, {}
    normal = model.model_dump(mode="json", exclude={"local_ref", "uhid"}, exclude_none=True)
    return None, patient, normal


def _parse_visit(bad: _Problems, row: dict[str, str], uhid: str | None) -> tuple[str | None, str | None, str]:
    """department, unit and visit_type."""
    department = _cell(row, "department")
    unit = _cell(row, "unit")
    if department is None:
        bad.add("department", "is required (a department code, e.g. MED)")
    else:
        try:
            department = rules.code(department, what="department code")
        except ValueError as exc:
            bad.add("department", str(exc))
    if unit is not None:
        try:
            unit = rules.code(unit, what="unit code")
        except ValueError as exc:
            bad.add("unit", str(exc))

    vt = _cell(row, "visit_type")
    visit_type = "revisit" if uhid else "new"
    if vt is not None:
        if vt.lower() not in rules.VISIT_TYPES:
            bad.add("visit_type", "must be new or revisit")
        else:
            visit_type = vt.lower()
    return department, unit, visit_type


def _parse_fee(
    bad: _Problems, row: dict[str, str], ints: dict[str, int | None],
) -> tuple[str | None, PaymentInput | None]:
    """fee_code, fee_paise, fee_mode, fee_ref: the OPD fee taken."""
    fee_code = _cell(row, "fee_code")
    if fee_code is not None:
        try:
            fee_code = rules.code(fee_code, what="fee code")
        except ValueError as exc:
            bad.add("fee_code", str(exc))
    fee = _payment(bad, row, "fee", ints["fee_paise"], given=fee_code is not None or ints["fee_paise"] is not None)
    return fee_code, fee


def _parse_lab(
    bad: _Problems, row: dict[str, str], ints: dict[str, int | None],
) -> tuple[list[str], PaymentInput | None, list[tuple[str, int]] | None]:
    """lab_tests and their payment (lab_paise, lab_mode, lab_ref, lab_items)."""
    lab_tests: list[str] = []
    raw_tests = _cell(row, "lab_tests")
    if raw_tests is not None:
        for part in raw_tests.split(";"):
            if not part.strip():
                continue
            try:
                lab_tests.append(rules.code(part, what="test code"))
            except ValueError as exc:
                bad.add("lab_tests", f"{part.strip()!r} {exc}")
        dupes = sorted({t for t in lab_tests if lab_tests.count(t) > 1})
        if dupes:
            bad.add("lab_tests", f"test given twice: {', '.join(dupes)}")
    # Tests are never ordered without saying how they were paid (waived included),
    # so a forgotten amount cannot turn into an unpaid order.
    raw_items = _cell(row, "lab_items")
    lab_given = (ints["lab_paise"] is not None or _cell(row, "lab_mode") is not None or raw_tests is not None
                 or raw_items is not None)
    if lab_given and not lab_tests and "lab_tests" not in bad.columns():
        bad.add("lab_tests", "give the tests the lab payment is for")
    lab_payment = _payment(bad, row, "lab", ints["lab_paise"], given=lab_given)
    lab_items = None if raw_items is None else _parse_lab_items(bad, raw_items, lab_tests, lab_payment)
    return lab_tests, lab_payment, lab_items


def _parse_lab_items(
    bad: _Problems, raw: str, tests: list[str], payment: PaymentInput | None,
) -> list[tuple[str, int]] | None:
    """``CBC:15000;LFT:40000``: the lab amount split by test, taken as written."""
    items: list[tuple[str, int]] = []
    for part in (p.strip() for p in raw.split(";")):
        if not part:
            continue
        code, sep, paise = (x.strip() for x in part.partition(":"))
        if not sep or not _PAISE.fullmatch(paise):
            bad.add("lab_items", f"{part!r} must be a test code and paise, e.g. CBC:15000")
            return None
        try:
            items.append((rules.code(code, what="test code"), int(paise)))
        except ValueError as exc:
            bad.add("lab_items", f"{code!r} {exc}")
            return None
    codes = [c for c, _ in items]
    if sorted(codes) != sorted(tests):
        bad.add("lab_items", f"must give each test of lab_tests once ({', '.join(tests) or 'none'}), "
                             f"got {', '.join(codes) or 'none'}")
        return None
    if payment is not None:
        total, amount = sum(p for _, p in items), payment.amount_paise or 0
        if total != amount:
            bad.add("lab_items", f"add up to {rules.format_paise(total)} but lab_paise is "
                                 f"{rules.format_paise(amount)}: they must be equal")
            return None
    return items


def _payment(bad: _Problems, row: dict[str, str], prefix: str, amount: int | None, *, given: bool) -> PaymentInput | None:
    mode = _cell(row, f"{prefix}_mode")
    ref = _cell(row, f"{prefix}_ref")
    reason = _cell(row, f"{prefix}_waiver_reason")
    by = _cell(row, f"{prefix}_waiver_by")
    if (mode or "").lower() != "waived":
        for col, v in ((f"{prefix}_waiver_reason", reason), (f"{prefix}_waiver_by", by)):
            if v is not None:
                bad.add(col, f"is given but the {prefix} payment is not waived (its {prefix}_mode is not 'waived')")
    else:
        if reason is not None and len(reason) > 200:
            bad.add(f"{prefix}_waiver_reason", "is too long (at most 200 characters)")
        if by is not None and not _OPERATOR_ID.match(by):
            bad.add(f"{prefix}_waiver_by", "must be a supervisor's operator id (letters, digits, '-', '_' or '.')")
    if not given and mode is None:
        if ref is not None:
            bad.add(f"{prefix}_ref", f"is given but there is no {prefix} payment")
        return None
    if mode is None:
        bad.add(f"{prefix}_mode", "is required with a payment: cash, upi, card or waived")
        return None
    mode = mode.lower()
    if mode not in rules.PAYMENT_MODES:
        bad.add(f"{prefix}_mode", f"must be one of cash, upi, card, waived (got {mode!r})")
        return None
    if mode in rules.MODES_NEEDING_REF and ref is None:
        what = "UPI transaction id (UTR)" if mode == "upi" else "card slip number"
        bad.add(f"{prefix}_ref", f"the {what} is required for a {mode} payment")
        return None
    if amount is None:
        if mode != "waived":
            bad.add(f"{prefix}_paise", "is required: the amount taken, in paise")
            return None
        amount = 0
    if mode == "waived" and amount != 0:
        bad.add(f"{prefix}_paise", "must be 0 (or empty) for a waived payment")
        return None
    return PaymentInput(mode=mode, amount_paise=amount, mode_ref=ref, waiver_reason=reason, approved_by=by)


def _content(slip: Slip, patient: dict[str, object], at: time) -> dict[str, str]:
    """The row in normal form (what two rows of one slip must agree on): codes
    upper case, numbers without leading zeros, the mobile as 10 digits, etc."""
    out: dict[str, object] = {"recorded_at": at.strftime("%H:%M"), "operator_id": slip.written_by,
                           "uhid": slip.uhid, "department": slip.department, "unit": slip.unit,
                           "visit_type": slip.visit_type, "fee_code": slip.fee_code, **patient}
    for prefix, pay in (("fee", slip.fee), ("lab", slip.lab_payment)):
        if pay is not None:
            out.update({f"{prefix}_paise": pay.amount_paise, f"{prefix}_mode": pay.mode, f"{prefix}_ref": pay.mode_ref,
                        f"{prefix}_waiver_reason": pay.waiver_reason, f"{prefix}_waiver_by": pay.approved_by})
    out["slip_device"] = slip.slip_device
    if slip.lab_tests:
        out["lab_tests"] = ";".join(sorted(slip.lab_tests))
    if slip.lab_items is not None:
        out["lab_items"] = ";".join(f"{c}:{p}" for c, p in sorted(slip.lab_items))
    return {k: str(v) for k, v in out.items() if v is not None}


def _differing_columns(before: dict[str, str], now: dict[str, str]) -> list[str]:
    return [c for c in COLUMNS if before.get(c) != now.get(c)]
