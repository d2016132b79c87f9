"""The op kinds of the central contract, each declared once.

Everything the code knows about a kind that is not its payload's fields lives
in its :class:`Kind` below: the payload model that validates it, the record it
creates (and so the reference field other ops name it by), the key of central's
answer that carries that record's central id, the number series central takes
for it, whether it is money, and the words a person reads. The tables that used
to re-spell this (payloads, ``rules.OP_KINDS``, the LAN's ``shared.py``,
central's apply, the engine's write-back, review, status, the hub) read it from
here.

The code that *does* something per kind registers against it, as Morango's
model registry has syncable models register: a :class:`Handlers` table per
concern (central's apply in ``central/apply/handlers/``, the counter's write-back of
central ids in ``store/writeback.py``, the review title in
``application/review/items.py``). Each table is checked complete when its
module is imported, so a kind without a handler fails at the first import, not
at the first op of that kind in a hospital.

This module is pure and light: no pydantic, no I/O, no other module of the
project (``status`` lists kinds without loading the payload models; an
import-linter contract keeps it so). ``payloads.PAYLOAD_MODELS`` maps each kind
to the class its declaration names.

How to add a kind (e.g. ``lab.sample_collect``):
1. Its payload model in ``domain/payloads.py`` (one pydantic class).
2. One :class:`Kind` in :data:`KINDS` below, naming that class in ``model``.
3. Its handlers: ``@_HANDLERS.register("lab.sample_collect")`` on the method of
   ``central/apply.Applier`` that applies it; ``@writeback.register(...)`` in
   ``store/writeback.py`` (the UPDATEs that book central's answer on the
   counter's record, or none); ``@TITLES.register(...)`` in
   ``application/review/items.py`` (the one line a supervisor reads).
Importing any of those modules without its handler raises, naming the kind and
the table. Nothing else has a list of kinds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TypeVar


@dataclass(frozen=True, slots=True)
class Kind:
    """What one op kind is, apart from its payload's fields."""

    name: str  # as on the wire: "patient.register"
    words: str  # for people: "patient registration"
    model: str  # its payload model: a class of domain/payloads.py
    record: str | None = None  # the record it creates (also the payload field other ops name it by)
    result_id: str | None = None  # key of central's result holding that record's central id
    acts_on: str | None = None  # for a kind that changes a record: the reference field naming it
    numbers: tuple[str, ...] = ()  # central's number series an op of this kind may take
    money: bool = False  # moves money: never edited, cancelled only with an audited note


KINDS: tuple[Kind, ...] = (
    Kind("patient.register", "patient registration", "PatientRegister",
         record="patient", result_id="uhid", numbers=("uhid", "change")),
    Kind("patient.update", "patient details change", "PatientUpdate",
         acts_on="patient", numbers=("change",)),
    Kind("visit.open", "OPD visit", "VisitOpen",
         record="visit", result_id="visit_id", numbers=("visit",)),
    Kind("lab.order", "lab order", "LabOrder",
         record="lab_order", result_id="order_id", numbers=("lab_order",)),
    Kind("payment.record", "payment", "PaymentRecord",
         record="payment", result_id="receipt_id", numbers=("receipt",), money=True),
    Kind("payment.void", "payment void", "PaymentVoid",
         acts_on="payment", money=True),
    # 1.2: a tube drawn or refused at the collection desk; an event on a tube of an order (by sample id)
    Kind("lab.sample_collect", "tube collection", "SampleCollect"),
)

BY_NAME: dict[str, Kind] = {k.name: k for k in KINDS}
NAMES: tuple[str, ...] = tuple(BY_NAME)
# op kind -> the record kind it creates
CREATES: dict[str, str] = {k.name: k.record for k in KINDS if k.record}
# op kind -> the key of its result holding the created record's central id
CENTRAL_ID_KEYS: dict[str, str] = {k.name: k.result_id for k in KINDS if k.record and k.result_id}
# record kinds, in declaration order; also the payload fields that hold a reference
RECORD_KINDS: tuple[str, ...] = tuple(dict.fromkeys(CREATES.values()))
MONEY_KINDS: tuple[str, ...] = tuple(k.name for k in KINDS if k.money)
WORDS: dict[str, str] = {k.name: k.words for k in KINDS}


def kind(name: str) -> Kind:
    """The declaration of a kind; ``KeyError`` naming it when there is none."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"{name!r} is not an op kind (domain/registry.py declares {', '.join(NAMES)})") from None


def words(name: str) -> str:
    """A kind in words for people; the name itself for a kind not declared here."""
    k = BY_NAME.get(name)
    return k.words if k else name


H = TypeVar("H")


class Handlers(Mapping[str, H]):
    """One concern's function per op kind, registered with a decorator::

        _HANDLERS: Handlers[Apply] = Handlers("central apply")

        @_HANDLERS.register("visit.open")
        def _visit_open(...): ...

        _HANDLERS.complete()   # after the last registration: raises if a kind has none

    A read-only mapping from kind name to function once filled."""

    def __init__(self, purpose: str) -> None:
        self.purpose = purpose
        self._fns: dict[str, H] = {}

    def register(self, name: str) -> Callable[[H], H]:
        kind(name)  # only a declared kind
        if name in self._fns:
            raise ValueError(f"{self.purpose}: {name} registered twice")

        def add(fn: H) -> H:
            self._fns[name] = fn
            return fn

        return add

    def complete(self) -> Handlers[H]:
        """Raise unless every declared kind has its handler."""
        missing = [n for n in NAMES if n not in self._fns]
        if missing:
            raise RuntimeError(f"{self.purpose}: no handler registered for {', '.join(missing)} "
                               "(see how to add a kind in domain/registry.py)")
        return self

    def __getitem__(self, name: str) -> H:
        return self._fns[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fns)

    def __len__(self) -> int:
        return len(self._fns)
