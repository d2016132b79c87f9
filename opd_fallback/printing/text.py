"""Render a document as fixed-width text lines (file printer, previews, tests)."""

from __future__ import annotations

import unicodedata

from opd_fallback.printing.document import Block, Document


def cell_width(text: str) -> int:
    """Columns a string takes: combining marks (Devanagari matras) take none,
    wide East Asian characters take two."""
    width = 0
    for ch in text:
        if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


def _align(text: str, width: int, align: str) -> str:
    pad = max(0, width - cell_width(text))
    if align == "center":
        left = pad // 2
        return " " * left + text + " " * (pad - left)
    if align == "right":
        return " " * pad + text
    return text


def _wrap(text: str, width: int) -> list[str]:
    """Lines of at most ``width`` columns, broken at spaces; only a single word
    longer than a whole line is split."""
    words, lines, line = text.split(" "), [], ""
    for word in words:
        while cell_width(word) > width:
            if line:
                lines.append(line)
                line = ""
            lines.append(word[:width])
            word = word[width:]
        candidate = f"{line} {word}" if line else word
        if cell_width(candidate) <= width or not line:
            line = candidate
        else:
            lines.append(line)
            line = word
    lines.append(line)
    return lines


def render_block(block: Block, width: int) -> list[str]:
    if block.kind == "rule":
        return ["-" * width]
    if block.kind == "blank":
        return [""]
    if block.kind == "cut":
        return ["", "=" * width, ""]
    if block.kind == "big":
        spaced = " ".join(block.text)
        text = spaced if cell_width(spaced) <= width else block.text
        return [_align(text, width, "center").rstrip()]
    if block.kind == "qr":
        return [_align(f"[QR {block.text}]", width, "center").rstrip()]
    if block.kind == "barcode":
        return [_align(f"||| {block.text} |||", width, "center").rstrip()]
    if block.kind == "pair":
        # a long label (a receipt item's name) wraps at words; the amount sits
        # on its last line, so nothing is ever cut mid-word
        room = max(1, width - cell_width(block.right) - 1)
        lines = _wrap(block.text, room)
        last = lines[-1]
        return [*lines[:-1], last + " " * max(1, width - cell_width(last) - cell_width(block.right)) + block.right]
    return [_align(line, width, block.align).rstrip() for line in _wrap(block.text, width)]


def render_text(doc: Document, width: int = 42) -> str:
    lines: list[str] = []
    for block in doc.blocks:
        lines.extend(render_block(block, width))
    return "\n".join(lines) + "\n"
