"""A supervisor's decisions on flagged ops: each changes the outbox and the
counter's records in one transaction, and is written to the audit log."""

from __future__ import annotations

from collections.abc import Mapping

from sqlmodel import Session, col, select

from opd_fallback.application.review.items import (
    FLAGGED_STATES,
    KIND_WORDS,
    MONEY_KINDS,
    PAYMENT_FIXED,
    RECORD_TABLES,
    REF_FIELDS,
    Category,
    Decision,
    Pick,
    ReviewItem,
    Supervisor,
    dependents,
    json_object,
    review_item,
)
from opd_fallback.domain import payloads as P
from opd_fallback.domain import rules
from opd_fallback.domain.clock import now_iso
from opd_fallback.domain.errors import DomainError, validate
from opd_fallback.domain.jsonio import JSONObject, JSONValue, dumps, dumps_or_none, loads
from opd_fallback.store import audit, numbers, outbox
from opd_fallback.store.engine import Store
from opd_fallback.store.operators import PinRefused, active_supervisor, verify_operator
from opd_fallback.store.tables import AuditEntry, Op, Payment


# --------------------------------------------------------------------------- service
class ReviewService:
    """Flagged ops for one counter database, and a supervisor's decisions on them."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # ---- who may decide ------------------------------------------------------
    def authenticate(self, supervisor_id: str, pin: str) -> Supervisor:
        """The supervisor with this PIN, or ``DomainError`` (code ``not_supervisor``).
        A refusal is audited (never the PIN)."""
        try:
            op = verify_operator(self.store, supervisor_id, pin, role="supervisor", purpose="review")
        except PinRefused as exc:  # wrong PINs are counted and audited by verify_operator
            with self.store.write() as s:
                why = {"not_supervisor": "not a supervisor", "pin_locked": "locked"}.get(exc.code, "wrong PIN")
                audit.record(s, supervisor_id or "?", "review.refused", None, why=why)
            raise DomainError.field("supervisor", exc.sentence, code="not_supervisor") from None
        return Supervisor(op.id, op.name)

    @staticmethod
    def _check_role(s: Session, sup: Supervisor) -> None:
        if active_supervisor(s, sup.id) is None:
            raise DomainError.field("supervisor", f"{sup.id} is no longer an active supervisor",
                                    code="not_supervisor")

    # ---- reading ---------------------------------------------------------------
    def items(self) -> list[ReviewItem]:
        """Every flagged op, oldest first."""
        with self.store.read() as s:
            ops = s.exec(select(Op).where(col(Op.state).in_(FLAGGED_STATES)).order_by(col(Op.seq))).all()
            return [review_item(s, op) for op in ops]

    def item(self, key: str) -> ReviewItem:
        """One op (flagged or not) by op_id, unique op_id prefix, or record's local ref."""
        with self.store.read() as s:
            return review_item(s, self._find(s, key))

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
        item = review_item(s, op)
        if categories and item.category not in categories:
            raise DomainError.field(
                "action", f"this op is a {item.category.replace('_', ' ')}; possible actions: "
                f"{', '.join(item.actions)}", code="wrong_action")
        return op, item

    # ---- writing helpers --------------------------------------------------------
    @staticmethod
    def _audit(s: Session, sup: Supervisor, action: str, item: ReviewItem, **detail: JSONValue) -> None:
        audit.record(s, sup.id, f"review.{action}", item.op_id, kind=item.kind, record_ref=item.record_ref,
                     category=item.category, code=item.code, **detail)

    @staticmethod
    def _resubmit(s: Session, op: Op, resolution: JSONObject | None) -> None:
        outbox.transition_one(s, op.op_id, "resubmitted", res=dumps_or_none(resolution))

    @staticmethod
    def _cancel(s: Session, op: Op, reason: str) -> None:
        outbox.transition_one(s, op.op_id, "cancelled", why=reason)

    @staticmethod
    def _repoint(s: Session, old: str, new: str | None) -> list[str]:
        """Ops waiting on ``old`` wait on ``new`` instead (or on nothing)."""
        moved = []
        for dep in dependents(s, old):
            ids = [i for i in (loads(dep.depends_on) or []) if i != old]
            if new:
                ids.append(new)
            dep.depends_on = dumps(sorted(set(ids)))
            dep.updated_at = now_iso()
            s.add(dep)
            moved.append(dep.op_id)
        return moved

    def _requeue(self, s: Session, op: Op, payload: dict[str, JSONValue], resolution: JSONObject | None,
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
    def _update_record(s: Session, op: Op, values: JSONObject) -> list[str]:
        """Make the counter's own record show ``values`` (only its plain columns)."""
        table = RECORD_TABLES.get(op.record_kind or "")
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

    def merge(self, sup: Supervisor, key: str, picks: Mapping[str, Pick | str], *, note: str | None = None) -> Decision:
        """Per changed field keep the counter's value or central's (see the module doc)."""
        with self.store.write() as s:
            self._check_role(s, sup)
            op, item = self._flagged(s, key, "stale_update")
            current = json_object(item.error.get("current"))
            version = current.get("version")
            if not isinstance(version, int):
                raise DomainError.field("current", "central sent no version for this patient; cannot merge",
                                        code="no_version")
            changes: dict[str, JSONValue] = dict(json_object(item.payload.get("changes")))
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
            resolution: dict[str, JSONValue] = {"action": "apply", "base_version": version}
            detail: dict[str, JSONValue] = {"picks": {**chosen}, "central_version": version, "note": note,
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

    def correct(self, sup: Supervisor, key: str, fields: JSONObject, *, note: str | None = None) -> Decision:
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
                        error=item.error.get("message"), repointed=[*moved], note=note)
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
                for dep in dependents(s, chain[i].op_id):
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
            if money_note is None and any(o.kind in MONEY_KINDS for o in chain):
                raise DomainError.field("money", "say what happened to the money (refunded, kept and "
                                        "recorded on paper, ...)", code="required")
            for o in chain:
                text = f"cancelled by {sup.id}: {why}"
                if o is not op:
                    text += f" (waited on cancelled op {op.op_id})"
                if o.kind in MONEY_KINDS:
                    text += f"; money: {money_note}"
                self._cancel(s, o, text)
                sub = item if o is op else review_item(s, o)
                self._audit(s, sup, "cancel", sub, reason=why, money=money_note if o.kind in MONEY_KINDS
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


def _get_path(data: JSONObject, path: str) -> JSONValue:
    cur: JSONValue = data
    for part in path.split("."):
        cur = cur.get(part) if isinstance(cur, Mapping) else None
    return cur
