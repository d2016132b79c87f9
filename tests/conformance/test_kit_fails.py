"""The conformance kit can fail: against a reference server with one deliberate
flaw (tests/helpers/broken_central.py, a real process), the rule that checks
that part of the contract fails, with what was sent and what came back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.central import Backend, run_central
from tests.helpers.kit import AWAITING_COLLECT, by_status, run_kit
from tests.helpers.postgres import PostgresServer, why_unavailable


def _failed(report: dict, rule: str) -> dict:
    return next(r for r in report["rules"] if r["rule"] == rule)


@pytest.mark.parametrize(("flaw", "rules", "shown"), [
    # a whole kit run each (10-20 s): in make chaos (issue 21); make test keeps one flawed
    # server failing its rule through the CLI (test_the_text_output_has_one_line_per_rule_and_a_summary)
    pytest.param("two_keys", {"refs.two_keys"}, ("POST", "/ops:batch", 200), marks=pytest.mark.chaos),
    pytest.param("forgets_rejections", {"ops.rejected_remembered"}, ("GET", "/ops/", 404), marks=pytest.mark.chaos),
    pytest.param("duplicate_other_result", {"idempotency.duplicate", "idempotency.canonical"},
                 ("POST", "/ops:batch", 200), marks=pytest.mark.chaos),
])
def test_the_rule_for_the_flaw_fails(tmp_path: Path, flaw: str, rules: set[str],
                                     shown: tuple[str, str, int]) -> None:
    with run_central(tmp_path, devices=("P01", "P02"), flaw=flaw) as central:
        code, report = run_kit(central)
    got = by_status(report)
    assert code == 1
    assert got["failed"] - AWAITING_COLLECT == rules, [r for r in report["rules"] if r["status"] == "failed"]
    for rule in rules:
        out = _failed(report, rule)
        ex = out["exchange"]
        assert (ex["method"], ex["path"][: len(shown[1])], ex["status"]) == shown, out
        assert ex["body"] is not None and (ex["method"] == "GET" or ex["sent"]["ops"])
    assert report["failed"] == len(got["failed"])


@pytest.fixture
def late_commit_postgres(request: pytest.FixtureRequest) -> PostgresServer:
    """The session's PostgreSQL (tests/conftest.py), or a skip saying why this test needs one."""
    reason = why_unavailable()
    if reason:
        pytest.skip(f"needs PostgreSQL (late commits need concurrent writers): {reason}")
    server: PostgresServer = request.getfixturevalue("postgres")
    return server


def test_a_skipped_late_commit_fails_the_changes_rule(tmp_path: Path, late_commit_postgres: PostgresServer) -> None:
    postgres = late_commit_postgres
    url = Backend("postgresql", postgres).new_database_url(tmp_path)
    with run_central(tmp_path, devices=("P01", "P02"), database_url=url, flaw="late_commit") as central:
        code, report = run_kit(central, ("P01", "P02"), "--only", "changes")
    got = by_status(report)
    assert code == 1
    assert got == {"passed": {"changes.pages", "changes.fields"}, "failed": {"changes.late_commit"},
                   "skipped": set()}, report
    assert "missed" in _failed(report, "changes.late_commit")["detail"]


def test_the_text_output_has_one_line_per_rule_and_a_summary(tmp_path: Path) -> None:
    with run_central(tmp_path, devices=("P01", "P02"), flaw="two_keys") as central:
        p = subprocess.run(
            [sys.executable, "-m", "opd_fallback", "conformance", central.url, "--devices", "P01,P02",
             "--only", "refs.", "--only", "health"],
            input=f"{central.tokens['P01']}\n{central.tokens['P02']}\n", text=True, capture_output=True, timeout=60)
    lines = p.stdout.splitlines()
    assert p.returncode == 1
    assert [ln.split()[0] + " " + ln.split()[1] for ln in lines[:-1]] == [
        "PASS health:", "FAIL refs.two_keys:", "PASS refs.null_key:", "PASS refs.no_key:", "PASS refs.central_id:",
        "PASS refs.unknown_central_id:", "PASS refs.lookup:", "PASS refs.unknown_404:"]
    two = lines[1]
    assert "expected rejected / validation_failed; sent POST /ops:batch" in two and '"central_id"' in two
    assert '"status":"applied"' in two
    assert lines[-1].startswith("7 passed, 1 failed, 0 skipped of 8 rules against " + central.url)


def test_usage_mistakes_and_an_unreachable_server_end_quickly(tmp_path: Path) -> None:
    def kit(*args: str, stdin: str = "a\nb\n") -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "opd_fallback", "conformance", *args], input=stdin,
                              text=True, capture_output=True, timeout=60)

    one = kit("http://127.0.0.1:9", "--devices", "P01")
    assert one.returncode == 2 and "two different test devices" in one.stderr
    no_tokens = kit("http://127.0.0.1:9", "--devices", "P01,P02", stdin="only-one\n")
    assert no_tokens.returncode == 2 and "standard input" in no_tokens.stderr
    # nothing listens on port 9: every rule fails or is skipped, each saying why, and the run ends
    down = kit("http://127.0.0.1:9", "--devices", "P01,P02", "--deadline", "20", "--timeout", "2")
    assert down.returncode == 1
    assert down.stdout.splitlines()[-1].startswith("0 passed")
    assert "no answer (ConnectError" in down.stdout
