"""Real broken disks for tests: a small tmpfs that can be filled, and a
read-only bind mount of a folder. Both need root (CAP_SYS_ADMIN); without it
the test is skipped and says why. Always unmounted, even when the test fails."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True, timeout=20, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here ({done.stderr.strip() or done.returncode}): needs root with CAP_SYS_ADMIN")


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=20, check=False)


@contextmanager
def small_tmpfs(path: Path, size: str = "1m") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``path`` (created)."""
    path.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path))
    try:
        yield path
    finally:
        _umount(path)


def fill(disk: Path) -> None:
    """Write a file until the disk says it is full."""
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (65536, 4096, 512, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                continue
    finally:
        os.close(fd)


@contextmanager
def read_only_view(source: Path, view: Path) -> Iterator[Path]:
    """``source`` seen read-only at ``view`` (a read-only bind mount: root's
    permission bypass does not help against it, unlike chmod)."""
    view.mkdir(parents=True, exist_ok=True)
    _mount("--bind", str(source), str(view))
    try:
        _mount("-o", "remount,bind,ro", str(view))
        yield view
    finally:
        _umount(view)
