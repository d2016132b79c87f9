"""The stand-in process of a server forked by tests/helpers/forkserver.py.

Run as ``python -I -S forkshim.py SOCKET PIDFILE MODULE ARGS...`` (standard
library only, so it starts in milliseconds). It hands the fork server its
stdin/stdout/stderr, its environment and working directory and the read end of
a pipe only it holds; the fork server forks a process that runs ``python -m
MODULE ARGS...`` on those. This process then stands for that one: SIGTERM,
SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 are passed on to it, its exit code
becomes this one's (a death by signal N is this process's death by N), and if
this process is SIGKILLed the pipe closes and the forked one SIGKILLs itself.
The forked process's pid is written to PIDFILE (the helpers wait for it to be
gone after a SIGKILL, so a restart on the same port finds the port free).
"""

from __future__ import annotations

import array
import json
import os
import signal
import socket
import sys

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def main() -> None:
    sock_path, pid_file, module, *args = sys.argv[1:]
    life_r, _life_w = os.pipe()  # the write end stays open as long as this process lives
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(sock_path)
    request = json.dumps({"module": module, "args": args, "env": dict(os.environ), "cwd": os.getcwd()}).encode()
    fds = array.array("i", [0, 1, 2, life_r])
    conn.sendmsg([len(request).to_bytes(8, "big") + request], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
    os.close(life_r)
    reader = conn.makefile("rb")
    pid = int(reader.readline())
    with open(pid_file, "w") as f:
        f.write(str(pid))

    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for sig in FORWARDED:
        signal.signal(sig, forward)
    line = b""
    while not line:
        try:
            line = reader.readline()
        except InterruptedError:
            continue
        if not line:  # the fork server went away without a word
            os._exit(70)
    status = int(line)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 70)


if __name__ == "__main__":
    main()
