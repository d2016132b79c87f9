"""Desks: what a counter is for (``init --desk``, ``OPD_DESK``). A desk picks the
screen the counter opens after login and the keys shown first on the home
menu; every screen stays one key away at every desk.

- ``registration``: new patients and revisits (F2 opens after login);
- ``billing``: find any patient of the hospital and take payment for a lab
  order placed at any counter (F12 opens after login);
- ``collection``: the sample collection desk (F1, the flow named ``collect``:
  a tube scanned and recorded collected or refused; tui/screens/collect.py);
- ``all``: the home menu, every flow (the default).

A flow is registered in ``tui/screens/__init__.py`` (``FLOWS``) and its key
in ``MENU`` below.
No Textual here: ``init`` imports the names.
"""

from __future__ import annotations

DESKS = ("registration", "billing", "collection", "all")

# the flow each desk opens after login (None: the home menu)
HOME_FLOW: dict[str, str | None] = {
    "registration": "register", "billing": "billing", "collection": "collect", "all": None,
}

# the home menu: (i18n key after "home.", flow opened, key hint) in the order of the "all" desk
MENU: list[tuple[str, str | None, str]] = [
    ("new", "register", "F2"),
    ("revisit", "revisit", "F3"),
    ("lab", "lab", "F4"),
    ("billing", "billing", "F12"),
    ("void", "void", "F5"),
    ("reprint", "reprint", "F6"),
    ("queue", "queue", "F7"),
    ("cash", "cash", "F8"),
    ("review", None, "F11"),
    ("collect", "collect", "F1"),
]

# the menu items each desk shows first
FIRST: dict[str, tuple[str, ...]] = {
    "registration": ("new", "revisit", "lab"),
    "billing": ("billing", "reprint", "void", "cash"),
    "collection": ("collect", "reprint"),
    "all": (),
}


def menu(desk: str, available: set[str] | None = None) -> list[str]:
    """The home menu's items for ``desk``: its own first, then every other one.
    ``available``: the flows that exist (an item whose flow is missing is left out)."""
    items = [name for name, flow, _key in MENU if flow is None or available is None or flow in available]
    first = [name for name in FIRST.get(desk, ()) if name in items]
    return first + [name for name in items if name not in first]


def home_flow(desk: str, available: set[str]) -> str | None:
    """The flow to open after login, if this desk has one and it exists."""
    flow = HOME_FLOW.get(desk)
    return flow if flow in available else None
