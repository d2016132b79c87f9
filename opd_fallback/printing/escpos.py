"""ESC/POS thermal printers (USB, serial or network) through python-escpos.

The printer's code page has no Devanagari, so the document goes out as the
plan of ``raster.ThermalLayout``: ASCII lines as text, lines that need
Devanagari (shaped by Pillow with raqm) and the barcodes and QR codes as
raster images (GS v 0). The preview PNG is drawn from the same plan.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from opd_fallback.printing.base import PrintError
from opd_fallback.printing.document import Document
from opd_fallback.printing.raster import Cut, ImageLine, Piece, TextLine, ThermalLayout
from opd_fallback.printing.settings import PrinterSettings

if TYPE_CHECKING:
    from PIL import Image


class _Profile(Protocol):
    profile_data: dict[str, dict[str, dict[str, object]]]


class EscposDevice(Protocol):
    """What this module uses of a python-escpos printer object (the library ships no types)."""

    profile: _Profile

    def cut(self) -> None: ...
    def image(self, img_source: Image.Image, *, impl: str, center: bool) -> None: ...
    def set(self, **settings: str | bool) -> None: ...
    def text(self, txt: str) -> None: ...
    def close(self) -> None: ...


def send_pieces(p: EscposDevice, pieces: list[Piece]) -> None:
    """Write a plan to a python-escpos printer object (a Dummy in tests)."""
    _tell_width(p, max((x.image.width for x in pieces if isinstance(x, ImageLine)), default=0))
    for piece in pieces:
        if isinstance(piece, Cut):
            p.cut()
        elif isinstance(piece, ImageLine):
            p.image(piece.image, impl="bitImageRaster", center=False)
        elif isinstance(piece, TextLine):
            if piece.big:
                p.set(align="center", bold=True, double_height=True, double_width=True)
                p.text(piece.text + "\n")
                p.set(align="left", normal_textsize=True, bold=False)
                continue
            if piece.bold:
                p.set(bold=True)
            p.text(piece.text.rstrip() + "\n")
            if piece.bold:
                p.set(bold=False)


def _tell_width(p: EscposDevice, dots: int) -> None:
    """Give this printer object a profile of its own that knows our paper's
    width in dots (python-escpos's shared generic profile does not, and says so
    with a print() on stdout, under the counter's screen, for every image)."""
    try:
        media = p.profile.profile_data["media"]["width"]
        if not dots or media.get("pixels", "Unknown") != "Unknown":
            return
        own = copy.copy(p.profile)
        own.profile_data = copy.deepcopy(p.profile.profile_data)
        own.profile_data["media"]["width"]["pixels"] = dots
        p.profile = own
    except (AttributeError, KeyError, TypeError):
        pass


class EscposPrinter:
    """Opens the connection per document (a printer switched off and on again
    just works on the next print) and always closes it."""

    def __init__(self, connect: Callable[[], EscposDevice], *, width: int = 42) -> None:
        self._connect = connect
        self.width = width

    @classmethod
    def from_settings(cls, s: PrinterSettings) -> EscposPrinter:
        def connect() -> EscposDevice:
            from escpos import printer as ep

            device: EscposDevice
            if s.target == "escpos-usb":
                device = ep.Usb(s.usb_vendor, s.usb_product, timeout=int(s.timeout_s * 1000))
            elif s.target == "escpos-serial":
                device = ep.Serial(devfile=s.serial_port, baudrate=s.serial_baud, timeout=s.timeout_s)
            else:
                device = ep.Network(s.host, port=s.port, timeout=s.timeout_s)
            return device

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
            send_pieces(p, ThermalLayout(self.width).plan(doc))
        except PrintError:
            raise
        except Exception as exc:
            raise PrintError(f"printing stopped: {exc} (check paper and cover)") from exc
        finally:
            try:
                p.close()
            except Exception:
                pass
