"""Counter screens, one per module. ``FLOWS`` maps a flow name to its screen."""

from __future__ import annotations

from textual.screen import Screen


def _flows() -> dict[str, type[Screen[None]]]:
    from opd_fallback.tui.screens.billing import BillingScreen
    from opd_fallback.tui.screens.cash import CashScreen
    from opd_fallback.tui.screens.collect import CollectScreen
    from opd_fallback.tui.screens.lab import LabScreen
    from opd_fallback.tui.screens.queue import QueueScreen
    from opd_fallback.tui.screens.register import RegisterScreen
    from opd_fallback.tui.screens.reprint import ReprintScreen
    from opd_fallback.tui.screens.revisit import RevisitScreen
    from opd_fallback.tui.screens.void import VoidScreen

    return {
        "register": RegisterScreen,
        "revisit": RevisitScreen,
        "lab": LabScreen,
        "void": VoidScreen,
        "reprint": ReprintScreen,
        "queue": QueueScreen,
        "cash": CashScreen,
        "collect": CollectScreen,
        "billing": BillingScreen,
    }


class _Lazy(dict[str, type[Screen[None]]]):
    def __missing__(self, key: str) -> type[Screen[None]]:
        self.update(_flows())
        flow: type[Screen[None]] = dict.__getitem__(self, key)
        return flow


FLOWS: dict[str, type[Screen[None]]] = _Lazy()


def flow_names() -> set[str]:
    """The flows there are (loads their screens)."""
    if not FLOWS:
        FLOWS.update(_flows())
    return set(FLOWS)
