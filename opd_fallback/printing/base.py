"""The printer interface and the factory that picks one from settings."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from opd_fallback.domain.exits import OpdError
from opd_fallback.printing.document import Document
from opd_fallback.printing.settings import PrinterSettings


class PrintError(OpdError):
    """The printer could not print. The record is already saved; the message
    says what to check (paper, cable, power) and the document can be reprinted."""


@runtime_checkable
class Printer(Protocol):
    """Anything that can put a document on paper (or in a file)."""

    def print_document(self, doc: Document) -> None:
        """Print or raise ``PrintError``. Blocking: call it from a worker thread."""
        ...


class NullPrinter:
    """Prints nothing (target ``none``): a counter without a printer still works."""

    def print_document(self, doc: Document) -> None:
        return None


class LabelRouter:
    """Sample labels to the label printer, everything else to the main one."""

    def __init__(self, main: Printer, labels: Printer) -> None:
        self.main, self.labels = main, labels

    def print_document(self, doc: Document) -> None:
        (self.labels if doc.kind == "labels" else self.main).print_document(doc)


def make_printer(settings: PrinterSettings, *, data_dir: Path | None = None) -> Printer:
    """Build the configured printer (and the label printer, when one is set)."""
    main = _main_printer(settings, data_dir=data_dir)
    if not settings.label_printer:
        return main
    from opd_fallback.printing.labelcode import LabelPrinter

    target = settings.label_target or ""
    if target.startswith("/"):
        label = LabelPrinter(settings.label_printer, device=Path(target), timeout_s=settings.timeout_s)
    else:
        host, _, port = target.partition(":")
        label = LabelPrinter(settings.label_printer, host=host or settings.host, port=int(port or 9100),
                             timeout_s=settings.timeout_s)
    return LabelRouter(main, label)


def _main_printer(settings: PrinterSettings, *, data_dir: Path | None = None) -> Printer:
    """Build the configured printer. Imports the heavy drivers only when used,
    so the counter starts fast."""
    directory = settings.directory or ((data_dir or Path.cwd()) / "prints")
    if settings.target == "file":
        from opd_fallback.printing.file import FilePrinter

        return FilePrinter(directory, width=settings.width_chars)
    if settings.target == "pdf":
        from opd_fallback.printing.pdf import PdfPrinter

        return PdfPrinter(
            directory,
            paper_mm=settings.paper_mm,
            command=settings.pdf_command or None,
            font_path=settings.font_path,
        )
    if settings.target.startswith("escpos-"):
        from opd_fallback.printing.escpos import EscposPrinter

        return EscposPrinter.from_settings(settings)
    return NullPrinter()
