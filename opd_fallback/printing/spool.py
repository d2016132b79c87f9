"""The print spool: every document is kept (JSON, one file each) before it is
printed, with whether it printed, so a failed print is visible and any slip,
receipt or label can be reprinted, even after a restart."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from opd_fallback.config import private_dir, write_private
from opd_fallback.printing.base import Printer, PrintError
from opd_fallback.printing.document import Document

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True, slots=True)
class SpoolEntry:
    path: Path
    kind: str
    ref: str
    title: str
    created_at: str
    printed: bool
    error: str | None


class Spool:
    """Files under ``directory``: ``<stamp>-<kind>-<ref>.json`` plus a
    ``.status`` sidecar updated after each print attempt."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def add(self, doc: Document) -> Path:
        private_dir(self.directory)
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        path = self.directory / f"{stamp}-{doc.kind}-{_UNSAFE.sub('_', doc.ref)}.json"
        tmp = path.with_suffix(".tmp")
        write_private(tmp, doc.to_json())
        os.replace(tmp, path)
        return path

    def mark(self, path: Path, error: str | None) -> None:
        status = {"printed": error is None, "error": error, "at": datetime.now().isoformat(timespec="seconds")}
        write_private(path.with_suffix(".status"), json.dumps(status))

    def load(self, path: Path) -> Document:
        return Document.from_json(path.read_text(encoding="utf-8"))

    def entries(self, *, query: str = "", limit: int = 200) -> list[SpoolEntry]:
        """Newest first; ``query`` matches the ref or title (case-insensitive)."""
        if not self.directory.exists():
            return []
        q = query.strip().lower()
        out: list[SpoolEntry] = []
        for path in sorted(self.directory.glob("*.json"), reverse=True):
            try:
                doc = self.load(path)
            except (OSError, ValueError):
                continue
            if q and q not in path.name.lower() and q not in doc.title.lower() and q not in doc.ref.lower():
                continue
            status_path = path.with_suffix(".status")
            printed, error = False, "not printed yet"
            if status_path.exists():
                try:
                    st = json.loads(status_path.read_text(encoding="utf-8"))
                    printed, error = bool(st.get("printed")), st.get("error")
                except (OSError, ValueError):
                    pass
            out.append(SpoolEntry(path, doc.kind, doc.ref, doc.title, doc.created_at, printed, error))
            if len(out) >= limit:
                break
        return out


def print_with_spool(printer: Printer, spool: Spool | None, docs: list[Document]) -> list[str]:
    """Spool then print each document; returns the errors (empty when all
    printed). Never raises for a printer problem: the record is already saved."""
    errors: list[str] = []
    for doc in docs:
        path: Path | None = None
        if spool is not None:
            try:
                path = spool.add(doc)
            except OSError as exc:
                errors.append(f"{doc.title}: could not keep a copy for reprint ({exc.strerror or exc})")
        try:
            printer.print_document(doc)
            err = None
        except PrintError as exc:
            err = str(exc)
        except Exception as exc:  # a driver bug must not take the counter down
            err = f"printer error: {exc}"
        if err:
            errors.append(f"{doc.title}: {err}")
        if path is not None:
            try:
                spool.mark(path, err)  # type: ignore[union-attr]
            except OSError:
                pass
    return errors
