"""Is this counter ready to take new work? (After a restore it is not, until checked.)

A database restored from a backup is older than what central already holds
from this device: the backup's ``seq`` counter may be below numbers already
printed on slips and receipts. So :func:`mark_restored` sets the
``needs_seq_check`` flag in Meta (services refuse writes while it is set) and
abandons free reserved ids; :func:`check_with_central` asks central for this
device's ``max_seq`` (``GET /api/v1/devices/me``), raises the seq floor above
it and clears the flag. When central cannot be reached a supervisor either
waits, or moves the counter to a new device id with :func:`move_to_new_device`
(a new id means new offline numbers, so none can collide with the old ones).

Contract 1.2: before the flag is cleared, every reserved id central lists as
used by an applied op of this device (``GET /id-blocks/used``) is marked used
here. The other free ids are still set aside: an id used by an op that never
reached central (lost with the newer database) is on no list, so the list
alone cannot prove an id free (docs/contract-notes.md).

No HTTP here: the caller passes a client (anything with ``device_me()``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import orjson

from opd_fallback.domain.clock import now_iso
from opd_fallback.domain.contract import DeviceInfo
from opd_fallback.domain.exits import OpdError
from opd_fallback.store import audit, marks, meta, numbers, reserved
from opd_fallback.store.engine import Store

if TYPE_CHECKING:
    from sqlmodel import Session

PREVIOUS_DEVICE_IDS = meta.PREVIOUS_DEVICE_IDS
LAST_SEQ_CHECK = meta.LAST_SEQ_CHECK


class DeviceMe(Protocol):
    def device_me(self) -> DeviceInfo: ...


def _used_by_central(client: DeviceMe) -> dict[str, list[str]]:
    """1.2: the reserved ids central says applied ops of this device used, by kind
    (none from a client or server without ``used_ids``)."""
    lister = getattr(client, "used_ids", None)
    if lister is None:
        return {}
    out: dict[str, list[str]] = {}
    for kind in reserved.KINDS:
        ids = lister(kind)
        if ids:
            out[kind] = list(ids)
    return out


@dataclass(frozen=True)
class SeqCheck:
    """What a seq check found and did."""

    device_id: str
    central_max_seq: int
    local_seq_before: int
    local_seq_after: int
    abandoned_ids: int
    marked_used: int = 0  # 1.2: reserved ids central listed as used, marked so here

    @property
    def raised(self) -> bool:
        return self.local_seq_after > self.local_seq_before


def is_ready(store: Store) -> tuple[bool, str]:
    """``(True, "")`` when the counter may take new work, else ``(False, why)`` in words."""
    with store.read() as s:
        hold = meta.get(s, meta.NEEDS_SEQ_CHECK)
    if not hold:
        return True, ""
    return False, (
        f"this counter was restored from a backup ({hold}) and must check its numbers with central "
        "before taking new work: connect to central and run 'opd-fallback nightly' (or sync), "
        "or a supervisor moves it to a new device id ('opd-fallback restore ... --new-device-id C08')"
    )


def mark_restored(store: Store, *, source: str, actor: str = "system") -> int:
    """Flag a just-restored database not ready and abandon its free reserved ids.

    Returns how many reserved ids were abandoned (they may have been used
    after the backup was taken, so they are never used again).
    """
    reason = f"restored from {source} at {now_iso()}"
    with store.write() as s:
        meta.put(s, meta.NEEDS_SEQ_CHECK, reason)
        abandoned = reserved.abandon_free(s)
        audit.record(s, actor, "store.restore", source, abandoned_ids=abandoned, reason=reason)
    return abandoned


class WrongDevice(OpdError, ValueError):
    """Central answered for another device than this counter's (wrong token)."""


def _nothing_to_write(s: Session, info: DeviceInfo) -> bool:
    """This counter's numbers are above central's ``max_seq`` and ``LAST_SEQ_CHECK``
    already says that ``max_seq`` (its ``at`` is when central's answer last changed)."""
    if numbers.peek(s, numbers.SEQ) < info.max_seq:
        return False
    try:
        last = orjson.loads(meta.get(s, LAST_SEQ_CHECK) or "null")
    except orjson.JSONDecodeError:
        return False
    return (isinstance(last, dict) and last.get("device_id") == info.device_id
            and last.get("central_max_seq") == info.max_seq)


def check_with_central(
    store: Store, client: DeviceMe, *, device_id: str | None = None, actor: str = "system"
) -> SeqCheck:
    """Ask central for this device's ``max_seq``, continue above it, clear the flag.

    Safe to call at any time (it never lowers anything); the sync engine calls
    it before every run; when nothing changed since the last check it only reads
    (no write transaction between a clerk's save and the lock). A database below central's ``max_seq`` without a
    restore went back in time: its free reserved ids are abandoned and a
    warning is kept for ``status``. Raises whatever the client raises when central
    cannot be reached, and :class:`WrongDevice` when the token belongs to
    another device than ``device_id``, leaving the flag set.
    """
    info = client.device_me()
    if device_id and info.device_id != device_id:
        raise WrongDevice(f"central knows this token as device {info.device_id}, not {device_id}: "
                          "the numbers cannot be checked with another device's token")
    with store.read() as s:
        restored = bool(meta.get(s, meta.NEEDS_SEQ_CHECK))
        if not restored and _nothing_to_write(s, info):
            # the sync asks before every run: when this counter is already above central's max_seq and
            # that is what was recorded last time, no write transaction (none queues a clerk's save)
            seq = numbers.peek(s, numbers.SEQ)
            return SeqCheck(info.device_id, info.max_seq, seq, seq, 0, 0)
    used = _used_by_central(client) if restored else {}  # asked before the write: no network inside it
    with store.write() as s:
        before = numbers.peek(s, numbers.SEQ)
        after = numbers.raise_floor(s, numbers.SEQ, info.max_seq)
        abandoned = 0
        marked = sum(reserved.mark_used(s, kind, ids) for kind, ids in used.items())
        hold = meta.get(s, meta.NEEDS_SEQ_CHECK)
        if before < info.max_seq and not hold:
            # central has numbers this database never handed out: it went back in time (its -wal lost,
            # an old copy put back); reserved ids used in what was lost look free again: never use them
            abandoned = reserved.abandon_free(s)
            audit.record(s, actor, "store.went_back", info.device_id, central_max_seq=info.max_seq,
                         seq_before=before, seq_after=after, abandoned_ids=abandoned)
            if before > 0:
                meta.put(s, marks.WENT_BACK, (
                    f"this counter's database went back in time: central already has numbers up to "
                    f"{info.max_seq} from {info.device_id} but this database had only reached {before} (was "
                    "counter.db-wal deleted, or an old copy put back?); records made after that may be lost "
                    f"here and must be checked against their paper slips. New numbers continue above "
                    f"{info.max_seq}; {abandoned} reserved central id(s) were set aside. Found {now_iso()}."))
        if hold:
            abandoned = reserved.abandon_free(s)
            meta.delete(s, meta.NEEDS_SEQ_CHECK)
            audit.record(s, actor, "store.seq_check", info.device_id, central_max_seq=info.max_seq,
                         seq_before=before, seq_after=after, abandoned_ids=abandoned, marked_used=marked,
                         was=hold)
        meta.put(s, LAST_SEQ_CHECK, orjson.dumps({
            "at": now_iso(), "device_id": info.device_id, "central_max_seq": info.max_seq, "seq": after,
        }).decode())
    return SeqCheck(info.device_id, info.max_seq, before, after, abandoned, marked)


def ensure_ready(
    store: Store, client: DeviceMe, *, device_id: str | None = None, actor: str = "system"
) -> SeqCheck | None:
    """Run the seq check only when the flag is set (cheap when the counter is ready)."""
    ready, _ = is_ready(store)
    return None if ready else check_with_central(store, client, device_id=device_id, actor=actor)


def move_to_new_device(store: Store, old_device_id: str, new_device_id: str, *, actor: str) -> None:
    """A supervisor's decision when central cannot be reached after a restore.

    The counter continues as ``new_device_id`` (its numbers begin with the new
    id, so none can repeat the old device's); the caller writes the new id and
    its token into the counter's config. Ops already queued keep the old
    device id: they sync later with the old device's token.
    """
    new = new_device_id.strip().upper()
    if not new or new == old_device_id:
        raise ValueError("give a new device id, different from the current one")
    with store.write() as s:
        old_list = orjson.loads(meta.get(s, PREVIOUS_DEVICE_IDS) or "[]")
        if new in old_list:
            raise ValueError(f"{new} was used by this database before; choose a device id never used")
        if old_device_id and old_device_id not in old_list:
            old_list.append(old_device_id)
        meta.put(s, PREVIOUS_DEVICE_IDS, orjson.dumps(old_list).decode())
        hold = meta.get(s, meta.NEEDS_SEQ_CHECK)
        meta.delete(s, meta.NEEDS_SEQ_CHECK)
        reserved.abandon_free(s)
        audit.record(s, actor, "store.new_device_id", new, old_device_id=old_device_id, was=hold)
