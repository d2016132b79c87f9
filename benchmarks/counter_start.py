"""The counter's start in a real terminal: ``opd-fallback counter`` until its
login screen is painted, beside a bare Textual app showing one label, both
started the same way (issue 21, item 3: at most 2.0x).

Both run in a tmux pane of 80x24 (the counter's smallest screen), one after
the other, interleaved (bare, counter, bare, counter...), so a load that comes
and goes hits both sides alike. The clock starts just before ``tmux
new-session`` is asked to run the command and stops when ``tmux
capture-pane`` first shows the screen's text: the counter's "Log in to the
counter" with the operator's field label, the bare app's label. Polling costs
the same on both sides (a tmux client every few milliseconds). The counter is
a real one: ``init`` with a central server configured (a closed port on
127.0.0.1, so a probe or a sync before first paint would be seen as time) and
an operator, its database encrypted when SQLCipher is available, as
``init`` leaves it.

On a loaded machine the ratio shrinks towards 1 as both sides wait for a core:
say the load average with the figure (it is printed).

The figure is the ratio of the medians of N runs (after one warm-up run each,
so files are in the page cache and every module is byte-compiled, as on a
counter where pip installed the package or it has run once). The runs write
and read their .pyc files under a private ``PYTHONPYCACHEPREFIX`` in the
scratch directory (nothing is written into the source tree) and ignore a
``PYTHONDONTWRITEBYTECODE`` in the caller's environment: with it, every run of
the counter compiled its own modules from source again, a cost no installed
counter pays (small: about 0.02 CPU seconds here). ``--source`` measures that
case anyway. Exit 1 when the ratio is above the goal.

    nice .venv/bin/python benchmarks/counter_start.py [--runs 5] [--goal 2.0] [--source] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

BARE = """\
from textual.app import App
from textual.widgets import Label


class Bare(App):
    def compose(self):
        yield Label("Bare label ready")


Bare().run()
"""

COUNTER_TEXT = ("Log in to the counter", "Operator ID")
BARE_TEXT = ("Bare label ready",)


class Tmux:
    """A private tmux server (its own socket), so nothing else's sessions are touched."""

    def __init__(self, sock: Path, env: dict[str, str]) -> None:
        self.base = ["tmux", "-S", str(sock)]
        # a holder session keeps the server up between runs, so no run pays for starting it; the
        # server's environment (``env``) is every session's
        subprocess.run([*self.base, "new-session", "-d", "-s", "holder", "-x", "80", "-y", "24", "sleep 100000"],
                       check=True, env=env)

    def time_to_text(self, name: str, argv: list[str], env: dict[str, str], texts: tuple[str, ...],
                     timeout_s: float = 60.0) -> float:
        """Seconds from asking tmux to start ``argv`` until the pane shows every one of ``texts``."""
        cmd = "exec " + " ".join(_quote(a) for a in argv)  # the pane's process is the program itself
        env_args = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
        t0 = time.perf_counter()
        pid = subprocess.run([*self.base, "new-session", "-d", "-P", "-F", "#{pane_pid}", "-s", name, "-x", "80",
                              "-y", "24", *env_args, cmd], check=True, capture_output=True, text=True).stdout.strip()
        try:
            while time.perf_counter() - t0 < timeout_s:
                shown = subprocess.run([*self.base, "capture-pane", "-p", "-t", name], capture_output=True,
                                       text=True).stdout
                if all(t in shown for t in texts):
                    return time.perf_counter() - t0
                time.sleep(0.003)
            raise SystemExit(f"{name}: {texts[0]!r} not on the screen after {timeout_s:.0f} s:\n{shown}")
        finally:
            subprocess.run([*self.base, "kill-session", "-t", name], check=False)
            _wait_gone(pid)

    def close(self) -> None:
        subprocess.run([*self.base, "kill-server"], check=False, stderr=subprocess.DEVNULL)


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


def _wait_gone(pid: str) -> None:
    """The killed run is gone before the next starts (it must not eat the next one's CPU)."""
    if not pid.isdigit():
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.01)


def set_up_counter(data: Path, env: dict[str, str]) -> None:
    """A counter as `opd-fallback init` and `operator add` leave it, central configured (unreachable)."""
    cli = [sys.executable, "-m", "opd_fallback"]
    subprocess.run([*cli, "init", "--device", "C07", "--hospital", "KGMU", "--server", "http://127.0.0.1:9",
                    "--token-stdin"], env=env, input="bench-token\n", text=True, check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run([*cli, "operator", "add", "op1", "--name", "Bench Operator", "--pin-stdin"], env=env,
                   input="1234\n", text=True, check=True, stdout=subprocess.DEVNULL)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--goal", type=float, default=2.0)
    ap.add_argument("--source", action="store_true",
                    help="no .pyc files: every start compiles its modules (PYTHONDONTWRITEBYTECODE=1)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    if shutil.which("tmux") is None:
        raise SystemExit("tmux is needed (apt-get install tmux)")
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPD_")}
        env["OPD_DATA_DIR"] = str(tmp / "counter")
        set_up_counter(tmp / "counter", env)
        (tmp / "bare.py").write_text(BARE)
        run_env = {"OPD_DATA_DIR": env["OPD_DATA_DIR"], "TERM": "xterm-256color", "PYTHONPATH": str(ROOT)}
        server_env = {k: v for k, v in env.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
        if args.source:
            server_env["PYTHONDONTWRITEBYTECODE"] = "1"
        else:
            run_env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
        sides = {
            "bare": ([sys.executable, str(tmp / "bare.py")], BARE_TEXT),
            "counter": ([sys.executable, "-m", "opd_fallback", "counter"], COUNTER_TEXT),
        }
        tmux = Tmux(tmp / "tmux.sock", server_env)
        times: dict[str, list[float]] = {"bare": [], "counter": []}
        try:
            for name, (argv, texts) in sides.items():  # warm-up: the page cache, .pyc files
                tmux.time_to_text(f"warm-{name}", argv, run_env, texts)
            for i in range(args.runs):
                for name, (argv, texts) in sides.items():
                    times[name].append(tmux.time_to_text(f"{name}-{i}", argv, run_env, texts))
        finally:
            tmux.close()
    load = [round(x, 2) for x in os.getloadavg()]
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = med["counter"] / med["bare"]
    ok = ratio <= args.goal
    if args.json:
        print(json.dumps({"runs": args.runs, "load_average": load, "terminal": "tmux 80x24",
                          "bytecode": "compiled at every start" if args.source else "cached (.pyc)",
                          "median_s": {k: round(v, 3) for k, v in med.items()},
                          "runs_s": {k: [round(x, 3) for x in v] for k, v in times.items()},
                          "ratio": round(ratio, 2), "goal": args.goal, "ok": ok}, indent=2))
    else:
        how = "compiled at every start" if args.source else ".pyc cached"
        print(f"start to first paint in tmux 80x24 ({how}), median of {args.runs} interleaved runs (load {load}):")
        for k, v in times.items():
            print(f"  {k:<8} {med[k]:6.3f}s   runs {' '.join(f'{x:.3f}' for x in v)}")
        print(f"  counter / bare = {ratio:.2f} (goal <= {args.goal}): {'ok' if ok else 'ABOVE GOAL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
