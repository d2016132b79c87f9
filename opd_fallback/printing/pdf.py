"""The system printer: render the document as a PDF (fpdf2) sized to the
paper, then hand it to ``lp`` (or keep the file when no command is set).

Text uses the shipped Noto Sans Devanagari (``fonts.devanagari_font``) with
fpdf2's text shaping (HarfBuzz through uharfbuzz), so Hindi names and the
day-end summary print with correct conjuncts and matras. Sample labels get a
50 x 25 mm page each; barcodes are Code 128 drawn bar by bar.
"""

from __future__ import annotations

import io
import shlex
import subprocess
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from opd_fallback.config import private_dir, write_private
from opd_fallback.printing.base import PrintError
from opd_fallback.printing.document import Document
from opd_fallback.printing.file import _UNSAFE
from opd_fallback.printing.fonts import devanagari_font

if TYPE_CHECKING:
    from fpdf import FPDF


class PdfPrinter:
    """One PDF per document in ``directory``; ``command`` (e.g. ``lp``) gets its path."""

    def __init__(
        self,
        directory: Path,
        *,
        paper_mm: int = 80,
        command: str | None = "lp",
        font_path: Path | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.paper_mm = paper_mm
        self.command = command
        self.font_path = font_path
        self.printed: list[Path] = []

    def _fonts(self, pdf: FPDF) -> str:
        # The variable Noto font is embedded as is: its outlines are the regular
        # weight (instancing a bold with fontTools takes seconds a print), and
        # bold is drawn by stroking the glyphs' outline as well as filling them.
        pdf.add_font("Body", "", str(devanagari_font(self.font_path)))
        pdf.set_text_shaping(True)
        return "Body"

    @staticmethod
    def _weight(pdf: FPDF, size: float, bold: bool) -> AbstractContextManager[None]:
        """Bold as the glyphs filled and stroked, in a graphics state of its own."""
        if not bold:
            return nullcontext()
        bold_state: AbstractContextManager[None] = pdf.local_context(text_mode="FILL_STROKE",
                                                                     line_width=size * 0.025)
        return bold_state

    def render(self, doc: Document) -> bytes:
        """The PDF bytes (no I/O besides reading the font)."""
        import segno
        from fpdf import FPDF

        label = doc.kind == "labels"
        margin = 1.5 if label else 4.0
        width = 50.0 if label else float(self.paper_mm)
        pdf = FPDF(orientation="P", unit="mm", format=(width, 25.0 if label else 297.0))
        pdf.set_margins(margin, margin, margin)
        pdf.set_auto_page_break(not label, margin)
        pdf.add_page()
        family = self._fonts(pdf)
        inner = width - 2 * margin
        body = 6.0 if label else 9.0

        for block in doc.blocks:
            if block.kind in ("text", "big"):
                size = 20 if block.kind == "big" else body
                pdf.set_font(family, "", size)
                align = {"left": "L", "center": "C", "right": "R"}[block.align]
                with self._weight(pdf, size, block.bold or block.kind == "big"):
                    if label:
                        pdf.cell(inner, size * 0.41, block.text, align=align, new_x="LMARGIN", new_y="NEXT")
                    else:
                        pdf.multi_cell(inner, size * 0.45, block.text, align=align, new_x="LMARGIN", new_y="NEXT")
            elif block.kind == "pair":
                pdf.set_font(family, "", body)
                right_w = pdf.get_string_width(block.right) + 2
                y = pdf.get_y()
                with self._weight(pdf, body, block.bold):
                    pdf.multi_cell(inner - right_w, 4.5, block.text, new_x="LMARGIN", new_y="NEXT")
                    end = pdf.get_y()
                    pdf.set_xy(margin + inner - right_w, end - 4.5)
                    pdf.cell(right_w, 4.5, block.right, align="R")
                pdf.set_xy(margin, max(end, y + 4.5))
            elif block.kind == "qr":
                buf = io.BytesIO()
                segno.make(block.text, error="m").save(buf, kind="png", scale=4, border=2)
                side = min(30.0, inner)
                pdf.image(io.BytesIO(buf.getvalue()), x=margin + (inner - side) / 2, w=side, h=side)
            elif block.kind == "barcode":
                h = 6.0 if label else 10.0
                self._code128(pdf, block.text, y=pdf.get_y(), x0=margin, inner=inner, h=h)
                pdf.set_y(pdf.get_y() + h + 0.5)
                pdf.set_font(family, "", 7)
                pdf.cell(inner, 3, block.text, align="C", new_x="LMARGIN", new_y="NEXT")
            elif block.kind == "rule":
                y = pdf.get_y() + 1
                pdf.line(margin, y, width - margin, y)
                pdf.set_y(y + 1)
            elif block.kind in ("blank", "cut"):
                pdf.ln(4 if block.kind == "blank" else 8)
        return bytes(pdf.output())

    @staticmethod
    def _code128(pdf: FPDF, data: str, *, y: float, x0: float, inner: float, h: float) -> None:
        """Code 128 bars (python-barcode's pattern), 0.25 mm a module where it fits."""
        from opd_fallback.printing.raster import code128_modules

        bars = code128_modules(data)
        module = min(0.25, inner / (len(bars) + 20))
        x = x0 + (inner - module * len(bars)) / 2
        pdf.set_fill_color(0, 0, 0)
        run = 0
        for i, bit in enumerate(bars + "0"):
            if bit == "1":
                run += 1
            elif run:
                pdf.rect(x + (i - run) * module, y, run * module, h, style="F")
                run = 0

    def print_document(self, doc: Document) -> None:
        try:
            data = self.render(doc)
        except Exception as exc:
            raise PrintError(f"could not make the PDF: {exc}") from exc
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        path = self.directory / f"{stamp}-{doc.kind}-{_UNSAFE.sub('_', doc.ref)}.pdf"
        try:
            private_dir(self.directory)
            write_private(path, data)
        except OSError as exc:
            raise PrintError(f"could not save the PDF in {self.directory}: {exc.strerror or exc}") from exc
        self.printed.append(path)
        if self.command:
            try:
                done = subprocess.run(
                    [*shlex.split(self.command), str(path)], capture_output=True, timeout=30, check=False
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise PrintError(f"the system printer did not take the job: {exc}") from exc
            if done.returncode != 0:
                err = done.stderr.decode(errors="replace").strip()[:200]
                raise PrintError(f"the system printer refused the job: {err or done.returncode}")
