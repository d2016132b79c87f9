"""Reading a back-entry CSV and writing its rejects file.

Decision: the file is streamed, never held whole (see ``open_rows``), and rows
are handed on with the line they start on; cells we neutralised
when writing a rejects file are read back as they were, so a fixed rejects
file imports as it is."""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from pathlib import Path

from opd_fallback.application.backentry.model import (
    COLUMNS,
    CSV_FIELD_LIMIT,
    ERROR_COLUMN,
    REQUIRED_COLUMNS,
    FileUnusable,
    ImportReport,
    RowOutcome,
    RowProblem,
)
from opd_fallback.application.people_csv import unneutralise, write_csv

# --- reading the file --------------------------------------------------------


def read_rows(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Header and rows with the line each row starts on, held whole (small files,
    tests); ``import_file`` streams them with ``open_rows``. Raises ``FileUnusable``."""
    header, _, rows = open_rows(path)
    return header, list(rows)


def open_rows(path: Path) -> tuple[list[str], int, Iterator[tuple[int, dict[str, str]]]]:
    """Header, number of rows, and the rows streamed from the file with the line each
    starts on; raises ``FileUnusable``. Cells we neutralised when writing a rejects
    file (``'=...``) are read back as they were.

    Decision: the file is read twice, never held whole. The first pass checks all
    of it (UTF-8, CSV, header) and counts the rows, so a file bad at its end is
    refused before any row is saved, as when it was read whole, and progress knows
    the total; the second pass yields the rows one by one (memory stays flat
    whatever the file's size)."""
    first = _rows(path)
    header = list(next(first)[1])
    count = sum(1 for _ in first)
    second = _rows(path)
    next(second)
    return header, count, second


def _rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """The header (as ``(0, {column: column})``, in order) then each row; raises ``FileUnusable``."""
    try:
        handle = path.open(encoding="utf-8-sig", newline="")  # a spreadsheet's BOM is fine
    except OSError as exc:
        raise FileUnusable(f"cannot read {path}: {exc.strerror}") from None
    reader = csv.reader(handle)
    limit = csv.field_size_limit(CSV_FIELD_LIMIT)
    try:
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise FileUnusable("the file has no header row")
        header = [h.strip() for h in header]
        _check_header(header)
        yield 0, {h: h for h in header}
        start = reader.line_num + 1
        for cells in reader:
            line, start = start, reader.line_num + 1
            if not any(c.strip() for c in cells):
                continue
            cells = [unneutralise(c) for c in cells]
            if len(cells) > len(header):
                extra = cells[len(header):]
                if any(c.strip() for c in extra):
                    yield line, {**dict(zip(header, cells, strict=False)), "__too_many__": str(len(cells))}
                    continue
            padded = cells + [""] * (len(header) - len(cells))
            yield line, dict(zip(header, padded, strict=False))
    except UnicodeDecodeError:
        raise FileUnusable(
            f"the file is not UTF-8 (line {_bad_utf8_line(path)}); save it from the spreadsheet as 'CSV UTF-8'"
        ) from None
    except csv.Error as exc:
        raise FileUnusable(f"line {reader.line_num}: not valid CSV ({exc})") from None
    finally:
        csv.field_size_limit(limit)
        handle.close()


def _bad_utf8_line(path: Path) -> int:
    """The line of the first byte that is not UTF-8, read in chunks."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with path.open("rb") as f:
        while chunk := f.read(1 << 16):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                return line + chunk[: exc.start].count(b"\n")
            line += chunk.count(b"\n")
    return line


def _check_header(header: list[str]) -> None:
    unknown = [h for h in header if h not in COLUMNS and h != ERROR_COLUMN]
    if unknown:
        raise FileUnusable(
            f"unknown column(s): {', '.join(repr(h) for h in unknown)}; allowed: {', '.join(COLUMNS)}"
        )
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise FileUnusable(f"column(s) given twice: {', '.join(dupes)}")
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise FileUnusable(f"required column(s) missing: {', '.join(missing)}")




def write_rejects(target: Path, header: list[str], rejected: list[RowOutcome]) -> None:
    """The rejected rows as they were, plus an ``error`` column saying why, so
    staff can fix them and import that file (a CSV for people: see people_csv)."""
    cols = [h for h in header if h != ERROR_COLUMN] + [ERROR_COLUMN]
    rows = ([r.cells.get(c, "") if c != ERROR_COLUMN else "; ".join(str(p) for p in r.problems) for c in cols]
            for r in rejected)
    write_csv(target, cols, rows)


def iter_problems(report: ImportReport) -> Iterator[RowProblem]:
    for r in report.rejected:
        yield from r.problems
