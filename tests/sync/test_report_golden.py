"""Every renderer of a reconciliation report (JSON, CSV, HTML, the terminal), for a
day report with every section filled and a nightly report holding it, against
the text the code wrote before the reports were typed (issue 22, item 5:
``TypedDict`` shapes, behaviour unchanged). ``--json`` output must stay
byte-identical: a change here is a change to docs/reconcile-json.md.

The golden file was written by the code of main before the change; write it
again only for an intended, documented change of a report:
``python tests/sync/test_report_golden.py > tests/sync/golden/reconcile_reports.txt``.
"""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from opd_fallback.application import reports
from opd_fallback.application.reconcile.local import DaySummary
from opd_fallback.application.reconcile.report import DayReport

GOLDEN = Path(__file__).parent / "golden" / "reconcile_reports.txt"


def _day() -> DayReport:
    brief = {"op_id": "op-1", "seq": 7, "kind": "payment.record", "recorded_at": "2026-12-01T10:15:00+05:30",
             "state": "synced", "record_ref": "C01-R-7"}
    rep = DayReport(date="2026-12-01", device_id="C01", started_at="2026-12-02T01:00:00+05:30", status="attention",
                    error=None,
                    local=DaySummary(ops_applied=3, by_kind={"payment.record": 2, "visit.open": 1}, payments_count=2,
                                     payments_total_paise=15000, payments_by_mode={"cash": 10000, "upi": 5000},
                                     voids_count=1, voids_total_paise=500, samples_collected=1, samples_rejected=1,
                                     op_ids_sha256="a" * 64),
                    central=DaySummary(ops_applied=2, by_kind={"payment.record": 2}, payments_count=2,
                                       payments_total_paise=15000, payments_by_mode={"cash": 15000},
                                       op_ids_sha256="b" * 64))
    rep.differences_found = [{"field": "ops_applied", "local": 3, "central": 2}]
    rep.differences = [{"field": "payments.by_mode.upi", "local": 5000, "central": 0}]
    rep.marked_synced = [{**brief, "previous_state": "pending", "central_status": "applied", "result": {"receipt_id": "R9"}}]
    rep.missing_centrally = [{**brief, "op_id": "op-2", "state": "pending", "requeued": True},
                             {**brief, "op_id": "op-3", "requeued": False}]
    rep.unknown_here = [{"op_id": "op-x"}, {**brief, "op_id": "op-4", "central_status": None},
                        {**brief, "op_id": "op-5", "central_status": "rejected"}]
    rep.waiting = [{**brief, "op_id": "op-6", "state": "pending", "wait_reason": "waits for C01-P-1", "attempts": 2,
                    "last_status": "deferred"}, {**brief, "op_id": "op-7", "state": "pending", "wait_reason": None,
                    "attempts": 0, "last_status": None}]
    rep.flagged = [{**brief, "op_id": "op-8", "state": "rejected", "error_code": "bad", "error_message": "no"}]
    rep.payment_warnings = [
        {"op_id": "op-1", "seq": 7, "recorded_at": "x", "local_ref": "L1", "receipt_no": "R1", "receipt_id": None,
         "mode": "cash", "code": c, "item": i, "paid_paise": 100, "expected_paise": 200, "amount_paise": 100}
        for c, i in (("amount_mismatch", "OPD"), ("unknown_item", "X"), ("waiver_unapproved", None), ("other", None))]
    rep.voids_amount_unknown = ["op-9"]
    rep.payload_mismatches = [{**brief, "field": "amount_paise", "queued": 100, "record": 200, "words": "differs"}]
    rep.tubes = [{"sample_id": "S1", "status": "collected", "reason": None, "collected_at": "2026-12-01T10:20:00+05:30",
                  "op_id": "op-10", "state": "synced"},
                 {"sample_id": "S2", "status": "rejected", "reason": "haemolysed", "collected_at": None,
                  "op_id": "op-11", "state": "pending"}]
    rep.misdated = [{"op_id": "op-12", "seq": 9, "kind": "visit.open", "recorded_at": "2026-11-30T23:00:00+05:30",
                     "saved_on": "2026-12-01"}]
    rep.local_states = {"pending": 3, "synced": 5}
    rep.ops_per_hour = [{"hour": h, "ops": h % 3, "synced": 1, "open": 0, "payments": 1, "paise": 100 * h} for h in range(24)]
    rep.central_pages = 2
    rep.elapsed_s = 1.23456
    return rep


def rendered() -> str:
    d = _day().as_dict()
    nightly = {"schema": reports.NIGHTLY_SCHEMA, "device_id": "C01", "started_at": "s", "steps": [
        {"name": "connect", "ok": True, "detail": "ok"},
        {"name": "push", "ok": False, "detail": "x", "data": {"summary": {"a": 1}}}],
        "days": [d], "backup": {"path": "/b/x.db", "integrity": "ok"}, "reasons": ["r1"], "status": "attention",
        "exit_code": 1, "finished_at": "f"}
    out = []
    for name, rep in (("day", d), ("nightly", nightly)):
        for fmt in ("json", "csv", "html"):
            out.append(f"==== {name} {fmt}\n" + reports.render(rep, fmt))  # type: ignore[arg-type]
        buf = io.StringIO()
        reports.render_terminal(rep, Console(file=buf, width=200, color_system=None))  # type: ignore[arg-type]
        out.append(f"==== {name} terminal\n" + buf.getvalue())
    return "".join(out)


def test_every_renderer_writes_what_it_wrote_before_the_types() -> None:
    assert rendered() == GOLDEN.read_bytes().decode("utf-8")  # bytes: the CSV ends its rows in \r\n


if __name__ == "__main__":
    import sys

    sys.stdout.write(rendered())


def test_nightly_report_keeps_its_keys_in_their_order(tmp_path: Path) -> None:
    """``run_nightly`` builds its report at the end now (a ``NightlyDict``): the same
    keys in the same order as when it filled a dict step by step."""
    from opd_fallback.application.nightly import run_nightly
    from opd_fallback.config import Settings
    from opd_fallback.store.engine import open_store

    s = Settings(data_dir=tmp_path, device_id="C01")
    store = open_store(s.db_path)

    def no_central(_s: Settings) -> object:
        raise ValueError("no central server configured")

    try:
        out = run_nightly(s, store, client_factory=no_central)  # type: ignore[arg-type]
    finally:
        store.close()
    assert list(out) == ["schema", "device_id", "started_at", "steps", "days", "backup", "reasons", "status",
                         "exit_code", "finished_at"]
    assert [(st["name"], st["ok"]) for st in out["steps"]] == [("connect", False), ("backup", True)]
    assert out["status"] == "unreachable" and out["days"] == [] and out["backup"]["integrity"] == "ok"
    assert "data" not in out["steps"][0]  # a step without data has no data key
