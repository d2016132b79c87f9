"""The counter's documents: OPD slip, receipt, sample labels, cash summary.

Each builder takes plain values (already saved in the store) and returns a
``Document``; nothing here reads the store or talks to a printer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from opd_fallback.domain.rules import age_label, format_paise
from opd_fallback.printing.document import Block, Document

OFFLINE_NOTE = "Recorded offline; will sync to HIS"


@dataclass(frozen=True, slots=True)
class LineItem:
    code: str
    name: str
    amount_paise: int
    qty: int = 1


def _age(years: int | None, months: int | None, days: int | None) -> str:
    return age_label(years, months, days)


def age_text(years: int | None, months: int | None = None, days: int | None = None) -> str:
    return _age(years, months, days)


def patient_no(uhid: str | None, local_ref: str | None) -> str:
    """The one way every paper shows the patient's number: the UHID when there
    is one, else the offline number the patient was registered under."""
    return uhid or local_ref or "-"


def _when(iso: str) -> str:
    return iso[:16].replace("T", " ")


def opd_slip(
    *,
    hospital: str,
    device_id: str,
    offline_no: str,
    name: str,
    name_local: str | None,
    sex: str,
    age: tuple[int | None, int | None, int | None],
    department: str,
    unit: str | None,
    token_no: int,
    visit_type: str,
    recorded_at: str,
    operator_id: str,
    uhid: str | None = None,
    guardian: str | None = None,
    mobile: str | None = None,
    fee_paise: int | None = None,
    receipt_no: str | None = None,
    patient_ref: str | None = None,
    category: str | None = None,
    department_name: str | None = None,
    department_name_local: str | None = None,
) -> Document:
    """The OPD slip the patient carries to the doctor: the visit number large,
    with a QR code of it so central staff can find the record later; the
    patient's number as on every other paper (``patient_no``)."""
    doc = Document("slip", offline_no, f"OPD slip {offline_no}", created_at=recorded_at)
    doc.text(hospital, align="center", bold=True).text(f"OPD SLIP - {visit_type.upper()}", align="center")
    doc.rule().text("Visit no.", align="center").big(offline_no).qr(offline_no)
    doc.pair("Patient no.", patient_no(uhid, patient_ref))
    doc.pair("Token", str(token_no), bold=True)
    doc.pair("Department", f"{department}{' / ' + unit if unit else ''}")
    names = [n for n in (department_name, department_name_local) if n]
    if names:  # where to go, in the patient's script too
        doc.text(" / ".join(names), align="right")
    doc.rule().text(name, bold=True)
    if name_local:
        doc.text(name_local, bold=True)
    doc.pair("Age / Sex", f"{_age(*age)} / {sex}")
    if category and category != "general":
        doc.pair("Category", category.upper(), bold=True)
    if guardian:
        doc.text(guardian)
    if mobile:
        doc.pair("Mobile", mobile)
    if fee_paise is not None:
        doc.pair("Fee", format_paise(fee_paise) + (f" ({receipt_no})" if receipt_no else ""))
    doc.rule().pair("Date", _when(recorded_at)).pair("Counter", f"{device_id} / {operator_id}")
    doc.text(OFFLINE_NOTE, align="center").cut()
    return doc


def guardian_line(relation: str | None, name: str | None) -> str | None:
    """``W/O Sita Ram`` as registered; without a known relation, just the name."""
    if not name:
        return None
    return f"{relation} {name}" if relation else f"Guardian: {name}"


def receipt(
    *,
    hospital: str,
    device_id: str,
    receipt_no: str,
    patient_name: str,
    patient_ref: str,
    items: Sequence[LineItem],
    amount_paise: int,
    mode: str,
    mode_ref: str | None,
    recorded_at: str,
    operator_id: str,
    patient_name_local: str | None = None,
    visit_no: str | None = None,
) -> Document:
    """Money receipt: every item (long names wrap), the total, the mode and its reference."""
    doc = Document("receipt", receipt_no, f"Receipt {receipt_no}", created_at=recorded_at)
    doc.text(hospital, align="center", bold=True).text("RECEIPT", align="center").rule()
    doc.pair("Receipt no.", receipt_no).pair("Patient no.", patient_ref)
    if visit_no:
        doc.pair("Visit no.", visit_no)
    doc.text(patient_name)
    if patient_name_local:
        doc.text(patient_name_local)
    doc.rule()
    for item in items:
        label = f"{item.name} ({item.code})" + (f" x{item.qty}" if item.qty != 1 else "")
        doc.pair(label, format_paise(item.amount_paise))
    doc.rule().pair("TOTAL", format_paise(amount_paise), bold=True)
    doc.pair("Paid by", mode.upper() + (f" {mode_ref}" if mode_ref else ""))
    doc.pair("Date", _when(recorded_at)).pair("Counter", f"{device_id} / {operator_id}")
    doc.text(OFFLINE_NOTE, align="center").cut()
    return doc


@dataclass(frozen=True, slots=True)
class Tube:
    """One tube of an order: its own sample id (the barcode) and its tests."""

    sample_id: str
    sample_type: str
    tests: Sequence[str]


def tube_labels(
    *,
    order_no: str,
    tubes: Sequence[Tube],
    patient_name: str,
    patient_name_local: str | None,
    patient_ref: str,
    age_sex: str,
    recorded_at: str,
    priority: str = "routine",
) -> list[Document]:
    """One 50 x 25 mm label per tube: the tube's sample id as a Code 128
    barcode, the patient's name (English and Hindi), age/sex, the order's
    offline number, the sample type and the tests. Lines in order of need:
    a label too small for all drops the last."""
    docs = []
    for tube in tubes:
        doc = Document("labels", tube.sample_id, f"Label {tube.sample_id} ({tube.sample_type})",
                       created_at=recorded_at)
        doc.barcode(tube.sample_id)
        doc.text(f"{patient_name}  {age_sex}", bold=True)
        if patient_name_local:
            doc.text(patient_name_local, bold=True)
        doc.text(f"{order_no}  {tube.sample_type.upper()}" + ("  URGENT" if priority == "urgent" else ""),
                 bold=priority == "urgent")
        doc.text(" ".join(tube.tests))
        doc.text(f"{patient_ref}  {recorded_at[8:10]}-{recorded_at[5:7]} {recorded_at[11:16]}")
        docs.append(doc)
    return docs


@dataclass(frozen=True, slots=True)
class ModeTotal:
    mode: str
    count: int
    total_paise: int


def cash_summary(
    *,
    hospital: str,
    device_id: str,
    operator_id: str,
    operator_name: str,
    day: str,
    modes: Sequence[ModeTotal],
    voids_count: int,
    voids_paise: int,
    printed_at: str,
    collected_paise: int | None = None,
    cash_in_hand_paise: int | None = None,
) -> Document:
    """Day-end handover: totals and counts by mode, voids, the cash to hand over."""
    doc = Document("cash_summary", f"{device_id}-{operator_id}-{day}", f"Cash summary {day}", created_at=printed_at)
    doc.text(hospital, align="center", bold=True).text("DAY-END CASH SUMMARY", align="center").rule()
    doc.pair("Date", day).pair("Counter", device_id).pair("Operator", f"{operator_name} ({operator_id})").rule()
    collected = 0
    for m in modes:
        doc.pair(f"{m.mode.upper()} ({m.count})", format_paise(m.total_paise))
        if m.mode != "waived":
            collected += m.total_paise
    doc.pair(f"Voided ({voids_count})", format_paise(voids_paise))
    if collected_paise is not None:
        collected = collected_paise
    doc.rule().pair("COLLECTED", format_paise(collected), bold=True)
    cash = next((m.total_paise for m in modes if m.mode == "cash"), 0)
    if cash_in_hand_paise is not None:
        cash = cash_in_hand_paise
    doc.pair("CASH TO HAND OVER", format_paise(cash), bold=True)
    doc.blank().text("Handed over by: ____________").blank().text("Received by:    ____________")
    doc.text(f"Printed {printed_at[:16].replace('T', ' ')}", align="right").cut()
    return doc


def mark_reprint(
    doc: Document,
    *,
    reprinted_at: str,
    operator_id: str,
    voided: tuple[str, str, str] | None = None,
) -> Document:
    """The document as reprinted: DUPLICATE with the reprint's time and
    operator, and for a voided receipt VOIDED with the void's reason, time and
    approving supervisor (``voided`` = reason, voided_at, supervisor). Marked at
    the top and again at the end, so half a torn slip still says it."""
    doc = unmark(doc)
    stamp = f"DUPLICATE {_when(reprinted_at)} by {operator_id}"
    if doc.kind == "labels":
        # a label has room for one line: it replaces the date line
        blocks = [*doc.blocks[:-1], Block("text", f"DUPLICATE {reprinted_at[8:10]}-{reprinted_at[5:7]} "
                                                  f"{reprinted_at[11:16]} {operator_id}", bold=True)]
        return Document(doc.kind, doc.ref, doc.title + " (duplicate)", blocks, doc.created_at, [0, 1])
    head: list[Block] = []
    if voided is not None:
        reason, voided_at, supervisor = voided
        head += [Block("big", "VOIDED", align="center", bold=True),
                 Block("text", f"Voided {_when(voided_at)}, approved by {supervisor}", align="center"),
                 Block("text", f"Reason: {reason}"),
                 Block("text", "NOT VALID AS A RECEIPT", align="center", bold=True)]
    head += [Block("text", "*** DUPLICATE ***", align="center", bold=True),
             Block("text", f"Reprinted {_when(reprinted_at)} by {operator_id}", align="center"),
             Block("rule")]
    body = list(doc.blocks)
    tail = [Block("rule"), Block("text", ("VOIDED - " if voided else "") + stamp, align="center", bold=True)]
    if body and body[-1].kind == "cut":
        body = body[:-1]
    blocks = [*head, *body, *tail, Block("cut")]
    title = doc.title + (" (VOIDED duplicate)" if voided else " (duplicate)")
    return Document(doc.kind, doc.ref, title, blocks, doc.created_at, [len(head), len(tail) + 1])


def unmark(doc: Document) -> Document:
    """The document without a reprint's marks (itself when it has none)."""
    if not doc.marks:
        return doc
    head, tail = doc.marks[0], doc.marks[1]
    title = doc.title.removesuffix(" (VOIDED duplicate)").removesuffix(" (duplicate)")
    if doc.kind == "labels":
        # the label's date line was replaced; the original is rebuilt from the store
        return Document(doc.kind, doc.ref, title, list(doc.blocks), doc.created_at)
    body = doc.blocks[head:len(doc.blocks) - tail]
    return Document(doc.kind, doc.ref, title, [*body, Block("cut")], doc.created_at)


def void_notice(
    *, hospital: str, receipt_no: str, amount_paise: int, reason: str, operator_id: str, supervisor_id: str, recorded_at: str
) -> Document:
    """A slip confirming a voided payment (kept with the cash)."""
    doc = Document("void", receipt_no, f"Void {receipt_no}", created_at=recorded_at)
    doc.text(hospital, align="center", bold=True).text("PAYMENT VOIDED", align="center").rule()
    doc.pair("Receipt no", receipt_no).pair("Amount", format_paise(amount_paise)).text(f"Reason: {reason}")
    doc.pair("By", f"{operator_id} (approved {supervisor_id})").pair("Date", recorded_at[:16].replace("T", " ")).cut()
    return doc
