"""How long a paper takes to make, before any printer I/O: the counter prints
after saving, in a worker, but a clerk waits for the slip in hand.

Measures (median of N, milliseconds): the ESC/POS byte stream of an OPD slip
with a Hindi name (raster lines shaped by Pillow+raqm, QR as an image), of one
50 x 25 mm tube label, the label in ZPL, the slip as a PDF (fpdf2 with
HarfBuzz shaping), and the preview PNG of the slip. The first call (fonts
loading) is reported apart.

Prints one JSON object. Usage: python benchmarks/printing.py [--n 20]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from escpos.printer import Dummy  # noqa: E402

from opd_fallback.printing import templates as T  # noqa: E402
from opd_fallback.printing.escpos import EscposPrinter  # noqa: E402
from opd_fallback.printing.labelcode import to_zpl  # noqa: E402
from opd_fallback.printing.pdf import PdfPrinter  # noqa: E402
from opd_fallback.printing.raster import ThermalLayout  # noqa: E402

WHEN = "2026-11-26T10:32:11+05:30"


def slip() -> T.Document:
    return T.opd_slip(
        hospital="KGMU Lucknow", device_id="C07", offline_no="C07-261126-000042", name="Shrikrishna Tripathi",
        name_local="श्रीकृष्ण त्रिपाठी", sex="M", age=(42, None, None), department="MED", unit="U1", token_no=17,
        visit_type="new", recorded_at=WHEN, operator_id="op-1", guardian="S/O Ram Tripathi",
        mobile="9839012345", fee_paise=1000, receipt_no="C07-R000043", patient_ref="C07-261126-000041")


def label() -> T.Document:
    return T.tube_labels(order_no="C07-261126-000044", tubes=[T.Tube("C07-S000044-1", "EDTA", ["CBC", "ESR"])],
                         patient_name="Shrikrishna Tripathi", patient_name_local="श्रीकृष्ण त्रिपाठी",
                         patient_ref="C07-261126-000041", age_sex="42Y/M", recorded_at=WHEN)[0]


def escpos_bytes(doc: T.Document) -> int:
    d = Dummy()
    EscposPrinter(lambda: d).print_document(doc)
    return len(d.output)


def timed(fn: Callable[[], object], n: int) -> dict[str, float]:
    t0 = time.perf_counter()
    fn()
    first = (time.perf_counter() - t0) * 1000
    runs = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - t) * 1000)
    return {"first_ms": round(first, 1), "median_ms": round(statistics.median(runs), 1),
            "max_ms": round(max(runs), 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20)
    n = ap.parse_args().n
    with tempfile.TemporaryDirectory() as tmp:
        pdf = PdfPrinter(Path(tmp), command=None)
        out = {
            "escpos_slip": timed(lambda: escpos_bytes(slip()), n),
            "escpos_label": timed(lambda: escpos_bytes(label()), n),
            "zpl_label": timed(lambda: to_zpl(label()), n),
            "pdf_slip": timed(lambda: pdf.render(slip()), max(3, n // 4)),
            "preview_png_slip": timed(lambda: ThermalLayout(42).render(slip()).save(io.BytesIO(), "PNG"), n),
            "escpos_slip_bytes": escpos_bytes(slip()),
            "escpos_label_bytes": escpos_bytes(label()),
        }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
