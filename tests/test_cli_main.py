"""The main app mounts sibling command modules in whichever form they come."""

from __future__ import annotations

import sys
import types

import pytest
import typer
from typer.testing import CliRunner

import opd_fallback.cli as cli


@pytest.mark.parametrize("form", ["function", "sub_app", "typer_named", "register"])
def test_sibling_forms_are_mounted(form: str, monkeypatch: pytest.MonkeyPatch) -> None:
    app = typer.Typer()

    @app.command("noop")
    def _noop() -> None:
        """Placeholder so the group has a command."""

    mod = types.ModuleType("opd_fallback.cli._probe")
    if form == "function":
        def probe() -> None:
            typer.echo("probe ran")
        mod.probe = probe  # type: ignore[attr-defined]
    elif form in ("sub_app", "typer_named"):
        sub = typer.Typer()

        @sub.command("go")
        def go() -> None:
            typer.echo("probe ran")

        @sub.command("other")
        def other() -> None:
            """second command so 'go' stays a subcommand"""

        setattr(mod, "probe_app" if form == "sub_app" else "probe", sub)
    else:
        def register(target: typer.Typer) -> None:
            target.command("probe")(lambda: typer.echo("probe ran"))
        mod.register = register  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "opd_fallback.cli._probe", mod)
    monkeypatch.setattr(cli, "app", app)
    cli._mount_sibling("_probe", ("probe",))
    args = ["probe"] if form in ("function", "register") else ["probe", "go"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "probe ran" in res.output


def test_missing_sibling_is_skipped_but_a_broken_one_is_not(monkeypatch: pytest.MonkeyPatch) -> None:
    cli._mount_sibling("_not_there", ("x",))  # not landed yet: nothing happens

    def broken(name: str) -> types.ModuleType:
        raise ModuleNotFoundError("No module named 'some_dependency'", name="some_dependency")

    monkeypatch.setattr(cli.importlib, "import_module", broken)
    with pytest.raises(ModuleNotFoundError, match="some_dependency"):
        cli._mount_sibling("_broken", ("x",))  # a sibling that fails to import is an error, not hidden
