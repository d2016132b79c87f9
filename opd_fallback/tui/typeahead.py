"""Keeping a fast clerk's typed-ahead keys in order across an Enter.

Textual hands each key to the focused widget's own queue, while a priority
binding (our Enter) runs at once in the app's turn: without care, Enter would
act before the Input had inserted the characters typed just before it, and
keys typed after it would go to the field just left.
"""

from __future__ import annotations

import asyncio

from textual.widget import Widget


async def after_queued_keys(widget: Widget, *, timeout_s: float = 1.0) -> None:
    """Return once ``widget`` has handled every event already queued for it.

    Called from a binding: the app handles no further key meanwhile, so after
    this the caller can move focus and the next keys land in the next field.
    """
    done = asyncio.Event()
    widget.call_later(done.set)
    try:
        await asyncio.wait_for(done.wait(), timeout_s)
    except TimeoutError:  # a busy widget never blocks the counter
        pass
