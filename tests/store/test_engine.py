"""The durability settings are really on for every connection the store makes."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from opd_fallback.store import Store, open_store
from opd_fallback.store.engine import BUSY_TIMEOUT_MS


def _pragma(store: Store, name: str) -> object:
    with store.read() as s:
        return s.execute(text(f"PRAGMA {name}")).scalar()


def test_wal_synchronous_full_foreign_keys_and_busy_timeout(store: Store) -> None:
    assert str(_pragma(store, "journal_mode")).lower() == "wal"
    assert _pragma(store, "synchronous") == 2  # FULL
    assert _pragma(store, "foreign_keys") == 1
    assert _pragma(store, "busy_timeout") == BUSY_TIMEOUT_MS


def test_pragmas_hold_on_the_write_connection_and_after_reopen(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    open_store(path).close()
    store = open_store(path)
    with store.write() as s:
        assert s.execute(text("PRAGMA synchronous")).scalar() == 2
        assert str(s.execute(text("PRAGMA journal_mode")).scalar()).lower() == "wal"
    store.close()
    assert (tmp_path / "c.db-wal").exists() or path.exists()


def test_write_rolls_back_on_error(store: Store) -> None:
    try:
        with store.write() as s:
            s.execute(text("INSERT INTO meta(key, value) VALUES ('k', 'v')"))
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    with store.read() as s:
        assert s.execute(text("SELECT count(*) FROM meta WHERE key='k'")).scalar() == 0


def test_engine_is_not_created_at_import() -> None:
    from sqlalchemy import Engine

    import opd_fallback.store.engine as engine_mod

    assert not [v for v in vars(engine_mod).values() if isinstance(v, Engine)]


def test_a_relaxed_write_skips_only_its_own_fsync(store: Store) -> None:
    """``write(durable=False)`` (the sync's bookings) commits with synchronous=NORMAL;
    the next write and read on the same pooled connection are FULL again."""
    seen = []
    for durable in (False, True, False):
        with store.write(durable=durable) as s:
            seen.append(s.execute(text("PRAGMA synchronous")).scalar())
            raw = s.connection().connection.dbapi_connection
    assert seen == [1, 2, 1]
    assert _pragma(store, "synchronous") == 2
    with store.write() as s:  # one connection in turn: the same one each time
        assert s.connection().connection.dbapi_connection is raw
