"""The papers as the printer gets them: golden images (Devanagari shaped),
every barcode decoded back by a real decoder (zxing-cpp), one sample id per
tube, the ESC/POS stream of a label, ZPL/TSPL, and the DUPLICATE/VOIDED marks.

Regenerate the golden files after an intended change of layout with
``OPD_REGOLDEN=1 pytest tests/printing/test_paper.py`` and look at them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import zxingcpp
from escpos.printer import Dummy
from PIL import Image, ImageChops
from typer.testing import CliRunner

from opd_fallback.application.printouts import REPRINT_ACTION, WAIVER_ACTION, Printouts
from opd_fallback.application.services import CounterService, PaymentInput
from opd_fallback.domain.errors import DomainError
from opd_fallback.printing import templates as T
from opd_fallback.printing.escpos import EscposPrinter
from opd_fallback.printing.fonts import shaping_available
from opd_fallback.printing.labelcode import to_tspl, to_zpl
from opd_fallback.printing.raster import LABEL_H, LABEL_W, ThermalLayout, label_image
from opd_fallback.printing.text import render_text
from opd_fallback.store import Store, audit
from opd_fallback.store.operators import add_operator
from tests.conftest import SMALL_MASTER_DATA

GOLDEN = Path(__file__).parent / "golden"
HINDI = "श्रीकृष्ण त्रिपाठी"
WHEN = "2026-11-26T10:32:11+05:30"
FOUR_TUBES = {
    **SMALL_MASTER_DATA,
    "tests": [
        {"code": "CBC", "name": "Complete Blood Count", "sample_type": "EDTA", "price_paise": 15000},
        {"code": "LFT", "name": "Liver Function Tests", "sample_type": "Serum", "price_paise": 40000},
        {"code": "KFT", "name": "Kidney Function Tests", "sample_type": "Serum", "price_paise": 40000},
        {"code": "FBS", "name": "Fasting Blood Sugar", "sample_type": "Fluoride", "price_paise": 5000},
        {"code": "URE", "name": "Urine Routine", "sample_type": "Urine", "price_paise": 3000},
        {"code": "PT", "name": "Prothrombin Time", "sample_type": "Citrate", "price_paise": 20000},
    ],
}
PATIENT = {"name": "Shrikrishna Tripathi", "name_local": HINDI, "sex": "M", "age_years": 0, "age_months": 8,
           "guardian_relation": "S/O", "guardian_name": "Ram Tripathi", "mobile": "9839012345", "category": "bpl"}


def _slip() -> T.Document:
    return T.opd_slip(
        hospital="KGMU Lucknow", device_id="C07", offline_no="C07-261126-000042", name="Shrikrishna Tripathi",
        name_local=HINDI, sex="M", age=(0, 8, None), department="MED", unit="U1", token_no=17,
        visit_type="new", recorded_at=WHEN, operator_id="op-1", guardian=T.guardian_line("W/O", "Ram Tripathi"),
        mobile="9839012345", fee_paise=1000, receipt_no="C07-R000043", patient_ref="C07-261126-000041",
        category="bpl", department_name="General Medicine", department_name_local="सामान्य चिकित्सा")


def _receipt() -> T.Document:
    return T.receipt(
        hospital="KGMU Lucknow", device_id="C07", receipt_no="C07-R000043", patient_name="Shrikrishna Tripathi",
        patient_ref="C07-261126-000041", patient_name_local=HINDI, visit_no="C07-261126-000042",
        items=[T.LineItem("OPD-NEW", "OPD registration (new patient)", 1000),
               T.LineItem("CBC", "Complete blood count with ESR and peripheral smear", 25000)],
        amount_paise=26000, mode="cash", mode_ref=None, recorded_at=WHEN, operator_id="op-1")


def _labels() -> list[T.Document]:
    return T.tube_labels(
        order_no="C07-261126-000044", patient_name="Shrikrishna Tripathi", patient_name_local=HINDI,
        patient_ref="C07-261126-000041", age_sex="8M/M", recorded_at=WHEN,
        tubes=[T.Tube("C07-S000044-1", "EDTA", ["CBC"]), T.Tube("C07-S000044-2", "Serum", ["LFT", "KFT"])])


def _decode(img: Image.Image) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(img.convert("L"))]


def _same_as_golden(img: Image.Image, name: str, tolerance: float = 0.0005, *, may_write: bool = True) -> None:
    """The picture equals the checked-in one but for a few pixels (font hinting)."""
    path = GOLDEN / name
    if may_write and os.environ.get("OPD_REGOLDEN") == "1":
        img.save(path, optimize=True)
    golden = Image.open(path).convert("1")
    assert golden.size == img.size, f"{name}: size {img.size}, golden {golden.size}"
    diff = ImageChops.logical_xor(golden.convert("1"), img.convert("1"))
    changed = diff.convert("L").histogram()[255]
    assert changed / (img.width * img.height) <= tolerance, f"{name}: {changed} pixels differ from the golden image"


def test_pillow_shapes_devanagari_with_raqm() -> None:
    # without raqm (a Pillow without it, or no libfribidi) conjuncts and matras print broken
    assert shaping_available()


@pytest.mark.parametrize(("name", "build"), [("slip.png", _slip), ("receipt.png", _receipt),
                                             ("label.png", lambda: _labels()[0])])
def test_papers_match_the_golden_images(name: str, build: Callable[[], T.Document]) -> None:
    _same_as_golden(ThermalLayout(42).render(build()), name)


def test_the_golden_check_sees_a_wrongly_shaped_name() -> None:
    # the same slip with the name's letters unshaped (pre-base i-matra after its consonant) is not the slip
    wrong = _slip()
    wrong.blocks = [b if b.text != HINDI else T.Block("text", "श्रीकृष्ण तरिपाठी", bold=True) for b in wrong.blocks]
    with pytest.raises(AssertionError, match="differ"):
        _same_as_golden(ThermalLayout(42).render(wrong), "slip.png", may_write=False)


def test_slip_and_receipt_qr_and_barcodes_decode() -> None:
    assert _decode(ThermalLayout(42).render(_slip())) == ["C07-261126-000042"]
    for doc in _labels():
        img = label_image(doc)
        assert img.size == (LABEL_W, LABEL_H) == (400, 200)  # 50 x 25 mm at 203 dpi
        assert _decode(img) == [doc.ref]


def test_receipt_item_names_wrap_never_cut_mid_word() -> None:
    text = render_text(_receipt(), 42)
    assert "peripheral smear (CBC)" in text and "OPD registration (new patient)" in text
    for word in ["Complete", "blood", "count", "with", "ESR", "and", "peripheral", "smear"]:
        assert f" {word} " in f" {text.replace(chr(10), ' ')} "


def test_label_escpos_stream_is_the_recorded_one_and_python_escpos_own() -> None:
    doc = _labels()[0]
    ours = Dummy()
    EscposPrinter(lambda: ours).print_document(doc)
    reference = Dummy()  # what python-escpos itself sends for the label picture and a cut
    reference.image(label_image(doc), impl="bitImageRaster", center=False)
    reference.cut()
    assert ours.output == reference.output
    # GS v 0, mode 0, 50 bytes (400 dots) a row, 200 rows
    assert ours.output.count(b"\x1dv0\x00" + (50).to_bytes(2, "little") + (200).to_bytes(2, "little")) == 1
    recorded = GOLDEN / "label.escpos.bin"
    if os.environ.get("OPD_REGOLDEN") == "1":
        recorded.write_bytes(ours.output)
    assert ours.output == recorded.read_bytes()


def test_label_in_zpl_and_tspl() -> None:
    doc = _labels()[1]
    zpl = to_zpl(doc).decode()
    assert zpl.startswith("^XA") and zpl.rstrip().endswith("^XZ") and "^PW400" in zpl
    assert "^BY2^BCN,52,Y,N,N^FDC07-S000044-2^FS" in zpl
    assert "^GFA," in zpl  # the Hindi name as a graphic
    assert "LFT KFT" in zpl and "Shrikrishna Tripathi" in zpl
    tspl = to_tspl(doc)
    assert tspl.startswith(b"SIZE 50 mm,25 mm\r\n") and tspl.endswith(b"PRINT 1,1\r\n")
    assert b'BARCODE 8,8,"128",52,1,0,2,2,"C07-S000044-2"' in tspl and b"BITMAP " in tspl


def _lab_order(store: Store, with_master_data: Callable[..., None]) -> tuple[CounterService, str, list[str]]:
    with_master_data(store, FOUR_TUBES)
    svc = CounterService(store, "C07")
    reg = svc.register_new("op-1", PATIENT, department="MED", payment=PaymentInput(mode="cash"))
    lab = svc.lab_request("op-1", reg.patient.local_ref, reg.visit.local_ref, ["CBC", "LFT", "FBS", "URE", "KFT"],
                          payment=PaymentInput(mode="cash"))
    return svc, lab.order.local_ref, [t["sample_id"] for t in lab.order.extra["samples"]]


def test_four_tubes_four_ids_each_label_scans_to_its_own(store: Store, with_master_data: Callable[..., None]) -> None:
    svc, order_ref, ids = _lab_order(store, with_master_data)
    assert len(ids) == len(set(ids)) == 4  # EDTA, serum (LFT + KFT), fluoride, urine
    docs = Printouts(store, device_id="C07", hospital="KGMU", svc=svc).for_record(order_ref)
    assert [d.kind for d in docs] == ["receipt", "labels", "labels", "labels", "labels"]
    layout = ThermalLayout(42)
    assert [_decode(layout.render(d)) for d in docs[1:]] == [[i] for i in ids]
    # the sample id of one tube finds its own label
    (label,) = Printouts(store, device_id="C07", hospital="KGMU", svc=svc).for_record(ids[2])
    assert label.ref == ids[2]


def test_papers_print_the_patient_as_registered(store: Store, with_master_data: Callable[..., None]) -> None:
    with_master_data(store)
    svc = CounterService(store, "C07")
    reg = svc.register_new("op-1", {**PATIENT, "guardian_relation": "W/O", "sex": "F"}, department="MED",
                           payment=PaymentInput(mode="cash"))
    again = svc.revisit("op-1", reg.patient.local_ref, department="SURG", payment=None)
    (slip,) = Printouts(store, device_id="C07", hospital="KGMU", svc=svc).for_record(again.visit.local_ref)
    text = render_text(slip)
    assert "W/O Ram Tripathi" in text and "C/O" not in text
    assert "8M / F" in text and HINDI in text and "BPL" in text
    assert f"Patient no.{' ' * 10}" in text and reg.patient.local_ref in text
    assert "Visit no." in text and again.visit.local_ref in text
    (hit,) = svc.search_patients("9839012345")
    assert hit.age_sex == "8M/F"
    with pytest.raises(DomainError, match="is a patient's number; give the visit number"):
        Printouts(store, device_id="C07", hospital="KGMU", svc=svc).for_record(reg.patient.local_ref)


def test_reprints_say_duplicate_and_a_voided_receipt_says_voided(
    store: Store, with_master_data: Callable[..., None]
) -> None:
    with_master_data(store)
    add_operator(store, "sup-9", "Meena", "246802", role="supervisor")
    svc = CounterService(store, "C07")
    reg = svc.register_new("op-1", PATIENT, department="MED", payment=PaymentInput(mode="cash"))
    assert reg.payment is not None
    printouts = Printouts(store, device_id="C07", hospital="KGMU", svc=svc)
    slip, receipt = printouts.for_record(reg.visit.local_ref)
    again = render_text(printouts.reprint("op-2", slip))
    assert again.count("DUPLICATE") == 2 and "by op-2" in again and "VOIDED" not in again
    svc.void("op-1", reg.payment.extra["receipt_no"], "wrong patient", approved_by="sup-9")
    voided = printouts.reprint("op-2", receipt)
    text = render_text(voided)
    assert "V O I D E D" in text and "Reason: wrong patient" in text and "approved by sup-9" in text
    assert "DUPLICATE" in text and "by op-2" in text
    # a reprint of that reprint is marked once, not twice
    assert render_text(printouts.reprint("op-3", voided)).count("DUPLICATE") == 2
    with store.read() as s:
        entries = audit.history(s, action_prefix=REPRINT_ACTION)
    assert [(e.actor, e.subject) for e in entries] == [
        ("op-3", receipt.ref), ("op-2", receipt.ref), ("op-2", slip.ref)]


def test_a_waived_receipt_shows_the_reason_and_approver(store: Store, with_master_data: Callable[..., None]) -> None:
    with_master_data(store)
    svc = CounterService(store, "C07")
    reg = svc.register_new("op-1", PATIENT, department="MED", payment=PaymentInput(mode="waived", amount_paise=0))
    assert reg.payment is not None
    with store.write() as s:  # what the waiver service writes when a supervisor approves one
        audit.record(s, "op-1", WAIVER_ACTION, reg.payment.local_ref, reason="destitute, no attendant",
                     approved_by="sup-9")
    (receipt,) = Printouts(store, device_id="C07", hospital="KGMU", svc=svc).for_record(
        reg.payment.extra["receipt_no"])
    assert "WAIVED (destitute, no attendant; approved by sup-9)" in render_text(receipt, 80)


def test_preview_writes_one_png_per_paper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          with_master_data: Callable[..., None]) -> None:
    from opd_fallback.cli import app
    from opd_fallback.store import open_store

    runner = CliRunner()
    data = tmp_path / "counter"
    assert runner.invoke(app, ["--data-dir", str(data), "init", "--device", "C07", "--hospital", "KGMU"]).exit_code == 0
    store = open_store(data / "counter.db")
    try:
        _, order_ref, ids = _lab_order(store, with_master_data)
    finally:
        store.close()
    out = tmp_path / "png"
    res = runner.invoke(app, ["--data-dir", str(data), "preview", order_ref.lower(), "--out", str(out)])
    assert res.exit_code == 0, res.output
    files = sorted(out.glob("*.png"))
    assert [f.name.split("-", 2)[1] for f in files] == ["receipt"] + ["labels"] * 4
    assert [_decode(Image.open(f)) for f in files[1:]] == [[i] for i in ids]
    assert all(f.stat().st_mode & 0o077 == 0 for f in files)
    missing = runner.invoke(app, ["--data-dir", str(data), "preview", "C07-261126-999999", "--out", str(out)])
    assert missing.exit_code == 1 and "no visit, lab order, receipt or sample" in missing.output


def test_pdf_embeds_the_devanagari_font_and_shapes_with_harfbuzz(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import fpdf

    from opd_fallback.printing.pdf import PdfPrinter

    shaped: list[bool] = []
    real = fpdf.FPDF.set_text_shaping

    def spy(self: fpdf.FPDF, use_shaping_engine: bool = True, **kw: object) -> None:
        shaped.append(use_shaping_engine)
        real(self, use_shaping_engine, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(fpdf.FPDF, "set_text_shaping", spy)
    printer = PdfPrinter(tmp_path, command=None)
    printer.print_document(_slip())
    printer.print_document(_labels()[0])
    assert shaped == [True, True]
    for path in printer.printed:
        data = path.read_bytes()
        assert data.startswith(b"%PDF") and b"NotoSansDevanagari" in data
