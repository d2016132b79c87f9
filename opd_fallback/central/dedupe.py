"""Is this newly registered patient someone central already knows?

The rule is :mod:`opd_fallback.domain.identity`'s, the one the counter warns by
before saving: the same ABHA number, or the same mobile with a similar name and
an age within two years. Central finds the candidates (``central/apply/handlers/patients.py``:
the patients with that ABHA number or that mobile, from the batch's index) and
asks :func:`opd_fallback.domain.identity.judge`. The names below are kept for
callers of this module.
"""

from __future__ import annotations

from collections.abc import Mapping

from opd_fallback.domain import identity
from opd_fallback.domain.identity import AGE_TOLERANCE_YEARS, NAME_THRESHOLD, age_in_years, normalise_name

__all__ = ["AGE_TOLERANCE_YEARS", "NAME_THRESHOLD", "age_in_years", "normalise_name", "similar"]


def similar(new: Mapping[str, object], old: Mapping[str, object]) -> bool:
    """Same mobile is checked by the caller; here: similar name and close age."""
    return identity.alike(new, old) is not None
