"""The counter's local SQLite store: tables, outbox, numbers, durability."""

from opd_fallback.store.engine import Store, make_engine, open_store

__all__ = ["Store", "make_engine", "open_store"]
