"""Printer settings (env prefix ``OPD_PRINTER_``).

Kept beside the printers so the printing package stands alone; the counter's
config can embed this model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PrinterTarget = Literal["file", "pdf", "escpos-usb", "escpos-serial", "escpos-network", "none"]


class PrinterSettings(BaseSettings):
    """Where the counter prints. ``file`` writes text files (the default, and
    what the tests read); ``pdf`` makes a PDF and hands it to ``pdf_command``
    (``lp`` by default) for the system printer; ``escpos-*`` drive a thermal
    printer directly."""

    model_config = SettingsConfigDict(env_prefix="OPD_PRINTER_", extra="ignore")

    target: PrinterTarget = "file"
    width_chars: int = Field(default=42, ge=24, le=80)  # 80 mm paper: 42-48, 58 mm: 32
    paper_mm: int = Field(default=80, ge=40, le=216)
    directory: Path | None = None  # file and pdf output; default <data_dir>/prints
    pdf_command: str | None = "lp"  # "" or None: only write the PDF
    font_path: Path | None = None  # a TTF with Devanagari for the PDF (e.g. NotoSansDevanagari)
    # a separate label printer for the sample labels (ZPL or TSPL): "host:port"
    # or a device file such as /dev/usb/lp0; empty: labels go to the printer above
    label_printer: Literal["", "zpl", "tspl"] = ""
    label_target: str | None = None
    usb_vendor: int = 0x04B8
    usb_product: int = 0x0202
    serial_port: str = "/dev/ttyUSB0"
    serial_baud: int = 9600
    host: str = "192.168.1.100"
    port: int = 9100
    timeout_s: float = Field(default=5.0, gt=0, le=60)


def from_counter_config(printer: str, target: str | None, width_chars: int, data_dir: Path) -> PrinterSettings:
    """Printer settings from the counter's config (``printer``, ``printer_target``,
    ``paper_width_chars``): target is a directory for file/pdf, ``host:port``
    for a network printer, a device path for serial, ``vid:pid`` (hex) for USB.
    ``OPD_PRINTER_*`` variables still refine the rest."""
    values: dict[str, object] = {"target": printer, "width_chars": width_chars}
    if printer in ("file", "pdf"):
        values["directory"] = Path(target) if target else data_dir / "prints"
    elif printer == "escpos-network" and target:
        host, _, port = target.partition(":")
        values["host"] = host
        if port:
            values["port"] = int(port)
    elif printer == "escpos-serial" and target:
        values["serial_port"] = target
    elif printer == "escpos-usb" and target:
        vid, _, pid = target.partition(":")
        values["usb_vendor"], values["usb_product"] = int(vid, 16), int(pid, 16)
    return PrinterSettings(**values)  # type: ignore[arg-type]
