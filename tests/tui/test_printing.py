"""Printers render the same documents; a failing printer never raises past the spool."""

from __future__ import annotations

from pathlib import Path

import pytest
from escpos.printer import Dummy

from opd_fallback.printing import PrintError, PrinterSettings, make_printer
from opd_fallback.printing.document import Document
from opd_fallback.printing.escpos import EscposPrinter
from opd_fallback.printing.file import FilePrinter
from opd_fallback.printing.pdf import PdfPrinter
from opd_fallback.printing.spool import Spool, print_with_spool
from opd_fallback.printing.templates import ModeTotal, Tube, cash_summary, opd_slip, tube_labels


def _slip() -> Document:
    return opd_slip(
        hospital="KGMU", device_id="C07", offline_no="C07-261126-000042", name="Ram Kumar",
        name_local="राम कुमार", sex="M", age=(42, None, None), department="MED", unit=None,
        token_no=17, visit_type="new", recorded_at="2026-11-26T10:32:11+05:30", operator_id="op-1",
        fee_paise=1050,
    )


def test_file_printer_writes_slip_with_offline_number_and_devanagari(tmp_path: Path) -> None:
    printer = make_printer(PrinterSettings(target="file", directory=tmp_path, width_chars=32))
    printer.print_document(_slip())
    (path,) = tmp_path.glob("*-slip-*.txt")
    text = path.read_text(encoding="utf-8")
    assert "[QR C07-261126-000042]" in text
    assert "राम कुमार" in text and "₹10.50" in text
    assert max(len(line) for line in text.splitlines() if "राम" not in line) <= 32


def test_labels_one_per_tube_each_with_its_own_barcode() -> None:
    docs = tube_labels(
        order_no="C07-261126-000044", patient_name="Ram Kumar", patient_name_local="राम कुमार",
        patient_ref="C07-261126-000042", age_sex="42Y/M", recorded_at="2026-11-26T10:32:11+05:30",
        tubes=[Tube("C07-S000044-1", "blood", ["CBC", "LFT"]), Tube("C07-S000044-2", "urine", ["URE"])],
    )
    assert [[b.text for b in d.blocks if b.kind == "barcode"] for d in docs] == [["C07-S000044-1"], ["C07-S000044-2"]]
    assert "CBC LFT" in [b.text for b in docs[0].blocks]


def test_escpos_printer_sends_devanagari_as_an_image_and_ascii_as_text() -> None:
    dummy = Dummy()
    EscposPrinter(lambda: dummy).print_document(_slip())
    out = dummy.output
    assert b"C07-261126-000042" in out and b"Ram Kumar" in out
    assert "राम".encode() not in out  # the printer has no Devanagari glyphs...
    assert b"\x1dv0" in out  # ...so the name goes as a raster image (GS v 0), as do the QR code
    assert b"\x1dV" in out  # cut


def test_escpos_unreachable_is_a_print_error() -> None:
    def boom() -> Dummy:
        raise OSError("no such device")

    with pytest.raises(PrintError, match="not reachable"):
        EscposPrinter(boom).print_document(_slip())


def test_pdf_printer_makes_a_pdf(tmp_path: Path) -> None:
    summary = cash_summary(
        hospital="KGMU", device_id="C07", operator_id="op-1", operator_name="Asha", day="2026-11-26",
        modes=[ModeTotal("cash", 3, 3000), ModeTotal("upi", 1, 1000)], voids_count=0, voids_paise=0,
        printed_at="2026-11-26T18:00:00+05:30",
    )
    printer = PdfPrinter(tmp_path, command=None)
    printer.print_document(summary)
    printer.print_document(_slip())
    assert all(p.read_bytes().startswith(b"%PDF") for p in printer.printed)


def test_pdf_printer_reports_a_refused_job(tmp_path: Path) -> None:
    with pytest.raises(PrintError, match="refused"):
        PdfPrinter(tmp_path, command="false").print_document(_slip())
    assert len(list(tmp_path.glob("*.pdf"))) == 1  # the PDF is kept for a reprint


def test_spool_keeps_failed_document_for_reprint(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    bad = FilePrinter(tmp_path / "not-a-dir")
    (tmp_path / "not-a-dir").write_text("a file where the directory should be")
    errors = print_with_spool(bad, spool, [_slip()])
    assert errors and "could not write" in errors[0]
    (entry,) = spool.entries(query="000042")
    assert spool.entries(query="opd slip") == [entry]  # by title, which the file name lacks
    assert spool.entries(query="000043") == []
    assert not entry.printed and entry.error
    good = FilePrinter(tmp_path / "out")
    assert print_with_spool(good, spool, [spool.load(entry.path)]) == []
    assert len(good.printed) == 1
