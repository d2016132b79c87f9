"""Building a new row of a counter table cheaply: the one way the write path
(``outbox.enqueue`` and the services) makes its ``Op``, ``Patient``, ``Visit``,
``LabOrder`` and ``Payment`` records.

Decision: SQLModel's constructor sets every field through pydantic's and
SQLAlchemy's ``__setattr__`` (about 22 instrumented calls a record), which was a
third of a back-entry row's time. A new record is transient: SQLAlchemy's flush
reads its column values from the instance's ``__dict__`` and no attribute
history is needed, so ``new_record`` lets SQLModel set up the instance state
(its own ``partial_init``, as ``model_validate`` does), then fills ``__dict__``
with every field (given, or its default) in one step. No validation is skipped:
SQLModel table models do not validate in their constructor either. A name that
is not a field is an error (the constructor would ignore it in silence).
``tests/test_records.py`` proves the rows written are the same, table by table.
"""

from __future__ import annotations

from typing import TypeVar

from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from sqlmodel import SQLModel
from sqlmodel._compat import partial_init

T = TypeVar("T", bound=SQLModel)

_Plan = tuple[tuple[str, object, FieldInfo | None], ...]  # (field, default, the field when a factory makes it)
_PLANS: dict[type[SQLModel], _Plan] = {}


def _plan(cls: type[SQLModel]) -> _Plan:
    plan = _PLANS.get(cls)
    if plan is None:
        steps: list[tuple[str, object, FieldInfo | None]] = []
        for name, info in cls.model_fields.items():
            steps.append((name, info.default, info if info.default_factory is not None else None))
        plan = _PLANS[cls] = tuple(steps)
    return plan


def new_record(cls: type[T], **values: object) -> T:
    """``cls(**values)`` for a table model, without the per-field setattr."""
    plan = _plan(cls)
    unknown = values.keys() - {name for name, _, _ in plan}
    if unknown:
        raise TypeError(f"{cls.__name__} has no field(s) {sorted(unknown)}")
    with partial_init():
        obj = cls()
    state = obj.__dict__
    for name, default, factory in plan:
        if name in values:
            state[name] = values[name]
        elif factory is not None:
            state[name] = factory.get_default(call_default_factory=True)
        elif default is PydanticUndefined:
            raise TypeError(f"{cls.__name__} needs {name}")
        else:
            state[name] = default
    object.__setattr__(obj, "__pydantic_fields_set__", set(values))
    object.__setattr__(obj, "__pydantic_extra__", None)
    object.__setattr__(obj, "__pydantic_private__", None)
    return obj
