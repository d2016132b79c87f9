"""Back-entry import: paper slips typed into a CSV after the fact
(``shared/contract/backentry-csv.md``).

Each row goes through the same services as the counter, in one transaction
per row, so a row is imported whole or not at all. The slip's key (device,
visit date, slip_no) is written in that same transaction, so importing a file
again imports nothing new, even after a crash half-way through. Every bad row
is reported with its line, column and reason.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError
from sqlmodel import select

from opd_fallback.application.services import CounterService, PaymentInput, Tx
from opd_fallback.domain import payloads as P
from opd_fallback.domain import rules
from opd_fallback.domain.clock import IST, today_ist
from opd_fallback.domain.errors import DomainError, FieldProblem, explain
from opd_fallback.store import audit
from opd_fallback.store.engine import Store
from opd_fallback.store.tables import BackEntrySlip

SOURCE = "backentry"
REQUIRED_COLUMNS = ("slip_no", "visit_date", "operator_id", "department")
PATIENT_COLUMNS = (
    "name", "name_local", "sex", "age_years", "age_months", "age_days", "guardian_relation",
    "guardian_name", "mobile", "abha_number", "address_line", "district", "state", "pin", "category",
)
COLUMNS = (
    "slip_no", "visit_date", "recorded_at", "operator_id", "uhid", *PATIENT_COLUMNS,
    "department", "unit", "visit_type", "fee_code", "fee_paise", "fee_mode", "fee_ref",
    "lab_tests", "lab_paise", "lab_mode", "lab_ref",
)
INT_COLUMNS = ("age_years", "age_months", "age_days", "fee_paise", "lab_paise")
ERROR_COLUMN = "error"  # allowed (and ignored) so a fixed rejects file imports as it is
_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_OPERATOR_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")

# How a service's field names map to CSV columns, per step of a row.
_FEE_FIELDS = {"amount_paise": "fee_paise", "mode": "fee_mode", "mode_ref": "fee_ref", "items": "fee_code"}
_LAB_PAY_FIELDS = {"amount_paise": "lab_paise", "mode": "lab_mode", "mode_ref": "lab_ref", "items": "lab_tests"}
_LAB_FIELDS = {"tests": "lab_tests"}


class FileUnusable(Exception):
    """The file as a whole cannot be read as a back-entry CSV (exit status 2)."""


@dataclass(frozen=True, slots=True)
class RowProblem:
    line: int
    column: str  # '' when the row as a whole is wrong
    reason: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", {self.column}" if self.column else "")
        return f"{where}: {self.reason}"


@dataclass
class RowOutcome:
    line: int
    slip_no: str
    status: str  # imported | would_import | already_imported | rejected
    problems: list[RowProblem] = field(default_factory=list)
    op_ids: list[str] = field(default_factory=list)
    cells: dict[str, str] = field(default_factory=dict)


@dataclass
class ImportReport:
    path: Path
    dry_run: bool
    rows: list[RowOutcome]
    rejects_path: Path | None

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows if r.status == status)

    @property
    def rejected(self) -> list[RowOutcome]:
        return [r for r in self.rows if r.status == "rejected"]

    @property
    def exit_code(self) -> int:
        """0 when every row is in (or already was), 1 when some were rejected."""
        return 1 if self.rejected else 0


def rejects_path_for(path: Path) -> Path:
    """``slips.csv`` -> ``slips.rejects.csv`` beside it."""
    return path.with_name(f"{path.stem}.rejects.csv")


# --- reading the file --------------------------------------------------------


def read_rows(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Header and rows with the line each row starts on; raises ``FileUnusable``."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise FileUnusable(f"cannot read {path}: {exc.strerror}") from None
    try:
        body = raw.decode("utf-8-sig")  # a spreadsheet's BOM is fine
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise FileUnusable(
            f"the file is not UTF-8 (line {line}); save it from the spreadsheet as 'CSV UTF-8'"
        ) from None
    reader = csv.reader(io.StringIO(body, newline=""))
    try:
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise FileUnusable("the file has no header row")
        header = [h.strip() for h in header]
        _check_header(header)
        rows: list[tuple[int, dict[str, str]]] = []
        start = reader.line_num + 1
        for cells in reader:
            line, start = start, reader.line_num + 1
            if not any(c.strip() for c in cells):
                continue
            if len(cells) > len(header):
                extra = cells[len(header):]
                if any(c.strip() for c in extra):
                    rows.append((line, {**dict(zip(header, cells, strict=False)), "__too_many__": str(len(cells))}))
                    continue
            padded = cells + [""] * (len(header) - len(cells))
            rows.append((line, dict(zip(header, padded, strict=False))))
    except csv.Error as exc:
        raise FileUnusable(f"line {reader.line_num}: not valid CSV ({exc})") from None
    return header, rows


def _check_header(header: list[str]) -> None:
    unknown = [h for h in header if h not in COLUMNS and h != ERROR_COLUMN]
    if unknown:
        raise FileUnusable(
            f"unknown column(s): {', '.join(repr(h) for h in unknown)}; allowed: {', '.join(COLUMNS)}"
        )
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise FileUnusable(f"column(s) given twice: {', '.join(dupes)}")
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise FileUnusable(f"required column(s) missing: {', '.join(missing)}")


# --- checking one row --------------------------------------------------------


@dataclass
class Slip:
    """One row, parsed: what the services need."""

    slip_no: str
    visit_date: date
    recorded_at: datetime
    operator_id: str
    uhid: str | None
    patient: dict[str, Any]
    department: str
    unit: str | None
    visit_type: str
    fee: PaymentInput | None
    fee_code: str | None
    lab_tests: list[str]
    lab_payment: PaymentInput | None


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


def parse_row(line: int, row: dict[str, str], *, today: date | None = None) -> tuple[Slip | None, list[RowProblem]]:
    """Check every cell of a row; the parsed slip, or the problems found."""
    bad = _Problems(line)
    if "__too_many__" in row:
        bad.add("", f"has {row['__too_many__']} cells, more than the header's columns")
        return None, bad.items
    today = today or today_ist()

    slip_no = _cell(row, "slip_no")
    if slip_no is None:
        bad.add("slip_no", "is required (the number written on the paper slip)")
    elif len(slip_no) > 32:
        bad.add("slip_no", "is too long (at most 32 characters)")

    visit_day: date | None = None
    vd = _cell(row, "visit_date")
    if vd is None:
        bad.add("visit_date", "is required, written YYYY-MM-DD")
    else:
        try:
            visit_day = date.fromisoformat(vd)
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", vd):
                raise ValueError
        except ValueError:
            bad.add("visit_date", f"must be a date written YYYY-MM-DD (got {vd!r})")
            visit_day = None
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

    operator_id = _cell(row, "operator_id")
    if operator_id is None:
        bad.add("operator_id", "is required (who wrote the slip)")
    elif not _OPERATOR_ID.match(operator_id):
        bad.add("operator_id", "must be letters, digits, '-', '_' or '.' (up to 64)")

    ints: dict[str, int | None] = {}
    for col in INT_COLUMNS:
        v = _cell(row, col)
        if v is None:
            ints[col] = None
        elif re.fullmatch(r"\d{1,12}", v):
            ints[col] = int(v)
        else:
            what = "an amount in paise (whole number, e.g. 1000 for ₹10)" if col.endswith("paise") else "a whole number"
            bad.add(col, f"must be {what} (got {v!r})")
            ints[col] = None

    uhid = _cell(row, "uhid")
    if uhid is not None:
        uhid = uhid.upper()
        if len(uhid) > 64:
            bad.add("uhid", "is too long (at most 64 characters)")

    patient: dict[str, Any] = {}
    if uhid is None:
        for col in PATIENT_COLUMNS:
            if col in INT_COLUMNS:
                if ints.get(col) is not None:
                    patient[col] = ints[col]
            else:
                v = _cell(row, col)
                if v is not None:
                    patient[col] = v.upper() if col in ("sex", "guardian_relation") else (
                        v.lower() if col == "category" else v)
        try:
            P.PatientRegister.model_validate({**patient, "local_ref": "X-000000"})
        except ValidationError as exc:
            bad.from_fields(explain(exc), whole="name", skip={p.column for p in bad.items})

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

    fee_code = _cell(row, "fee_code")
    if fee_code is not None:
        try:
            fee_code = rules.code(fee_code, what="fee code")
        except ValueError as exc:
            bad.add("fee_code", str(exc))
    fee = _payment(bad, row, "fee", ints["fee_paise"], given=fee_code is not None or ints["fee_paise"] is not None)

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
    lab_given = ints["lab_paise"] is not None or _cell(row, "lab_mode") is not None or raw_tests is not None
    if lab_given and not lab_tests:
        bad.add("lab_tests", "give the tests the lab payment is for")
    lab_payment = _payment(bad, row, "lab", ints["lab_paise"], given=lab_given)

    if bad.items:
        return None, bad.items
    assert slip_no and visit_day and operator_id and department
    return Slip(
        slip_no=slip_no, visit_date=visit_day,
        recorded_at=datetime.combine(visit_day, at, tzinfo=IST), operator_id=operator_id,
        uhid=uhid, patient=patient, department=department, unit=unit, visit_type=visit_type,
        fee=fee, fee_code=fee_code, lab_tests=lab_tests, lab_payment=lab_payment,
    ), []


def _payment(bad: _Problems, row: dict[str, str], prefix: str, amount: int | None, *, given: bool) -> PaymentInput | None:
    mode = _cell(row, f"{prefix}_mode")
    ref = _cell(row, f"{prefix}_ref")
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
    return PaymentInput(mode=mode, amount_paise=amount, mode_ref=ref)


# --- importing ---------------------------------------------------------------


class _DryRun(Exception):
    """Raised at the end of a dry-run row so its transaction rolls back."""


class _Step:
    """Which part of a row is being saved, to name the right column on failure."""

    def __init__(self) -> None:
        self.mapping: dict[str, str] = {}
        self.whole = ""

    def set(self, mapping: dict[str, str], whole: str) -> None:
        self.mapping, self.whole = mapping, whole


def _save(tx: Tx, slip: Slip, step: _Step) -> list[str]:
    """The row's records through the services, inside ``tx``; returns op ids."""
    op_ids: list[str] = []
    if slip.uhid is None:
        step.set({}, "name")
        p = tx.register_patient(slip.patient)
        op_ids.append(p.op_id)
        patient = tx.patient(p.local_ref)
    else:
        step.set({"patient": "uhid"}, "uhid")
        patient = tx.patient(slip.uhid)
    step.set({}, "department")
    v = tx.open_visit(patient, slip.department, slip.unit, visit_type=slip.visit_type, visit_date=slip.visit_date)
    op_ids.append(v.op_id)
    if slip.fee is not None:
        step.set(_FEE_FIELDS, "fee_paise")
        code = slip.fee_code or ("OPD-NEW" if slip.visit_type == "new" else "OPD-REVISIT")
        items = [{"code": code, "qty": 1, "amount_paise": slip.fee.amount_paise}]
        pay = tx.record_payment(patient, slip.fee, visit=v.local_ref, due_items=items)
        op_ids.append(pay.op_id)
    if slip.lab_tests:
        step.set(_LAB_FIELDS, "lab_tests")
        order = tx.order_lab(patient, v.local_ref, slip.lab_tests)
        op_ids.append(order.op_id)
        if slip.lab_payment is not None:
            step.set(_LAB_PAY_FIELDS, "lab_paise")
            items = _lab_items(tx, slip.lab_tests, slip.lab_payment)
            pay = tx.record_payment(patient, slip.lab_payment, visit=v.local_ref, lab_order=order.local_ref,
                                    due_items=items)
            op_ids.append(pay.op_id)
    return op_ids


def _lab_items(tx: Tx, tests: list[str], payment: PaymentInput) -> list[dict[str, Any]]:
    """Items of a lab payment: each test at its list price, which must add up to
    the amount taken (the list prices tell how to split it)."""
    amount = payment.amount_paise or 0
    cat = tx.catalog
    if cat is None:
        if len(tests) == 1 or amount == 0:
            return [{"code": t, "qty": 1, "amount_paise": amount if i == 0 else 0} for i, t in enumerate(tests)]
        raise DomainError.field(
            "amount_paise",
            "this counter has no price list yet, so the amount cannot be split by test: "
            "run 'opd-fallback refresh' first, or give one test per row",
            code="no_master_data",
        )
    if payment.mode == "waived":
        return [{"code": t, "qty": 1, "amount_paise": 0} for t in tests]
    items = [{"code": t, "qty": 1, "amount_paise": cat.tests[t].price_paise} for t in tests]
    total = sum(cat.tests[t].price_paise for t in tests)
    if total != amount:
        raise DomainError.field(
            "amount_paise",
            f"the tests cost {rules.format_paise(total)} by the price list but {rules.format_paise(amount)} "
            "was entered",
            code="amount_not_total",
        )
    return items


def _slip_known(tx: Tx, device_id: str, slip: Slip) -> bool:
    row = tx.session.exec(
        select(BackEntrySlip).where(
            BackEntrySlip.device_id == device_id,
            BackEntrySlip.visit_date == slip.visit_date.isoformat(),
            BackEntrySlip.slip_no == slip.slip_no,
        )
    ).first()
    return row is not None


def import_row(svc: CounterService, line: int, slip: Slip, *, dry_run: bool = False) -> RowOutcome:
    """One slip in one transaction: all its records and its slip key, or nothing."""
    out = RowOutcome(line, slip.slip_no, "imported")
    step = _Step()
    try:
        with svc.transaction(slip.operator_id, recorded_at=slip.recorded_at, source=SOURCE) as tx:
            if _slip_known(tx, svc.device_id, slip):
                out.status = "already_imported"
                raise _DryRun  # nothing to write
            out.op_ids = _save(tx, slip, step)
            tx.session.add(BackEntrySlip(
                device_id=svc.device_id, visit_date=slip.visit_date.isoformat(), slip_no=slip.slip_no,
                imported_at=datetime.now(IST).replace(microsecond=0).isoformat(),
                op_ids=orjson.dumps(out.op_ids).decode(),
            ))
            audit.record(tx.session, slip.operator_id, "backentry.import",
                         f"{svc.device_id}/{slip.visit_date.isoformat()}/{slip.slip_no}", ops=len(out.op_ids))
            if dry_run:
                out.status = "would_import"
                raise _DryRun
    except _DryRun:
        pass
    except DomainError as exc:
        bad = _Problems(line)
        bad.from_fields(exc.problems, step.mapping, whole=step.whole)
        out.status, out.problems, out.op_ids = "rejected", bad.items, []
    return out


def import_file(
    store: Store, device_id: str, path: Path, *, dry_run: bool = False, rejects_path: Path | None = None,
    today: date | None = None,
) -> ImportReport:
    """Import a back-entry CSV; raises ``FileUnusable`` when the file itself is bad.

    Writes the rejected rows (with an ``error`` column) beside the input unless
    ``dry_run``; a stale rejects file from an earlier run is removed when no row
    is rejected now."""
    header, rows = read_rows(path)
    svc = CounterService(store, device_id)
    outcomes: list[RowOutcome] = []
    seen: dict[tuple[str, str], int] = {}
    for line, cells in rows:
        slip, problems = parse_row(line, cells, today=today)
        if slip is None:
            outcomes.append(RowOutcome(line, (cells.get("slip_no") or "").strip(), "rejected", problems,
                                       cells=cells))
            continue
        key = (slip.visit_date.isoformat(), slip.slip_no)
        if key in seen:
            outcomes.append(RowOutcome(line, slip.slip_no, "rejected", [RowProblem(
                line, "slip_no", f"slip {slip.slip_no} of {key[0]} is already on line {seen[key]} of this file",
            )], cells=cells))
            continue
        seen[key] = line
        outcome = import_row(svc, line, slip, dry_run=dry_run)
        outcome.cells = cells
        outcomes.append(outcome)
    report = ImportReport(path, dry_run, outcomes, None)
    target = rejects_path or rejects_path_for(path)
    if not dry_run:
        if report.rejected:
            write_rejects(target, header, report.rejected)
            report.rejects_path = target
        elif target.exists():
            target.unlink()
    return report


def write_rejects(target: Path, header: list[str], rejected: list[RowOutcome]) -> None:
    """The rejected rows as they were, plus an ``error`` column saying why, so
    staff can fix them and import that file."""
    cols = [h for h in header if h != ERROR_COLUMN] + [ERROR_COLUMN]
    tmp = target.with_name(target.name + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for r in rejected:
            reasons = "; ".join(str(p) for p in r.problems)
            w.writerow([r.cells.get(c, "") if c != ERROR_COLUMN else reasons for c in cols])
    tmp.replace(target)


def iter_problems(report: ImportReport) -> Iterator[RowProblem]:
    for r in report.rejected:
        yield from r.problems
