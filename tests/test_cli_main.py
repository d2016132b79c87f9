"""Every command is registered by name in ``opd_fallback.cli``, and each one the
README promises is there."""

from __future__ import annotations

import re
from pathlib import Path

import typer.main

import opd_fallback.cli as cli

README = Path(__file__).parents[1] / "README.md"


def _registered() -> set[str]:
    group = typer.main.get_command(cli.app)
    return set(group.commands)  # type: ignore[attr-defined]  # a click Group


def test_every_command_the_readme_shows_is_registered() -> None:
    shown = set(re.findall(r"^opd-fallback ([a-z][a-z-]+)", README.read_text(encoding="utf-8"), re.M))
    assert shown, "the README's tour lists no commands"
    assert shown <= _registered(), f"the README shows commands that do not exist: {shown - _registered()}"


def test_the_core_commands_are_there() -> None:
    assert {"init", "operator", "counter", "sync", "refresh", "status", "import", "review", "reconcile",
            "nightly", "backup", "restore", "central"} <= _registered()
