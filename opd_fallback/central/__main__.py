"""``python -m opd_fallback.central serve ...``: the same commands as ``opd-fallback central``."""

from opd_fallback.central.commands import central_app

if __name__ == "__main__":
    central_app(prog_name="python -m opd_fallback.central")
