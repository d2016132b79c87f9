"""ESC/POS thermal printers (USB, serial or network) through python-escpos.

Thermal printers have no Devanagari glyphs: lines in other scripts are left
out on paper (the Latin name is always printed); the QR code and barcodes use
the printer's own generators so they scan reliably.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opd_fallback.printing.base import PrintError
from opd_fallback.printing.document import Block, Document
from opd_fallback.printing.settings import PrinterSettings
from opd_fallback.printing.text import render_block


def _printable(text: str) -> str:
    """Keep what a code-page printer can print; drop other scripts."""
    out = "".join(ch if ord(ch) < 128 else ("Rs." if ch == "₹" else "") for ch in text)
    return out.rstrip()


class EscposPrinter:
    """Opens the connection per document (a printer switched off and on again
    just works on the next print) and always closes it."""

    def __init__(self, connect: Callable[[], Any], *, width: int = 42) -> None:
        self._connect = connect
        self.width = width

    @classmethod
    def from_settings(cls, s: PrinterSettings) -> EscposPrinter:
        def connect() -> Any:
            from escpos import printer as ep

            if s.target == "escpos-usb":
                return ep.Usb(s.usb_vendor, s.usb_product, timeout=int(s.timeout_s * 1000))
            if s.target == "escpos-serial":
                return ep.Serial(devfile=s.serial_port, baudrate=s.serial_baud, timeout=s.timeout_s)
            return ep.Network(s.host, port=s.port, timeout=s.timeout_s)

        return cls(connect, width=s.width_chars)

    def print_document(self, doc: Document) -> None:
        try:
            p = self._connect()
            # python-escpos opens lazily on some connections; make it explicit.
            if hasattr(p, "open") and getattr(p, "device", None) is None:
                p.open()
        except Exception as exc:  # drivers raise many kinds (USBError, OSError, serial...)
            raise PrintError(f"printer not reachable: {exc}") from exc
        try:
            for block in doc.blocks:
                self._block(p, block)
            if not doc.blocks or doc.blocks[-1].kind != "cut":
                p.cut()
        except PrintError:
            raise
        except Exception as exc:
            raise PrintError(f"printing stopped: {exc} (check paper and cover)") from exc
        finally:
            try:
                p.close()
            except Exception:
                pass

    def _block(self, p: Any, block: Block) -> None:
        if block.kind == "qr":
            p.set(align="center")
            p.qr(block.text, size=6, center=False)
            p.set(align="left")
            return
        if block.kind == "barcode":
            p.set(align="center")
            p.barcode(block.text, "CODE128", height=64, width=2, pos="BELOW", function_type="B")
            p.set(align="left")
            return
        if block.kind == "cut":
            p.cut()
            return
        if block.kind == "big":
            p.set(align="center", bold=True, double_height=True, double_width=True)
            p.text(_printable(block.text) + "\n")
            p.set(align="left", normal_textsize=True, bold=False)
            return
        if block.bold:
            p.set(bold=True)
        for line in render_block(block, self.width):
            text = _printable(line)
            if text or not line:
                p.text(text + "\n")
        if block.bold:
            p.set(bold=False)
