"""CSV (and other) files written for people, who open them in a spreadsheet.

Three dangers, handled in one place so every such file gets the same care:

- Formula injection: a cell beginning with ``=``, ``+``, ``-``, ``@``, a tab
  or a carriage return is run by Excel/LibreOffice as a formula
  (``=HYPERLINK(...)``, ``-2+3+cmd|...``). Such cells are written with a
  leading ``'``, which spreadsheets show as text. A plain number (``-500``)
  is not a formula and is left as it is, so money columns stay numbers.
  ``unneutralise`` undoes it when our own file (a rejects file) is read back.
- Devanagari shown as mojibake: Excel reads a CSV as the local code page
  unless the file starts with a UTF-8 byte order mark, so we write one.
- Another file overwritten: the temporary file is made with ``O_EXCL`` and
  ``O_NOFOLLOW`` (``tempfile.mkstemp``) in the target's folder, mode 0600, and
  renamed over the target; a symlink planted at a predictable ``.tmp`` name (or
  at the target) is never followed. The data is on disk before the rename.
"""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TypeAlias

Cell: TypeAlias = str | int | None  # a cell as given (money as integer paise, never a fraction); written as its text, None as an empty cell

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
BOM = "\ufeff"
_PLAIN_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def is_formula_like(value: str) -> bool:
    """Whether a spreadsheet would take ``value`` as the start of a formula."""
    return value.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.match(value)


def neutralise(value: Cell) -> str:
    """The cell text as it is safe to write (``None`` is an empty cell)."""
    text = "" if value is None else str(value)
    return "'" + text if is_formula_like(text) else text


def unneutralise(value: str) -> str:
    """Undo ``neutralise`` for a cell read back from a file we wrote."""
    if value.startswith("'") and is_formula_like(value[1:]):
        return value[1:]
    return value


def csv_text(header: Iterable[Cell], rows: Iterable[Iterable[Cell]]) -> str:
    """The table as CSV text with every cell neutralised (no BOM)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([neutralise(c) for c in header])
    for row in rows:
        w.writerow([neutralise(c) for c in row])
    return buf.getvalue()


def write_csv(path: Path | str, header: Iterable[Cell], rows: Iterable[Iterable[Cell]]) -> Path:
    """Write a CSV for people: UTF-8 with BOM, neutralised cells, 0600, atomically."""
    return write_private(path, (BOM + csv_text(header, rows)).encode("utf-8"))


def write_private(path: Path | str, data: bytes) -> Path:
    """Replace ``path`` with ``data`` (mode 0600) through a safely made temporary
    file in the same folder; the old content stays whole if anything fails."""
    target = Path(path)
    folder = target.parent
    folder.mkdir(parents=True, exist_ok=True)
    # mkstemp: O_CREAT|O_EXCL|O_NOFOLLOW, 0600, a name nobody can predict
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, target)  # rename() replaces a link at target, never follows it
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    return target
