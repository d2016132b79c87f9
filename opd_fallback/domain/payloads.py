"""Op payloads of the central sync contract, version 1.2 (docs/central-api.md).

One pydantic model per op kind. The counter validates with them before it
saves, the CSV import validates with them, and the reference central server
validates incoming ops with the very same models, so a record the counter
accepts is one the server accepts.

The wire form is exact, because an independent central server may be strict:
a reference is an object with exactly one key (``{"local_ref": ...}`` or
``{"central_id": ...}``, never a second key set to null), and an optional
field the counter has no value for is left out, except the fields the
contract writes as "... or null" (:data:`WIRE_NULLS`). :func:`wire` gives that
form; it is what the outbox stores and sends.

Contract 1.2: a field without a value may be left out or sent as ``null`` and
the two mean the same, so every model drops null-valued keys before it
validates (a default then applies), except a reference, where a null key is
invalid, and the values inside ``patient.update``'s ``changes``, where null
clears a field. Every integer is at most :data:`MAX_INT` (2**53 - 1).
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Annotated, ClassVar, Literal, get_args

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from opd_fallback.domain import registry, rules
from opd_fallback.domain.jsonio import JSONObject

Sex = Literal["M", "F", "O"]
GuardianRelation = Literal["S/O", "D/O", "W/O", "C/O"]
Category = Literal["general", "bpl", "ayushman", "staff", "other"]
PaymentMode = Literal["cash", "upi", "card", "waived"]
VisitType = Literal["new", "revisit"]
Priority = Literal["routine", "urgent"]
# The kinds are declared in domain/registry.py; pydantic checks a kind against them
# as a Literal (the same words for an unknown kind as ever), mypy sees a str.
if TYPE_CHECKING:
    OpKind = str
else:
    OpKind = Literal[registry.NAMES]
OP_KINDS: tuple[str, ...] = registry.NAMES

MAX_INT = 2**53 - 1  # contract 1.2: the largest integer anywhere in an op
Paise = Annotated[StrictInt, Field(ge=0, le=10**11)]
LocalRef = Annotated[str, Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9]+-\S+$")]


class Model(BaseModel):
    """Strict about unknown fields so a typo never silently drops data."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    # contract 1.2: a null-valued key means the same as an absent one
    _nulls_are_absent: ClassVar[bool] = True

    @model_validator(mode="before")
    @classmethod
    def _drop_nulls(cls, data: object) -> object:
        if cls._nulls_are_absent and isinstance(data, dict) and None in data.values():
            return {k: v for k, v in data.items() if v is not None}
        return data


REF_KEYS = ("central_id", "local_ref")


class Ref(Model):
    """A reference to a record: exactly one of its central id or the local_ref of
    the counter that made it. A key that is present must have a value: the
    contract (1.1) rejects ``{"central_id": null, "local_ref": "..."}``, so we
    reject it too and never produce it (the serialiser writes only the one key)."""

    _nulls_are_absent: ClassVar[bool] = False  # a null key of a reference is invalid (1.1)

    central_id: str | None = Field(default=None, min_length=1, max_length=64)
    local_ref: LocalRef | None = None

    @field_validator("central_id", "local_ref", mode="before")
    @classmethod
    def _present_means_set(cls, v: object) -> object:
        # runs only for keys that are present: an absent key keeps its default
        if v is None:
            raise ValueError("must not be null: send only the one key that has a value")
        return v

    @model_validator(mode="after")
    def _exactly_one(self) -> Ref:
        if self.central_id is not None and self.local_ref is not None:
            raise ValueError("give exactly one of central_id or local_ref, not both")
        if self.central_id is None and self.local_ref is None:
            raise ValueError("give central_id or local_ref")
        return self

    @model_serializer(mode="plain")
    def _one_key(self) -> dict[str, str]:
        if self.central_id is not None:
            return {"central_id": self.central_id}
        assert self.local_ref is not None
        return {"local_ref": self.local_ref}

    @classmethod
    def local(cls, local_ref: str) -> Ref:
        return cls(local_ref=local_ref)

    @classmethod
    def central(cls, central_id: str) -> Ref:
        return cls(central_id=central_id)

    def wire(self) -> dict[str, str]:
        return self.model_dump()


class PatientFields(Model):
    """The demographic fields of a patient, all optional: used for `patient.update`
    changes, where only the fields given are checked."""

    name: str | None = None
    name_local: str | None = None
    sex: Sex | None = None
    age_years: StrictInt | None = None
    age_months: StrictInt | None = None
    age_days: StrictInt | None = None
    birth_date: date | None = None
    guardian_relation: GuardianRelation | None = None
    guardian_name: str | None = None
    mobile: str | None = None
    abha_number: str | None = None
    address_line: str | None = None
    district: str | None = None
    state: str | None = None
    pin: str | None = None
    category: Category | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        return None if v is None else rules.latin_name(v)

    @field_validator("name_local")
    @classmethod
    def _name_local(cls, v: str | None) -> str | None:
        return rules.local_name(v)

    @field_validator("guardian_name")
    @classmethod
    def _guardian_name(cls, v: str | None) -> str | None:
        return rules.optional_text(v, max_len=rules.NAME_MAX)

    @field_validator("mobile", mode="before")
    @classmethod
    def _mobile(cls, v: object) -> str | None:
        return rules.mobile(None if v is None else str(v))

    @field_validator("abha_number", mode="before")
    @classmethod
    def _abha(cls, v: object) -> str | None:
        return rules.abha_number(None if v is None else str(v))

    @field_validator("pin", mode="before")
    @classmethod
    def _pin(cls, v: object) -> str | None:
        return rules.pin_code(None if v is None else str(v))

    @field_validator("address_line", "district", "state")
    @classmethod
    def _text(cls, v: str | None) -> str | None:
        return rules.optional_text(v)

    @field_validator("age_years")
    @classmethod
    def _years(cls, v: int | None) -> int | None:
        rules.age_parts(v, None, None)
        return v

    @field_validator("age_months")
    @classmethod
    def _months(cls, v: int | None) -> int | None:
        rules.age_parts(None, v, None)
        return v

    @field_validator("age_days")
    @classmethod
    def _days(cls, v: int | None) -> int | None:
        rules.age_parts(None, None, v)
        return v

    @field_validator("birth_date")
    @classmethod
    def _birth(cls, v: date | None) -> date | None:
        return None if v is None else rules.birth_date(v)


class PatientRegister(PatientFields):
    """`patient.register`: a new patient registered at a counter."""

    local_ref: LocalRef
    uhid: str | None = Field(default=None, max_length=64)
    name: str
    sex: Sex
    category: Category = "general"

    @model_validator(mode="after")
    def _whole(self) -> PatientRegister:
        if self.birth_date is None and all(
            a is None for a in (self.age_years, self.age_months, self.age_days)
        ):
            raise ValueError("give the age (years, months or days) or the birth date")
        if (self.guardian_relation is None) != (self.guardian_name is None):
            raise ValueError("give both the guardian relation (S/O, D/O, W/O, C/O) and the guardian name, or neither")
        return self


class PatientUpdate(Model):
    """`patient.update`: changed demographic fields of an existing patient."""

    patient: Ref
    base_version: StrictInt = Field(ge=0, le=MAX_INT)
    changes: dict[str, object] = Field(min_length=1)  # checked field by field below; JSON after it

    @field_validator("changes")
    @classmethod
    def _changes(cls, v: dict[str, object]) -> JSONObject:
        allowed = set(PatientFields.model_fields)
        unknown = sorted(set(v) - allowed)
        if unknown:
            raise ValueError(f"cannot change {', '.join(unknown)}")
        checked = PatientFields.model_validate(v)
        return checked.model_dump(mode="json", include=set(v))


class VisitOpen(Model):
    """`visit.open`: an OPD visit (new or revisit) to a department and unit."""

    local_ref: LocalRef
    patient: Ref
    department: str
    unit: str | None = None
    visit_type: VisitType
    visit_date: date
    token_no: StrictInt = Field(ge=0, le=1_000_000)

    @field_validator("department")
    @classmethod
    def _dept(cls, v: str) -> str:
        return rules.code(v, what="department code")

    @field_validator("unit")
    @classmethod
    def _unit(cls, v: str | None) -> str | None:
        return None if v is None or not v.strip() else rules.code(v, what="unit code")


class TestLine(Model):
    code: str

    @field_validator("code")
    @classmethod
    def _code(cls, v: str) -> str:
        return rules.code(v, what="test code")


SampleId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9-]*$")]


class SampleTube(Model):
    """One tube of a lab order (contract 1.1 ``samples``): its own id, printed
    as the label's barcode, the sample type and the tests taken from it."""

    sample_id: SampleId
    sample_type: str = Field(min_length=1, max_length=40)
    tests: list[str] = Field(min_length=1, max_length=50)

    @field_validator("tests")
    @classmethod
    def _codes(cls, v: list[str]) -> list[str]:
        return [rules.code(c, what="test code") for c in v]


class LabOrder(Model):
    """`lab.order`: tests ordered for a patient's visit. ``samples`` (1.1) has
    one entry per tube; ``sample_id`` is then the first tube's id."""

    local_ref: LocalRef
    patient: Ref
    visit: Ref
    tests: list[TestLine] = Field(min_length=1, max_length=50)
    sample_id: str | None = Field(default=None, max_length=64)
    samples: list[SampleTube] | None = Field(default=None, min_length=1, max_length=50)
    priority: Priority = "routine"
    ordered_by: str | None = Field(default=None, max_length=100)

    @field_validator("tests")
    @classmethod
    def _unique(cls, v: list[TestLine]) -> list[TestLine]:
        codes = [t.code for t in v]
        dupes = sorted({c for c in codes if codes.count(c) > 1})
        if dupes:
            raise ValueError(f"test ordered twice: {', '.join(dupes)}")
        return v

    @model_validator(mode="after")
    def _tubes(self) -> LabOrder:
        """Each tube has its own id, is for tests of this order, and every
        ordered test is in exactly one tube; ``sample_id`` names the first."""
        if not self.samples:
            return self
        ids = [s.sample_id for s in self.samples]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"samples: the same sample id on two tubes: {', '.join(dupes)}")
        ordered = [t.code for t in self.tests]
        in_tubes = [c for s in self.samples for c in s.tests]
        stray = sorted(set(in_tubes) - set(ordered))
        if stray:
            raise ValueError(f"samples: tests not in this order: {', '.join(stray)}")
        twice = sorted({c for c in in_tubes if in_tubes.count(c) > 1})
        if twice:
            raise ValueError(f"samples: test in two tubes: {', '.join(twice)}")
        missing = [c for c in ordered if c not in in_tubes]
        if missing:
            raise ValueError(f"samples: tests without a tube: {', '.join(missing)}")
        if self.sample_id is not None and self.sample_id != self.samples[0].sample_id:
            raise ValueError("sample_id must be the first tube's sample id")
        return self


class PaymentItem(Model):
    code: str
    qty: StrictInt = Field(default=1, ge=1, le=1000)
    amount_paise: Paise

    @field_validator("code")
    @classmethod
    def _code(cls, v: str) -> str:
        return rules.code(v, what="fee or test code")


class Waiver(Model):
    """Contract 1.2: who allowed a fee the patient's category does not exempt to
    go unpaid, and why. Central answers a waived, non-exempt payment without one
    with the warning ``waiver_unapproved``."""

    reason: str = Field(min_length=1, max_length=200)
    approved_by: str = Field(min_length=1, max_length=64)

    @field_validator("reason")
    @classmethod
    def _reason(cls, v: str) -> str:
        text = rules.clean_text(v)
        if not text:
            raise ValueError("is required: say why the fee was waived")
        return text


class PaymentRecord(Model):
    """`payment.record`: money taken (or waived). A fact: never edited, only voided."""

    local_ref: LocalRef
    receipt_no: str = Field(min_length=1, max_length=64)
    patient: Ref
    visit: Ref | None = None
    lab_order: Ref | None = None
    amount_paise: Paise
    mode: PaymentMode
    mode_ref: str | None = Field(default=None, max_length=64)
    items: list[PaymentItem] = Field(min_length=1, max_length=100)
    waiver: Waiver | None = None  # contract 1.2

    @field_validator("mode_ref")
    @classmethod
    def _ref(cls, v: str | None) -> str | None:
        return rules.optional_text(v, max_len=64)

    @model_validator(mode="after")
    def _whole(self) -> PaymentRecord:
        if self.mode in rules.MODES_NEEDING_REF and not self.mode_ref:
            what = "UPI transaction id (UTR)" if self.mode == "upi" else "card slip number"
            raise ValueError(f"the {what} is required for a {self.mode} payment")
        total = sum(i.amount_paise for i in self.items)
        if total != self.amount_paise:
            raise ValueError(
                f"the items add up to {rules.format_paise(total)} but the amount is "
                f"{rules.format_paise(self.amount_paise)}"
            )
        return self


class PaymentVoid(Model):
    """`payment.void`: cancels a payment, with the reason."""

    payment: Ref
    reason: str = Field(min_length=1, max_length=200)

    @field_validator("reason")
    @classmethod
    def _reason(cls, v: str) -> str:
        text = rules.clean_text(v)
        if not text:
            raise ValueError("is required")
        return text


SampleStatus = Literal["collected", "rejected"]
SampleReason = Literal["haemolysed", "clotted", "insufficient", "mislabelled", "other"]
SAMPLE_REASONS: tuple[str, ...] = get_args(SampleReason)


class SampleCollect(Model):
    """`lab.sample_collect` (contract 1.2): one event at the lab's collection desk,
    a tube drawn (``collected``) or refused (``rejected``, with the reason: a
    new tube must be drawn). A later event for the same tube (a recollection
    after a refusal) is another op; the tube's state is that of the event with
    the latest ``collected_at``. The payload names only the tube: the order it
    belongs to is found by its sample id, and the counter puts the order's op
    in ``depends_on`` so central waits for it instead of refusing the tube."""

    sample_id: SampleId
    status: SampleStatus
    collected_at: AwareDatetime
    reason: SampleReason | None = Field(default=None, validate_default=True)
    note: str | None = Field(default=None, max_length=200)

    @field_validator("reason")
    @classmethod
    def _reason_when_rejected(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None and info.data.get("status") == "rejected":
            raise ValueError("is required for a rejected tube: haemolysed, clotted, insufficient, mislabelled or other")
        return v

    @field_validator("note")
    @classmethod
    def _note(cls, v: str | None) -> str | None:
        return rules.optional_text(v, max_len=200)


class Origin(Model):
    """Contract 1.2, on the op envelope: where a back-entered op was first written
    on paper (who wrote the slip, at which counter, its number; each optional).
    Central stores it with the op and compares it with the payload for
    idempotency; it never decides anything on it."""

    written_by: str | None = Field(default=None, min_length=1, max_length=64)
    device_id: str | None = Field(default=None, min_length=1, max_length=32)
    slip_no: str | None = Field(default=None, min_length=1, max_length=64)

    def wire(self) -> dict[str, str] | None:
        """The keys that have a value, or None when none has (then no origin is sent)."""
        body = {k: v for k, v in self.model_dump().items() if v is not None}
        return body or None


# kind -> its model, as each kind's declaration in domain/registry.py names it
PAYLOAD_MODELS: dict[str, type[Model]] = {k.name: globals()[k.model] for k in registry.KINDS}


def validate_payload(kind: str, payload: object) -> Model:
    """Validate a payload for its kind; raises pydantic ``ValidationError``
    (or ``KeyError`` for an unknown kind)."""
    return PAYLOAD_MODELS[kind].model_validate(payload)


# Fields the contract writes as "... or null" / "else null": sent as null when
# empty. Every other optional field without a value is left out of the payload.
WIRE_NULLS: dict[type[BaseModel], frozenset[str]] = {
    PatientRegister: frozenset({"uhid", "mobile"}),
}


def wire(model: BaseModel) -> JSONObject:
    """The JSON form of a payload as it travels: dates as strings, references
    with their one key, empty optional fields left out (except those in
    :data:`WIRE_NULLS`). Values inside ``patient.update``'s ``changes`` keep
    their nulls: there null means "clear this field"."""
    body = model.model_dump(mode="json")
    keep = WIRE_NULLS.get(type(model), frozenset())
    return {k: v for k, v in body.items() if v is not None or k in keep}
