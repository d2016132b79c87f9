"""Flagged ops as a supervisor sees them: what went wrong, compared side by side,
and what can be done. Read-only: the decisions are in :mod:`.service`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypedDict

from sqlmodel import Session, col, select

from opd_fallback.domain import contract, registry, rules
from opd_fallback.domain.clock import duration_words, seconds_since
from opd_fallback.domain.errors import FIELD_LABELS
from opd_fallback.domain.jsonio import JSONObject, JSONValue, loads
from opd_fallback.store import outbox
from opd_fallback.store.engine import Store
from opd_fallback.store.tables import LabOrder, Op, Patient, Payment, Visit

Category = Literal["possible_duplicate", "stale_update", "rejected", "waited_too_long", "conflict"]
Pick = Literal["counter", "central"]

FLAGGED_STATES = (outbox.REJECTED, outbox.CONFLICT)
# Fields compared beside a duplicate candidate: the contract's, less the id itself.
CANDIDATE_FIELDS = tuple(f for f in contract.CANDIDATE_FIELDS if f != "uhid")
# A payment is a fact: its money fields are never edited (a trigger refuses it locally too).
PAYMENT_FIXED = ("amount_paise", "mode", "items")
# the payload fields that hold a reference ({"central_id"} or {"local_ref"})
REF_FIELDS = registry.RECORD_KINDS
RECORD_TABLES: dict[str, type[Patient] | type[Visit] | type[LabOrder] | type[Payment]] = {"patient": Patient, "visit": Visit, "lab_order": LabOrder,
                                        "payment": Payment}
assert set(RECORD_TABLES) == set(registry.RECORD_KINDS), "a record kind of domain/registry.py has no table here"
MONEY_KINDS = registry.MONEY_KINDS
KIND_WORDS = registry.WORDS



# --------------------------------------------------------------------------- views
@dataclass(frozen=True)
class FieldDiff:
    """One field beside another; ``differs`` marks what a person must look at."""

    field: str
    label: str
    left: JSONValue
    right: JSONValue
    differs: bool


class FieldError(TypedDict):
    """One field central refused, with its label for people."""

    field: str
    label: str
    code: str
    message: str


class DiffJSON(TypedDict):
    field: str
    label: str
    left: JSONValue
    right: JSONValue
    differs: bool


class ComparisonJSON(TypedDict):
    title: str
    left_title: str
    right_title: str
    key: str | None
    rows: list[DiffJSON]


class ReviewItemJSON(TypedDict):
    """``ReviewItem.as_json()``: what ``review list --json`` prints per op."""

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
    payload: JSONObject
    error: JSONObject
    field_errors: list[FieldError]
    comparisons: list[ComparisonJSON]
    actions: list[str]
    waiting: list[str]


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
    payload: JSONObject
    error: JSONObject
    field_errors: tuple[FieldError, ...]
    comparisons: tuple[Comparison, ...]
    actions: tuple[str, ...]
    waiting: tuple[str, ...]  # op_ids (not synced) that wait on this one

    def as_json(self) -> ReviewItemJSON:
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
def field_label(name: str) -> str:
    return FIELD_LABELS.get(name, name.replace("_", " ").capitalize())


def _norm(value: JSONValue) -> JSONValue:
    if isinstance(value, str):
        return " ".join(value.split()).casefold() or None
    return value


def diff_fields(fields: Iterable[str], left: JSONObject, right: JSONObject) -> tuple[FieldDiff, ...]:
    return tuple(
        FieldDiff(f, field_label(f), left.get(f), right.get(f), _norm(left.get(f)) != _norm(right.get(f)))
        for f in fields
    )


def category_of(op: Op, error: JSONObject) -> Category:
    code = str(error.get("code") or "")
    if op.state == outbox.REJECTED:
        return "rejected"
    if op.last_status == "deferred" or code in ("dependency_missing", "reference_pending"):
        return "waited_too_long"
    if code == "possible_duplicate":
        return "possible_duplicate"
    if code == "stale_update":
        return "stale_update"
    return "conflict"


def _ref_words(ref: JSONValue) -> str:
    if isinstance(ref, Mapping):
        return str(ref.get("central_id") or ref.get("local_ref") or "?")
    return "?"


def json_list(value: JSONValue) -> Sequence[JSONValue]:
    """A JSON array of a payload or an error (absent or empty: ``[]``)."""
    return value if isinstance(value, list) else []


def json_object(value: JSONValue) -> JSONObject:
    """A JSON object of a payload or an error (absent or empty: ``{}``)."""
    return value if isinstance(value, Mapping) else {}


# One line naming what a flagged op is, per kind (registered against domain/registry.py).
TITLES: registry.Handlers[Callable[[JSONObject], str]] = registry.Handlers(
    "review titles (application/review/items.py)")


@TITLES.register("patient.register")
def _register_title(payload: JSONObject) -> str:
    return f"Registration of {payload.get('name', '?')} ({payload.get('local_ref', '?')})"


@TITLES.register("patient.update")
def _update_title(payload: JSONObject) -> str:
    return f"Change to patient {_ref_words(payload.get('patient'))}"


@TITLES.register("visit.open")
def _visit_title(payload: JSONObject) -> str:
    return (f"OPD visit {payload.get('local_ref', '?')} to {payload.get('department', '?')} "
            f"for {_ref_words(payload.get('patient'))}")


@TITLES.register("lab.order")
def _lab_title(payload: JSONObject) -> str:
    tests = ", ".join(str(t.get("code")) for t in json_list(payload.get("tests")) if isinstance(t, Mapping))
    return f"Lab order {payload.get('local_ref', '?')} ({tests}) for {_ref_words(payload.get('patient'))}"


@TITLES.register("payment.record")
def _payment_title(payload: JSONObject) -> str:
    amount = payload.get("amount_paise")
    money = rules.format_paise(amount) if isinstance(amount, int) else "?"
    return (f"Payment {money} {payload.get('mode', '?')}, receipt {payload.get('receipt_no', '?')}, "
            f"for {_ref_words(payload.get('patient'))}")


@TITLES.register("payment.void")
def _void_title(payload: JSONObject) -> str:
    return f"Void of payment {_ref_words(payload.get('payment'))}"


@TITLES.register("lab.sample_collect")
def _tube_title(payload: JSONObject) -> str:
    what = "collected" if payload.get("status") == "collected" else f"refused ({payload.get('reason') or '?'})"
    return f"Tube {payload.get('sample_id', '?')} {what} at {str(payload.get('collected_at') or '?')[11:16]}"


TITLES.complete()


def _title(op: Op, payload: JSONObject) -> str:
    kind = op.kind
    if op.last_status == outbox.DAMAGED:
        return f"{KIND_WORDS.get(kind, kind).capitalize()} {op.record_ref or op.op_id} (its stored data is damaged)"
    title = TITLES.get(kind)
    return title(payload) if title else f"{kind} {op.record_ref or ''}".strip()


def _explain(op: Op, category: Category, error: JSONObject, waiting: int) -> str:
    what = KIND_WORDS.get(op.kind, op.kind)
    msg = str(error.get("message") or "").strip()
    if category == "possible_duplicate":
        n = len(json_list(error.get("candidates")))
        text = (f"Central found {n} existing patient(s) who may be the same person as this {what}. "
                "Compare them field by field, then link to one of them or register as a new patient.")
    elif category == "stale_update":
        cur = json_object(error.get("current"))
        text = (f"Patient {cur.get('uhid', '?')} was changed centrally (now version {cur.get('version', '?')}) "
                "after this counter last saw it. Choose, field by field, the counter's value or central's.")
    elif category == "rejected" and error.get("code") == outbox.DAMAGED:
        text = (f"This {what} is damaged in this counter's database and was never sent ({msg}). "
                "Cancel it with a reason and enter it again from the paper slip.")
    elif category == "rejected":
        text = f"Central refused this {what} ({error.get('code', '?')}): {msg or 'no reason given'}. " \
               "Correct it and send it again, or cancel it with a reason."
    elif category == "waited_too_long":
        text = (f"This {what} waited too long for a record it needs ({error.get('code', 'deferred')}"
                f"{': ' + msg if msg else ''}).{waits_for_words(error)} "
                "Retry once the other record has synced, or cancel it.")
    else:
        text = f"Central could not apply this {what} ({error.get('code', '?')}): {msg}"
    if waiting:
        text += f" {waiting} later record(s) wait for this decision."
    return text


def waits_for_words(error: JSONObject) -> str:
    """Contract 1.2: what a deferred op waits for (``error.waiting_for``) and what
    central said of it when the sync looked it up (``looked_up``, from
    ``GET /refs``), as a sentence starting with a space; empty when not given."""
    waiting = error.get("waiting_for")
    if not isinstance(waiting, Mapping):
        return ""
    if waiting.get("op_id"):
        return f" It waits for op {waiting['op_id']} to be applied at central."
    lref = waiting.get("local_ref")
    if not lref:
        return ""
    device = str(lref).split("-", 1)[0]
    text = f" It waits for {lref} (made at counter {device})"
    looked = error.get("looked_up")
    if isinstance(looked, Mapping) and looked.get("found"):
        return (text + f": central now knows it as {looked.get('kind', 'record')} {looked.get('central_id', '?')}, "
                "so a retry should go through.")
    if isinstance(looked, Mapping):
        return text + f": central does not know it yet (counter {device} has not synced it)."
    return text + "."


def _actions(op: Op, category: Category) -> tuple[str, ...]:
    if category == "possible_duplicate":
        return ("link", "create_new", "cancel")
    if category == "stale_update":
        return ("merge", "cancel")
    if category == "rejected" and op.last_status == outbox.DAMAGED:
        return ("cancel",)  # its data cannot be read, so it cannot be corrected
    if category == "rejected":
        return ("correct", "cancel")
    if category == "waited_too_long":
        return ("retry", "cancel")
    return ("cancel",)


def dependents(s: Session, op_id: str) -> list[Op]:
    """Ops not yet synced or cancelled that list ``op_id`` in depends_on."""
    like = f'%"{op_id}"%'
    stmt = select(Op).where(col(Op.depends_on).like(like),
                            col(Op.state).notin_((outbox.SYNCED, outbox.CANCELLED))).order_by(col(Op.seq))
    return [o for o in s.exec(stmt) if op_id in (loads(o.depends_on) or [])]


def review_item(s: Session, op: Op) -> ReviewItem:
    try:
        payload = loads(op.payload) or {}
    except ValueError:  # a damaged op (quarantined by sync): shown, never parsed
        payload = {}
    error = loads(op.last_error) or {}
    category = category_of(op, error)
    waiting = tuple(o.op_id for o in dependents(s, op.op_id))
    comparisons: list[Comparison] = []
    if category == "possible_duplicate":
        for cand in error.get("candidates") or []:
            comparisons.append(Comparison(
                title=f"Candidate {cand.get('uhid')}", left_title="This counter",
                right_title=f"Central {cand.get('uhid')}",
                rows=diff_fields(CANDIDATE_FIELDS, payload, cand), key=cand.get("uhid")))
    elif category == "stale_update":
        cur = error.get("current") or {}
        changes = payload.get("changes") or {}
        comparisons.append(Comparison(
            title=f"Patient {cur.get('uhid', '?')}", left_title="Counter's change",
            right_title=f"Central (version {cur.get('version', '?')})",
            rows=diff_fields(list(changes), changes, cur), key=cur.get("uhid")))
    field_errors: tuple[FieldError, ...] = tuple(
        {"field": str(f.get("field", "")), "label": field_label(str(f.get("field", "")).split(".")[0] or "record"),
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
