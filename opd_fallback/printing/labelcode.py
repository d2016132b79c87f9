"""Sample labels in the languages of lab label printers: ZPL (Zebra) and TSPL
(TSC and most low-cost 203 dpi label printers).

The layout is ``raster.label_elements`` (50 x 25 mm, dots at 203 dpi): the
barcode is the printer's own Code 128 at the same module width and height,
ASCII lines are the printer's scalable font, and a line in Devanagari (which
no label printer has) is sent as a 1-bit graphic drawn by Pillow with raqm,
exactly as in the preview.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Literal

from PIL import Image, ImageOps

from opd_fallback.printing.base import PrintError
from opd_fallback.printing.document import Document
from opd_fallback.printing.raster import LABEL_H, LABEL_W, Placed, label_elements, needs_image, text_image

LabelLanguage = Literal["zpl", "tspl"]


def _glyphs(el: Placed) -> Image.Image:
    return text_image(el.text, width=el.width, size=el.size, bold=el.bold, height=int(el.size * 1.3))


def _packed(img: Image.Image, *, dark_is_one: bool) -> tuple[int, bytes]:
    """Rows of the 1-bit image packed 8 dots a byte, MSB first; returns
    (bytes per row, data). ZPL wants 1 = black, TSPL 0 = black."""
    grey = img.convert("L")
    if dark_is_one:
        grey = ImageOps.invert(grey)
    one = grey.convert("1", dither=Image.Dither.NONE)
    return (one.width + 7) // 8, one.tobytes()


def _ascii(text: str) -> str:
    return text.replace("₹", "Rs.").replace("…", "~").encode("ascii", "replace").decode("ascii")


def to_zpl(doc: Document) -> bytes:
    """One ``^XA … ^XZ`` label."""
    out = ["^XA", "^CI28", f"^PW{LABEL_W}", f"^LL{LABEL_H}", "^LH0,0"]
    for el in label_elements(doc):
        if el.kind == "barcode":
            # ^BY module width; ^BC normal orientation, height, human-readable line below
            out.append(f"^FO{el.x},{el.y}^BY{el.module}^BCN,{el.size},Y,N,N^FD{_zpl_field(el.text)}^FS")
        elif needs_image(el.text):
            row_bytes, data = _packed(_glyphs(el), dark_is_one=True)
            total = len(data)
            out.append(f"^FO{el.x},{el.y}^GFA,{total},{total},{row_bytes},{data.hex().upper()}^FS")
        else:
            font = "^A0N,{0},{0}".format(el.size + 2)
            out.append(f"^FO{el.x},{el.y + 3}{font}^FB{el.width},1,0,L^FD{_zpl_field(_ascii(el.text))}^FS")
    out.append("^XZ")
    return ("\n".join(out) + "\n").encode("utf-8")


def _zpl_field(text: str) -> str:
    # ^ and ~ start commands in ZPL; the label's ids and names have no use for them
    return text.replace("^", " ").replace("~", "-")


def to_tspl(doc: Document) -> bytes:
    """One label in TSPL (SIZE/GAP in mm, positions in dots)."""
    head = [f"SIZE {LABEL_W // 8} mm,{LABEL_H // 8} mm", "GAP 2 mm,0 mm", "DIRECTION 1", "CLS"]
    body: list[bytes] = [("\r\n".join(head) + "\r\n").encode("ascii")]
    for el in label_elements(doc):
        if el.kind == "barcode":
            cmd = f'BARCODE {el.x},{el.y},"128",{el.size},1,0,{el.module},{el.module},"{_tspl_field(el.text)}"'
            body.append((cmd + "\r\n").encode("ascii"))
        elif needs_image(el.text):
            img = _glyphs(el)
            row_bytes, data = _packed(img, dark_is_one=False)
            body.append(f"BITMAP {el.x},{el.y},{row_bytes},{img.height},0,".encode("ascii") + data + b"\r\n")
        else:
            # font "0" is TSPL's scalable font; its size is given in points (x, y multipliers)
            pts = max(6, round(el.size * 72 / 203 * 1.2))
            text = _tspl_field(_ascii(el.text))
            body.append(f'TEXT {el.x},{el.y + 2},"0",0,{pts},{pts},"{text}"\r\n'.encode("ascii"))
    body.append(b"PRINT 1,1\r\n")
    return b"".join(body)


def _tspl_field(text: str) -> str:
    return text.replace('"', "'")


def encode_label(doc: Document, language: LabelLanguage) -> bytes:
    return to_zpl(doc) if language == "zpl" else to_tspl(doc)


class LabelPrinter:
    """A ZPL or TSPL label printer on the network (raw port 9100) or a device
    file (``/dev/usb/lp0``). Only sample labels go here."""

    def __init__(self, language: LabelLanguage, *, host: str | None = None, port: int = 9100,
                 device: Path | None = None, timeout_s: float = 5.0) -> None:
        self.language = language
        self.host, self.port, self.device, self.timeout_s = host, port, device, timeout_s

    def print_document(self, doc: Document) -> None:
        if doc.kind != "labels":
            raise PrintError(f"the label printer prints sample labels only, not a {doc.kind}")
        try:
            data = encode_label(doc, self.language)
        except Exception as exc:
            raise PrintError(f"could not make the label: {exc}") from exc
        try:
            if self.device is not None:
                with open(self.device, "wb") as fh:
                    fh.write(data)
            else:
                with socket.create_connection((self.host or "", self.port), timeout=self.timeout_s) as sock:
                    sock.settimeout(self.timeout_s)
                    sock.sendall(data)
        except OSError as exc:
            raise PrintError(f"label printer not reachable: {exc.strerror or exc} (check power, cable, labels)") \
                from exc
