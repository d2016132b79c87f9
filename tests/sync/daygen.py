"""Generate a realistic counter day through the real services (for sync tests
and benchmarks/sync_day.py): registration + visit + fee per patient, and for a
share of them a lab order with its payment."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text

from opd_fallback.application.services import CounterService, PaymentInput
from opd_fallback.domain.clock import now_iso
from opd_fallback.store import Store, open_store
from opd_fallback.store.tables import MasterDataCache

MASTER = Path(__file__).resolve().parents[2] / "opd_fallback" / "central" / "demo_master_data.json"
DEPTS = ("MED", "SURG", "PAED", "OBG", "ORTHO")
FIRST = ("Ram", "Sita", "Mohan", "Geeta", "Anil", "Sunita", "Rajesh", "Kavita", "Vijay", "Pooja", "Arun", "Meena")
LAST = ("Kumar", "Devi", "Singh", "Sharma", "Verma", "Yadav", "Gupta", "Mishra", "Prasad", "Khan")
TESTS = ("CBC", "HB", "ESR", "FBS", "PLT")


@dataclass
class Day:
    ops: int
    payments: int
    payments_paise: int


def seed_master_data(store: Store) -> None:
    body = MASTER.read_text(encoding="utf-8")
    import json

    version = json.loads(body)["version"]
    with store.write() as s:
        s.merge(MasterDataCache(id=1, version=version, etag=None, body=body, fetched_at=now_iso()))


def make_day(
    store: Store, device_id: str, patients: int, *, lab_share: float = 0.4, seed: int = 1, chunk: int = 250,
    mobile_prefix: str = "9",
) -> Day:
    """Write ``patients`` registrations (3 ops each, +2 for a lab order with
    payment) in transactions of ``chunk`` patients."""
    seed_master_data(store)
    svc = CounterService(store, device_id)
    rng = random.Random(seed)
    made = 0
    while made < patients:
        n = min(chunk, patients - made)
        with svc.transaction(f"op-{rng.randint(1, 9)}") as tx:
            for i in range(made, made + n):
                fields = {
                    "name": f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                    "sex": rng.choice("MF"), "age_years": rng.randint(1, 90),
                    "mobile": f"{mobile_prefix}{seed % 100:02d}{i:07d}"[:10] if rng.random() < 0.7 else None,
                    "district": "Lucknow", "category": "general",
                }
                p = tx.register_patient(fields)
                info = tx.patient(p.local_ref)
                v = tx.open_visit(info, rng.choice(DEPTS), visit_type="new")
                mode = rng.choice(("cash", "cash", "upi"))
                pay = PaymentInput(mode=mode, mode_ref=f"UTR{seq_tag(i)}" if mode == "upi" else None)
                tx.record_payment(info, pay, visit=v.local_ref,
                                  due_items=[{"code": "OPD-NEW", "qty": 1, "amount_paise": 1000 + (i % 7) * 50}])
                if rng.random() < lab_share:
                    codes = rng.sample(TESTS, rng.randint(1, 3))
                    order = tx.order_lab(info, v.local_ref, codes)
                    cat = tx.catalog
                    due = [{"code": c, "qty": 1, "amount_paise": cat.tests[c].price_paise if cat else 5000}
                           for c in codes]
                    tx.record_payment(info, PaymentInput(mode="cash"), visit=v.local_ref,
                                      lab_order=order.local_ref, due_items=due)
        made += n
    return summary(store)


def seq_tag(i: int) -> str:
    return f"{i:012d}"


def summary(store: Store) -> Day:
    with store.read() as s:
        ops = int(s.execute(text("SELECT count(*) FROM op")).scalar() or 0)
        cnt, total = s.execute(text("SELECT count(*), coalesce(sum(amount_paise), 0) FROM payment")).one()
    return Day(ops, int(cnt), int(total))


def new_counter(path: Path, device_id: str, patients: int, **kw: object) -> tuple[Store, Day]:
    store = open_store(path)
    return store, make_day(store, device_id, patients, **kw)  # type: ignore[arg-type]
