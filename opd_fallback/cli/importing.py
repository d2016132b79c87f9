"""``opd-fallback import FILE.csv [--dry-run]``: paper slips typed in afterwards.

Exit status: 0 every row is in (or already was), 1 some rows were rejected
(see the rejects file beside the input), 2 the file itself is unusable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from opd_fallback.application.backentry import FileUnusable, import_file
from opd_fallback.cli.common import DataDirOpt, counter_store, use_data_dir

EXIT_UNUSABLE = 2


def import_csv(
    file: Annotated[Path, typer.Argument(help="Back-entry CSV (UTF-8, header row)", show_default=False)],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check every row, save nothing")] = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Import manual slips from a back-entry CSV (shared/contract/backentry-csv.md)."""
    use_data_dir(data_dir)
    with counter_store() as (s, store):
        try:
            report = import_file(store, s.device_id, file, dry_run=dry_run)
        except FileUnusable as exc:
            typer.echo(f"error: {file}: {exc}", err=True)
            raise typer.Exit(EXIT_UNUSABLE) from None
    for row in report.rejected:
        for problem in row.problems:
            typer.echo(f"{file.name}: {problem}", err=True)
    done = report.count("would_import") if dry_run else report.count("imported")
    verb = "would import" if dry_run else "imported"
    typer.echo(
        f"{file.name}: {verb} {done}, already imported {report.count('already_imported')}, "
        f"rejected {len(report.rejected)} (of {len(report.rows)} rows)"
    )
    if report.rejects_path is not None:
        typer.echo(f"rejected rows with the reason in an 'error' column: {report.rejects_path}")
    if dry_run:
        typer.echo("dry run: nothing was saved")
    raise typer.Exit(report.exit_code)


def register(app: typer.Typer) -> None:
    app.command("import")(import_csv)
