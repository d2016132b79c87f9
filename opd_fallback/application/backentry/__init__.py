"""Back-entry import: paper slips typed into a CSV after the fact (the format is
described for users in ``docs/backentry-csv.md``).

Each row goes through the same services as the counter. Rows are saved in
batches, one SQLite transaction per batch and a savepoint per row, so a row is
imported whole or not at all while the disk is synced once per batch, not once
per row. The slip's key (device, visit date, slip number in normal form) and
its content are written with its records, so importing a file again imports
nothing new, even after a crash half-way through, and a *different* slip under
a number already imported is rejected, never skipped in silence.

The person importing is an authenticated operator (the CLI checks the PIN);
every op carries that operator's id. The file's ``operator_id`` is who wrote the
paper slip: it must be an operator of this counter and is kept in the local
slip record and the audit log (the wire contract has no place for it).

One concern per module: ``model`` (columns, errors, outcomes), ``csvio``
(reading the file, writing rejects), ``parse`` (one row into a ``Slip``, pure),
``save`` (a slip through the services), ``importer`` (batches, transactions,
re-import). This package re-exports the public names, so callers import from
``opd_fallback.application.backentry`` as before.
"""

from opd_fallback.application.backentry.csvio import (
    CheckedFile,
    RejectsWriter,
    iter_problems,
    read_rows,
    write_rejects,
)
from opd_fallback.application.backentry.importer import Key, check_importer, import_file, import_row
from opd_fallback.application.backentry.model import (
    BATCH_ROWS,
    COLUMNS,
    CSV_FIELD_LIMIT,
    ERROR_COLUMN,
    FORMULA_CHECKED,
    INT_COLUMNS,
    KEPT_REJECTED,
    KEPT_ROWS,
    MAX_CELL,
    NAME_COLUMNS,
    PATIENT_COLUMNS,
    REQUIRED_COLUMNS,
    SOURCE,
    FileChanged,
    FileUnusable,
    ImportRefused,
    ImportReport,
    RowOutcome,
    RowProblem,
    rejects_path_for,
    slip_key,
)
from opd_fallback.application.backentry.parse import Slip, parse_row

__all__ = [
    "BATCH_ROWS", "COLUMNS", "CSV_FIELD_LIMIT", "ERROR_COLUMN", "FORMULA_CHECKED", "INT_COLUMNS", "KEPT_REJECTED",
    "KEPT_ROWS", "MAX_CELL", "NAME_COLUMNS", "PATIENT_COLUMNS", "REQUIRED_COLUMNS", "SOURCE", "CheckedFile",
    "FileChanged", "FileUnusable", "ImportRefused", "ImportReport", "Key", "RejectsWriter", "RowOutcome",
    "RowProblem", "Slip", "check_importer", "import_file", "import_row", "iter_problems", "parse_row",
    "read_rows", "rejects_path_for", "slip_key", "write_rejects",
]
