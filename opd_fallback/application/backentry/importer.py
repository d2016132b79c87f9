"""Importing a back-entry file: batches of rows in one transaction each, a
savepoint per row, the slip key and content written with the row's records
(so a re-import adds nothing), and a slip already in compared column by column."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from itertools import islice
from pathlib import Path

from sqlalchemy import insert
from sqlmodel import Session, select
from sqlmodel import col as column_of

from opd_fallback.application.backentry.csvio import CheckedFile, RejectsWriter
from opd_fallback.application.backentry.model import (
    BATCH_ROWS,
    KEPT_REJECTED,
    KEPT_ROWS,
    PATIENT_COLUMNS,
    SOURCE,
    FileChanged,
    ImportRefused,
    ImportReport,
    RowOutcome,
    RowProblem,
    rejects_path_for,
)
from opd_fallback.application.backentry.parse import Slip, _differing_columns, _Problems, parse_row
from opd_fallback.application.backentry.save import _DryRun, _for_the_file, _save, _Step
from opd_fallback.application.services import CounterService, Tx
from opd_fallback.domain import jsonio
from opd_fallback.domain.clock import IST
from opd_fallback.domain.errors import DomainError
from opd_fallback.store import audit
from opd_fallback.store.engine import Store
from opd_fallback.store.import_seen import SeenKeys
from opd_fallback.store.tables import BackEntrySlip, Op, Operator

# Columns an old import filled in itself when the row left them empty: compared
# with a slip imported before contents were kept only when the row gives them.
_DEFAULTED = ("fee_code", "lab_items")
_NOTHING_KEPT: dict[str, str] = {}  # shared by the outcomes of rows not rejected: never written to


def _content_from_ops(session: Session, op_ids_json: str) -> dict[str, str]:
    """The content (as ``_content``) of a slip imported before contents were
    kept, read back from the payloads of the ops it made."""
    ids = jsonio.loads(op_ids_json)
    ops = list(session.exec(select(Op).where(column_of(Op.op_id).in_(ids)).order_by(column_of(Op.seq))))
    out: dict[str, object] = {}
    for op in ops:
        body = jsonio.loads(op.payload)
        if not out:
            out.update(recorded_at=op.recorded_at[11:16], operator_id=op.operator_id)
        if op.kind == "patient.register":
            out.update({k: v for k, v in body.items() if k in PATIENT_COLUMNS and v is not None})
        elif op.kind == "visit.open":
            ref = body.get("patient") or {}
            if "name" not in out:
                out["uhid"] = ref.get("central_id") or ref.get("local_ref")
            out.update(department=body.get("department"), unit=body.get("unit"), visit_type=body.get("visit_type"))
        elif op.kind == "lab.order":
            out["lab_tests"] = ";".join(sorted(t["code"] for t in body.get("tests") or []))
        elif op.kind == "payment.record":
            prefix = "lab" if body.get("lab_order") else "fee"
            out.update({f"{prefix}_paise": body.get("amount_paise"), f"{prefix}_mode": body.get("mode"),
                        f"{prefix}_ref": body.get("mode_ref")})
            items = body.get("items") or []
            if prefix == "fee" and items:
                out["fee_code"] = items[0]["code"]
            elif prefix == "lab":
                out["lab_items"] = ";".join(f"{i['code']}:{i['amount_paise']}"
                                            for i in sorted(items, key=lambda i: i["code"]))
    return {k: str(v) for k, v in out.items() if v is not None}



Key = tuple[str, str, str]  # the device the slip was written at, visit date, slip key


def _earlier_slips(session: Session, keys: set[Key]) -> dict[Key, BackEntrySlip]:
    """The slips of ``keys`` already imported, in one query."""
    if not keys:
        return {}
    found: dict[Key, BackEntrySlip] = {}
    rows = session.exec(select(BackEntrySlip).where(
        # all three columns of ix_backentry_slip_key: without visit_date the index
        # narrows by device only and every batch scans the device's slips
        column_of(BackEntrySlip.device_id).in_(sorted({d for d, _, _ in keys})),
        column_of(BackEntrySlip.visit_date).in_(sorted({v for _, v, _ in keys})),
        column_of(BackEntrySlip.slip_key).in_(sorted({k for _, _, k in keys})),
    ))
    for row in rows:
        key = (row.device_id, row.visit_date, row.slip_key)
        if key in keys:
            found.setdefault(key, row)
    return found


class _Importer:
    """Imports slips for one importing operator; remembers what it has seen so
    rows of one file are compared with each other and nothing is read twice."""

    def __init__(self, svc: CounterService, imported_by: str, *, source_file: str | None, dry_run: bool,
                 seen: SeenKeys | None = None) -> None:
        self.svc = svc
        self.imported_by = imported_by
        self.source_file = source_file
        self.dry_run = dry_run
        # the keys of the file's earlier batches, on disk (memory bounded by a batch)
        self.seen = seen
        # key (joined in one string) -> its first line in this file, for the keys
        # of the open batch: those of earlier batches read from ``seen``, and the new
        self.lines: dict[str, int] = {}
        self.new_keys: list[tuple[str, int]] = []
        self.writers: dict[str, bool] = {}  # operator id -> known at this counter
        # the slip records and audit entries of the open transaction's imported
        # rows, written together before it commits (see ``finish``)
        self.slips: list[dict[str, object]] = []
        self.audits: list[tuple[str, dict[str, object]]] = []

    def finish(self, tx: Tx) -> None:
        """Write the imported rows' slip records and audit entries, in bulk, in
        the transaction that saved their records (so both commit or neither)."""
        if self.slips:
            tx.session.execute(insert(BackEntrySlip), self.slips)
        audit.record_many(tx.session, self.imported_by, "backentry.import", self.audits)
        self.slips, self.audits = [], []

    def batch(self, rows: list[tuple[int, dict[str, str]]], today: date | None) -> list[RowOutcome]:
        """Rows in one transaction, each in its own savepoint (a dry run's rolled back)."""
        parsed = [(line, cells, *parse_row(line, cells, today=today)) for line, cells in rows]
        keys = {self.key(s) for _, _, s, _ in parsed if s}
        if self.seen is not None:
            self.lines = self.seen.lines_of("\x1f".join(k) for k in keys)
        outcomes: list[RowOutcome] = []
        try:
            with self.svc.transaction(self.imported_by, source=SOURCE) as tx:
                tx.write_at_commit()  # the records as values, one executemany a table (import_row: as objects)
                earlier = _earlier_slips(tx.session, keys)
                for line, cells, slip, problems in parsed:
                    if slip is None:
                        out = RowOutcome(line, (cells.get("slip_no") or "").strip(), "rejected", problems)
                    else:
                        out = self.row(tx, line, slip, earlier)
                    out.cells = cells
                    outcomes.append(out)
                self.finish(tx)
                if self.dry_run:
                    # each row's savepoint was undone; the batch is rolled back too, not
                    # committed: nothing of a dry run reaches the WAL or waits for a disk sync
                    raise _DryRun
        except _DryRun:
            pass
        if self.seen is not None:
            self.seen.add(self.new_keys)
        self.lines, self.new_keys = {}, []
        return outcomes

    def key(self, slip: Slip) -> Key:
        """A slip is known by the counter it was written at (this one unless ``slip_device``
        says otherwise), its visit date and its number."""
        return (slip.slip_device or self.svc.device_id, *slip.key)

    def _writer_known(self, session: Session, operator_id: str) -> bool:
        if operator_id not in self.writers:
            self.writers[operator_id] = session.get(Operator, operator_id) is not None
        return self.writers[operator_id]

    def row(self, tx: Tx, line: int, slip: Slip, earlier: dict[Key, BackEntrySlip]) -> RowOutcome:
        """One checked slip: compared with the file and with what is in, then saved whole or not at all."""
        def reject(column: str, reason: str) -> RowOutcome:
            return RowOutcome(line, slip.slip_no, "rejected", [RowProblem(line, column, reason)])

        key = self.key(slip)
        seen = "\x1f".join(key)
        first = self.lines.get(seen)
        if first is not None:
            return reject("slip_no", f"slip {slip.slip_no} of {key[1]} is already on line {first} of this file")
        self.lines[seen] = line
        self.new_keys.append((seen, line))
        if not self._writer_known(tx.session, slip.written_by):
            return reject("operator_id", f"{slip.written_by!r} is not an operator of this counter: correct it, "
                                         "or add them with 'opd-fallback operator add', then import this row again")
        prior = earlier.get(key)
        if prior is not None:
            return self._compare(tx.session, line, slip, prior)
        out = RowOutcome(line, slip.slip_no, "imported")
        step = _Step()
        try:
            # the rows of a batch are flushed together at its commit
            origin = {"written_by": slip.written_by, "device_id": key[0], "slip_no": slip.slip_no}
            with tx.savepoint(), tx.from_paper(origin):
                tx.recorded_at = slip.recorded_at
                out.op_ids = _save(tx, slip, step)
                if self.dry_run:
                    raise _DryRun
            self.slips.append(self._record(slip, line, out.op_ids))
            self.audits.append((f"{key[0]}/{key[1]}/{slip.slip_no}", {
                "ops": len(out.op_ids), "written_by": slip.written_by, "file": self.source_file, "line": line}))
        except _DryRun:
            out.status = "would_import"
        except DomainError as exc:
            bad = _Problems(line)
            bad.from_fields(exc.problems, step.mapping, whole=step.whole)
            out.status, out.problems, out.op_ids = "rejected", [_for_the_file(p) for p in bad.items], []
        return out

    def _record(self, slip: Slip, line: int, op_ids: list[str]) -> dict[str, object]:
        """The ``backentry_slip`` row of an imported slip."""
        return {
            "device_id": self.key(slip)[0], "visit_date": slip.visit_date.isoformat(), "slip_no": slip.slip_no,
            "slip_key": slip.key[1], "imported_at": datetime.now(IST).replace(microsecond=0).isoformat(),
            "op_ids": jsonio.dumps(op_ids), "content": jsonio.dumps(slip.content),
            "source_file": self.source_file, "source_line": line, "written_by": slip.written_by,
            "imported_by": self.imported_by,
        }

    def _compare(self, session: Session, line: int, slip: Slip, prior: BackEntrySlip) -> RowOutcome:
        """A slip already in: the same content is 'already imported', any
        difference a rejected row naming the earlier import and the columns."""
        if prior.content is not None:
            differs = _differing_columns(jsonio.loads(prior.content), slip.content)
        else:  # imported before contents were kept (schema < 3): what its ops say
            before = _content_from_ops(session, prior.op_ids)
            now = {k: v for k, v in slip.content.items() if k in before or k not in _DEFAULTED}
            differs = _differing_columns({k: v for k, v in before.items() if k in now or k not in _DEFAULTED}, now)
        if not differs:
            return RowOutcome(line, slip.slip_no, "already_imported")
        where = ""
        if prior.source_file:
            where = f" from {prior.source_file}" + (f", line {prior.source_line}" if prior.source_line else "")
        reason = (
            f"slip {slip.slip_no} of {slip.key[0]}{' from ' + slip.slip_device if slip.slip_device else ''} "
            f"was already imported{where} with a different "
            f"{', '.join(differs)}; nothing of this row was saved: if it is another slip, check the number "
            "on the paper (a mistake in the earlier import is corrected at the counter, not by importing again)"
        )
        return RowOutcome(line, slip.slip_no, "rejected", [RowProblem(line, "slip_no", reason)])


def import_row(
    svc: CounterService, line: int, slip: Slip, *, imported_by: str, dry_run: bool = False,
    source_file: str | None = None,
) -> RowOutcome:
    """One slip in its own transaction: all its records and its slip key, or nothing;
    its records go through the session as objects (``import_file``'s batches write
    the same values in bulk: tests/test_backentry_paths.py compares the two)."""
    importer = _Importer(svc, imported_by, source_file=source_file, dry_run=dry_run)
    with svc.transaction(imported_by, source=SOURCE) as tx:
        earlier = _earlier_slips(tx.session, {importer.key(slip)})
        out = importer.row(tx, line, slip, earlier)
        importer.finish(tx)
    return out


def check_importer(store: Store, operator_id: str) -> None:
    """Raise ``ImportRefused`` unless ``operator_id`` is an active operator here
    (the CLI has checked the PIN; this keeps the rule for every caller)."""
    with store.read() as s:
        op = s.get(Operator, operator_id)
    if op is None or not op.active:
        raise ImportRefused(f"{operator_id!r} is not an active operator of this counter")


def import_file(
    store: Store, device_id: str, path: Path, *, imported_by: str, dry_run: bool = False,
    rejects_path: Path | None = None, today: date | None = None,
    progress: Callable[[int, int, int], None] | None = None, batch_rows: int = BATCH_ROWS,
) -> ImportReport:
    """Import a back-entry CSV as operator ``imported_by``; raises ``FileUnusable``
    when the file itself is bad (``FileChanged`` when it changed after it was
    checked), ``ImportRefused`` when nothing may be imported.

    ``progress(done, total, rejected)`` is called after each batch. Writes the rejected
    rows (with an ``error`` column) beside the input unless ``dry_run``; a stale
    rejects file from an earlier run is removed when no row is rejected now."""
    source = CheckedFile(path)
    rows = source.rows()
    check_importer(store, imported_by)
    seen = SeenKeys()
    importer = _Importer(CounterService(store, device_id), imported_by, source_file=path.name, dry_run=dry_run,
                         seen=seen)
    rejects = None if dry_run else RejectsWriter(rejects_path or rejects_path_for(path), source.header)
    kept: list[RowOutcome] = []  # see ImportReport
    counts: dict[str, int] = {}
    kept_rejected = 0
    if progress is not None:
        progress(0, source.count, 0)
    try:
        while batch := list(islice(rows, batch_rows)):
            # the rows of this batch are the ones checked (read again whole before the first)
            _unchanged(source, counts, batch[0][0], dry_run, rehash=not counts)
            try:
                done = importer.batch(batch, today)
            except DomainError as exc:  # the counter refuses all writes (e.g. after a restore)
                raise ImportRefused(str(exc.problems[0].message if exc.problems else exc)) from None
            for out in done:
                counts[out.status] = counts.get(out.status, 0) + 1
                if out.status == "rejected":
                    if rejects is not None:
                        rejects.add(out)
                    if kept_rejected < KEPT_REJECTED:
                        kept_rejected += 1
                        kept.append(out)
                elif len(kept) - kept_rejected < KEPT_ROWS:  # only a rejected row's cells are needed
                    out.cells, out.op_ids = _NOTHING_KEPT, []
                    kept.append(out)
            if progress is not None:
                progress(sum(counts.values()), source.count, counts.get("rejected", 0))
        _unchanged(source, counts, None, dry_run)  # now with the hash of all the second pass read
        report = ImportReport(path, dry_run, kept, None, counts)
        if rejects is not None:
            report.rejects_path = rejects.finish()
    finally:
        seen.close()
        if rejects is not None:
            rejects.close()
    return report


def _unchanged(source: CheckedFile, counts: dict[str, int], line: int | None, dry_run: bool, *,
               rehash: bool = False) -> None:
    """Raise ``FileChanged`` when the file is no longer the one checked, saying
    what was saved of it and what to do."""
    what = source.changed(rehash=rehash)
    if what is None:
        return
    done = sum(counts.values())
    if dry_run or not done:
        saved = "nothing was saved" if dry_run else "nothing was imported"
    else:
        upto = f"before line {line}" if line is not None else "of the file as it was read"
        saved = (f"the {done} rows {upto} were checked and saved whole as they were read "
                 "(a second import does not add them twice)")
    raise FileChanged(f"the file changed after it was checked ({what}): {saved}; run the import again "
                      "once nothing is writing to the file")
