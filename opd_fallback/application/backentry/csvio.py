"""Reading a back-entry CSV and writing its rejects file.

Decision: the file is read as one text (so a bad UTF-8 byte names its line)
and rows are handed on with the line they start on; cells we neutralised
when writing a rejects file are read back as they were, so a fixed rejects
file imports as it is."""

from __future__ import annotations

import csv
import io
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
    """Header and rows with the line each row starts on; raises ``FileUnusable``.
    Cells we neutralised when writing a rejects file (``'=...``) are read back
    as they were."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise FileUnusable(f"cannot read {path}: {exc.strerror}") from None
    try:
        body = raw.decode("utf-8-sig")  # a spreadsheet's BOM is fine
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise FileUnusable(
            f"the file is not UTF-8 (line {line}); save it from the spreadsheet as 'CSV UTF-8'"
        ) from None
    reader = csv.reader(io.StringIO(body, newline=""))
    limit = csv.field_size_limit(CSV_FIELD_LIMIT)
    try:
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise FileUnusable("the file has no header row")
        header = [h.strip() for h in header]
        _check_header(header)
        rows: list[tuple[int, dict[str, str]]] = []
        start = reader.line_num + 1
        for cells in reader:
            line, start = start, reader.line_num + 1
            if not any(c.strip() for c in cells):
                continue
            cells = [unneutralise(c) for c in cells]
            if len(cells) > len(header):
                extra = cells[len(header):]
                if any(c.strip() for c in extra):
                    rows.append((line, {**dict(zip(header, cells, strict=False)), "__too_many__": str(len(cells))}))
                    continue
            padded = cells + [""] * (len(header) - len(cells))
            rows.append((line, dict(zip(header, padded, strict=False))))
    except csv.Error as exc:
        raise FileUnusable(f"line {reader.line_num}: not valid CSV ({exc})") from None
    finally:
        csv.field_size_limit(limit)
    return header, rows


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
