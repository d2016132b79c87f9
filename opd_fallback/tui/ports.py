"""The seam between the counter's screens and the work below them (after
Harlequin's ``adapter.py``): ``CounterBackend`` names every call a screen or
widget makes, with its types. ``tui/backend.py``'s ``StoreBackend`` is the one
implementation (over the store and ``CounterService``); the screens know only
this protocol and the values of ``tui/values.py``, and import-linter forbids
them ``application/``, ``store/``, ``sync/``, ``central/`` and ``hub/``.

Every method may block (SQLite, PIN hashing): screens call them through
``CounterApp.run_blocking`` (a thread worker), never on the event loop.
Light on purpose: the login screen's module and ``tui/app.py`` import it before
the store loads, so the types below it are named for mypy only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypedDict

if TYPE_CHECKING:
    from opd_fallback.domain.contract import Department, Test
    from opd_fallback.domain.masterdata import FeeQuote
    from opd_fallback.printing.document import Document
    from opd_fallback.tui.state import Session
    from opd_fallback.tui.values import (
        Account,
        CashSummary,
        ClockReport,
        CollectionDesk,
        PatientHit,
        PaymentInput,
        PossibleMatch,
        ReviewService,
    )

# the patient as the registration form typed it (field -> parsed value)
PatientFields = dict[str, object]
# a waiver's approving supervisor: (ID, PIN), checked at the save
Approver = tuple[str, str]


class Summary(TypedDict, total=False):
    """What a save tells the clerk (each save fills its own)."""

    token: int  # a visit's token, printed large on the slip
    receipt: str | None  # the receipt number, if money was taken
    sample: str  # a lab order's first sample id ("+2" for more tubes)
    tubes: int
    amount_paise: int  # a billing payment
    labels: int  # tube labels printed with it


@dataclass(frozen=True)
class Saved:
    """The outcome of a save: what to tell the clerk, and what to print."""

    ref: str
    summary: Summary
    docs: list[Document] = field(default_factory=list)


@dataclass(frozen=True)
class QueueRow:
    seq: int
    kind: str
    state: str
    record_ref: str | None
    recorded_at: str
    reason: str


class PaymentInfo(TypedDict):
    """A payment found by its receipt number (the void screen shows it before the void)."""

    receipt_no: str
    local_ref: str
    patient_name: str
    amount_paise: int
    mode: str
    created_at: str
    voided: bool


class StatusInfo(TypedDict, total=False):
    """The status bar's counts (``StatusModel``'s fields of the same names)."""

    ops_waiting: int
    oldest_age_s: float | None
    ops_flagged: int
    lan_conflicts: int
    last_sync: str | None
    clock_off: str | None
    clock_confirmed: bool
    central: bool
    probed: bool


class CounterBackend(Protocol):
    """Everything the counter's screens ask of the store (see the module doc)."""

    device_id: str
    hospital: str
    district: str | None  # the hospital's: the registration form's default
    state: str | None

    # operators
    def verify_operator(self, operator_id: str, pin: str, purpose: str = "login") -> Session: ...
    def verify_supervisor(self, operator_id: str, pin: str) -> Session: ...

    # master data
    def departments(self) -> list[Department]: ...
    def opd_fee(self, visit_type: str, category: str) -> FeeQuote | None: ...
    def find_tests(self, query: str, *, limit: int = 5) -> list[Test]: ...

    # saves (each one transaction: the records and their ops)
    def register_new(self, session: Session, patient: PatientFields, *, department: str, unit: str | None,
                     payment: PaymentInput | None, approver: Approver | None = None) -> Saved: ...
    def revisit(self, session: Session, hit: PatientHit, *, department: str, unit: str | None,
                payment: PaymentInput | None, category: str = "general",
                approver: Approver | None = None) -> Saved: ...
    def lab_request(self, session: Session, hit: PatientHit, visit: str, tests: list[str], *,
                    payment: PaymentInput | None, priority: str = "routine",
                    approver: Approver | None = None) -> Saved: ...
    def pay_order(self, session: Session, order_ref: str, payment: PaymentInput,
                  approver: Approver | None = None) -> Saved: ...
    def void(self, session: Session, receipt_no: str, reason: str, supervisor_id: str,
             supervisor_pin: str) -> Saved: ...
    def reprint(self, session: Session, doc: Document) -> Document: ...

    # reads
    def search_patients(self, query: str, *, limit: int = 20) -> list[PatientHit]: ...
    def possible_duplicates(self, patient: PatientFields) -> list[PossibleMatch]: ...
    def todays_visit(self, hit: PatientHit) -> str | None: ...
    def account(self, hit: PatientHit) -> Account: ...
    def find_payment(self, key: str) -> PaymentInfo | None: ...
    def queue_page(self, states: list[str] | None, offset: int, limit: int) -> tuple[list[QueueRow], int]: ...
    def cash_summary_doc(self, session: Session) -> tuple[CashSummary, Document]: ...
    def status(self) -> StatusInfo: ...

    # the clock (application/clock.py): the last measure, and a supervisor's confirmation (PIN, audited)
    def clock_report(self) -> ClockReport: ...
    def confirm_clock(self, supervisor_id: str, pin: str) -> ClockReport: ...

    # the desks with a service of their own
    def review(self) -> ReviewService: ...
    def collection(self) -> CollectionDesk: ...

    # the words of a storage failure (a full disk, a damaged file) name the store's file
    def storage_path(self) -> str | None: ...
