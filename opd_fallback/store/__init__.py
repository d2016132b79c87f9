"""The counter's local SQLite store: tables, outbox, numbers, durability.

``Store``, ``make_engine`` and ``open_store`` are loaded on first use (PEP 562),
so importing a light module of this package (``store.readonly``, ``store.states``,
``store.meta``) does not load SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opd_fallback.store.engine import Store, make_engine, open_store

__all__ = ["Store", "make_engine", "open_store"]


def __getattr__(name: str) -> object:
    if name in __all__:
        from opd_fallback.store import engine

        return getattr(engine, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
