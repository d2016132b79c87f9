"""Back-entry's vocabulary: the columns of the file, the errors that refuse
it whole, and what became of each row (``RowProblem``, ``RowOutcome``,
``ImportReport``). Decision: these are plain dataclasses shared by the reader,
the parser and the importer, so none of those imports another for its types."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from opd_fallback.domain.exits import ExitCode, OpdError

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


class FileChanged(FileUnusable):
    """The file changed between the pass that checked it and the one that imports
    it (exit status 2): the import stops at a batch's end, whole batches only."""


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


KEPT_ROWS = 10_000  # outcomes of rows not rejected kept in a report (the rest are counted only)
KEPT_REJECTED = 1_000  # rejected rows kept in a report (all of them are in the rejects file)


@dataclass
class ImportReport:
    """What became of a file's rows. Decision (memory bounded by a batch, not by
    the file's size): ``counts`` counts every row, ``rows`` keeps the first
    ``KEPT_REJECTED`` rejected rows and the first ``KEPT_ROWS`` others; every
    rejected row was written to the rejects file as it came (``RejectsWriter``)."""

    path: Path
    dry_run: bool
    rows: list[RowOutcome]
    rejects_path: Path | None
    counts: dict[str, int] = field(default_factory=dict)  # status -> rows; from ``rows`` when not given

    def __post_init__(self) -> None:
        if not self.counts:
            for r in self.rows:
                self.counts[r.status] = self.counts.get(r.status, 0) + 1

    def count(self, status: str) -> int:
        return self.counts.get(status, 0)

    @property
    def total(self) -> int:
        """Rows of the file (blank lines not counted)."""
        return sum(self.counts.values())

    @property
    def rejected(self) -> list[RowOutcome]:
        """The rejected rows kept (``count("rejected")`` says how many there were)."""
        return [r for r in self.rows if r.status == "rejected"]

    @property
    def exit_code(self) -> int:
        """0 when every row is in (or already was), 1 when some were rejected."""
        return ExitCode.REFUSED if self.count("rejected") else ExitCode.OK


def rejects_path_for(path: Path) -> Path:
    """``slips.csv`` -> ``slips.rejects.csv`` beside it."""
    return path.with_name(f"{path.stem}.rejects.csv")


def slip_key(slip_no: str) -> str:
    """The slip number as compared: no surrounding spaces, no leading zeros
    (a spreadsheet drops or adds them: ``00042`` and ``42`` are one slip)."""
    text = slip_no.strip()
    return text.lstrip("0") or ("0" if text else "")
