"""``opd-fallback hub ...``: the LAN hub's commands (see :mod:`opd_fallback.hub.commands`)."""

from opd_fallback.hub.commands import hub_app

__all__ = ["hub_app"]
