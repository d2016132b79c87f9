"""A printer that writes each document to a text file (tests, and counters that
print later from the files)."""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path

from opd_fallback.config import open_private, private_dir
from opd_fallback.printing.base import PrintError
from opd_fallback.printing.document import Document
from opd_fallback.printing.text import render_text

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class FilePrinter:
    """Writes ``<directory>/<time>-<kind>-<ref>.txt``, atomically (temp file and
    rename), so a half-written slip never appears."""

    def __init__(self, directory: Path, *, width: int = 42) -> None:
        self.directory = Path(directory)
        self.width = width
        self.printed: list[Path] = []

    def print_document(self, doc: Document) -> None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        name = f"{stamp}-{doc.kind}-{_UNSAFE.sub('_', doc.ref)}.txt"
        path = self.directory / name
        try:
            private_dir(self.directory)
            tmp = path.with_suffix(".tmp")
            with open_private(tmp) as fh:
                fh.write(render_text(doc, self.width))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            raise PrintError(f"could not write the print file in {self.directory}: {exc.strerror or exc}") from exc
        self.printed.append(path)
