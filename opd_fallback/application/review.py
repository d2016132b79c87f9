"""Review: every op sync could not finish alone reaches a decision by a person.

Sync flags an op as ``conflict`` (a possible duplicate patient, a stale update,
or -- set by the engine -- a dependency it waited on too long, ``last_status``
``deferred``) or ``rejected`` (central can never apply it as sent). This module
lists those items with an explanation in words and a field-by-field comparison,
and carries out a supervisor's decision. Each decision changes the outbox and
writes its audit entry (who, when, what, why) in the same transaction, so a
decision is never half-made and never unrecorded. Nothing is deleted: an op a
person gives up on is ``cancelled`` with the reason kept in ``wait_reason``.

How each decision flows back to central on the next sync:

- **link / create-new** (``possible_duplicate``): the same op goes back to
  ``pending`` with the contract's ``resolution``; its payload is unchanged, so
  the op_id stays the idempotency key and everything that depended on it
  follows once it is applied.
- **merge** (``stale_update``): the supervisor picks, per changed field, the
  counter's value or central's. If every counter value is kept, the same op is
  resubmitted with ``{"action": "apply", "base_version": current.version}``.
  If the merge drops fields, the payload differs, so a *new* op is queued (new
  op_id and seq, ``supersedes`` the old one, payload ``base_version`` =
  ``current.version``, resolution ``apply`` too) and the old op is cancelled
  "superseded by ...": reusing an op_id with another payload is what the
  contract's idempotency check exists to refuse. If central's value is kept for
  every field there is nothing left to send: the op is cancelled, and the local
  record takes central's values.
- **correct** (``rejected``): a new op (new op_id and seq, same ``local_ref``:
  a rejected op was never applied) with the corrected fields; ops waiting on the
  rejected one are re-pointed to it; the local record takes the corrections.
  The new op keeps the original ``operator_id`` and ``recorded_at`` (the clerk
  took the money that day; the day's reconciliation must still count it); the
  supervisor's part is in the audit log. A payment's amount, mode and items are
  never corrected (a payment is a fact): cancel it and record a new one.
- **cancel**: with a reason; for a payment (or a void) also what happened to
  the money. An op others wait on is cancelled only together with them
  (``cascade``), so nothing is left waiting on an op that will never come.
- **retry** (waited too long on a dependency): back to ``pending``.

Only an active operator with the ``supervisor`` role may decide: the PIN is
checked once by :meth:`ReviewService.authenticate`, and every action re-checks
the role inside its transaction (a supervisor disabled meanwhile is refused).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from sqlmodel import Session, col, select

from opd_fallback.domain import contract, rules
from opd_fallback.domain import payloads as P
from opd_fallback.domain.clock import duration_words, now_iso, seconds_since
from opd_fallback.domain.errors import FIELD_LABELS, DomainError, validate
from opd_fallback.domain.jsonio import dumps, dumps_or_none, loads
from opd_fallback.store import audit, numbers, outbox
from opd_fallback.store.engine import Store
from opd_fallback.store.operators import verify_operator
from opd_fallback.store.tables import AuditEntry, LabOrder, Op, Operator, Patient, Payment, Visit

Category = Literal["possible_duplicate", "stale_update", "rejected", "waited_too_long", "conflict"]
Pick = Literal["counter", "central"]

FLAGGED_STATES = (outbox.REJECTED, outbox.CONFLICT)
# Fields compared beside a duplicate candidate: the contract's, less the id itself.
CANDIDATE_FIELDS = tuple(f for f in contract.CANDIDATE_FIELDS if f != "uhid")
# A payment is a fact: its money fields are never edited (a trigger refuses it locally too).
PAYMENT_FIXED = ("amount_paise", "mode", "items")
# the payload fields that hold a reference ({"central_id"} or {"local_ref"})
REF_FIELDS = ("patient", "visit", "lab_order", "payment")
_RECORD_TABLES: dict[str, type[Any]] = {"patient": Patient, "visit": Visit, "lab_order": LabOrder,
                                        "payment": Payment}
_MONEY_KINDS = ("payment.record", "payment.void")
KIND_WORDS = {
    "patient.register": "patient registration",
    "patient.update": "patient details change",
    "visit.open": "OPD visit",
    "lab.order": "lab order",
    "payment.record": "payment",
    "payment.void": "payment void",
}


# --------------------------------------------------------------------------- views
@dataclass(frozen=True)
class FieldDiff:
    """One field beside another; ``differs`` marks what a person must look at."""

    field: str
    label: str
    left: Any
    right: Any
    differs: bool


@dataclass(frozen=True)
class Comparison:
    """Two versions of one record, field by field (left: this counter)."""

    title: str
    left_title: str
    right_title: str
    rows: tuple[FieldDiff, ...]
    key: str | None = None  # the candidate's uhid, for `link`

    @property
    def differences(self) -> int:
        return sum(1 for r in self.rows if r.differs)


@dataclass(frozen=True)
class ReviewItem:
    """One flagged op, explained."""

    op_id: str
    seq: int
    kind: str
    state: str
    category: Category
    code: str
    title: str
    explanation: str
    recorded_at: str
    operator_id: str
    record_ref: str | None
    payload: dict[str, Any]
    error: dict[str, Any]
    field_errors: tuple[dict[str, str], ...]
    comparisons: tuple[Comparison, ...]
    actions: tuple[str, ...]
    waiting: tuple[str, ...]  # op_ids (not synced) that wait on this one

    def as_json(self) -> dict[str, Any]:
        return {
            "op_id": self.op_id, "seq": self.seq, "kind": self.kind, "state": self.state,
            "category": self.category, "code": self.code, "title": self.title,
            "explanation": self.explanation, "recorded_at": self.recorded_at,
            "operator_id": self.operator_id, "record_ref": self.record_ref, "payload": self.payload,
            "error": self.error, "field_errors": list(self.field_errors),
            "comparisons": [
                {"title": c.title, "left_title": c.left_title, "right_title": c.right_title, "key": c.key,
                 "rows": [{"field": r.field, "label": r.label, "left": r.left, "right": r.right,
                           "differs": r.differs} for r in c.rows]}
                for c in self.comparisons
            ],
            "actions": list(self.actions), "waiting": list(self.waiting),
        }


@dataclass(frozen=True)
class Supervisor:
    """A supervisor whose PIN was checked (made only by ``authenticate``)."""

    id: str
    name: str


@dataclass(frozen=True)
class Decision:
    """What a review action did: the op decided, and a new op if one was queued."""

    action: str
    op_id: str
    message: str
    new_op_id: str | None = None
    affected: tuple[str, ...] = field(default_factory=tuple)


# --------------------------------------------------------------------------- helpers
def _label(name: str) -> str:
    return FIELD_LABELS.get(name, name.replace("_", " ").capitalize())


def _norm(value: Any) -> Any:
    if isinstance(value, str):
        return " ".join(value.split()).casefold() or None
    return value


def _diff(fields: Iterable[str], left: Mapping[str, Any], right: Mapping[str, Any]) -> tuple[FieldDiff, ...]:
    return tuple(
        FieldDiff(f, _label(f), left.get(f), right.get(f), _norm(left.get(f)) != _norm(right.get(f)))
        for f in fields
    )


def _category(op: Op, error: dict[str, Any]) -> Category:
    code = str(error.get("code") or "")
    if op.state == outbox.REJECTED:
        return "rejected"
    if op.last_status == "deferred" or code in ("dependency_missing", "reference_pending"):
        return "waited_too_long"
    if code in ("possible_duplicate", "stale_update"):
        return code  # type: ignore[return-value]
    return "conflict"


def _ref_words(ref: Any) -> str:
    if isinstance(ref, dict):
        return str(ref.get("central_id") or ref.get("local_ref") or "?")
    return "?"


def _title(op: Op, payload: dict[str, Any]) -> str:
    kind = op.kind
    if kind == "patient.register":
        return f"Registration of {payload.get('name', '?')} ({payload.get('local_ref', '?')})"
    if kind == "patient.update":
        return f"Change to patient {_ref_words(payload.get('patient'))}"
    if kind == "visit.open":
        return (f"OPD visit {payload.get('local_ref', '?')} to {payload.get('department', '?')} "
                f"for {_ref_words(payload.get('patient'))}")
    if kind == "lab.order":
        tests = ", ".join(str(t.get("code")) for t in payload.get("tests") or [] if isinstance(t, dict))
        return f"Lab order {payload.get('local_ref', '?')} ({tests}) for {_ref_words(payload.get('patient'))}"
    if kind == "payment.record":
        amount = payload.get("amount_paise")
        money = rules.format_paise(amount) if isinstance(amount, int) else "?"
        return (f"Payment {money} {payload.get('mode', '?')}, receipt {payload.get('receipt_no', '?')}, "
                f"for {_ref_words(payload.get('patient'))}")
    if kind == "payment.void":
        return f"Void of payment {_ref_words(payload.get('payment'))}"
    return f"{kind} {op.record_ref or ''}".strip()


def _explain(op: Op, category: Category, error: dict[str, Any], waiting: int) -> str:
    what = KIND_WORDS.get(op.kind, op.kind)
    msg = str(error.get("message") or "").strip()
    if category == "possible_duplicate":
        n = len(error.get("candidates") or [])
        text = (f"Central found {n} existing patient(s) who may be the same person as this {what}. "
                "Compare them field by field, then link to one of them or register as a new patient.")
    elif category == "stale_update":
        cur = error.get("current") or {}
        text = (f"Patient {cur.get('uhid', '?')} was changed centrally (now version {cur.get('version', '?')}) "
                "after this counter last saw it. Choose, field by field, the counter's value or central's.")
    elif category == "rejected":
        text = f"Central refused this {what} ({error.get('code', '?')}): {msg or 'no reason given'}. " \
               "Correct it and send it again, or cancel it with a reason."
    elif category == "waited_too_long":
        text = (f"This {what} waited too long for a record it needs ({error.get('code', 'deferred')}"
                f"{': ' + msg if msg else ''}). Retry once the other record has synced, or cancel it.")
    else:
        text = f"Central could not apply this {what} ({error.get('code', '?')}): {msg}"
    if waiting:
        text += f" {waiting} later record(s) wait for this decision."
    return text


def _actions(op: Op, category: Category) -> tuple[str, ...]:
    if category == "possible_duplicate":
        return ("link", "create_new", "cancel")
    if category == "stale_update":
        return ("merge", "cancel")
    if category == "rejected":
        return ("correct", "cancel")
    if category == "waited_too_long":
        return ("retry", "cancel")
    return ("cancel",)


def _dependents(s: Session, op_id: str) -> list[Op]:
    """Ops not yet synced or cancelled that list ``op_id`` in depends_on."""
    like = f'%"{op_id}"%'
    stmt = select(Op).where(col(Op.depends_on).like(like),
                            col(Op.state).notin_((outbox.SYNCED, outbox.CANCELLED))).order_by(col(Op.seq))
    return [o for o in s.exec(stmt) if op_id in (loads(o.depends_on) or [])]


def _item(s: Session, op: Op) -> ReviewItem:
    payload = loads(op.payload) or {}
    error = loads(op.last_error) or {}
    category = _category(op, error)
    waiting = tuple(o.op_id for o in _dependents(s, op.op_id))
    comparisons: list[Comparison] = []
    if category == "possible_duplicate":
        for cand in error.get("candidates") or []:
            comparisons.append(Comparison(
                title=f"Candidate {cand.get('uhid')}", left_title="This counter",
                right_title=f"Central {cand.get('uhid')}",
                rows=_diff(CANDIDATE_FIELDS, payload, cand), key=cand.get("uhid")))
    elif category == "stale_update":
        cur = error.get("current") or {}
        changes = payload.get("changes") or {}
        comparisons.append(Comparison(
            title=f"Patient {cur.get('uhid', '?')}", left_title="Counter's change",
            right_title=f"Central (version {cur.get('version', '?')})",
            rows=_diff(list(changes), changes, cur), key=cur.get("uhid")))
    field_errors = tuple(
        {"field": str(f.get("field", "")), "label": _label(str(f.get("field", "")).split(".")[0] or "record"),
         "code": str(f.get("code", "")), "message": str(f.get("message", ""))}
        for f in error.get("fields") or [] if isinstance(f, dict)
    )
    return ReviewItem(
        op_id=op.op_id, seq=op.seq, kind=op.kind, state=op.state, category=category,
        code=str(error.get("code") or op.last_status or ""), title=_title(op, payload),
        explanation=_explain(op, category, error, len(waiting)), recorded_at=op.recorded_at,
        operator_id=op.operator_id, record_ref=op.record_ref, payload=payload, error=error,
        field_errors=field_errors, comparisons=tuple(comparisons), actions=_actions(op, category),
        waiting=waiting,
    )


def summary(store: Store) -> tuple[int, str | None]:
    """How many ops need a person's decision, and when the oldest was recorded
    (for ``status`` and the counter's status bar)."""
    with store.read() as s:
        counts = outbox.counts_by_state(s)
        oldest = outbox.oldest_recorded_at(s, FLAGGED_STATES)
    return sum(counts.get(st, 0) for st in FLAGGED_STATES), oldest


def age_words(oldest_recorded_at: str | None, now: str | None = None) -> str:
    """'3 h 5 min' since ``oldest_recorded_at`` (for a status line)."""
    if not oldest_recorded_at:
        return ""
    return duration_words(seconds_since(oldest_recorded_at, now))


def parse_value(kind: str, name: str, text: str) -> Any:
    """A value typed at the CLI for payload field ``name``: whole numbers for
    integer fields, JSON for lists and objects, ``null`` or nothing for none."""
    raw = text.strip()
    if raw in ("", "null", "none", "None"):
        return None
    if raw[:1] in "[{":
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise DomainError.field(name, "is not valid JSON", code="bad_json") from None
    model = P.PAYLOAD_MODELS.get(kind)
    info = model.model_fields.get(name) if model else None
    if info is not None and "int" in str(info.annotation).lower():
        try:
            return int(raw)
        except ValueError:
            raise DomainError.field(name, "must be a whole number", code="not_whole_number") from None
    return raw


# --------------------------------------------------------------------------- service
class ReviewService:
    """Flagged ops for one counter database, and a supervisor's decisions on them."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # ---- who may decide ------------------------------------------------------
    def authenticate(self, supervisor_id: str, pin: str) -> Supervisor:
        """The supervisor with this PIN, or ``DomainError`` (code ``not_supervisor``).
        A refusal is audited (never the PIN)."""
        op = verify_operator(self.store, supervisor_id, pin)
        if op is None or op.role != "supervisor":
            with self.store.write() as s:
                audit.record(s, supervisor_id or "?", "review.refused", None,
                             why="wrong PIN" if op is None else "not a supervisor")
            if op is not None:
                raise DomainError.field("supervisor", f"{supervisor_id} is not a supervisor; only a "
                                        "supervisor may decide flagged records", code="not_supervisor")
            raise DomainError.field("supervisor", "supervisor ID or PIN is wrong", code="not_supervisor")
        return Supervisor(op.id, op.name)

    @staticmethod
    def _check_role(s: Session, sup: Supervisor) -> None:
        row = s.get(Operator, sup.id)
        if row is None or not row.active or row.role != "supervisor":
            raise DomainError.field("supervisor", f"{sup.id} is no longer an active supervisor",
                                    code="not_supervisor")

    # ---- reading ---------------------------------------------------------------
    def items(self) -> list[ReviewItem]:
        """Every flagged op, oldest first."""
        with self.store.read() as s:
            ops = s.exec(select(Op).where(col(Op.state).in_(FLAGGED_STATES)).order_by(col(Op.seq))).all()
            return [_item(s, op) for op in ops]

    def item(self, key: str) -> ReviewItem:
        """One op (flagged or not) by op_id, unique op_id prefix, or record's local ref."""
        with self.store.read() as s:
            return _item(s, self._find(s, key))

    def history(self, limit: int = 200) -> list[AuditEntry]:
        with self.store.read() as s:
            return audit.history(s, action_prefix="review.", limit=limit)

    def _find(self, s: Session, key: str) -> Op:
        k = (key or "").strip()
        if not k:
            raise DomainError.field("op", "give an op id", code="required")
        op = outbox.get(s, k)
        if op is not None:
            return op
        hits = list(s.exec(select(Op).where(col(Op.op_id).startswith(k.upper())).limit(3)))
        if not hits:
            flagged = list(s.exec(select(Op).where(Op.record_ref == k.upper(),
                                                   col(Op.state).in_(FLAGGED_STATES)).limit(3)))
            hits = flagged or list(s.exec(select(Op).where(Op.record_ref == k.upper()).limit(3)))
        if len(hits) == 1:
            return hits[0]
        if not hits:
            raise DomainError.field("op", f"no op {k}", code="not_found")
        raise DomainError.field("op", f"{k} matches more than one op; give more of the op id",
                                code="ambiguous")

    def _flagged(self, s: Session, key: str, *categories: Category) -> tuple[Op, ReviewItem]:
        op = self._find(s, key)
        if op.state not in FLAGGED_STATES:
            raise DomainError.field("op", f"op {op.op_id} is {op.state}, not waiting for review",
                                    code="not_flagged")
        item = _item(s, op)
        if categories and item.category not in categories:
            raise DomainError.field(
                "action", f"this op is a {item.category.replace('_', ' ')}; possible actions: "
                f"{', '.join(item.actions)}", code="wrong_action")
        return op, item

    # ---- writing helpers --------------------------------------------------------
    @staticmethod
    def _audit(s: Session, sup: Supervisor, action: str, item: ReviewItem, **detail: Any) -> None:
        audit.record(s, sup.id, f"review.{action}", item.op_id, kind=item.kind, record_ref=item.record_ref,
                     category=item.category, code=item.code, **detail)

    @staticmethod
    def _resubmit(s: Session, op: Op, resolution: dict[str, Any] | None) -> None:
        outbox.transition_one(s, op.op_id, "resubmitted", res=dumps_or_none(resolution))

    @staticmethod
    def _cancel(s: Session, op: Op, reason: str) -> None:
        outbox.transition_one(s, op.op_id, "cancelled", why=reason)

    @staticmethod
    def _repoint(s: Session, old: str, new: str | None) -> list[str]:
        """Ops waiting on ``old`` wait on ``new`` instead (or on nothing)."""
        moved = []
        for dep in _dependents(s, old):
            ids = [i for i in (loads(dep.depends_on) or []) if i != old]
            if new:
                ids.append(new)
            dep.depends_on = dumps(sorted(set(ids)))
            dep.updated_at = now_iso()
            s.add(dep)
            moved.append(dep.op_id)
        return moved

    def _requeue(self, s: Session, op: Op, payload: dict[str, Any], resolution: dict[str, Any] | None,
                 reason: str) -> Op:
        """A new op replacing ``op`` (which is cancelled with ``reason``)."""
        seq = numbers.next_seq(s)
        new = outbox.enqueue(
            s, seq=seq, kind=op.kind, device_id=op.device_id, operator_id=op.operator_id, payload=payload,
            depends_on=loads(op.depends_on) or [], recorded_at=op.recorded_at, record_kind=op.record_kind,
            record_ref=op.record_ref, source=op.source, supersedes=op.op_id,
        )
        if resolution is not None:
            new.resolution = dumps(resolution)
        s.add(new)
        s.flush()
        self._cancel(s, op, f"superseded by {new.op_id} ({reason})")
        return new

    @staticmethod
    def _update_record(s: Session, op: Op, values: Mapping[str, Any]) -> list[str]:
        """Make the counter's own record show ``values`` (only its plain columns)."""
        table = _RECORD_TABLES.get(op.record_kind or "")
        if table is None or not op.record_ref:
            return []
        rec = s.exec(select(table).where(table.local_ref == op.record_ref)).first()
        if rec is None:
            return []
        changed = []
        for name, value in values.items():
            if name in ("id", "local_ref", "op_id") or name not in table.model_fields:
                continue
            if table is Payment and name in PAYMENT_FIXED:
                continue
            if isinstance(value, (list, dict)):
                value = dumps(value)
            setattr(rec, name, value)
            changed.append(name)
        s.add(rec)
        return changed

    # ---- decisions ----------------------------------------------------------------
    def link(self, sup: Supervisor, key: str, uhid: str, *, note: str | None = None) -> Decision:
        """The local registration is this existing patient: resubmit with ``link``."""
        uhid = (uhid or "").strip().upper()
        with self.store.write() as s:
            self._check_role(s, sup)
            op, item = self._flagged(s, key, "possible_duplicate")
            candidates = [c.key for c in item.comparisons]
            if uhid not in candidates:
                raise DomainError.field("uhid", f"{uhid or '(none)'} is not one of the candidates "
                                        f"({', '.join(str(c) for c in candidates)})", code="not_candidate")
            self._resubmit(s, op, {"action": "link", "uhid": uhid})
            cmp = next(c for c in item.comparisons if c.key == uhid)
            self._audit(s, sup, "link", item, uhid=uhid, note=note,
                        differences=[r.field for r in cmp.rows if r.differs], waiting=list(item.waiting))
        return Decision("link", op.op_id, f"{item.record_ref} will be linked to {uhid} on the next sync; "
                        f"{len(item.waiting)} waiting record(s) follow it.", affected=item.waiting)

    def create_new(self, sup: Supervisor, key: str, *, note: str | None = None) -> Decision:
        """None of the candidates is this person: resubmit with ``create_new``."""
        with self.store.write() as s:
            self._check_role(s, sup)
            op, item = self._flagged(s, key, "possible_duplicate")
            self._resubmit(s, op, {"action": "create_new"})
            self._audit(s, sup, "create_new", item, note=note,
                        candidates=[c.key for c in item.comparisons], waiting=list(item.waiting))
        return Decision("create_new", op.op_id, f"{item.record_ref} will be registered as a new patient on "
                        "the next sync.", affected=item.waiting)

    def merge(self, sup: Supervisor, key: str, picks: Mapping[str, Pick], *, note: str | None = None) -> Decision:
        """Per changed field keep the counter's value or central's (see the module doc)."""
        with self.store.write() as s:
            self._check_role(s, sup)
            op, item = self._flagged(s, key, "stale_update")
            current = item.error.get("current") or {}
            version = current.get("version")
            if not isinstance(version, int):
                raise DomainError.field("current", "central sent no version for this patient; cannot merge",
                                        code="no_version")
            changes: dict[str, Any] = dict(item.payload.get("changes") or {})
            rows = item.comparisons[0].rows if item.comparisons else ()
            unknown = sorted(set(picks) - set(changes))
            if unknown:
                raise DomainError.field("merge", f"{', '.join(unknown)} not changed by this update "
                                        f"(changed: {', '.join(changes)})", code="unknown_field")
            bad = sorted(f for f, p in picks.items() if p not in ("counter", "central"))
            if bad:
                raise DomainError.field("merge", f"pick counter or central for {', '.join(bad)}",
                                        code="bad_pick")
            missing = [r.field for r in rows if r.differs and r.field not in picks]
            if missing:
                raise DomainError.field("merge", f"pick counter or central for {', '.join(missing)}",
                                        code="required")
            chosen = {f: ("counter" if picks.get(f, "counter") == "counter" else "central") for f in changes}
            merged = {f: v for f, v in changes.items() if chosen[f] == "counter"}
            kept_central = {f: current.get(f) for f in changes if chosen[f] == "central"}
            resolution = {"action": "apply", "base_version": version}
            detail = {"picks": chosen, "central_version": version, "note": note,
                      "counter": changes, "central": {f: current.get(f) for f in changes}}
            new_id: str | None = None
            if merged == changes:
                self._resubmit(s, op, resolution)
                msg = f"the counter's change will be applied over central version {version} on the next sync."
                outcome = "resubmitted"
            elif not merged:
                self._cancel(s, op, f"merged by {sup.id}: central's values kept for every field")
                self._repoint(s, op.op_id, None)
                msg = "central's values kept for every field; nothing to send."
                outcome = "cancelled"
            else:
                payload = P.wire(validate(P.PatientUpdate,
                                          {**item.payload, "base_version": version, "changes": merged}))
                new = self._requeue(s, op, payload, resolution, f"merged by {sup.id}")
                self._repoint(s, op.op_id, new.op_id)
                new_id = new.op_id
                msg = (f"merged change queued as op {new.op_id} over central version {version} "
                       f"(counter: {', '.join(merged)}; central: {', '.join(kept_central)}).")
                outcome = "superseded"
            self._update_record(s, op, kept_central)
            self._audit(s, sup, "merge", item, outcome=outcome, new_op_id=new_id, **detail)
        return Decision("merge", op.op_id, msg, new_op_id=new_id)

    def correct(self, sup: Supervisor, key: str, fields: Mapping[str, Any], *, note: str | None = None) -> Decision:
        """Queue a corrected copy of a rejected op (new op_id and seq, same local_ref)."""
        with self.store.write() as s:
            self._check_role(s, sup)
            op, item = self._flagged(s, key, "rejected")
            payload = dict(item.payload)
            for name in fields:
                top = name.split(".")[0]
                if top == "local_ref":
                    raise DomainError.field("local_ref", "the offline number stays (it is printed on the "
                                            "patient's slip); cancel instead", code="not_correctable")
                if op.kind == "payment.record" and top in PAYMENT_FIXED:
                    raise DomainError.field(top, "a payment is a fact and is never edited; cancel it, say "
                                            "what happened to the money, and record a new payment",
                                            code="not_correctable")
                if "." not in name and name not in P.PAYLOAD_MODELS[op.kind].model_fields:
                    raise DomainError.field(name, f"is not a field of a {KIND_WORDS[op.kind]}",
                                            code="unknown_field")
            for name, value in fields.items():
                target = payload
                parts = name.split(".")
                if len(parts) == 2 and parts[0] in REF_FIELDS and parts[1] in P.REF_KEYS:
                    # a reference has exactly one key: setting one replaces the other
                    payload[parts[0]] = {parts[1]: value}
                    continue
                for part in parts[:-1]:
                    nxt = target.get(part)
                    nxt = dict(nxt) if isinstance(nxt, dict) else {}
                    target[part] = nxt
                    target = nxt
                target[parts[-1]] = value
            model = validate(P.PAYLOAD_MODELS[op.kind], payload)
            payload = P.wire(model)
            new = self._requeue(s, op, payload, None, f"corrected by {sup.id}")
            moved = self._repoint(s, op.op_id, new.op_id)
            before = {f: _get_path(item.payload, f) for f in fields}
            after = {f: _get_path(payload, f) for f in fields}
            self._update_record(s, op, {f: v for f, v in after.items() if "." not in f})
            self._audit(s, sup, "correct", item, new_op_id=new.op_id, before=before, after=after,
                        error=item.error.get("message"), repointed=moved, note=note)
        return Decision("correct", op.op_id, f"corrected op {new.op_id} queued; {len(moved)} waiting record(s) "
                        "now wait on it.", new_op_id=new.op_id, affected=tuple(moved))

    def cancel(self, sup: Supervisor, key: str, reason: str, *, money: str | None = None,
               cascade: bool = False) -> Decision:
        """Give up on a flagged op, with the reason (and, for money, what happened to it)."""
        why = rules.clean_text(reason or "")
        if not why:
            raise DomainError.field("reason", "say why this record is cancelled", code="required")
        if len(why) > 200:
            raise DomainError.field("reason", "is too long (at most 200)", code="too_long")
        money_note = rules.clean_text(money or "") or None
        with self.store.write() as s:
            self._check_role(s, sup)
            op, item = self._flagged(s, key)
            chain = [op]
            seen = {op.op_id}
            i = 0
            while i < len(chain):
                for dep in _dependents(s, chain[i].op_id):
                    if dep.op_id not in seen:
                        seen.add(dep.op_id)
                        chain.append(dep)
                i += 1
            later = chain[1:]
            if later and not cascade:
                names = "; ".join(f"{o.op_id} ({KIND_WORDS.get(o.kind, o.kind)} {o.record_ref or ''})".strip()
                                  for o in later)
                raise DomainError.field("cascade", f"{len(later)} record(s) wait on this one: {names}. "
                                        "Cancel them too (cascade) or decide this op another way",
                                        code="has_dependents")
            if money_note is None and any(o.kind in _MONEY_KINDS for o in chain):
                raise DomainError.field("money", "say what happened to the money (refunded, kept and "
                                        "recorded on paper, ...)", code="required")
            for o in chain:
                text = f"cancelled by {sup.id}: {why}"
                if o is not op:
                    text += f" (waited on cancelled op {op.op_id})"
                if o.kind in _MONEY_KINDS:
                    text += f"; money: {money_note}"
                self._cancel(s, o, text)
                sub = item if o is op else _item(s, o)
                self._audit(s, sup, "cancel", sub, reason=why, money=money_note if o.kind in _MONEY_KINDS
                            else None, cascade_from=None if o is op else op.op_id,
                            payload=loads(o.payload))
        return Decision("cancel", op.op_id, f"cancelled {len(chain)} op(s).",
                        affected=tuple(o.op_id for o in later))

    def retry(self, sup: Supervisor, key: str, *, note: str | None = None) -> Decision:
        """An op that waited too long on a dependency goes back to the queue."""
        with self.store.write() as s:
            self._check_role(s, sup)
            op, item = self._flagged(s, key, "waited_too_long")
            self._resubmit(s, op, loads(op.resolution))
            self._audit(s, sup, "retry", item, note=note, waited_on=item.error.get("message"))
        return Decision("retry", op.op_id, "queued again for the next sync.")


def _get_path(data: Mapping[str, Any], path: str) -> Any:
    cur: Any = data
    for part in path.split("."):
        cur = cur.get(part) if isinstance(cur, Mapping) else None
    return cur
