"""``opd-fallback central ...``: the reference central server's commands.

The commands live in :mod:`opd_fallback.central.commands` so the server can be
started as ``python -m opd_fallback.central`` without loading the counter's CLI.
"""

from opd_fallback.central.commands import central_app

__all__ = ["central_app"]
