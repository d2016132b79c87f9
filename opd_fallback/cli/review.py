"""``opd-fallback review``: what sync could not finish alone, and a supervisor's decisions.

    opd-fallback review list [--json]
    opd-fallback review show OP [--json]
    opd-fallback review resolve OP --supervisor S1 (--link UHID | --create-new |
        --merge field=counter|central ... | --correct field=value ... |
        --cancel --reason TEXT [--money TEXT] [--cascade] | --retry) [--note TEXT] [--pin-stdin]
    opd-fallback review history [--json]

Thin wrappers over :mod:`opd_fallback.application.review`; the PIN is read from the
terminal without echo (or one line of stdin with ``--pin-stdin``), never
taken as an argument, so it does not land in shell history.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated

import orjson
import typer

from opd_fallback.cli.common import counter_store, domain_errors, fail

if TYPE_CHECKING:  # imported inside each command: it loads the store (SQLAlchemy)
    from opd_fallback.application import review as R
    from opd_fallback.domain.jsonio import JSONValue

review_app = typer.Typer(help="Flagged records waiting for a supervisor's decision.", no_args_is_help=True)


def _cell(value: JSONValue) -> str:
    if value is None:
        return "-"
    if isinstance(value, (list, dict)):
        return orjson.dumps(value).decode()
    return str(value)


def render_item(item: R.ReviewItem) -> str:
    """The item as a supervisor reads it: why, then each comparison with '*' on differences."""
    lines = [f"{item.op_id}  #{item.seq}  {item.kind}  [{item.category}]",
             item.title, f"recorded {item.recorded_at} by {item.operator_id}", "", item.explanation]
    for fe in item.field_errors:
        lines.append(f"  ! {fe['label']} ({fe['field']}): {fe['message']}")
    for cmp in item.comparisons:
        lines += ["", f"{cmp.title}  ({cmp.differences} difference(s); * marks them)"]
        width = max([len(r.label) for r in cmp.rows] + [5])
        lw = max([len(_cell(r.left)) for r in cmp.rows] + [len(cmp.left_title)])
        lines.append(f"    {'':{width}}  {cmp.left_title:{lw}}  {cmp.right_title}")
        for r in cmp.rows:
            mark = "*" if r.differs else " "
            lines.append(f"  {mark} {r.label:{width}}  {_cell(r.left):{lw}}  {_cell(r.right)}")
    if item.category == "rejected":
        lines += ["", "Sent:"] + [f"    {k} = {_cell(v)}" for k, v in item.payload.items()]
    if item.waiting:
        lines += ["", f"Waiting on it: {', '.join(item.waiting)}"]
    lines += ["", "Actions: " + ", ".join(item.actions)]
    return "\n".join(lines)


@review_app.command("list")
def list_cmd(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable")] = False) -> None:
    """Every flagged op, oldest first, with why it needs a person."""
    from opd_fallback.application import review as R

    with counter_store() as (_s, store):
        items = R.ReviewService(store).items()
        count, oldest = R.summary(store)
    if as_json:
        typer.echo(json.dumps({"count": count, "oldest_recorded_at": oldest,
                               "items": [i.as_json() for i in items]}, ensure_ascii=False, indent=2))
        return
    if not items:
        typer.echo("Nothing waits for review.")
        return
    typer.echo(f"{count} record(s) wait for a supervisor; oldest recorded {oldest} "
               f"({R.age_words(oldest)} ago).")
    for i in items:
        typer.echo(f"{i.op_id}  {i.recorded_at}  {i.category:17}  {i.title}")


@review_app.command("show")
def show_cmd(op: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """One op explained, field by field (op id, its first characters, or the record's offline number)."""
    from opd_fallback.application import review as R

    with counter_store() as (_s, store), domain_errors():
        item = R.ReviewService(store).item(op)
    typer.echo(json.dumps(item.as_json(), ensure_ascii=False, indent=2) if as_json else render_item(item))


def _pairs(values: list[str], what: str) -> list[tuple[str, str]]:
    out = []
    for v in values:
        name, sep, value = v.partition("=")
        if not sep or not name.strip():
            fail(f"{what} takes field=value, not {v!r}")
        out.append((name.strip(), value))
    return out


def _pin(pin_stdin: bool) -> str:
    if pin_stdin:
        return sys.stdin.readline().strip()
    return str(typer.prompt("Supervisor PIN", hide_input=True))


@review_app.command("resolve")
def resolve_cmd(
    op: str,
    supervisor: Annotated[str, typer.Option("--supervisor", help="Supervisor's operator id")],
    link: Annotated[str | None, typer.Option("--link", help="Link to this candidate's UHID")] = None,
    create_new: Annotated[bool, typer.Option("--create-new", help="Register as a new patient")] = False,
    merge: Annotated[list[str] | None, typer.Option("--merge", help="field=counter|central")] = None,
    correct: Annotated[list[str] | None, typer.Option("--correct", help="field=value")] = None,
    cancel: Annotated[bool, typer.Option("--cancel", help="Give up on it (needs --reason)")] = False,
    retry: Annotated[bool, typer.Option("--retry", help="Queue again after waiting too long")] = False,
    reason: Annotated[str | None, typer.Option("--reason", help="Why it is cancelled")] = None,
    money: Annotated[str | None, typer.Option("--money", help="For a payment: what happened to the money")]
    = None,
    cascade: Annotated[bool, typer.Option("--cascade", help="Also cancel records waiting on it")] = False,
    note: Annotated[str | None, typer.Option("--note", help="Why (kept in the audit log)")] = None,
    pin_stdin: Annotated[bool, typer.Option("--pin-stdin", help="Read the PIN from one line of stdin")] = False,
) -> None:
    """Decide one flagged op; the decision goes to central on the next sync."""
    from opd_fallback.application import review as R

    chosen = [n for n, on in (("--link", link is not None), ("--create-new", create_new), ("--merge", bool(merge)),
                              ("--correct", bool(correct)), ("--cancel", cancel), ("--retry", retry)) if on]
    if len(chosen) != 1:
        fail("choose exactly one of --link, --create-new, --merge, --correct, --cancel, --retry")
    if cancel and not reason:
        fail("--cancel needs --reason")
    with counter_store() as (_s, store), domain_errors():
        rs = R.ReviewService(store)
        sup = rs.authenticate(supervisor, _pin(pin_stdin))
        if link is not None:
            d = rs.link(sup, op, link, note=note)
        elif create_new:
            d = rs.create_new(sup, op, note=note)
        elif merge:
            picks: dict[str, str] = {}
            for name, value in _pairs(merge, "--merge"):
                picks[name] = value.strip().lower()
            d = rs.merge(sup, op, picks, note=note)
        elif correct:
            kind = rs.item(op).kind
            fields = {name: R.parse_value(kind, name.split(".")[-1], value) for name, value in _pairs(correct, "--correct")}
            d = rs.correct(sup, op, fields, note=note)
        elif cancel:
            d = rs.cancel(sup, op, reason or "", money=money, cascade=cascade)
        else:
            d = rs.retry(sup, op, note=note)
    typer.echo(f"{d.action}: {d.message}")
    if d.new_op_id:
        typer.echo(f"new op: {d.new_op_id}")


@review_app.command("history")
def history_cmd(
    as_json: Annotated[bool, typer.Option("--json")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 200,
) -> None:
    """Every review decision (and refusal): who, when, what and why, newest first."""
    from opd_fallback.application import review as R

    with counter_store() as (_s, store):
        entries = R.ReviewService(store).history(limit)
    rows = [{"at": e.at, "actor": e.actor, "action": e.action, "op_id": e.subject,
             "detail": orjson.loads(e.detail)} for e in entries]
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        typer.echo("No review decisions yet.")
    for r in rows:
        d = r["detail"]
        why = d.get("reason") or d.get("note") or d.get("why") or ""
        what = {k: d[k] for k in ("uhid", "picks", "after", "money", "new_op_id", "outcome") if d.get(k)}
        typer.echo(f"{r['at']}  {r['actor']:10} {r['action']:18} {r['op_id'] or '-'}  "
                   f"{_cell(what) if what else ''}  {why}".rstrip())
