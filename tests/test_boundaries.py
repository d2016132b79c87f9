"""Import boundaries, checked by parsing every source file's imports (ast):
the domain, store/, sync/ and printing/ never import Textual; the domain and
store/ never import httpx or FastAPI, nor sync/, tui/ or cli/ that would bring them
in; central/ never imports store/, sync/, tui/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import opd_fallback

PKG = Path(opd_fallback.__file__).parent
DOMAIN = [p for p in PKG.glob("*.py")]


def imports_of(path: Path, package: list[str] | None = None) -> set[str]:
    """Absolute module names imported by a file (relative imports resolved
    against ``package``, by default the file's own package)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    if package is None:
        package = list(path.relative_to(PKG.parent).with_suffix("").parts[:-1])
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                mod = ".".join([*base, node.module] if node.module else base)
            else:
                mod = node.module or ""
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)
    return out


def files(*parts: str) -> list[Path]:
    if parts == ("",):
        return DOMAIN
    return sorted((PKG / parts[0]).rglob("*.py"))


def offenders(paths: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    bad = []
    for p in paths:
        for mod in imports_of(p):
            if any(mod == f or mod.startswith(f + ".") for f in forbidden):
                bad.append(f"{p.relative_to(PKG.parent)} imports {mod}")
    return sorted(set(bad))


@pytest.mark.parametrize("area", ["", "store", "sync", "printing"])
def test_no_textual_outside_the_tui(area: str) -> None:
    assert offenders(files(area), ("textual",)) == []


@pytest.mark.parametrize("area", ["", "store"])
def test_domain_and_store_speak_no_http(area: str) -> None:
    assert offenders(files(area), ("httpx", "fastapi", "starlette", "uvicorn")) == []


# Launchers that wire every part together; every other top-level module is domain.
ENTRY_POINTS = ("__main__.py", "demo.py")


@pytest.mark.parametrize("area", ["", "store"])
def test_domain_and_store_never_reach_sync_tui_or_cli(area: str) -> None:
    """Importing sync/ or tui/ would bring HTTP or Textual in by the back door."""
    paths = [p for p in files(area) if not (area == "" and p.name in ENTRY_POINTS)]
    forbidden = ("opd_fallback.sync", "opd_fallback.tui", "opd_fallback.cli", "opd_fallback.central")
    assert paths and offenders(paths, forbidden) == []


def test_central_imports_only_domain_modules() -> None:
    forbidden = ("opd_fallback.store", "opd_fallback.sync", "opd_fallback.tui", "opd_fallback.cli")
    assert offenders(files("central"), forbidden) == []


def test_the_checker_sees_imports() -> None:
    """Guard against a checker that passes because it parses nothing."""
    assert files("store") and DOMAIN
    assert "sqlmodel" in {m.split(".")[0] for m in imports_of(PKG / "store" / "engine.py")} or \
        "sqlalchemy" in {m.split(".")[0] for m in imports_of(PKG / "store" / "engine.py")}
    assert "opd_fallback.store.outbox" in imports_of(PKG / "services.py") or \
        "opd_fallback.store" in imports_of(PKG / "services.py")


def test_relative_imports_are_resolved(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("from ..tui import app\nfrom . import tables\nimport textual.app\n", encoding="utf-8")
    got = imports_of(probe, ["opd_fallback", "store"])
    assert {"opd_fallback.tui", "opd_fallback.tui.app", "opd_fallback.store.tables", "textual.app"} <= got
