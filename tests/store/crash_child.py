"""Child process for the crash test: saves registrations with payments in a
loop through the services and prints each one only after commit returned.

    python crash_child.py DB_PATH SEED
"""

from __future__ import annotations

import random
import sys

from opd_fallback.application.services import CounterService, PaymentInput
from opd_fallback.store import open_store


def main() -> None:
    path, seed = sys.argv[1], int(sys.argv[2])
    rng = random.Random(seed)
    store = open_store(path)
    svc = CounterService(store, "C07")
    print("READY", flush=True)
    n = 0
    while True:
        n += 1
        mode = rng.choice(["cash", "upi", "card", "waived"])
        pay = PaymentInput(
            mode=mode,
            amount_paise=0 if mode == "waived" else rng.choice([1000, 2000, 10000]),
            mode_ref=f"UTR{seed}{n}" if mode in ("upi", "card") else None,
        )
        reg = svc.register_new(
            "op1",
            {"name": f"Patient {chr(65 + n % 26)} Kumar", "name_local": "राम कुमार", "sex": rng.choice("MFO"),
             "age_years": rng.randint(0, 99), "mobile": f"98{rng.randint(0, 10**8 - 1):08d}",
             # a waiver without a supervisor is only for the exempt categories
             "category": "bpl" if mode == "waived" else "general"},
            department=rng.choice(["MED", "SURG"]),
            payment=pay,
        )
        assert reg.payment is not None
        # Only now, after commit returned, does the record count as saved.
        print(
            "SAVED", reg.patient.local_ref, reg.patient.op_id, reg.visit.local_ref, reg.visit.op_id,
            reg.payment.local_ref, reg.payment.op_id, reg.payment.extra["receipt_no"], flush=True,
        )


if __name__ == "__main__":
    main()
