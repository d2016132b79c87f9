"""Counter UI benchmark: start to a usable login screen (beside a bare
Textual app started the same way, in the same run), save to committed,
patient lookup with 1 million patients in the local index, and the clerk's
keys per flow (the scripted flows of tests/tui/clerk.py).

    .venv/bin/python benchmarks/counter.py [--patients 1000000] [--json]

Prints JSON with p50/p99 (ms). Targets: login screen within 2x the bare
app's start, save p99 < 50 ms, lookup p99 < 100 ms; new patient <= 35 keys,
revisit <= 18.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FIRST = ["Ram", "Shyam", "Geeta", "Sita", "Mohd", "Anil", "Sunita", "Rakesh", "Pooja", "Vijay", "Kamla", "Arjun"]
LAST = ["Kumar", "Devi", "Singh", "Verma", "Yadav", "Ali", "Gupta", "Mishra", "Khan", "Pandey", "Tiwari"]


def letters(i: int) -> str:
    """A number as letters, so generated names pass the Latin-name rule."""
    out = ""
    while True:
        i, r = divmod(i, 26)
        out = chr(97 + r) + out
        if i == 0:
            return out.capitalize()


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def seed(db: Path, patients: int) -> None:
    from opd_fallback.store import patient_index
    from opd_fallback.store.engine import open_store
    from opd_fallback.store.operators import add_operator
    from tests.tui.conftest import put_master_data  # the same seeding the UI tests use

    store = open_store(db)
    put_master_data(store)
    add_operator(store, "op1", "Bench Operator", "1234")
    rnd = random.Random(7)
    chunk = 50_000
    for start in range(0, patients, chunk):
        rows = [
            {"uhid": f"KGMU-{i:08d}", "name": f"{rnd.choice(FIRST)} {rnd.choice(LAST)} {letters(i % 997)}",
             "sex": rnd.choice("MF"), "age_years": rnd.randint(0, 90), "guardian_name": rnd.choice(FIRST),
             "mobile": f"9{i:09d}", "district": "Lucknow", "version": 1, "updated_at": None}
            for i in range(start, min(patients, start + chunk))
        ]
        with store.write() as s:
            patient_index.upsert_many(s, rows)
    store.close()


# The counter as `opd-fallback counter` starts it: settings, then the app from
# settings (the store and backend open behind the login screen).
CHILD = r"""
import sys, os
sys.path.insert(0, {root!r})
os.environ["OPD_DATA_DIR"] = {data!r}
import asyncio
from opd_fallback.cli.common import counter_settings
from opd_fallback.tui.wiring import app_from_settings

async def main():
    from opd_fallback.tui.screens.login import LoginScreen
    app = app_from_settings(counter_settings(), background_sync=False)
    async with app.run_test(size=(120, 40)) as pilot:
        while not (isinstance(app.screen, LoginScreen) and app.focused is not None):
            await pilot.pause()
        print("READY", flush=True)
asyncio.run(main())
"""

# A bare Textual app showing a label, started the same way: the yardstick.
BARE = r"""
import asyncio
from textual.app import App
from textual.widgets import Label

class Bare(App):
    def compose(self):
        yield Label("OPD counter")

async def main():
    app = Bare()
    async with app.run_test(size=(120, 40)) as pilot:
        while not app.query(Label):
            await pilot.pause()
        print("READY", flush=True)
asyncio.run(main())
"""


def set_up_counter(db: Path, data: Path) -> None:
    """A data directory as `opd-fallback init` leaves it, its database the seeded one."""
    from opd_fallback.config import load_settings, write_config

    data.mkdir(parents=True, exist_ok=True)
    settings = load_settings(data)
    write_config(settings, {"device_id": "C07", "hospital": "BENCH"})
    settings = load_settings(data)
    settings.db_path.parent.mkdir(parents=True, exist_ok=True)
    if settings.db_path != db:
        settings.db_path.symlink_to(db)


def _time_child(code: str) -> float:
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    took = float("nan")
    for line in proc.stdout:
        if line.startswith("READY"):
            took = (time.perf_counter() - t0) * 1000
            break
    proc.wait()
    return took


def bench_start_side_by_side(data: Path, runs: int) -> tuple[list[float], list[float]]:
    """Counter login screen and bare Textual app, alternating, in one run."""
    code = CHILD.format(root=str(ROOT), data=str(data))
    counter, bare = [], []
    for _ in range(runs):
        bare.append(_time_child(BARE))
        counter.append(_time_child(code))
    return counter, bare


def bench_keys() -> dict[str, int]:
    """Keys a clerk presses per flow (typed name and mobile not counted)."""
    from tests.tui.clerk import NEW_PATIENT, NEW_PATIENT_FREE, REVISIT, REVISIT_FREE, count_keys

    return {"new_patient": count_keys(NEW_PATIENT, NEW_PATIENT_FREE), "revisit_by_mobile": count_keys(REVISIT, REVISIT_FREE)}


def bench_save_and_lookup(db: Path, saves: int, lookups: int) -> tuple[list[float], dict[str, list[float]], list[float]]:
    from opd_fallback.application.services import PaymentInput
    from opd_fallback.store.engine import open_store
    from opd_fallback.tui.backend import StoreBackend
    from opd_fallback.tui.state import Session

    store = open_store(db, migrate=False)
    backend = StoreBackend(store, device_id="C07", hospital="Bench")
    session = Session("op1", "Bench Operator", "operator")
    save_ms = []
    for i in range(saves):
        patient = {"name": f"Bench Patient {letters(i)}", "sex": "F", "age_years": 30, "mobile": f"98{i:08d}",
                   "category": "general"}
        t0 = time.perf_counter()
        backend.register_new(session, patient, department="MED", unit="MED-U1", payment=PaymentInput(mode="cash"))
        save_ms.append((time.perf_counter() - t0) * 1000)
    rnd = random.Random(11)
    kinds: dict[str, list[float]] = {"name_prefix": [], "mobile": [], "uhid": [], "offline_no": []}
    n = 1_000_000
    for _ in range(lookups):
        i = rnd.randrange(0, n)
        queries = {
            "name_prefix": f"{rnd.choice(FIRST)} {rnd.choice(LAST)[:3]}",
            "mobile": f"9{i:09d}",
            "uhid": f"KGMU-{i:08d}",
            "offline_no": "C07-",  # today's local registrations by offline number prefix
        }
        for kind, q in queries.items():
            t0 = time.perf_counter()
            backend.search_patients(q)
            kinds[kind].append((time.perf_counter() - t0) * 1000)
    # the UI path: Pilot presses F10 on a filled form; time to the committed row
    ui_ms = asyncio.run(bench_ui_save(store, 40))
    store.close()
    return save_ms, kinds, ui_ms


async def bench_ui_save(store, runs: int) -> list[float]:
    """The UI path: the F10 key event goes in through the driver (as from a
    terminal); the clock stops when the save worker's commit returns."""
    from textual import events

    from opd_fallback.tui.app import create_app
    from opd_fallback.tui.backend import StoreBackend
    from opd_fallback.tui.screens.register import RegisterScreen
    from opd_fallback.tui.state import Session

    backend = StoreBackend(store, device_id="C07", hospital="Bench")
    committed: list[float] = []
    inner = backend.register_new

    def timed(*args, **kwargs):  # type: ignore[no-untyped-def]
        result = inner(*args, **kwargs)
        committed.append(time.perf_counter())
        return result

    backend.register_new = timed  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(backend, print_dir=Path(tmp))
        out = []
        async with app.run_test(size=(120, 40)) as pilot:
            app.login(Session("op1", "Bench Operator", "operator"))
            await pilot.pause()
            await app.open_flow("register")
            await pilot.pause()
            await app.workers.wait_for_complete()
            screen = app.screen
            assert isinstance(screen, RegisterScreen)
            for i in range(runs):
                for name, value in (("name", f"Ui Patient {letters(i)}"), ("sex", "M"), ("age_years", "40"),
                                    ("department", "MED")):
                    screen.field(name).set_text(value)
                await pilot.pause()
                committed.clear()
                key = events.Key("f10", None)
                key.set_sender(app)
                t0 = time.perf_counter()
                app._driver.send_message(key)  # type: ignore[union-attr]
                while not committed:
                    await asyncio.sleep(0.0005)
                out.append((committed[0] - t0) * 1000)
                await app.workers.wait_for_complete()
                await pilot.pause()
        return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=1_000_000)
    ap.add_argument("--saves", type=int, default=300)
    ap.add_argument("--lookups", type=int, default=200)
    ap.add_argument("--start-runs", type=int, default=7)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "counter.db"
        t0 = time.perf_counter()
        seed(db, args.patients)
        seed_s = time.perf_counter() - t0
        set_up_counter(db, Path(tmp) / "data")
        start, bare = bench_start_side_by_side(Path(tmp) / "data", args.start_runs)
        save, lookups, ui = bench_save_and_lookup(db, args.saves, args.lookups)

    def summary(v: list[float]) -> dict[str, float]:
        return {"p50_ms": round(statistics.median(v), 2), "p99_ms": round(pct(v, 99), 2), "n": len(v)}

    result = {
        "patients_in_index": args.patients,
        "seed_s": round(seed_s, 1),
        "start_to_login": summary(start),
        "bare_textual_start": summary(bare),
        "login_vs_bare": round(statistics.median(start) / statistics.median(bare), 2),
        "clerk_keys": bench_keys(),
        "save_to_committed_service": summary(save),
        "save_key_to_committed_ui": summary(ui),
        "lookup": {k: summary(v) for k, v in lookups.items()},
        "targets": {"login_vs_bare": 2.0, "save_p99_ms": 50, "lookup_p99_ms": 100, "new_patient_keys": 35,
                    "revisit_keys": 18},
    }
    result["ok"] = (
        result["login_vs_bare"] <= 2.0
        and result["clerk_keys"]["new_patient"] <= 35 and result["clerk_keys"]["revisit_by_mobile"] <= 18
        and result["save_to_committed_service"]["p99_ms"] < 50
        and all(v["p99_ms"] < 100 for v in result["lookup"].values())
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
