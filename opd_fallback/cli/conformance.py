"""``opd-fallback conformance URL --devices P01,P02``: check a central server
against every rule of the sync contract (the rules are in
:mod:`opd_fallback.conformance`; this module only reads the options and prints).

The two devices' tokens come on standard input, one a line, in the order of
``--devices`` (never on the command line, where ``ps`` shows them). Exit 0
only when every rule passed; 1 when any failed or was skipped; 2 for a usage
mistake (``ExitCode``: OK, REFUSED, UNUSABLE).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from opd_fallback.cli.common import fail
from opd_fallback.domain.exits import ExitCode

HELP = """Check a central server against every rule of the sync contract (1.2).

Meant for a STAGING server: it writes test records of its own (patients named
"Conformance Test Patient" whose address says "conformance test record <date>
UTC, not a real patient", offline numbers P01-CT<date and time>-0001, receipts
and sample ids likewise; never a mobile number) and voids, waives and collects
them. Do not run it against the live hospital server.

Give two test devices registered on that server (--devices P01,P02) and their
tokens on standard input, one a line, in the same order (the second device is
needed for the cross-device rules):

    printf '%s\\n%s\\n' "$TOKEN_P01" "$TOKEN_P02" | opd-fallback conformance https://staging.example/ --devices P01,P02

One line per rule (PASS, FAIL with what was sent and what came back, SKIP with
why) and a summary line; --json for the same as JSON. Every request has a
deadline and so has the whole run. Exit 0 only if every rule passed.
"""


def conformance(
    url: Annotated[str, typer.Argument(help="The server's base URL (without /api/v1)")],
    devices: Annotated[str, typer.Option("--devices", help="The two test devices, e.g. P01,P02; their tokens "
                                         "on stdin, one a line, in this order")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON")] = False,
    deadline: Annotated[float, typer.Option("--deadline", min=5, max=3600,
                                            help="The whole run ends after this many seconds")] = 300.0,
    timeout: Annotated[float, typer.Option("--timeout", min=1, max=120,
                                           help="Each request ends after this many seconds")] = 15.0,
    ca_file: Annotated[Path | None, typer.Option("--ca-file", help="Trust this CA certificate (PEM) for the "
                                                 "server's TLS certificate, besides the system's")] = None,
    only: Annotated[list[str] | None, typer.Option("--only", help="Run only the rules whose id starts with "
                                                   "this (repeatable)")] = None,
) -> None:
    names = [d.strip() for d in devices.split(",") if d.strip()]
    if len(names) != 2 or names[0] == names[1]:
        fail("--devices: give two different test devices, e.g. --devices P01,P02", code=ExitCode.UNUSABLE)
    if not url.startswith(("http://", "https://")):
        fail(f"URL: {url} must start with https:// (or http:// for a server on this machine)",
             code=ExitCode.UNUSABLE)
    tokens = [sys.stdin.readline().strip() for _ in names]
    if not all(tokens):
        fail(f"give the tokens of {names[0]} and {names[1]} on standard input, one a line, in that order",
             code=ExitCode.UNUSABLE)
    if url.startswith("http://") and not url.split("//", 1)[1].startswith(("127.", "localhost", "[::1]")):
        typer.echo("warning: http:// sends the device tokens unencrypted; use https:// for a server on the network",
                   err=True)
    verify: ssl.SSLContext | bool = True
    if ca_file is not None:
        import ssl

        if not ca_file.is_file():
            fail(f"--ca-file: {ca_file} is not a file", code=ExitCode.UNUSABLE)
        ctx = ssl.create_default_context()
        ctx.load_verify_locations(cafile=str(ca_file))
        verify = ctx

    from opd_fallback.conformance import run

    report = run(url, (names[0], names[1]), (tokens[0], tokens[1]), deadline_s=deadline, per_request_s=timeout,
                 verify=verify, only=only)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=1))
    else:
        for out in report.outcomes:
            typer.echo(out.line())
        typer.echo(report.summary())
    raise typer.Exit(ExitCode.OK if report.ok else ExitCode.REFUSED)
