"""How long the command line takes to start: ``opd-fallback --help``, ``status``
and ``status --json`` beside a bare ``python -c pass`` and ``python -c "import typer"``.

Most of a quick command's time is importing modules, so this is the figure
that tells whether a command imports only what it uses (issue 12, "Start
fast": ``status`` under 0.4 s). Each command runs in a fresh interpreter
against a real counter set up with ``init`` in a temporary directory; the
figure is the median wall time of N runs (after one warm-up run, so the
files are in the page cache), with the median CPU time (user + system) beside
it: on a busy machine the wall time includes waiting for a core, while the
CPU time is close to what the command takes on an idle one.

    .venv/bin/python benchmarks/cli_start.py [--runs 15] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _median_s(argv: list[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    """Median wall time and median CPU time (user + system) of ``runs`` runs."""
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)  # warm-up
    wall, cpu = [], []
    for _ in range(runs):
        c0, t0 = _children_cpu_s(), time.perf_counter()
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
        wall.append(time.perf_counter() - t0)
        cpu.append(_children_cpu_s() - c0)
    return statistics.median(wall), statistics.median(cpu)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    py = sys.executable
    cli = [py, "-m", "opd_fallback"]
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPD_")}
        env["OPD_DATA_DIR"] = str(Path(tmp) / "counter")
        subprocess.run([*cli, "init", "--device", "C07", "--hospital", "KGMU"], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        cases = {
            "python -c pass": [py, "-c", "pass"],
            "python -c 'import typer'": [py, "-c", "import typer"],
            "opd-fallback --help": [*cli, "--help"],
            "opd-fallback status": [*cli, "status"],
            "opd-fallback status --json": [*cli, "status", "--json"],
        }
        result = {name: _median_s(argv, env, args.runs) for name, argv in cases.items()}
    load = round(os.getloadavg()[0], 1)
    if args.json:
        print(json.dumps({"runs": args.runs, "load_average": load,
                          "median_wall_s": {n: round(w, 3) for n, (w, _c) in result.items()},
                          "median_cpu_s": {n: round(c, 3) for n, (_w, c) in result.items()}}, indent=2))
    else:
        print(f"median of {args.runs} runs (load average {load}):")
        print(f"  {'':<30} {'wall':>7} {'cpu':>7}")
        for name, (w, c) in result.items():
            print(f"  {name:<30} {w:6.3f}s {c:6.3f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
