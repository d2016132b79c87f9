"""A clerk at the keyboard for the UI tests and benchmarks/counter.py: sends
keys the way a terminal delivers fast typing (a burst through the driver, no
waiting between keys) and counts them.

A flow is a list of steps: ``"<f2>"``, ``"<enter>"``, ``"<down>"`` are named
keys; any other string is typed text; ``WAIT`` lets the app catch up (a clerk
looking at the screen). Text in ``free`` (the patient's own name and mobile)
is not counted: the issue's budget counts the keys beyond them."""

from __future__ import annotations

from typing import Any

from textual import events

WAIT = "<wait>"
_CHARS = {"enter": "\r", "space": " "}

# A new adult patient with mobile, guardian, department (typed "ME", Enter takes
# MED) and the cash fee: the common path at a registration counter.
NEW_PATIENT = ["<f2>", "Ram Kumar", "<enter>", "m", "<enter>", "42", "<enter>", "9876543210", "<enter>",
               "s", "<enter>", "Shyam Lal", "<enter>", "ME", "<enter>", "<f10>"]
NEW_PATIENT_FREE = {"Ram Kumar", "9876543210"}
# A revisit found by mobile: look at the list, pick, department, save.
REVISIT = ["<f3>", "9935012345", WAIT, "<enter>", "<enter>", "SURG", "<enter>", "<f10>"]
REVISIT_FREE = {"9935012345"}


def count_keys(steps: list[str], free: set[str] = frozenset()) -> int:  # type: ignore[assignment]
    n = 0
    for step in steps:
        if step == WAIT or step in free:
            continue
        n += 1 if step.startswith("<") else len(step)
    return n


async def play(pilot: Any, steps: list[str], *, wait_for_workers: bool = True) -> None:
    """Send the steps as bursts; between bursts (at WAIT) let the app settle."""
    from .conftest import searched, settle

    driver = pilot.app._driver
    assert driver is not None
    for step in steps:
        if step == WAIT:  # until the app is idle and any patient search typed so far has run
            await searched(pilot)
            continue
        if step.startswith("<"):
            key = step[1:-1]
            keys = [(key, _CHARS.get(key))]
        else:
            keys = [("space" if c == " " else c, c) for c in step]
        for key, char in keys:
            event = events.Key(key, char)
            event.set_sender(pilot.app)
            driver.send_message(event)
    if wait_for_workers:
        await settle(pilot)
    else:
        for _ in range(5):
            await pilot.pause()
