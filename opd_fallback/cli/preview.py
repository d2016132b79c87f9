"""``opd-fallback preview REF --out DIR``: the papers of a record as PNG files.

One PNG per document printed for the record (a visit's slip and receipt, a
lab order's receipt and each tube's label; REF is the offline number, a
receipt number or a sample id), drawn from the same plan the thermal printer
is sent: ASCII lines in the printer's 12 x 24 dot cells, Devanagari lines,
barcodes and QR codes as the very images it gets; labels at 50 x 25 mm
(400 x 200 dots). For a supervisor, a support person or a test to see.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated

import typer

from opd_fallback.cli.common import DataDirOpt, counter_store, domain_errors, fail, use_data_dir

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def preview(
    ref: Annotated[str, typer.Argument(help="Offline number (visit or lab order), receipt number or sample id")],
    out: Annotated[Path, typer.Option("--out", help="Directory for the PNG files (created if missing)")],
    data_dir: DataDirOpt = None,
) -> None:
    """Write one PNG per document printed for REF, exactly as the printer gets it."""
    from opd_fallback.application.printouts import Printouts
    from opd_fallback.printing.fonts import FontMissing
    from opd_fallback.printing.raster import ThermalLayout

    use_data_dir(data_dir)
    with counter_store() as (s, store), domain_errors():
        docs = Printouts(store, device_id=s.device_id, hospital=s.hospital).for_record(ref)
        layout = ThermalLayout(s.printer.width_chars)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            fail(f"--out: cannot create {out}: {exc.strerror or exc}; give a directory you can write to")
        for n, doc in enumerate(docs, start=1):
            path = out / f"{n:02d}-{doc.kind}-{_UNSAFE.sub('_', doc.ref)}.png"
            try:
                image = layout.render(doc)
            except FontMissing as exc:
                fail(str(exc))
            try:
                # patient data: readable by this user only
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    image.save(fh, format="PNG", optimize=True)
            except OSError as exc:
                fail(f"--out: cannot write {path}: {exc.strerror or exc}")
            typer.echo(str(path))


def register(app: typer.Typer) -> None:
    app.command("preview")(preview)
