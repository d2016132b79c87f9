"""Back-entry import: paper slips typed into a CSV after the fact (the format is
described for users in ``docs/backentry-csv.md``).

Each row goes through the same services as the counter. Rows are saved in
batches, one SQLite transaction per batch and a savepoint per row, so a row is
imported whole or not at all while the disk is synced once per batch, not once
per row. The slip's key (device, visit date, slip number in normal form) and
its content are written with its records, so importing a file again imports
nothing new, even after a crash half-way through, and a *different* slip under
a number already imported is rejected, never skipped in silence.

The person importing is an authenticated operator (the CLI checks the PIN);
every op carries that operator's id. The file's ``operator_id`` is who wrote the
paper slip: it must be an operator of this counter and is kept in the local
slip record and the audit log (the wire contract has no place for it).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import insert
from sqlmodel import Session, select
from sqlmodel import col as column_of

from opd_fallback.application.people_csv import is_formula_like, unneutralise, write_csv
from opd_fallback.application.services import CounterService, PaymentInput, Tx
from opd_fallback.domain import jsonio, rules
from opd_fallback.domain import payloads as P
from opd_fallback.domain.clock import IST, today_ist
from opd_fallback.domain.errors import DomainError, FieldProblem, explain
from opd_fallback.domain.exits import ExitCode, OpdError
from opd_fallback.store import audit
from opd_fallback.store.engine import Store
from opd_fallback.store.tables import BackEntrySlip, Op, Operator

SOURCE = "backentry"
BATCH_ROWS = 500  # rows per transaction: one disk sync per batch
REQUIRED_COLUMNS = ("slip_no", "visit_date", "operator_id", "department")
PATIENT_COLUMNS = (
    "name", "name_local", "sex", "age_years", "age_months", "age_days", "guardian_relation",
    "guardian_name", "mobile", "abha_number", "address_line", "district", "state", "pin", "category",
)
NAME_COLUMNS = ("name", "name_local", "guardian_name")
COLUMNS = (
    "slip_no", "visit_date", "recorded_at", "operator_id", "uhid", *PATIENT_COLUMNS,
    "department", "unit", "visit_type", "fee_code", "fee_paise", "fee_mode", "fee_ref",
    "lab_tests", "lab_paise", "lab_mode", "lab_ref", "lab_items",
    # 1.2: who allowed a waiver the category does not exempt, and why; the counter the slip was written at
    "fee_waiver_reason", "fee_waiver_by", "lab_waiver_reason", "lab_waiver_by", "slip_device",
)
INT_COLUMNS = ("age_years", "age_months", "age_days", "fee_paise", "lab_paise")
ERROR_COLUMN = "error"  # allowed (and ignored) so a fixed rejects file imports as it is
_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_OPERATOR_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
_PAISE = re.compile(r"\d{1,12}")
_DEVICE = re.compile(r"^[A-Z0-9]{1,16}$")
MAX_CELL = 1000  # characters: a cell longer than any column needs is a row's mistake, not the file's
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# free-text columns a spreadsheet would run as a formula when they begin with = + - @ (names: below)
FORMULA_CHECKED = ("fee_ref", "lab_ref", "fee_waiver_reason", "lab_waiver_reason")
CSV_FIELD_LIMIT = 64 * 1024 * 1024  # the csv module's own limit (128 KiB) would refuse the whole file

# How a service's field names map to CSV columns, per step of a row.
_FEE_FIELDS = {"amount_paise": "fee_paise", "mode": "fee_mode", "mode_ref": "fee_ref", "items": "fee_code",
               "waiver_reason": "fee_waiver_reason", "supervisor": "fee_waiver_by", "approved_by": "fee_waiver_by"}
_LAB_PAY_FIELDS = {"amount_paise": "lab_paise", "mode": "lab_mode", "mode_ref": "lab_ref", "items": "lab_items",
                   "waiver_reason": "lab_waiver_reason", "supervisor": "lab_waiver_by",
                   "approved_by": "lab_waiver_by"}
_LAB_FIELDS = {"tests": "lab_tests"}


class FileUnusable(OpdError):
    """The file as a whole cannot be read as a back-entry CSV (exit status 2)."""

    exit_code = ExitCode.UNUSABLE


class ImportRefused(OpdError):
    """Nothing can be imported now: the importing operator is not an active
    operator of this counter, or the counter must check its numbers first."""


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
        return ExitCode.REFUSED if self.rejected else ExitCode.OK


def rejects_path_for(path: Path) -> Path:
    """``slips.csv`` -> ``slips.rejects.csv`` beside it."""
    return path.with_name(f"{path.stem}.rejects.csv")


def slip_key(slip_no: str) -> str:
    """The slip number as compared: no surrounding spaces, no leading zeros
    (a spreadsheet drops or adds them: ``00042`` and ``42`` are one slip)."""
    text = slip_no.strip()
    return text.lstrip("0") or ("0" if text else "")


# --- reading the file --------------------------------------------------------


def read_rows(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Header and rows with the line each row starts on; raises ``FileUnusable``.
    Cells we neutralised when writing a rejects file (``'=...``) are read back
    as they were."""
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
    limit = csv.field_size_limit(CSV_FIELD_LIMIT)
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
            cells = [unneutralise(c) for c in cells]
            if len(cells) > len(header):
                extra = cells[len(header):]
                if any(c.strip() for c in extra):
                    rows.append((line, {**dict(zip(header, cells, strict=False)), "__too_many__": str(len(cells))}))
                    continue
            padded = cells + [""] * (len(header) - len(cells))
            rows.append((line, dict(zip(header, padded, strict=False))))
    except csv.Error as exc:
        raise FileUnusable(f"line {reader.line_num}: not valid CSV ({exc})") from None
    finally:
        csv.field_size_limit(limit)
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
    """One row, parsed: what the services need, and its content in normal form."""

    slip_no: str
    visit_date: date
    recorded_at: datetime
    written_by: str  # the file's operator_id: who wrote the paper slip
    uhid: str | None
    patient: dict[str, Any]
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
) -> tuple[str | None, dict[str, Any], dict[str, Any]]:
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

    patient: dict[str, Any] = {}
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


def _content(slip: Slip, patient: dict[str, Any], at: time) -> dict[str, str]:
    """The row in normal form (what two rows of one slip must agree on): codes
    upper case, numbers without leading zeros, the mobile as 10 digits, etc."""
    out: dict[str, Any] = {"recorded_at": at.strftime("%H:%M"), "operator_id": slip.written_by,
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


# Columns an old import filled in itself when the row left them empty: compared
# with a slip imported before contents were kept only when the row gives them.
_DEFAULTED = ("fee_code", "lab_items")


def _content_from_ops(session: Session, op_ids_json: str) -> dict[str, str]:
    """The content (as ``_content``) of a slip imported before contents were
    kept, read back from the payloads of the ops it made."""
    ids = jsonio.loads(op_ids_json)
    ops = list(session.exec(select(Op).where(column_of(Op.op_id).in_(ids)).order_by(column_of(Op.seq))))
    out: dict[str, Any] = {}
    for op in ops:
        body = jsonio.loads(op.payload)
        if not out:
            out.update(recorded_at=op.recorded_at[11:16], operator_id=op.operator_id)
        if op.kind == "patient.register":
            out.update({k: v for k, v in body.items() if k in PATIENT_COLUMNS and v is not None})
        elif op.kind == "visit.open":
            ref = body.get("patient") or {}
            if "name" not in out:
                out["uhid"] = ref.get("central_id") or ref.get("local_ref")
            out.update(department=body.get("department"), unit=body.get("unit"), visit_type=body.get("visit_type"))
        elif op.kind == "lab.order":
            out["lab_tests"] = ";".join(sorted(t["code"] for t in body.get("tests") or []))
        elif op.kind == "payment.record":
            prefix = "lab" if body.get("lab_order") else "fee"
            out.update({f"{prefix}_paise": body.get("amount_paise"), f"{prefix}_mode": body.get("mode"),
                        f"{prefix}_ref": body.get("mode_ref")})
            items = body.get("items") or []
            if prefix == "fee" and items:
                out["fee_code"] = items[0]["code"]
            elif prefix == "lab":
                out["lab_items"] = ";".join(f"{i['code']}:{i['amount_paise']}"
                                            for i in sorted(items, key=lambda i: i["code"]))
    return {k: str(v) for k, v in out.items() if v is not None}


# --- importing ---------------------------------------------------------------


def _for_the_file(p: RowProblem) -> RowProblem:
    """A service's sentence in the words of the file: a waiver's approver is a
    column here, not a supervisor typing a PIN at the counter."""
    if p.column.endswith("_waiver_by"):
        return RowProblem(p.line, p.column, p.reason.replace(
            "a supervisor's ID and PIN", "the operator id of a supervisor of this counter who allowed it"))
    if p.column.endswith("_waiver_reason") and "needs a reason" in p.reason:
        return RowProblem(p.line, p.column, p.reason + " (why the fee was not taken)")
    return p


class _DryRun(Exception):
    """Raised at the end of a dry-run row so its savepoint rolls back."""


class _Step:
    """Which part of a row is being saved, to name the right column on failure."""

    def __init__(self) -> None:
        self.mapping: dict[str, str] = {}
        self.whole = ""

    def set(self, mapping: dict[str, str], whole: str) -> None:
        self.mapping, self.whole = mapping, whole


def _save(tx: Tx, slip: Slip, step: _Step) -> list[str]:
    """The row's records through the services, inside ``tx``; returns op ids.
    A waived payment goes through the counter's own waiver rule (``CounterService._pay``):
    a fee the patient's category does not exempt needs a reason and a supervisor."""
    op_ids: list[str] = []
    if slip.uhid is None:
        step.set({}, "name")
        p = tx.register_patient(slip.patient)
        op_ids.append(p.op_id)
        patient = tx.patient(p.local_ref)
        category = str(slip.patient.get("category") or "general")
    else:
        step.set({"patient": "uhid"}, "uhid")
        patient = tx.patient(slip.uhid)
        category = tx.category_of(patient)
    step.set({}, "department")
    v = tx.open_visit(patient, slip.department, slip.unit, visit_type=slip.visit_type, visit_date=slip.visit_date)
    op_ids.append(v.op_id)
    if slip.fee is not None:
        step.set(_FEE_FIELDS, "fee_paise")
        code = slip.fee_code or ("OPD-NEW" if slip.visit_type == "new" else "OPD-REVISIT")
        items = [{"code": code, "qty": 1, "amount_paise": slip.fee.amount_paise}]
        listed = tx.catalog.fees.get(code) if tx.catalog is not None else None
        if slip.fee.mode == "waived" and (listed is None or listed.price_paise > 0):
            # a fee with a price (or none known) waived: the waiver rule, at its list price
            at_list = [{**items[0], "amount_paise": listed.price_paise if listed is not None else 0}]
            pay = tx.svc._pay(tx, patient, slip.fee, category, at_list, visit=v.local_ref)
        else:
            pay = tx.record_payment(patient, slip.fee, visit=v.local_ref, due_items=items)
        op_ids.append(pay.op_id)
    if slip.lab_tests:
        step.set(_LAB_FIELDS, "lab_tests")
        order = tx.order_lab(patient, v.local_ref, slip.lab_tests)
        op_ids.append(order.op_id)
        if slip.lab_payment is not None:
            step.set(_LAB_PAY_FIELDS, "lab_paise")
            if slip.lab_items is not None:
                items = [{"code": c, "qty": 1, "amount_paise": p} for c, p in slip.lab_items]
            else:
                items = _lab_items(tx, slip.lab_tests, slip.lab_payment)
            if slip.lab_payment.mode == "waived":
                pay = tx.svc._pay(tx, patient, slip.lab_payment, category, items, visit=v.local_ref,
                                  lab_order=order.local_ref)
            else:
                pay = tx.record_payment(patient, slip.lab_payment, visit=v.local_ref, lab_order=order.local_ref,
                                        due_items=items)
            op_ids.append(pay.op_id)
    return op_ids


def _lab_items(tx: Tx, tests: list[str], payment: PaymentInput) -> list[dict[str, Any]]:
    """Items of a lab payment without a lab_items column: each test at its list
    price, which must add up to the amount taken (the list prices tell how to split it)."""
    amount = payment.amount_paise or 0
    cat = tx.catalog
    if cat is None:
        if len(tests) == 1 or amount == 0:
            return [{"code": t, "qty": 1, "amount_paise": amount if i == 0 else 0} for i, t in enumerate(tests)]
        raise DomainError.field(
            "amount_paise",
            "this counter has no price list yet, so the amount cannot be split by test: "
            "run 'opd-fallback refresh' first, give the split in lab_items, or give one test per row",
            code="no_master_data",
        )
    prices = {t: cat.tests[t].price_paise for t in tests}
    if payment.mode == "waived":  # at list price: the waiver rule zeroes them and audits what was waived
        return [{"code": t, "qty": 1, "amount_paise": p} for t, p in prices.items()]
    items: list[dict[str, Any]] = [{"code": t, "qty": 1, "amount_paise": p} for t, p in prices.items()]
    total = sum(prices.values())
    if total != amount:
        raise DomainError.field(
            "amount_paise",
            f"the tests cost {rules.format_paise(total)} by the price list but {rules.format_paise(amount)} "
            "was entered (give the split in lab_items if it was charged otherwise)",
            code="amount_not_total",
        )
    return items


Key = tuple[str, str, str]  # the device the slip was written at, visit date, slip key


def _earlier_slips(session: Session, keys: set[Key]) -> dict[Key, BackEntrySlip]:
    """The slips of ``keys`` already imported, in one query."""
    if not keys:
        return {}
    found: dict[Key, BackEntrySlip] = {}
    rows = session.exec(select(BackEntrySlip).where(
        column_of(BackEntrySlip.device_id).in_(sorted({d for d, _, _ in keys})),
        column_of(BackEntrySlip.slip_key).in_(sorted({k for _, _, k in keys})),
    ))
    for row in rows:
        key = (row.device_id, row.visit_date, row.slip_key)
        if key in keys:
            found.setdefault(key, row)
    return found


class _Importer:
    """Imports slips for one importing operator; remembers what it has seen so
    rows of one file are compared with each other and nothing is read twice."""

    def __init__(self, svc: CounterService, imported_by: str, *, source_file: str | None, dry_run: bool) -> None:
        self.svc = svc
        self.imported_by = imported_by
        self.source_file = source_file
        self.dry_run = dry_run
        self.seen: dict[Key, int] = {}  # key -> line in this file
        self.writers: dict[str, bool] = {}  # operator id -> known at this counter
        # the slip records and audit entries of the open transaction's imported
        # rows, written together before it commits (see ``finish``)
        self.slips: list[dict[str, Any]] = []
        self.audits: list[tuple[str, dict[str, Any]]] = []

    def finish(self, tx: Tx) -> None:
        """Write the imported rows' slip records and audit entries, in bulk, in
        the transaction that saved their records (so both commit or neither)."""
        if self.slips:
            tx.session.execute(insert(BackEntrySlip), self.slips)
        audit.record_many(tx.session, self.imported_by, "backentry.import", self.audits)
        self.slips, self.audits = [], []

    def batch(self, rows: list[tuple[int, dict[str, str]]], today: date | None) -> list[RowOutcome]:
        """Rows in one transaction, each in its own savepoint."""
        parsed = [(line, cells, *parse_row(line, cells, today=today)) for line, cells in rows]
        outcomes: list[RowOutcome] = []
        with self.svc.transaction(self.imported_by, source=SOURCE) as tx:
            earlier = _earlier_slips(tx.session, {self.key(s) for _, _, s, _ in parsed if s})
            for line, cells, slip, problems in parsed:
                if slip is None:
                    out = RowOutcome(line, (cells.get("slip_no") or "").strip(), "rejected", problems)
                else:
                    out = self.row(tx, line, slip, earlier)
                out.cells = cells
                outcomes.append(out)
            self.finish(tx)
        return outcomes

    def key(self, slip: Slip) -> Key:
        """A slip is known by the counter it was written at (this one unless ``slip_device``
        says otherwise), its visit date and its number."""
        return (slip.slip_device or self.svc.device_id, *slip.key)

    def _writer_known(self, session: Session, operator_id: str) -> bool:
        if operator_id not in self.writers:
            self.writers[operator_id] = session.get(Operator, operator_id) is not None
        return self.writers[operator_id]

    def row(self, tx: Tx, line: int, slip: Slip, earlier: dict[Key, BackEntrySlip]) -> RowOutcome:
        """One checked slip: compared with the file and with what is in, then saved whole or not at all."""
        def reject(column: str, reason: str) -> RowOutcome:
            return RowOutcome(line, slip.slip_no, "rejected", [RowProblem(line, column, reason)])

        key = self.key(slip)
        if key in self.seen:
            return reject("slip_no", f"slip {slip.slip_no} of {key[1]} is already on line {self.seen[key]} "
                                     "of this file")
        self.seen[key] = line
        if not self._writer_known(tx.session, slip.written_by):
            return reject("operator_id", f"{slip.written_by!r} is not an operator of this counter: correct it, "
                                         "or add them with 'opd-fallback operator add', then import this row again")
        prior = earlier.get(key)
        if prior is not None:
            return self._compare(tx.session, line, slip, prior)
        out = RowOutcome(line, slip.slip_no, "imported")
        step = _Step()
        try:
            # the rows of a batch are flushed together at its commit
            origin = {"written_by": slip.written_by, "device_id": key[0], "slip_no": slip.slip_no}
            with tx.savepoint(), tx.from_paper(origin):
                tx.recorded_at = slip.recorded_at
                out.op_ids = _save(tx, slip, step)
                if self.dry_run:
                    raise _DryRun
            self.slips.append(self._record(slip, line, out.op_ids))
            self.audits.append((f"{key[0]}/{key[1]}/{slip.slip_no}", {
                "ops": len(out.op_ids), "written_by": slip.written_by, "file": self.source_file, "line": line}))
        except _DryRun:
            out.status = "would_import"
        except DomainError as exc:
            bad = _Problems(line)
            bad.from_fields(exc.problems, step.mapping, whole=step.whole)
            out.status, out.problems, out.op_ids = "rejected", [_for_the_file(p) for p in bad.items], []
        return out

    def _record(self, slip: Slip, line: int, op_ids: list[str]) -> dict[str, Any]:
        """The ``backentry_slip`` row of an imported slip."""
        return {
            "device_id": self.key(slip)[0], "visit_date": slip.visit_date.isoformat(), "slip_no": slip.slip_no,
            "slip_key": slip.key[1], "imported_at": datetime.now(IST).replace(microsecond=0).isoformat(),
            "op_ids": jsonio.dumps(op_ids), "content": jsonio.dumps(slip.content),
            "source_file": self.source_file, "source_line": line, "written_by": slip.written_by,
            "imported_by": self.imported_by,
        }

    def _compare(self, session: Session, line: int, slip: Slip, prior: BackEntrySlip) -> RowOutcome:
        """A slip already in: the same content is 'already imported', any
        difference a rejected row naming the earlier import and the columns."""
        if prior.content is not None:
            differs = _differing_columns(jsonio.loads(prior.content), slip.content)
        else:  # imported before contents were kept (schema < 3): what its ops say
            before = _content_from_ops(session, prior.op_ids)
            now = {k: v for k, v in slip.content.items() if k in before or k not in _DEFAULTED}
            differs = _differing_columns({k: v for k, v in before.items() if k in now or k not in _DEFAULTED}, now)
        if not differs:
            return RowOutcome(line, slip.slip_no, "already_imported")
        where = ""
        if prior.source_file:
            where = f" from {prior.source_file}" + (f", line {prior.source_line}" if prior.source_line else "")
        reason = (
            f"slip {slip.slip_no} of {slip.key[0]}{' from ' + slip.slip_device if slip.slip_device else ''} "
            f"was already imported{where} with a different "
            f"{', '.join(differs)}; nothing of this row was saved: if it is another slip, check the number "
            "on the paper (a mistake in the earlier import is corrected at the counter, not by importing again)"
        )
        return RowOutcome(line, slip.slip_no, "rejected", [RowProblem(line, "slip_no", reason)])


def import_row(
    svc: CounterService, line: int, slip: Slip, *, imported_by: str, dry_run: bool = False,
) -> RowOutcome:
    """One slip in its own transaction: all its records and its slip key, or nothing."""
    importer = _Importer(svc, imported_by, source_file=None, dry_run=dry_run)
    with svc.transaction(imported_by, source=SOURCE) as tx:
        earlier = _earlier_slips(tx.session, {importer.key(slip)})
        out = importer.row(tx, line, slip, earlier)
        importer.finish(tx)
    return out


def check_importer(store: Store, operator_id: str) -> None:
    """Raise ``ImportRefused`` unless ``operator_id`` is an active operator here
    (the CLI has checked the PIN; this keeps the rule for every caller)."""
    with store.read() as s:
        op = s.get(Operator, operator_id)
    if op is None or not op.active:
        raise ImportRefused(f"{operator_id!r} is not an active operator of this counter")


def import_file(
    store: Store, device_id: str, path: Path, *, imported_by: str, dry_run: bool = False,
    rejects_path: Path | None = None, today: date | None = None,
    progress: Callable[[int, int, int], None] | None = None, batch_rows: int = BATCH_ROWS,
) -> ImportReport:
    """Import a back-entry CSV as operator ``imported_by``; raises ``FileUnusable``
    when the file itself is bad, ``ImportRefused`` when nothing may be imported.

    ``progress(done, total, rejected)`` is called after each batch. Writes the rejected
    rows (with an ``error`` column) beside the input unless ``dry_run``; a stale
    rejects file from an earlier run is removed when no row is rejected now."""
    header, rows = read_rows(path)
    check_importer(store, imported_by)
    importer = _Importer(CounterService(store, device_id), imported_by, source_file=path.name, dry_run=dry_run)
    outcomes: list[RowOutcome] = []
    rejected = 0
    if progress is not None:
        progress(0, len(rows), 0)
    for start in range(0, len(rows), batch_rows):
        try:
            outcomes.extend(importer.batch(rows[start:start + batch_rows], today))
        except DomainError as exc:  # the counter refuses all writes (e.g. after a restore)
            raise ImportRefused(str(exc.problems[0].message if exc.problems else exc)) from None
        if progress is not None:
            rejected = sum(1 for o in outcomes[start:] if o.status == "rejected") + rejected
            progress(len(outcomes), len(rows), rejected)
    report = ImportReport(path, dry_run, outcomes, None)
    target = rejects_path or rejects_path_for(path)
    if not dry_run:
        if report.rejected:
            write_rejects(target, header, report.rejected)
            report.rejects_path = target
        elif target.is_symlink() or target.exists():
            target.unlink()
    return report


def write_rejects(target: Path, header: list[str], rejected: list[RowOutcome]) -> None:
    """The rejected rows as they were, plus an ``error`` column saying why, so
    staff can fix them and import that file (a CSV for people: see people_csv)."""
    cols = [h for h in header if h != ERROR_COLUMN] + [ERROR_COLUMN]
    rows = ([r.cells.get(c, "") if c != ERROR_COLUMN else "; ".join(str(p) for p in r.problems) for c in cols]
            for r in rejected)
    write_csv(target, cols, rows)


def iter_problems(report: ImportReport) -> Iterator[RowProblem]:
    for r in report.rejected:
        yield from r.problems
