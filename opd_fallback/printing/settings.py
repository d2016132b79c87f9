"""The printer settings are the printer group of the counter's one ``Settings``
(``opd_fallback.config.PrinterSettings``, ``settings.printer``); named here too
so the printing package reads as before."""

from __future__ import annotations

from opd_fallback.config import PrinterKind, PrinterSettings

PrinterTarget = PrinterKind

__all__ = ["PrinterSettings", "PrinterTarget"]
