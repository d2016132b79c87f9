"""Start fast, through the real entry point (``opd-fallback counter`` in a
fresh interpreter): by the time the login screen is first written to the
terminal, no database, network, printing, matching or command-line
library is loaded, and nothing has touched central; and a damaged database is
still refused in one sentence afterwards (benchmarks/counter_start.py has the
figure)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# The entry point as the console script runs it, headless; when the login screen
# is first written to the terminal, the loaded modules are written down.
_RUN = r"""
import json, sys
from opd_fallback.tui.app import CounterApp

out, then = sys.argv[1], sys.argv[2]
run, display = CounterApp.run, CounterApp._display
painted = []

def headless_run(self, **kw):
    return run(self, headless=True, size=(80, 24))

def first_paint(self, screen, renderable):
    display(self, screen, renderable)
    from opd_fallback.tui.screens.login import LoginScreen
    if painted or renderable is None or not isinstance(screen, LoginScreen):
        return
    painted.append(True)
    shown = "Log in to the counter" in str(screen.query_one(".title").render())
    with open(out, "w") as f:
        json.dump({"modules": sorted(sys.modules), "login_shown": shown}, f)
    if then == "quit":
        self.set_timer(1.0, self.exit)

CounterApp.run = headless_run
CounterApp._display = first_paint
sys.argv = ["opd-fallback", "counter"]
from opd_fallback.cli import main
main()
"""

HEAVY = ("sqlalchemy", "sqlmodel", "sqlcipher3", "alembic", "httpx", "httpcore", "fastapi", "starlette",
         "uvicorn", "escpos", "fpdf", "rapidfuzz", "argon2", "typer", "click", "PIL")


def _env(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("OPD_")}
    env["OPD_DATA_DIR"] = str(data)
    return env


@pytest.fixture
def counter(tmp_path: Path) -> Path:
    data = tmp_path / "counter"
    cli = [sys.executable, "-m", "opd_fallback"]
    # central configured (a closed port): a probe or a sync before first paint would show as httpx loaded
    subprocess.run([*cli, "init", "--device", "C07", "--hospital", "KGMU", "--server", "http://127.0.0.1:9",
                    "--token-stdin"], env=_env(data), input="t0ken\n", text=True, check=True,
                   capture_output=True, timeout=60)
    return data


def _run(data: Path, tmp_path: Path, then: str) -> tuple[subprocess.CompletedProcess[str], dict[str, object]]:
    out = tmp_path / "at_first_paint.json"
    res = subprocess.run([sys.executable, "-c", _RUN, str(out), then], env=_env(data), capture_output=True,
                         text=True, timeout=120)
    return res, json.loads(out.read_text())


def test_the_login_screen_paints_before_any_heavy_library_loads(counter: Path, tmp_path: Path) -> None:
    res, seen = _run(counter, tmp_path, "quit")
    assert res.returncode == 0, res.stderr
    assert seen["login_shown"] is True
    modules = set(seen["modules"])  # type: ignore[arg-type]
    loaded = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    assert not loaded, f"loaded before the login screen was painted: {loaded[:10]}"
    # nor the counter's own store, sync or printing (they open behind the login screen)
    ours = sorted(m for m in modules if m.startswith(("opd_fallback.store", "opd_fallback.sync",
                                                      "opd_fallback.printing", "opd_fallback.application",
                                                      "opd_fallback.cli.root")))
    assert not ours, ours


def test_a_damaged_database_is_still_refused_in_one_sentence(counter: Path, tmp_path: Path) -> None:
    db = counter / "counter.db"
    db.write_bytes(b"this is not a database, it was overwritten " * 500)
    for side in ("-wal", "-shm"):
        Path(str(db) + side).unlink(missing_ok=True)
    res, seen = _run(counter, tmp_path, "wait")
    assert seen["login_shown"] is True
    lines = [x for x in res.stderr.splitlines() if x.strip()]
    assert res.returncode == 6, res.stderr  # ExitCode.DAMAGED
    assert len(lines) == 1 and lines[0].startswith("error: ") and "is damaged" in lines[0], res.stderr
    assert "Traceback" not in res.stderr
