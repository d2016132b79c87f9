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

Decision (bulk import): ``record_values`` is the one place a new row's columns
are worked out (given, or the field's default); ``new_record`` puts them in an
object for the session, ``insert_rows`` writes many of them with one
``executemany`` per table (SQLAlchemy Core, no unit of work), in the caller's
transaction. ``Tx.write_at_commit`` chooses the second for a back-entry batch:
the same services make the same values either way.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from sqlmodel import Session, SQLModel
from sqlmodel._compat import partial_init

T = TypeVar("T", bound=SQLModel)

_Plan = tuple[tuple[str, object, FieldInfo | None], ...]  # (field, default, the field when a factory makes it)
_PLANS: dict[type[SQLModel], tuple[_Plan, frozenset[str]]] = {}


def _plan(cls: type[SQLModel]) -> tuple[_Plan, frozenset[str]]:
    found = _PLANS.get(cls)
    if found is None:
        steps: list[tuple[str, object, FieldInfo | None]] = []
        for name, info in cls.model_fields.items():
            steps.append((name, info.default, info if info.default_factory is not None else None))
        found = _PLANS[cls] = (tuple(steps), frozenset(n for n, _, _ in steps))
    return found


def record_values(cls: type[SQLModel], **values: object) -> dict[str, object]:
    """Every field of a new ``cls`` row: as given, or its default (a factory's made now)."""
    plan, names = _plan(cls)
    if not values.keys() <= names:
        raise TypeError(f"{cls.__name__} has no field(s) {sorted(values.keys() - names)}")
    out: dict[str, object] = {}
    for name, default, factory in plan:
        if name in values:
            out[name] = values[name]
        elif factory is not None:
            out[name] = factory.get_default(call_default_factory=True)
        elif default is PydanticUndefined:
            raise TypeError(f"{cls.__name__} needs {name}")
        else:
            out[name] = default
    return out


def new_record(cls: type[T], **values: object) -> T:
    """``cls(**values)`` for a table model, without the per-field setattr."""
    full = record_values(cls, **values)
    with partial_init():
        obj = cls()
    obj.__dict__.update(full)
    object.__setattr__(obj, "__pydantic_fields_set__", set(values))
    object.__setattr__(obj, "__pydantic_extra__", None)
    object.__setattr__(obj, "__pydantic_private__", None)
    return obj


def insert_rows(session: Session, rows: Iterable[tuple[type[SQLModel], dict[str, object]]]) -> None:
    """Write rows of ``record_values`` in the session's transaction: one ``executemany``
    per table, tables in the order they first come, rows in the order given. An id
    left None is the database's to give (as the session would)."""
    by_table: dict[type[SQLModel], list[dict[str, object]]] = {}
    for cls, values in rows:
        by_table.setdefault(cls, []).append(values)
    conn = session.connection()
    for cls, many in by_table.items():
        table = cls.__table__  # type: ignore[attr-defined]
        cols = [c.name for c in table.columns if not (c.name == "id" and all(r["id"] is None for r in many))]
        if any(c.type.bind_processor(conn.dialect) is not None for c in table.columns):
            conn.execute(table.insert(), [{k: r[k] for k in cols} for r in many])  # a type that converts values
            continue
        # plain text and integer columns: straight to the driver, no per-row parameter building
        sql = f'INSERT INTO "{table.name}" ({", ".join(cols)}) VALUES ({", ".join("?" * len(cols))})'
        conn.exec_driver_sql(sql, [tuple(r[k] for k in cols) for r in many])
