"""A printable document as a list of simple blocks.

Kept free of any printer so the same document renders to a thermal printer,
a PDF or a text file, and can be stored in the spool as JSON for a reprint.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

BlockKind = Literal["text", "big", "qr", "barcode", "rule", "pair", "cut", "blank"]
DocKind = Literal["slip", "receipt", "labels", "cash_summary", "void"]


@dataclass(frozen=True, slots=True)
class Block:
    """One printable element. ``text`` for text/big/qr/barcode, ``right`` for
    a left/right ``pair`` (label and amount), ``align`` for text."""

    kind: BlockKind
    text: str = ""
    right: str = ""
    align: Literal["left", "center", "right"] = "left"
    bold: bool = False


@dataclass(slots=True)
class Document:
    """What gets printed. ``ref`` names the record it belongs to (offline number,
    receipt number or sample id) so a reprint can find it."""

    kind: DocKind
    ref: str
    title: str
    blocks: list[Block] = field(default_factory=list)
    created_at: str = ""
    # a reprint's marks: [blocks added at the top, blocks added at the end], so
    # reprinting a reprint starts again from the original (see templates.unmark)
    marks: list[int] = field(default_factory=list)

    # small builder helpers keep the document functions readable
    def text(self, text: str, *, align: Literal["left", "center", "right"] = "left", bold: bool = False) -> Document:
        self.blocks.append(Block("text", text, align=align, bold=bold))
        return self

    def big(self, text: str) -> Document:
        self.blocks.append(Block("big", text, align="center", bold=True))
        return self

    def pair(self, left: str, right: str, *, bold: bool = False) -> Document:
        self.blocks.append(Block("pair", left, right=right, bold=bold))
        return self

    def qr(self, data: str) -> Document:
        self.blocks.append(Block("qr", data, align="center"))
        return self

    def barcode(self, data: str) -> Document:
        self.blocks.append(Block("barcode", data, align="center"))
        return self

    def rule(self) -> Document:
        self.blocks.append(Block("rule"))
        return self

    def blank(self) -> Document:
        self.blocks.append(Block("blank"))
        return self

    def cut(self) -> Document:
        self.blocks.append(Block("cut"))
        return self

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Document:
        data: dict[str, Any] = json.loads(text)
        blocks = [Block(**b) for b in data.pop("blocks", [])]
        return cls(blocks=blocks, **data)
