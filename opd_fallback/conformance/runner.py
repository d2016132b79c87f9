"""Running the rules against a server and saying what came of each."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TypedDict

from opd_fallback.conformance.context import Ctx, Device, Failed, Skipped
from opd_fallback.conformance.http import Api, Clock, ExchangeDict, OutOfTime, Verify
from opd_fallback.conformance.rules import RULES


class OutcomeDict(TypedDict):
    rule: str
    text: str
    status: str
    detail: str
    exchange: ExchangeDict | None
    seconds: float


class ReportDict(TypedDict):
    """The report as ``conformance --json`` prints it."""

    url: str
    devices: list[str]
    ok: bool
    passed: int
    failed: int
    skipped: int
    seconds: float
    rules: list[OutcomeDict]


@dataclass
class Outcome:
    rule: str
    text: str
    status: str  # passed | failed | skipped
    detail: str = ""  # failed: what was expected; skipped: why
    exchange: ExchangeDict | None = None  # failed: what was sent and what came back
    seconds: float = 0.0

    def line(self) -> str:
        mark = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP"}[self.status]
        text = f"{mark}  {self.rule}: {self.text}"
        if self.status == "failed":
            text += f" -- expected {self.detail}"
            if self.exchange is not None:
                text += f"; {self.brief}"
        elif self.status == "skipped":
            text += f" -- skipped: {self.detail}"
        return text

    @property
    def brief(self) -> str:
        from opd_fallback.conformance.http import Exchange

        assert self.exchange is not None
        return Exchange(**self.exchange).brief()

    def as_dict(self) -> OutcomeDict:
        return {"rule": self.rule, "text": self.text, "status": self.status, "detail": self.detail,
                "exchange": self.exchange, "seconds": round(self.seconds, 3)}


@dataclass
class Report:
    url: str
    devices: tuple[str, str]
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def ok(self) -> bool:
        return bool(self.outcomes) and all(o.status == "passed" for o in self.outcomes)

    def summary(self) -> str:
        return (f"{self.count('passed')} passed, {self.count('failed')} failed, {self.count('skipped')} skipped "
                f"of {len(self.outcomes)} rules against {self.url} in {self.seconds:.1f} s")

    def as_dict(self) -> ReportDict:
        return {"url": self.url, "devices": list(self.devices), "ok": self.ok,
                "passed": self.count("passed"), "failed": self.count("failed"), "skipped": self.count("skipped"),
                "seconds": round(self.seconds, 3), "rules": [o.as_dict() for o in self.outcomes]}


def run(url: str, devices: tuple[str, str], tokens: tuple[str, str], *, deadline_s: float = 300.0,
        per_request_s: float = 15.0, verify: Verify = True, only: list[str] | None = None) -> Report:
    """Run every rule (or those whose id starts with one of ``only``) against ``url``."""
    clock = Clock(deadline_s)
    started = time.monotonic()

    def api(token: str | None) -> Api:
        return Api(url, token, clock, per_request=per_request_s, verify=verify)

    apis = [api(tokens[0]), api(tokens[1]), api(None), api("conformance-kit-token-that-no-server-issued")]
    report = Report(url, devices)
    try:
        first, second = Device(devices[0], apis[0]), Device(devices[1], apis[1])
        ctx = Ctx(first, second, apis[2], apis[3])
        _start_seq(ctx)
        for r in RULES:
            if only and not any(r.id.startswith(o) for o in only):
                continue
            t0 = time.monotonic()
            try:
                r.check(ctx)
                out = Outcome(r.id, r.text, "passed")
                ctx.passed.add(r.id)
            except Failed as exc:
                out = Outcome(r.id, r.text, "failed", exc.expected,
                              exc.exchange.as_dict() if exc.exchange is not None else None)
            except Skipped as exc:
                out = Outcome(r.id, r.text, "skipped", str(exc))
            except OutOfTime as exc:
                out = Outcome(r.id, r.text, "skipped", str(exc))
            out.seconds = time.monotonic() - t0
            report.outcomes.append(out)
    finally:
        for a in apis:
            a.close()
    report.seconds = time.monotonic() - started
    return report


def _start_seq(ctx: Ctx) -> None:
    """Each device numbers its ops above what the server has received from it."""
    for d in (ctx.a, ctx.b):
        try:
            ex = d.api.get("/devices/me")
        except OutOfTime:
            return
        body = ex.body if ex.status == 200 and isinstance(ex.body, dict) else {}
        seq = body.get("max_seq")
        d.seq = seq if type(seq) is int and seq >= 0 else 0
