"""Sync: replay the outbox to central, exactly once, fast and gently.

    from opd_fallback.sync.client import CentralClient
    from opd_fallback.sync.engine import SyncEngine
    from opd_fallback.sync.refresh import refresh_all

    with CentralClient.from_settings(settings) as client:
        summary = SyncEngine(store, client, settings).run(progress=lambda done, total: ...)
        summary.outcome, summary.exit_code, summary.reasons
        refresh_all(store, client, settings)   # master data, patient index, id blocks

Modules: ``client`` (HTTP, the contract only), ``batching`` (what to send, in
which order, in which lane), ``retry`` (backoff, Retry-After, circuit breaker),
``engine`` (a run and ``watch``), ``booking`` (a batch's answers in one
transaction), ``summary`` (what a run reports), ``seam`` (what the engine needs
of central), ``refresh``; the lease is
``opd_fallback.store.lease``.
"""
