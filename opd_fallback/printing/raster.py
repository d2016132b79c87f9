"""What a thermal printer gets, as a plan of lines, and that plan as a picture.

A document becomes a list of pieces: plain ASCII lines stay text (the
printer's own font, fast), while a line that needs Devanagari is drawn here
with Pillow's raqm layout (conjuncts and matras shaped) and sent as a raster
image; barcodes and QR codes are drawn here too, at whole printer dots, so
what is printed is exactly what the preview shows and a test can decode it.
The ESC/POS printer sends the plan; ``render`` draws the same plan as a PNG
(the printer's 12 x 24 dot text cells) for ``opd-fallback preview`` and the
golden-image tests. A sample label is one 50 x 25 mm image (400 x 200 dots
at 203 dpi) laid out by ``label_elements``, which ZPL and TSPL also follow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from PIL import Image, ImageDraw

from opd_fallback.config import open_private, private_dir
from opd_fallback.printing.document import Block, Document
from opd_fallback.printing.fonts import pil_font
from opd_fallback.printing.text import render_block

if TYPE_CHECKING:
    from PIL.ImageFont import FreeTypeFont

    from opd_fallback.domain.jsonio import JSONObject

CELL_W, CELL_H = 12, 24  # ESC/POS font A, in dots
DOTS_PER_MM = 8  # 203 dpi
LABEL_W, LABEL_H = 50 * DOTS_PER_MM, 25 * DOTS_PER_MM
LABEL_MARGIN = 8
BARCODE_QUIET = 10  # modules of white each side (Code 128 asks for 10)


@dataclass(frozen=True, slots=True)
class TextLine:
    """An ASCII line (already aligned) sent as text in the printer's font."""

    text: str
    bold: bool = False
    big: bool = False


@dataclass(frozen=True, slots=True)
class ImageLine:
    """A full-width 1-bit image (Devanagari text, barcode, QR code or a label)."""

    image: Image.Image  # mode "1"


@dataclass(frozen=True, slots=True)
class Cut:
    pass


Piece = TextLine | ImageLine | Cut


def printable(text: str) -> str:
    """A line a code-page printer prints as text, or None-like '' test: ₹ becomes Rs."""
    return text.replace("₹", "Rs.")


def needs_image(text: str) -> bool:
    return any(ord(ch) >= 128 for ch in printable(text))


# --------------------------------------------------------------- barcodes / QR
def code128_modules(data: str) -> str:
    """The bar pattern ('1' bar, '0' space) of ``data`` in Code 128 (python-barcode
    picks the code sets: runs of digits go in set C, so ids stay short)."""
    import barcode

    return str(barcode.get("code128", data).build()[0])


def code128_image(data: str, *, max_width: int, height: int, module: int = 2, text_size: int = 18) -> Image.Image:
    """The barcode at whole dots (``module`` dots a bar, 1 if 2 would not fit),
    its quiet zones, and the id printed under it."""
    bars = code128_modules(data)
    while module > 1 and (len(bars) + 2 * BARCODE_QUIET) * module > max_width:
        module -= 1
    font = pil_font(text_size)
    total_h = height + text_size + 4
    img = Image.new("1", (max_width, total_h), 1)
    draw = ImageDraw.Draw(img)
    x0 = (max_width - len(bars) * module) // 2
    for i, bit in enumerate(bars):
        if bit == "1":
            draw.rectangle([x0 + i * module, 0, x0 + (i + 1) * module - 1, height - 1], fill=0)
    tw = draw.textlength(data, font=font)
    draw.text(((max_width - tw) / 2, height + 1), data, font=font, fill=0)
    return img


def qr_image(data: str, *, width: int, scale: int = 6) -> Image.Image:
    import segno

    qr = segno.make(data, error="m")
    size = int(qr.symbol_size(scale=scale, border=2)[0])
    img = Image.new("1", (width, size), 1)
    sym = Image.new("1", (size, size), 1)
    px = sym.load()
    assert px is not None
    for y, row in enumerate(qr.matrix_iter(scale=scale, border=2)):
        for x, dark in enumerate(row):
            if dark:
                px[x, y] = 0
    img.paste(sym, ((width - size) // 2, 0))
    return img


# ------------------------------------------------------------------- text lines
def _wrap_px(text: str, font: FreeTypeFont, width: int) -> list[str]:
    words, lines, line = text.split(" "), [], ""
    for word in words:
        cand = f"{line} {word}" if line else word
        if not line or font.getlength(cand) <= width:
            line = cand
        else:
            lines.append(line)
            line = word
    lines.append(line)
    return lines


def text_image(text: str, *, width: int, size: int = 24, bold: bool = False,
               align: str = "left", right: str = "", height: int | None = None) -> Image.Image:
    """One line of shaped text (and an optional right-aligned part) as a 1-bit
    image ``width`` dots wide. Devanagari sits a little taller than Latin, so
    the line is 1.5 x the size."""
    font = pil_font(size, bold)
    h = height or int(size * 1.5)
    img = Image.new("1", (width, h), 1)
    draw = ImageDraw.Draw(img)
    tw = font.getlength(text)
    x = {"center": (width - tw) / 2, "right": width - tw}.get(align, 0)
    top = (h - size) // 2 - size // 6
    draw.text((max(0, x), top), text, font=font, fill=0)
    if right:
        draw.text((width - font.getlength(right), top), right, font=font, fill=0)
    return img


class ThermalLayout:
    """The plan of pieces for a receipt printer ``width_chars`` wide (12 dots a char)."""

    def __init__(self, width_chars: int = 42) -> None:
        self.width = width_chars
        self.dots = width_chars * CELL_W

    def plan(self, doc: Document) -> list[Piece]:
        if doc.kind == "labels":
            return [ImageLine(label_image(doc)), Cut()]
        pieces: list[Piece] = []
        for block in doc.blocks:
            pieces.extend(self._block(block))
        if not pieces or not isinstance(pieces[-1], Cut):
            pieces.append(Cut())
        return pieces

    def _block(self, block: Block) -> list[Piece]:
        return [ImageLine(trim_right(p.image)) if isinstance(p, ImageLine) else p for p in self._pieces(block)]

    def _pieces(self, block: Block) -> list[Piece]:
        if block.kind == "cut":
            return [Cut()]
        if block.kind == "qr":
            return [ImageLine(qr_image(block.text, width=self.dots))]
        if block.kind == "barcode":
            return [ImageLine(code128_image(block.text, max_width=self.dots, height=64))]
        if block.kind == "big":
            return [TextLine(printable(block.text), bold=True, big=True)]
        text = block.text + block.right
        if block.kind in ("text", "pair") and needs_image(text):
            return self._shaped(block)
        return [TextLine(printable(line), bold=block.bold) for line in render_block(_ascii(block), self.width)]

    def _shaped(self, block: Block) -> list[Piece]:
        """Devanagari (or any non-ASCII) text: wrapped by its real width, drawn as images."""
        size = 24
        font = pil_font(size, block.bold)
        if block.kind == "pair":
            room = self.dots - int(font.getlength(block.right)) - CELL_W
            lines = _wrap_px(block.text, font, room)
            out: list[Piece] = [ImageLine(text_image(ln, width=self.dots, bold=block.bold)) for ln in lines[:-1]]
            out.append(ImageLine(text_image(lines[-1], width=self.dots, bold=block.bold, right=block.right)))
            return out
        return [ImageLine(text_image(ln, width=self.dots, bold=block.bold, align=block.align))
                for ln in _wrap_px(block.text, font, self.dots)]

    def render(self, doc: Document) -> Image.Image:
        """The plan as one picture, as the paper comes out (cuts as a dashed line)."""
        return render_pieces(self.plan(doc), self.dots)


def trim_right(img: Image.Image) -> Image.Image:
    """The image without the white on its right (kept to a whole byte): the
    same paper, fewer bytes down a 9600-baud serial line. The left is kept so
    the picture sits where the text lines put it, on any paper width."""
    from PIL import ImageOps

    box = ImageOps.invert(img.convert("L")).getbbox()
    if box is None:
        return img
    right = min(img.width, (box[2] + 7) // 8 * 8)
    return img if right >= img.width else img.crop((0, 0, right, img.height))


def _ascii(block: Block) -> Block:
    if "₹" not in block.text + block.right:
        return block
    return Block(block.kind, printable(block.text), printable(block.right), block.align, block.bold)


def render_pieces(pieces: list[Piece], dots: int) -> Image.Image:
    heights = []
    for p in pieces:
        if isinstance(p, TextLine):
            heights.append(CELL_H * (2 if p.big else 1))
        elif isinstance(p, ImageLine):
            heights.append(p.image.height)
        else:
            heights.append(CELL_H)
    img = Image.new("1", (dots, max(1, sum(heights))), 1)
    draw = ImageDraw.Draw(img)
    y = 0
    for p, h in zip(pieces, heights):
        if isinstance(p, TextLine):
            _draw_cells(draw, p, y)
        elif isinstance(p, ImageLine):
            img.paste(p.image, (0, y))
        else:
            for x in range(0, dots, 8):
                draw.line([x, y + h // 2, x + 3, y + h // 2], fill=0)
        y += h
    return img


def _draw_cells(draw: ImageDraw.ImageDraw, line: TextLine, y: int) -> None:
    """Text in the printer's fixed cells (12 x 24 dots; big is doubled both ways)."""
    scale = 2 if line.big else 1
    cw, ch = CELL_W * scale, CELL_H * scale
    font = pil_font(19 * scale, line.bold)
    text = line.text
    if line.big:  # the printer centres a big line itself
        x0 = max(0, (draw.im.size[0] - cw * len(text)) // 2)
    else:
        x0 = 0
    for i, c in enumerate(text):
        if c == " ":
            continue
        w = font.getlength(c)
        draw.text((x0 + i * cw + max(0.0, (cw - w) / 2), y + ch * 0.02), c, font=font, fill=0)


# ---------------------------------------------------------------------- labels
@dataclass(frozen=True, slots=True)
class Placed:
    """One element of a label at dot position (x, y): a barcode or a line of text."""

    kind: Literal["barcode", "text"]
    x: int
    y: int
    text: str
    size: int = 18  # text height, or the barcode's bar height
    bold: bool = False
    module: int = 2
    width: int = LABEL_W - 2 * LABEL_MARGIN
    extra: JSONObject = field(default_factory=dict)


def _fit(text: str, size: int, bold: bool, width: int) -> str:
    font = pil_font(size, bold)
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "…") > width:
        text = text[:-1]
    return text.rstrip() + "…"


def label_elements(doc: Document) -> list[Placed]:
    """A 50 x 25 mm label: the barcode (with the id under it) on top, then the
    text lines of the document, each cut to the label's width."""
    width = LABEL_W - 2 * LABEL_MARGIN
    y = LABEL_MARGIN
    out: list[Placed] = []
    texts = [b for b in doc.blocks if b.kind in ("text", "pair")]

    def size_of(block: Block) -> int:
        return 20 if needs_image(block.text) else 17

    for block in doc.blocks:
        if block.kind == "barcode":
            bars = len(code128_modules(block.text)) + 2 * BARCODE_QUIET
            module = 2 if bars * 2 <= width else 1
            out.append(Placed("barcode", LABEL_MARGIN, y, block.text, size=52, module=module))
            y += 52 + 18 + 4
        elif block.kind in ("text", "pair"):
            size = size_of(block)
            text = block.text + (f"  {block.right}" if block.right else "")
            lines = [text]
            rest = sum(int(size_of(b) * 1.3) for b in texts[texts.index(block) + 1:])
            if _fit(text, size, block.bold, width) != text and LABEL_H - y - rest >= 2 * int(size * 1.3):
                # a long line (the tests) takes a second line when the label has room
                lines = _wrap_px(text, pil_font(size, block.bold), width)[:2]
                if len(lines) == 2 and _fit(lines[1], size, block.bold, width) != lines[1]:
                    lines[1] = _fit(" ".join(_wrap_px(text, pil_font(size, block.bold), width)[1:]), size,
                                    block.bold, width)
            for line in lines:
                out.append(Placed("text", LABEL_MARGIN, y, _fit(line, size, block.bold, width), size=size,
                                  bold=block.bold))
                y += int(size * 1.3)
    return out


def label_image(doc: Document) -> Image.Image:
    img = Image.new("1", (LABEL_W, LABEL_H), 1)
    for el in label_elements(doc):
        if el.kind == "barcode":
            img.paste(code128_image(el.text, max_width=el.width, height=el.size, module=el.module), (el.x, el.y))
        else:
            img.paste(text_image(el.text, width=el.width, size=el.size, bold=el.bold, height=int(el.size * 1.3)),
                      (el.x, el.y))
    return img


def save_png(img: Image.Image, path: Path) -> Path:
    private_dir(path.parent)  # a label carries a patient's name: owner-only, like every print
    with open_private(path, "wb") as fh:
        img.save(fh, format="PNG", optimize=True)
    return path
