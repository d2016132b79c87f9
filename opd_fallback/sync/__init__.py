"""Sync: replay the outbox to central (client, batching, retry, engine, refresh)."""
