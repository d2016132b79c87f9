"""docs/ARCHITECTURE.md names the code as it is: every module, package or
module attribute it names in backticks exists (``store/outbox.py``,
``application/review/``, ``store/shared.on_new_ops``). Paths are under
opd_fallback/, except ``tests/``, ``benchmarks/`` and ``docs/`` ones, which are
under the repository's root."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "ARCHITECTURE.md"
FROM_ROOT = ("tests/", "benchmarks/", "docs/")
# a backticked path: names joined by "/", then ".py", a "/" or ".attr" (``sync/engine.SyncEngine.run``)
_NAMED = re.compile(r"`([A-Za-z_]\w*(?:/\w+)*(?:/|\.py|/\w+(?:\.[A-Za-z_]\w*)+))(?![\w/.])")


def named_paths(text: str) -> list[str]:
    """Every path-like name in backticks, in order (``pyproject.toml`` and ``<db>.keyref`` are not paths)."""
    return [m for m in _NAMED.findall(text) if "/" in m]


def problem(name: str) -> str | None:
    """Why ``name`` names nothing in the repository, or None when it does."""
    base = ROOT if name.startswith(FROM_ROOT) else ROOT / "opd_fallback"
    if name.endswith("/"):
        return None if (base / name).is_dir() else f"{name}: no such package"
    if name.endswith(".py"):
        return None if (base / name).is_file() else f"{name}: no such file"
    module, attr = name.split(".", 1)
    path = base / f"{module}.py"
    if not path.is_file():
        path = base / module / "__init__.py"
        if not path.is_file():
            return f"{name}: no module {module}.py"
    head = attr.split(".")[0]
    defined = re.compile(rf"^\s*(?:async\s+)?(?:def|class)\s+{head}\b|^\s*{head}\s*[:=]|\bimport\b.*\b{head}\b",
                         re.M)
    return None if defined.search(path.read_text()) else f"{name}: {module}.py defines no {head}"


def test_every_module_named_in_the_architecture_exists() -> None:
    names = named_paths(DOC.read_text())
    assert len(names) > 50  # the pattern still finds the doc's paths
    wrong = [p for n in dict.fromkeys(names) if (p := problem(n))]
    assert not wrong, "docs/ARCHITECTURE.md names what is not there: " + "; ".join(wrong)


def test_a_missing_module_is_found(tmp_path: Path) -> None:
    assert named_paths("see `store/outbox.py` and `store/shared.on_new_ops`, `central/apply/`.") == [
        "store/outbox.py", "store/shared.on_new_ops", "central/apply/"]
    assert problem("store/outbox.py") is None and problem("store/shared.on_new_ops") is None
    assert problem("store/nothing.py") == "store/nothing.py: no such file"
    assert problem("store/shared.no_such_name") == "store/shared.no_such_name: store/shared.py defines no no_such_name"
    assert problem("tui/nowhere/") == "tui/nowhere/: no such package"
    assert problem("tests/tui/test_start_imports.py") is None
