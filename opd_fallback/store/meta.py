"""Small key/value facts about this counter database (the ``meta`` table).

Keys are named here so the sync engine, status, readiness and the TUI agree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # SQLAlchemy is imported where used, so reading the key names below loads nothing
    from sqlmodel import Session

# Set after a restore until central's max_seq has been checked; writes refuse meanwhile.
NEEDS_SEQ_CHECK = "needs_seq_check"
# Written by the sync engine after each attempt, read by status and the TUI.
LAST_SYNC_AT = "last_sync_at"  # RFC 3339, when the last attempt finished
LAST_SYNC_OK_AT = "last_sync_ok_at"  # RFC 3339, last attempt that reached central
LAST_SYNC_OUTCOME = "last_sync_outcome"  # JSON of the engine's SyncSummary.as_dict()
# Written by readiness: the device ids this database had before a move, and the last seq check.
PREVIOUS_DEVICE_IDS = "previous_device_ids"
LAST_SEQ_CHECK = "last_seq_check"


def get(session: Session, key: str, default: str | None = None) -> str | None:
    from sqlalchemy import text

    row = session.execute(text("SELECT value FROM meta WHERE key = :k"), {"k": key}).first()
    return default if row is None else str(row[0])


def put(session: Session, key: str, value: str) -> None:
    from sqlalchemy import text

    session.execute(
        text("INSERT INTO meta(key, value) VALUES (:k, :v) ON CONFLICT(key) DO UPDATE SET value = excluded.value"),
        {"k": key, "v": value},
    )


def delete(session: Session, key: str) -> None:
    from sqlalchemy import text

    session.execute(text("DELETE FROM meta WHERE key = :k"), {"k": key})
# The LAN hub (written by the share use case, read by status and the TUI).
HUB_CURSOR = "hub_cursor"  # hub sequence pulled through
HUB_PUSHED_SEQ = "hub_pushed_seq"  # own ops pushed through this seq
HUB_IDS_SENT_AT = "hub_ids_sent_at"  # learned central ids sent for ops synced at or after this
HUB_RESOLVED_AT = "hub_resolved_at"  # resolutions (review decisions) re-sent for ops decided at or after this
HUB_WITHDRAWN_AT = "hub_withdrawn_at"  # cancelled ops reported for those cancelled at or after this
HUB_LAST_AT = "hub_last_at"  # RFC 3339, when the last exchange ended
HUB_LAST_OK_AT = "hub_last_ok_at"  # RFC 3339, last exchange that reached the hub
HUB_LAST_OUTCOME = "hub_last_outcome"  # JSON of ShareResult.as_dict()
# What this counter kept on the hub for its own restore (application/hub_keep.py).
HUB_KEEP_FACTS_SEQ = "hub_keep_facts_seq"  # op facts sent through this seq
HUB_KEEP_AUDIT_ID = "hub_keep_audit_id"  # audit entries sent through this id
HUB_KEEP_DIGEST = "hub_keep_digest"  # sha256 of the operators and master data last sent
HUB_DB_ID = "hub_db_id"  # the hub database this counter last exchanged with (application/share.py)
HUB_EPOCH = "hub_epoch"  # ... and which history of it; HUB_PUSHED_SEQ holds for these two
HUB_SEEN_SEQ = "hub_seen_seq"  # the highest hub sequence seen there (a hub below it went back)
HUB_VECTOR = "hub_vector"  # JSON {device: highest seq of that counter's ops held here}
HUB_REFUSED = "hub_refused"  # JSON [seq...]: own ops the hub refused, offered again at every exchange
HUB_WENT_BACK = "hub_went_back"  # JSON: the last time the hub was found gone back or replaced, and why
