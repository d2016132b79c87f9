"""``opd-fallback status`` counts the open LAN edit conflicts (store/lan_conflicts.py): in its JSON
(``needs_person.lan_edit_conflicts``) and its text, until this counter corrects the patient."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opd_fallback.application.services import CounterService
from opd_fallback.cli import app
from opd_fallback.store import open_store
from tests.helpers.lan_conflict import flag_a_conflict

runner = CliRunner()


def _status(data: Path, *json_flag: str) -> str:
    res = runner.invoke(app, ["--data-dir", str(data), "status", *json_flag])
    assert res.exit_code == 0, res.output
    return res.output


def test_status_counts_an_open_lan_edit_conflict_until_the_patient_is_corrected(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for k in list(os.environ):
        if k.startswith("OPD_"):
            monkeypatch.delenv(k)
    data = tmp_path / "C01"
    assert runner.invoke(app, ["--data-dir", str(data), "init", "--device", "C01", "--hospital", "KGMU"]).exit_code == 0
    assert json.loads(_status(data, "--json"))["needs_person"]["lan_edit_conflicts"] == 0
    store = open_store(data / "counter.db")
    try:
        ref, at = flag_a_conflict(tmp_path, store, "C01", monkeypatch)
        report = json.loads(_status(data, "--json"))
        assert report["needs_person"]["lan_edit_conflicts"] == 1
        assert report["needs_person"]["count"] == 0  # no op of this counter is flagged: it is the edit
        text = _status(data)
        assert ("LAN edit conflicts: 1 (a patient's field changed at two counters; the later change is kept): "
                "check with each patient and correct the record if it is wrong -> opd-fallback review history"
                ) in text.splitlines(), text

        at(40)  # a person checked with her and corrects the record at this counter
        CounterService(store, "C01").update_patient("op-1", ref, {"mobile": "9833333333"})
    finally:
        store.close()
    assert json.loads(_status(data, "--json"))["needs_person"]["lan_edit_conflicts"] == 0
    assert "LAN edit conflicts" not in _status(data)
