"""Reconciliation reports a person reads (terminal, HTML, CSV) and JSON for machines.

Every renderer takes the plain dict form of a report, either one day
(``DayReport.as_dict()``, schema ``opd-fallback/reconcile/1``) or a nightly run
(schema ``opd-fallback/nightly/1``, holding several days), so a report saved as
JSON can be rendered again later. The JSON schema is documented in
``docs/reconcile-json.md``. HTML is one self-contained printable page (plain
HTML and CSS, no scripts, nothing fetched).
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, cast

import orjson

from opd_fallback.application.people_csv import BOM, Cell, csv_text, write_private
from opd_fallback.application.report_shapes import (
    DAY_SCHEMA,
    NIGHTLY_SCHEMA,
    ClassifiedOp,
    DayDict,
    PaymentWarning,
    Report,
    Samples,
    Section,
    Summary,
    Tube,
    is_nightly,
)
from opd_fallback.domain.rules import format_paise

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["DAY_SCHEMA", "NIGHTLY_SCHEMA", "days_of", "format_for", "render", "render_terminal", "summary_rows",
           "to_csv", "to_html", "to_json", "write_report"]
SummaryValue = int | str | None  # a compared field's value on one side (None: that side is unknown)
HTML_ROWS = 1000  # per list on the printable page; CSV and JSON carry every row
FORMATS = {".html": "html", ".htm": "html", ".csv": "csv", ".json": "json"}

SECTIONS: tuple[tuple[Section, str], ...] = (  # (key in report["ops"], heading for people)
    ("missing_centrally", "Synced here but MISSING CENTRALLY (central lost them)"),
    ("unknown_here", "Applied centrally but not known in this database"),
    ("marked_synced", "Applied centrally, answer had been lost: now marked synced (not resent)"),
    ("flagged", "Flagged for a person (rejected or conflict)"),
    ("waiting", "Still waiting to sync"),
)
STATUS_WORDS = {"clean": "CLEAN", "attention": "NEEDS ATTENTION", "unreachable": "CENTRAL UNREACHABLE"}


def days_of(report: Report) -> list[DayDict]:
    """The day reports inside a day or nightly report."""
    return list(report.get("days") or []) if is_nightly(report) else [cast("DayDict", report)]


def _is_money(field: str) -> bool:
    return "paise" in field or field.startswith("payments.by_mode.")


def _value(field: str, v: SummaryValue) -> str:
    if v is None:
        return "-"
    if isinstance(v, int) and _is_money(field):
        return format_paise(v)
    return str(v)


def summary_rows(day: DayDict) -> list[tuple[str, SummaryValue, SummaryValue]]:
    """(field, local, central) for every compared field, in a stable order."""
    local, central = day.get("local"), day.get("central")

    def flat(s: Summary | None) -> dict[str, SummaryValue]:
        if not s:
            return {}
        out: dict[str, SummaryValue] = {"ops_applied": s.get("ops_applied")}
        out.update({f"by_kind.{k}": v for k, v in (s.get("by_kind") or {}).items()})
        pay = s.get("payments") or {}
        out["payments.count"] = pay.get("count")
        out["payments.total_paise"] = pay.get("total_paise")
        out.update({f"payments.by_mode.{k}": v for k, v in (pay.get("by_mode") or {}).items()})
        voids = s.get("voids") or {}
        out["voids.count"] = voids.get("count")
        out["voids.total_paise"] = voids.get("total_paise")
        tubes: Samples | dict[str, int] = s.get("samples") or {}
        out["samples.collected"] = tubes.get("collected", 0)
        out["samples.rejected"] = tubes.get("rejected", 0)
        out["op_ids_sha256"] = s.get("op_ids_sha256")
        return out

    a, b = flat(local), flat(central)
    order = ["ops_applied", *sorted(k for k in set(a) | set(b) if k.startswith("by_kind.")), "payments.count", "payments.total_paise", *sorted(k for k in set(a) | set(b) if k.startswith("payments.by_mode.")), "voids.count", "voids.total_paise", "samples.collected", "samples.rejected", "op_ids_sha256"]
    missing_is_zero = bool(a) and bool(b)
    rows = []
    for k in order:
        la, cb = a.get(k), b.get(k)
        if missing_is_zero and k != "op_ids_sha256":
            la, cb = la or 0, cb or 0
        rows.append((k, la, cb))
    return rows


def _op_line(section: Section, op: ClassifiedOp) -> str:
    """One op of a classification as one line of words."""
    bits = [f"seq {op['seq']}" if op.get("seq") is not None else "", op.get("kind") or "",
            op.get("record_ref") or "", op.get("recorded_at") or ""]
    if section == "missing_centrally":
        bits.append("PUT BACK IN THE QUEUE" if op.get("requeued") else "not requeued (use --requeue-missing)")
    elif section == "marked_synced":
        bits.append(f"was {op.get('previous_state')}")
    elif section == "flagged":
        bits.append(f"{op.get('state')}: {op.get('error_code') or ''} {op.get('error_message') or ''}".strip())
    elif section == "waiting":
        bits.append(str(op.get("wait_reason") or f"attempts {op.get('attempts', 0)}"))
    elif section == "unknown_here" and op.get("central_status"):
        bits.append(f"central says {op.get('central_status')}")
    return "  ".join(b for b in bits if b)


def _warning_line(w: PaymentWarning) -> str:
    who = w.get("receipt_no") or w.get("local_ref") or w.get("op_id")
    if w.get("code") == "amount_mismatch":
        return (f"receipt {who} item {w.get('item')}: paid {_value('paise', w.get('paid_paise'))}, "
                f"central price {_value('paise', w.get('expected_paise'))}")
    if w.get("code") == "unknown_item":
        return f"receipt {who} item {w.get('item')}: central does not know this item"
    if w.get("code") == "waiver_unapproved":
        return f"receipt {who} item {w.get('item') or ''}: waived without an approved waiver".replace(" item :", ":")
    return f"receipt {who}: {w.get('code')} {w.get('item') or ''}".strip()


# ------------------------------------------------------------------ terminal
def render_terminal(report: Report, console: Console | None = None) -> None:
    """Print the report as rich tables (to stdout unless a console is given)."""
    from rich.console import Console
    from rich.table import Table

    con = console or Console()
    if is_nightly(report):
        con.print(f"[bold]Nightly run, counter {report.get('device_id')}[/]  {report.get('started_at')}  "
                  f"-> {STATUS_WORDS.get(report.get('status', ''), report.get('status'))}")
        steps = Table(title="Steps", show_lines=False)
        for col in ("step", "ok", "detail"):
            steps.add_column(col)
        for st in report.get("steps") or []:
            steps.add_row(st["name"], "yes" if st.get("ok") else "[red]NO[/]", st.get("detail") or "")
        con.print(steps)
    for day in days_of(report):
        status = day.get("status", "")
        colour = {"clean": "green", "attention": "yellow"}.get(status, "red")
        con.print(f"\n[bold]Reconciliation {day.get('date')}  counter {day.get('device_id')}[/]  "
                  f"[{colour}]{STATUS_WORDS.get(status, status)}[/]")
        t = Table(show_header=True)
        t.add_column("")
        t.add_column("this counter", justify="right")
        t.add_column("central", justify="right")
        t.add_column("")
        for k, la, cb in summary_rows(day):
            same = la == cb
            if k == "op_ids_sha256":
                la = str(la)[:16] + "..." if la else "-"
                cb = str(cb)[:16] + "..." if cb else "-"
            t.add_row(k, _value(k, la), _value(k, cb), "" if same else "[red]differs[/]")
        con.print(t)
        for reason in day.get("reasons") or []:
            con.print(f"[bold red]! {reason}[/]")
        ops = day.get("ops") or {}
        for key, heading in SECTIONS:
            items = ops.get(key) or []
            if not items:
                continue
            con.print(f"[bold]{heading}: {len(items)}[/]")
            for op in items[:50]:
                con.print(f"  {op.get('op_id')}  {_op_line(key, op)}")
            if len(items) > 50:
                con.print(f"  ... and {len(items) - 50} more (see the full report)")
        warnings = day.get("payment_warnings") or []
        if warnings:
            con.print(f"[bold]Payments central questions: {len(warnings)}[/]")
            for w in warnings[:50]:
                con.print(f"  {_warning_line(w)}")
        tubes = day.get("tubes") or []
        if tubes:
            drawn = sum(1 for t in tubes if t.get("status") == "collected")
            con.print(f"[bold]Tubes: {drawn} collected, {len(tubes) - drawn} refused[/]")
            for tube in tubes[:200]:
                con.print(f"  {_tube_line(tube)}")
            if len(tubes) > 200:
                con.print(f"  ... and {len(tubes) - 200} more (see the full report)")
    backup = report.get("backup") if is_nightly(report) else None
    if backup:
        con.print(f"\nBackup: {backup.get('path')} ({backup.get('integrity')})")


def _tube_line(t: Tube) -> str:
    what = "collected" if t.get("status") == "collected" else f"REFUSED ({t.get('reason') or '?'})"
    return f"{t.get('sample_id')}  {what}  {str(t.get('collected_at') or '')[11:16]}  op {t.get('state')}"


# ------------------------------------------------------------------ JSON / CSV
def to_json(report: Report) -> str:
    return orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n"


CSV_COLUMNS = ("date", "section", "key", "local", "central", "op_id", "kind", "detail")


def to_csv(report: Report) -> str:
    """One row per fact: summary fields, differences, classified ops, payment
    warnings, ops per hour. Money columns are integer paise. Cells a spreadsheet
    would run as formulas are neutralised (see people_csv)."""
    return csv_text(CSV_COLUMNS, _csv_rows(report))


def _csv_rows(report: Report) -> Iterator[list[Cell]]:
    for day in days_of(report):
        d = day.get("date")
        yield [d, "status", "status", day.get("status"), "", "", "", "; ".join(day.get("reasons") or [])]
        for k, la, cb in summary_rows(day):
            yield [d, "summary", k, la, cb, "", "", "" if la == cb else "differs"]
        for diff in day.get("differences") or []:
            yield [d, "difference", diff["field"], diff["local"], diff["central"], "", "", ""]
        for key, _ in SECTIONS:
            for op in (day.get("ops") or {}).get(key) or []:
                yield [d, key, op.get("record_ref") or "", op.get("state") or "", "",
                       op.get("op_id"), op.get("kind") or "", _op_line(key, op)]
        for pw in day.get("payment_warnings") or []:
            yield [d, "payment_warning", pw.get("receipt_no") or pw.get("local_ref"),
                   pw.get("paid_paise"), pw.get("expected_paise"), pw.get("op_id"), pw.get("code"),
                   pw.get("item") or ""]
        for t in day.get("tubes") or []:
            yield [d, "tube", t.get("sample_id"), t.get("status"), "", t.get("op_id"), "lab.sample_collect",
                   _tube_line(t)]
        for h in day.get("ops_per_hour") or []:
            if h["ops"]:
                yield [d, "ops_per_hour", f"{h['hour']:02d}", h["ops"], "", "", "",
                       f"synced {h['synced']}; open {h['open']}; payments {h['payments']}; paise {h['paise']}"]


# ------------------------------------------------------------------ HTML
_CSS = """
body{font-family:"DejaVu Sans",Arial,sans-serif;margin:24px;color:#111;font-size:13px}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:22px 0 6px;border-bottom:1px solid #999}
h3{font-size:14px;margin:14px 0 4px}
table{border-collapse:collapse;margin:4px 0 10px} th,td{border:1px solid #bbb;padding:3px 7px;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums} th{background:#eee}
.status{display:inline-block;padding:3px 10px;border-radius:3px;font-weight:bold;border:2px solid}
.clean{color:#075e07;border-color:#075e07}.attention{color:#8a5a00;border-color:#8a5a00}
.unreachable{color:#a00;border-color:#a00}
.loud{border:3px solid #a00;padding:6px 10px;color:#a00;font-weight:bold;margin:8px 0}
.differs{background:#fde2e2}.bar{display:inline-block;height:10px;background:#555}
.muted{color:#666}.mono{font-family:"DejaVu Sans Mono",monospace;font-size:11px}
@media print{body{margin:10mm}h2{page-break-after:avoid}table{page-break-inside:auto}tr{page-break-inside:avoid}}
"""


def _e(v: object) -> str:
    return html.escape("" if v is None else str(v))


def _html_day(day: DayDict) -> str:
    status = day.get("status", "")
    out = [f"<h2>{_e(day.get('date'))} &middot; counter {_e(day.get('device_id'))} "
           f"<span class='status {_e(status)}'>{_e(STATUS_WORDS.get(status, status))}</span></h2>"]
    if day.get("error"):
        out.append(f"<div class='loud'>{_e(day['error'])}</div>")
    for reason in day.get("reasons") or []:
        if reason != day.get("error"):
            cls = "loud" if reason.startswith("CENTRAL HAS LOST") else "muted"
            out.append(f"<div class='{cls}'>{_e(reason)}</div>")
    out.append("<h3>Summary</h3><table><tr><th></th><th>this counter</th><th>central</th></tr>")
    for k, la, cb in summary_rows(day):
        cls = "" if la == cb else " class='differs'"
        mono = " mono" if k == "op_ids_sha256" else ""
        out.append(f"<tr{cls}><td>{_e(k)}</td><td class='n{mono}'>{_e(_value(k, la))}</td>"
                   f"<td class='n{mono}'>{_e(_value(k, cb))}</td></tr>")
    out.append("</table>")
    if day.get("differences_found") and not day.get("differences"):
        out.append("<p class='muted'>The totals differed at first and match after the repairs listed below.</p>")
    ops = day.get("ops") or {}
    for key, heading in SECTIONS:
        items = ops.get(key) or []
        if not items:
            continue
        out.append(f"<h3>{_e(heading)}: {len(items)}</h3><table><tr><th>op_id</th><th>seq</th><th>kind</th>"
                   "<th>record</th><th>recorded at</th><th>detail</th></tr>")
        for op in items[:HTML_ROWS]:
            out.append(f"<tr><td class='mono'>{_e(op.get('op_id'))}</td><td class='n'>{_e(op.get('seq'))}</td>"
                       f"<td>{_e(op.get('kind'))}</td><td>{_e(op.get('record_ref'))}</td>"
                       f"<td>{_e(op.get('recorded_at'))}</td><td>{_e(_detail(key, op))}</td></tr>")
        out.append("</table>")
        if len(items) > HTML_ROWS:
            out.append(f"<p class='muted'>... and {len(items) - HTML_ROWS} more: see the CSV or JSON report.</p>")
    warnings = day.get("payment_warnings") or []
    if warnings:
        out.append(f"<h3>Payments central questions: {len(warnings)}</h3><table><tr><th>receipt</th>"
                   "<th>item</th><th>warning</th><th>paid</th><th>central price</th><th>receipt total</th></tr>")
        for w in warnings[:HTML_ROWS]:
            out.append(f"<tr><td>{_e(w.get('receipt_no') or w.get('local_ref'))}</td><td>{_e(w.get('item'))}</td>"
                       f"<td>{_e(w.get('code'))}</td><td class='n'>{_e(_value('paise', w.get('paid_paise')))}</td>"
                       f"<td class='n'>{_e(_value('paise', w.get('expected_paise')))}</td>"
                       f"<td class='n'>{_e(_value('paise', w.get('amount_paise')))}</td></tr>")
        out.append("</table>")
        if len(warnings) > HTML_ROWS:
            out.append(f"<p class='muted'>... and {len(warnings) - HTML_ROWS} more: see the CSV or JSON report.</p>")
    hours = [h for h in day.get("ops_per_hour") or [] if h.get("ops")]
    if hours:
        peak = max(h["ops"] for h in hours) or 1
        out.append("<h3>Ops per hour</h3><table><tr><th>hour</th><th>ops</th><th>synced</th><th>open</th>"
                   "<th>payments</th><th>amount</th><th></th></tr>")
        for h in hours:
            width = max(1, round(160 * h["ops"] / peak))
            out.append(f"<tr><td>{h['hour']:02d}:00</td><td class='n'>{h['ops']}</td><td class='n'>{h['synced']}"
                       f"</td><td class='n'>{h['open']}</td><td class='n'>{h['payments']}</td>"
                       f"<td class='n'>{_e(format_paise(h['paise']))}</td>"
                       f"<td><span class='bar' style='width:{width}px'></span></td></tr>")
        out.append("</table>")
    states = day.get("local_states") or {}
    if states:
        out.append("<p class='muted'>Ops recorded this day at this counter by state: "
                   + _e(", ".join(f"{k} {v}" for k, v in states.items())) + "</p>")
    return "\n".join(out)


def _detail(section: Section, op: ClassifiedOp) -> str:
    if section == "missing_centrally":
        return "PUT BACK IN THE QUEUE" if op.get("requeued") else "not requeued (run with --requeue-missing)"
    if section == "marked_synced":
        return f"was {op.get('previous_state')}; central: {op.get('central_status')}"
    if section == "flagged":
        return f"{op.get('state')}: {op.get('error_code') or ''} {op.get('error_message') or ''}".strip()
    if section == "waiting":
        return str(op.get("wait_reason") or f"attempts {op.get('attempts', 0)}")
    return str(op.get("central_status") or "")


def to_html(report: Report) -> str:
    """A clean printable page: status, summary, differences, ops per hour."""
    nightly = is_nightly(report)
    days = days_of(report)
    device = report.get("device_id") or (days[0].get("device_id") if days else "")
    title = f"{'Nightly check' if nightly else 'Reconciliation'} - counter {device}"
    status = str(report.get("status") or (days[0].get("status") if days else "") or "")
    body = [f"<h1>{_e(title)}</h1>",
            f"<p>Generated {_e(report.get('finished_at') or report.get('started_at'))} &middot; "
            f"<span class='status {_e(status)}'>{_e(STATUS_WORDS.get(status, status))}</span></p>"]
    if is_nightly(report):
        for reason in report.get("reasons") or []:
            body.append(f"<div class='loud'>{_e(reason)}</div>")
        body.append("<h2>Steps</h2><table><tr><th>step</th><th>ok</th><th>detail</th></tr>")
        for st in report.get("steps") or []:
            ok = "yes" if st.get("ok") else "NO"
            cls = "" if st.get("ok") else " class='differs'"
            body.append(f"<tr{cls}><td>{_e(st['name'])}</td><td>{ok}</td><td>{_e(st.get('detail'))}</td></tr>")
        body.append("</table>")
    body.extend(_html_day(d) for d in days)
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


# ------------------------------------------------------------------ files
def format_for(path: Path | str) -> str:
    ext = Path(path).suffix.lower()
    if ext not in FORMATS:
        raise ValueError(f"report file must end in .html, .csv or .json (got {Path(path).name!r})")
    return FORMATS[ext]


def render(report: Report, fmt: str) -> str:
    return {"html": to_html, "csv": to_csv, "json": to_json}[fmt](report)


def write_report(report: Report, path: Path | str) -> Path:
    """Write the report in the format its extension names: atomically, mode
    0600, never through a planted symlink; a CSV starts with a UTF-8 BOM so
    Excel shows Devanagari (see people_csv)."""
    p = Path(path)
    fmt = format_for(p)
    text = render(report, fmt)
    return write_private(p, ((BOM if fmt == "csv" else "") + text).encode("utf-8"))
