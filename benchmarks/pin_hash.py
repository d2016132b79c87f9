"""What one PIN guess costs: the argon2id check the counter does at every login
(store/operators.py). The issue asks for >= 50 ms a guess; an attacker with a
copy of counter.db pays this per guess per core.

    .venv/bin/python benchmarks/pin_hash.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from opd_fallback.store.operators import HASHER, check_pin, hash_pin


def main() -> None:
    stored = hash_pin("482913")
    times = []
    for _ in range(10):
        t0 = time.perf_counter()
        check_pin("000000", stored)
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    p = HASHER
    print(f"pin_hash: argon2id t={p.time_cost} m={p.memory_cost // 1024} MiB p={p.parallelism}: "
          f"median {med * 1000:.0f} ms a guess (min {min(times) * 1000:.0f} ms); "
          f"all 4-digit PINs {1e4 * med / 60:.0f} min, all 6-digit PINs {1e6 * med / 3600:.0f} h on one core")
    if med < 0.05:
        raise SystemExit("one guess costs less than 50 ms: raise the argon2 cost in store/operators.py")


if __name__ == "__main__":
    main()
