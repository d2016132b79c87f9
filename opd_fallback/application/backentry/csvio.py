"""Reading a back-entry CSV and writing its rejects file.

Decision: the file is streamed, never held whole, and checked unchanged between
its two passes (see ``CheckedFile``), and rows
are handed on with the line they start on; cells we neutralised
when writing a rejects file are read back as they were, so a fixed rejects
file imports as it is."""

from __future__ import annotations

import codecs
import contextlib
import csv
import hashlib
import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

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
from opd_fallback.application.people_csv import BOM, neutralise, unneutralise

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

# --- reading the file --------------------------------------------------------


def read_rows(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Header and rows with the line each row starts on, held whole (small files,
    tests); ``import_file`` streams them with ``open_rows``. Raises ``FileUnusable``."""
    header, _, rows = open_rows(path)
    return header, list(rows)


def open_rows(path: Path) -> tuple[list[str], int, Iterator[tuple[int, dict[str, str]]]]:
    """Header, number of rows, and the rows streamed from the file with the line each
    starts on; raises ``FileUnusable`` (see ``CheckedFile``)."""
    checked = CheckedFile(path)
    return checked.header, checked.count, checked.rows()


class _Hashing(io.RawIOBase):
    """The file's bytes as read, hashed on the way (SHA-256)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._raw = path.open("rb", buffering=0)
        self.sha256 = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, b: WriteableBuffer) -> int:
        n = self._raw.readinto(b)
        if n:
            self.sha256.update(memoryview(b)[:n])
        return n or 0

    def close(self) -> None:
        self._raw.close()
        super().close()


class CheckedFile:
    """A back-entry file read twice, never held whole.

    Decision: the first pass (here) checks all of it (UTF-8, CSV, header) and
    counts the rows, so a file bad at its end is refused before any row is saved
    and progress knows the total; ``rows`` is the second pass, one row at a time
    (memory stays flat whatever the file's size). Both passes hash the bytes they
    read: ``changed`` says when the file is no longer the one checked (its SHA-256,
    read again, before the first batch is saved; its size, time and identity before
    each batch; the SHA-256 of what the second pass read once it has read it all),
    and the import stops with that sentence."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._first: list[_Hashing] = []
        self._second: list[_Hashing] = []
        self._read_whole = False  # the second pass has read the file to its end
        first = _rows(path, self._first)
        self.header = list(next(first)[1])
        self.count = sum(1 for _ in first)
        self._stat = os.stat(path)  # after the first pass: what it read is this file
        self.sha256 = self._first[0].sha256.hexdigest()

    def rows(self) -> Iterator[tuple[int, dict[str, str]]]:
        second = _rows(self.path, self._second)
        next(second)
        yield from second
        self._read_whole = True

    def changed(self, *, rehash: bool = False) -> str | None:
        """What makes the file now another than the one checked, or None;
        ``rehash`` reads it all again (before the first batch is saved)."""
        try:
            now = os.stat(self.path)
        except OSError as exc:
            return f"it can no longer be read ({exc.strerror})"
        was = self._stat
        if (now.st_dev, now.st_ino) != (was.st_dev, was.st_ino):
            return "another file was put in its place"
        if now.st_size != was.st_size:
            return f"its size went from {was.st_size} to {now.st_size} bytes"
        if now.st_mtime_ns != was.st_mtime_ns:
            return "it was written to (its modification time changed)"
        if self._read_whole:
            digest = self._second[0].sha256.hexdigest()
        elif rehash:
            digest = _sha256(self.path)
        else:
            return None
        return "its content is not what was checked (its SHA-256 differs)" if digest != self.sha256 else None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    try:
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    except OSError:
        return ""
    return h.hexdigest()


def _rows(path: Path, hashed: list[_Hashing] | None = None) -> Iterator[tuple[int, dict[str, str]]]:
    """The header (as ``(0, {column: column})``, in order) then each row; raises
    ``FileUnusable``. ``hashed`` is given the hashing reader of the file's bytes."""
    try:
        raw = _Hashing(path)
    except OSError as exc:
        raise FileUnusable(f"cannot read {path}: {exc.strerror}") from None
    if hashed is not None:
        hashed.append(raw)
    # a spreadsheet's BOM is fine
    handle = io.TextIOWrapper(io.BufferedReader(raw, 1 << 16), encoding="utf-8-sig", newline="")
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




class RejectsWriter:
    """The rejected rows as they were, plus an ``error`` column saying why, so staff
    can fix them and import that file (a CSV for people, as ``people_csv.write_csv``:
    BOM, neutralised cells, 0600, put in place whole).

    Decision: each row is written as it is rejected (memory stays flat however many
    are), to a temporary file with no name in the target's folder (a ``kill -9``
    leaves nothing behind); ``finish`` copies it beside the input at once, so an
    earlier rejects file is replaced whole or not at all."""

    def __init__(self, target: Path, header: list[str]) -> None:
        self.target = target
        self.cols = [h for h in header if h != ERROR_COLUMN] + [ERROR_COLUMN]
        self.rows = 0
        self._file: IO[str] | None = None

    def add(self, row: RowOutcome) -> None:
        if self._file is None:
            # closed by finish or close (the import's finally)
            self._file = tempfile.TemporaryFile("w+", encoding="utf-8", newline="", dir=self.target.parent)  # noqa: SIM115
            self._file.write(BOM)
            self._writer = csv.writer(self._file, lineterminator="\r\n")
            self._writer.writerow([neutralise(c) for c in self.cols])
        self._writer.writerow([neutralise(row.cells.get(c, "") if c != ERROR_COLUMN else
                                          "; ".join(str(p) for p in row.problems)) for c in self.cols])
        self.rows += 1

    def finish(self) -> Path | None:
        """The rejects file in place (its path), or a stale one removed when no row was rejected."""
        if self._file is None:
            if self.target.is_symlink() or self.target.exists():
                self.target.unlink()
            return None
        self._file.flush()
        self._file.seek(0)
        # mkstemp: O_CREAT|O_EXCL|O_NOFOLLOW, 0600; rename() replaces a link at target, never follows it
        fd, tmp_name = tempfile.mkstemp(dir=self.target.parent, prefix=f".{self.target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
                shutil.copyfileobj(self._file, out, 1 << 16)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp_name, self.target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise
        finally:
            self.close()
        return self.target

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def write_rejects(target: Path, header: list[str], rejected: list[RowOutcome]) -> None:
    """``rejected`` as a rejects file at ``target`` (see ``RejectsWriter``)."""
    writer = RejectsWriter(target, header)
    for r in rejected:
        writer.add(r)
    writer.finish()


def iter_problems(report: ImportReport) -> Iterator[RowProblem]:
    for r in report.rejected:
        yield from r.problems
