"""The op kinds' handlers, one module per group of kinds; importing this package
registers every handler in ``common._HANDLERS``."""

from opd_fallback.central.apply.handlers import orders, patients, payments

__all__ = ["orders", "patients", "payments"]
