"""No secret has to go on a command line (``ps`` shows it to every user):
``--token-stdin`` like ``docker login --password-stdin``, the environment
variable, and ``--token`` still working for scripts but warning. TLS checks
turned off are said on every run, at the CLI and in the counter's status bar;
``--ca-bundle`` / ``OPD_CA_BUNDLE`` is the way for a hospital's own CA."""

from __future__ import annotations

from pathlib import Path

import certifi
import pytest
from typer.testing import CliRunner

from opd_fallback.cli import app
from opd_fallback.config import load_settings
from tests.helpers.central import run_central

runner = CliRunner()


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "counter"
    monkeypatch.setenv("OPD_DATA_DIR", str(d))
    monkeypatch.delenv("OPD_CENTRAL_TOKEN", raising=False)
    monkeypatch.delenv("OPD_VERIFY_TLS", raising=False)
    return d


def test_init_reads_the_token_from_stdin_without_a_warning(data: Path) -> None:
    res = runner.invoke(app, ["init", "--device", "C07", "--hospital", "KGMU", "--token-stdin"], input="tok-123\n")
    assert res.exit_code == 0, res.output
    assert (data / "device.token").read_text().strip() == "tok-123"
    assert "warning" not in res.stderr


def test_token_on_the_command_line_still_works_but_warns(data: Path) -> None:
    res = runner.invoke(app, ["init", "--device", "C07", "--hospital", "KGMU", "--token", "tok-123"])
    assert res.exit_code == 0, res.output
    assert (data / "device.token").read_text().strip() == "tok-123"
    assert "warning: --token puts the device token in the process list (ps)" in res.stderr
    assert "--token-stdin" in res.stderr


def test_token_both_ways_or_empty_stdin_is_refused(data: Path) -> None:
    res = runner.invoke(app, ["init", "--device", "C07", "--hospital", "KGMU", "--token", "a", "--token-stdin"],
                        input="b\n")
    assert res.exit_code == 1 and "one way" in res.output
    res = runner.invoke(app, ["init", "--device", "C07", "--hospital", "KGMU", "--token-stdin"], input="\n")
    assert res.exit_code == 1 and "no token" in res.output


@pytest.mark.parametrize("command", [["init"], ["sync"], ["refresh"], ["restore"]])
def test_help_says_token_stdin_is_the_safe_way(command: list[str]) -> None:
    res = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    assert "--token-stdin" in res.output and "(ps)" in res.output


def test_sync_with_the_token_on_stdin(tmp_path: Path, data: Path) -> None:
    with run_central(tmp_path) as central:
        assert runner.invoke(app, ["init", "--device", "C07", "--hospital", "KGMU", "--server", central.url]
                             ).exit_code == 0
        res = runner.invoke(app, ["sync", "--token-stdin", "--json"], input=central.tokens["C07"] + "\n")
        assert res.exit_code == 0, res.output
        assert "warning" not in res.stderr
        res = runner.invoke(app, ["sync", "--token-stdin", "--json"], input="not-the-token\n")
        assert res.exit_code == 3


def test_tls_checks_off_are_said_on_every_run(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert runner.invoke(app, ["init", "--device", "C07", "--hospital", "KGMU"]).exit_code == 0
    monkeypatch.setenv("OPD_VERIFY_TLS", "false")
    for args in (["status"], ["operator", "list"], ["status"]):
        res = runner.invoke(app, args)
        assert res.exit_code == 0, res.output
        assert res.stderr.count("warning: TLS certificate checks are OFF") == 1, (args, res.stderr)
        assert "--ca-bundle" in res.stderr
    monkeypatch.delenv("OPD_VERIFY_TLS")
    assert "TLS" not in runner.invoke(app, ["status"]).stderr


def test_init_keeps_a_hospital_ca_bundle_and_refuses_a_missing_one(data: Path, tmp_path: Path) -> None:
    res = runner.invoke(app, ["init", "--device", "C07", "--hospital", "KGMU", "--ca-bundle",
                              str(tmp_path / "nope.pem")])
    assert res.exit_code == 1 and "does not exist" in res.output
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    res = runner.invoke(app, ["init", "--device", "C07", "--hospital", "KGMU", "--ca-bundle", str(junk)])
    assert res.exit_code == 1 and "no PEM certificate" in res.output
    res = runner.invoke(app, ["init", "--device", "C07", "--hospital", "KGMU", "--ca-bundle", certifi.where()])
    assert res.exit_code == 0, res.output
    assert str(load_settings().ca_bundle) == str(Path(certifi.where()).resolve())


async def test_counter_status_bar_shows_tls_checks_off(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from opd_fallback.tui.widgets.status_bar import StatusBar
    from opd_fallback.tui.wiring import app_from_settings

    assert runner.invoke(app, ["init", "--device", "C07", "--hospital", "KGMU"]).exit_code == 0
    monkeypatch.setenv("OPD_VERIFY_TLS", "false")
    counter = app_from_settings(load_settings(), background_sync=False)
    async with counter.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        bar = counter.screen.query_one(StatusBar)
        bar.tick()
        assert "TLS CHECKS OFF" in str(bar.render())
        assert any("TLS certificate checks are OFF" in str(n.message) for n in counter._notifications)
