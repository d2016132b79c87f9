"""``python -m opd_fallback.hub serve ...``: the same commands as ``opd-fallback hub``."""

from opd_fallback.hub.commands import hub_app

if __name__ == "__main__":
    hub_app(prog_name="python -m opd_fallback.hub")
