"""A LAN edit conflict made for real: two counters change one field of a patient, neither knowing of
the other's change, and share through a real hub (tests of ``status`` and the status bar)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from opd_fallback.application.services import CounterService, PaymentInput
from opd_fallback.domain import clock
from opd_fallback.store.engine import Store, open_store
from tests.helpers.hub import run_hub
from tests.helpers.landay import share

OTHER = "C02"
MEENA = {"name": "Meena Kumari", "sex": "F", "age_years": 40, "mobile": "9800000001"}


def flag_a_conflict(tmp_path: Path, store: Store, device: str,
                    monkeypatch: pytest.MonkeyPatch) -> tuple[str, Callable[[int], None]]:
    """``device`` (its ``store``) registers Meena Kumari; the other counter edits her mobile, then this one
    (later, not knowing of it); both share, so the other's older edit arrives here late and is flagged
    (``review.lan_edit_conflict``). Returns her local_ref and ``at(seconds)``, which moves every counter's
    clock that far ahead of the real one (the clock stays moved after the call)."""
    real = clock.now_ist
    shift = {"s": 0}
    monkeypatch.setattr(clock, "now_ist", lambda: real() + timedelta(seconds=shift["s"]))

    def at(seconds: int) -> None:
        shift["s"] = seconds

    other = open_store(tmp_path / OTHER / "counter.db")
    try:
        with run_hub(tmp_path / "hub", devices=(device, OTHER)) as hub:
            def ok(st: Store, dev: str) -> None:
                res = share(hub, st, dev)
                assert res.outcome == "ok", res.message

            here = CounterService(store, device)
            reg = here.register_new("op-1", MEENA, department="MED", payment=PaymentInput(mode="cash", amount_paise=1000))
            ok(store, device)
            ok(other, OTHER)
            ref = reg.patient.local_ref
            at(10)
            CounterService(other, OTHER).update_patient("op-2", ref, {"mobile": "9822222222"})
            at(20)
            here.update_patient("op-1", ref, {"mobile": "9811111111"})
            ok(other, OTHER)
            ok(store, device)  # the other's older mobile arrives after this counter's newer one: flagged
    finally:
        other.close()
    return ref, at
