"""The Devanagari font every printer uses, found without configuration.

Thermal printers and label printers have no Devanagari glyphs, and a PDF
needs a font file, so the counter carries one: Noto Sans Devanagari (which
also has Latin and ₹) from the ``fontpkg-noto-sans-devanagari`` package, a
dependency. A font named in the settings wins; the system's Noto or Lohit
fonts are the fallback where the package is missing.

Shaping (conjuncts such as ``श्री``, matras placed before the consonant as
in ``त्रि``) needs Pillow's raqm layout; ``shaping_available`` says whether
this Pillow has it (the PyPI wheels bundle raqm and load the system's
FriBiDi, ``libfribidi0`` on Debian).
"""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from opd_fallback.domain.exits import OpdError

if TYPE_CHECKING:
    from PIL.ImageFont import FreeTypeFont

_SYSTEM_FONTS = (
    Path("/usr/share/fonts/truetype/noto/NotoSansDevanagari-Regular.ttf"),
    Path("/usr/share/fonts/opentype/noto/NotoSansDevanagari-Regular.ttf"),
    Path("/usr/share/fonts/truetype/lohit-devanagari/Lohit-Devanagari.ttf"),
)


class FontMissing(OpdError, RuntimeError):
    """No Devanagari font could be found (the message says what to install)."""


@cache
def _packaged() -> Path | None:
    try:
        import fontpkg_noto_sans_devanagari as pkg
    except ImportError:
        return None
    files = sorted((Path(pkg.ROOT) / "files").glob("*.ttf"))
    return files[0] if files else None


def devanagari_font(configured: Path | None = None) -> Path:
    """The font file to use: the configured one, the packaged Noto, or the system's."""
    if configured is not None and Path(configured).is_file():
        return Path(configured)
    found = _packaged() or next((p for p in _SYSTEM_FONTS if p.is_file()), None)
    if found is None:
        raise FontMissing(
            "no Devanagari font found: reinstall opd-fallback (it ships fontpkg-noto-sans-devanagari) "
            "or set OPD_PRINTER_FONT_PATH to a TTF with Devanagari"
        )
    return found


def is_variable(path: Path) -> bool:
    return "[" in path.name


@cache
def shaping_available() -> bool:
    """Whether Pillow lays out complex scripts (raqm); without it Devanagari
    conjuncts would print as broken letters, so it is said once in the log."""
    from PIL import features

    ok = bool(features.check("raqm"))
    if not ok:
        logging.getLogger(__name__).warning(
            "Pillow has no raqm text layout (is libfribidi0 installed?): Hindi will print with broken conjuncts")
    return ok


@cache
def pil_font(size: int, bold: bool = False, configured: Path | None = None) -> FreeTypeFont:
    """A Pillow font at ``size`` pixels, weight 700 for bold (variable font)."""
    from PIL import ImageFont

    path = devanagari_font(configured)
    engine = ImageFont.Layout.RAQM if shaping_available() else ImageFont.Layout.BASIC
    font = ImageFont.truetype(str(path), size, layout_engine=engine)
    if is_variable(path):
        try:
            axes = font.get_variation_axes()
            values: list[float] = []
            for axis in axes:
                name = axis.get("name")
                tag = name.decode() if isinstance(name, bytes) else str(name)
                if tag.lower().startswith("weight") or tag == "wght":
                    values.append(700 if bold else 400)
                else:
                    values.append(float(axis.get("default") or axis.get("maximum") or 100))
            font.set_variation_by_axes(values)
        except (OSError, AttributeError):
            pass  # FreeType without variation support: the default instance
    return font

