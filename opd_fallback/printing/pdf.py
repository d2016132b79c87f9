"""The system printer: render the document as a PDF (fpdf2) sized to the
paper, then hand it to ``lp`` (or keep the file when no command is set)."""

from __future__ import annotations

import io
import shlex
import subprocess
from datetime import datetime
from pathlib import Path

from opd_fallback.printing.base import PrintError
from opd_fallback.printing.document import Document
from opd_fallback.printing.file import _UNSAFE

_FALLBACK_FONTS = (
    Path("/usr/share/fonts/truetype/noto/NotoSansDevanagari-Regular.ttf"),
    Path("/usr/share/fonts/truetype/lohit-devanagari/Lohit-Devanagari.ttf"),
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
)


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
        self.font_path = font_path or next((f for f in _FALLBACK_FONTS if f.exists()), None)
        self.printed: list[Path] = []

    def render(self, doc: Document) -> bytes:
        """The PDF bytes (no I/O besides reading the font)."""
        import segno
        from fpdf import FPDF

        margin = 4.0
        width = float(self.paper_mm)
        pdf = FPDF(orientation="P", unit="mm", format=(width, 297.0))
        pdf.set_margins(margin, margin, margin)
        pdf.set_auto_page_break(True, margin)
        pdf.add_page()
        family = "Helvetica"
        if self.font_path is not None:
            pdf.add_font("Body", "", str(self.font_path))
            family = "Body"
        inner = width - 2 * margin

        def safe(text: str) -> str:
            if family != "Helvetica":
                return text
            return text.replace("₹", "Rs.").encode("latin-1", "replace").decode("latin-1")

        for block in doc.blocks:
            if block.kind in ("text", "big"):
                size = 20 if block.kind == "big" else 9
                pdf.set_font(family, "", size)
                align = {"left": "L", "center": "C", "right": "R"}[block.align]
                pdf.multi_cell(inner, size * 0.45, safe(block.text), align=align, new_x="LMARGIN", new_y="NEXT")
            elif block.kind == "pair":
                pdf.set_font(family, "", 9)
                pdf.cell(inner * 0.65, 4.5, safe(block.text))
                pdf.cell(inner * 0.35, 4.5, safe(block.right), align="R", new_x="LMARGIN", new_y="NEXT")
            elif block.kind == "qr":
                buf = io.BytesIO()
                segno.make(block.text, error="m").save(buf, kind="png", scale=4, border=2)
                side = min(30.0, inner)
                pdf.image(io.BytesIO(buf.getvalue()), x=margin + (inner - side) / 2, w=side, h=side)
            elif block.kind == "barcode":
                h = 10.0
                y = pdf.get_y()
                pdf.code39(f"*{block.text.upper()}*", x=margin, y=y, w=0.25, h=h)
                pdf.set_y(y + h + 1)
                pdf.set_font(family, "", 8)
                pdf.cell(inner, 4, block.text, align="C", new_x="LMARGIN", new_y="NEXT")
            elif block.kind == "rule":
                y = pdf.get_y() + 1
                pdf.line(margin, y, width - margin, y)
                pdf.set_y(y + 1)
            elif block.kind in ("blank", "cut"):
                pdf.ln(4 if block.kind == "blank" else 8)
        return bytes(pdf.output())

    def print_document(self, doc: Document) -> None:
        try:
            data = self.render(doc)
        except Exception as exc:
            raise PrintError(f"could not make the PDF: {exc}") from exc
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        path = self.directory / f"{stamp}-{doc.kind}-{_UNSAFE.sub('_', doc.ref)}.pdf"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
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
