"""Patient data and secrets are owner-only wherever the counter makes them:
files 0600, folders 0700, also when ``init`` is run in a folder that already
exists with 0755 and the umask is the usual 022 (tests run the commands in
process, so only the explicit modes protect them, not the entry point's umask)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opd_fallback.cli import app
from opd_fallback.printing.document import Document
from opd_fallback.printing.file import FilePrinter
from opd_fallback.printing.pdf import PdfPrinter
from opd_fallback.printing.spool import Spool
from opd_fallback.store import open_store

runner = CliRunner()


def mode(p: Path) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture
def existing_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "counter"
    d.mkdir()
    d.chmod(0o755)
    monkeypatch.setenv("OPD_DATA_DIR", str(d))
    return d


def test_init_into_an_existing_0755_folder_makes_everything_owner_only(existing_dir: Path) -> None:
    res = runner.invoke(app, ["init", "--device", "C07", "--hospital", "KGMU", "--token-stdin"], input="tok-123\n")
    assert res.exit_code == 0, res.output
    assert mode(existing_dir) == 0o700
    for name in ("counter.db", "config.toml", "device.token"):
        assert mode(existing_dir / name) == 0o600, name
    store = open_store(existing_dir / "counter.db")  # while open, SQLite has its -wal and -shm
    try:
        with store.write() as s:
            s.exec(__import__("sqlalchemy").text("INSERT INTO meta(key, value) VALUES ('x', 'y')"))  # type: ignore[call-overload]
        for side in ("-wal", "-shm"):
            assert mode(existing_dir / f"counter.db{side}") == 0o600, side
    finally:
        store.close()


def test_an_older_0644_database_is_tightened_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "counter.db"
    open_store(path).close()
    path.chmod(0o644)
    open_store(path).close()
    assert mode(path) == 0o600


def test_backups_and_their_folder_are_owner_only(existing_dir: Path) -> None:
    assert runner.invoke(app, ["init", "--device", "C07", "--hospital", "KGMU"]).exit_code == 0
    res = runner.invoke(app, ["backup", "--json"])
    assert res.exit_code == 0, res.output
    backups = existing_dir / "backups"
    assert mode(backups) == 0o700
    made = [p for p in backups.iterdir()]
    assert made and all(mode(p) == 0o600 for p in made)


def _doc() -> Document:
    return Document(kind="slip", ref="C07-261126-000001", title="OPD slip").text("Ram Kumar")


def test_prints_and_spool_are_owner_only(tmp_path: Path) -> None:
    prints, spool_dir, pdfs = tmp_path / "data" / "prints", tmp_path / "data" / "spool", tmp_path / "data" / "pdf"
    FilePrinter(prints).print_document(_doc())
    spool = Spool(spool_dir)
    entry = spool.add(_doc())
    spool.mark(entry, None)
    PdfPrinter(pdfs, command=None).print_document(_doc())
    for d in (prints, spool_dir, pdfs, tmp_path / "data"):
        assert mode(d) == 0o700, d
    files = [*prints.iterdir(), *spool_dir.iterdir(), *pdfs.iterdir()]
    # the print file, the spool's one encrypted database (closed after each step) and the PDF
    assert sorted(p.name for p in spool_dir.iterdir()) == ["spool.db"]
    assert len(files) == 3 and all(mode(p) == 0o600 for p in files), [(p.name, oct(mode(p))) for p in files]


def test_the_entry_point_sets_an_owner_only_umask(monkeypatch: pytest.MonkeyPatch) -> None:
    import opd_fallback.cli as cli

    monkeypatch.setattr(cli, "app", lambda: None)
    cli.main()
    assert os.umask(0o022) == 0o077
