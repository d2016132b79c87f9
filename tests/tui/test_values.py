"""The seam's values (tui/values.py): every name resolves to its home module's
object, and nothing below the UI loads when the module itself is imported."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from opd_fallback.tui import values


@pytest.mark.parametrize("name", sorted(values._HOME))
def test_every_value_is_its_home_modules_own(name: str) -> None:
    home = importlib.import_module(values._HOME[name])
    assert getattr(values, name) is getattr(home, name)
    assert name in values.__all__


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError):
        values.NoSuchValue  # noqa: B018


def test_importing_the_seam_loads_nothing_below_the_ui() -> None:
    code = ("import sys, opd_fallback.tui.values, opd_fallback.tui.ports; "
            "print(sorted(m for m in sys.modules if m.startswith(('opd_fallback.store', 'opd_fallback.application', "
            "'sqlalchemy'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout
