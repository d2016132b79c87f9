"""The read side: ``/patients/changes``, ``/samples/{id}`` (1.2) and the reconciliation endpoints.

The queries are in :mod:`opd_fallback.central.reads` (which also says why a
changes cursor never skips a row committed late by another worker).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from opd_fallback.central import reads
from opd_fallback.central.deps import CentralDep, Device
from opd_fallback.central.errors import COMMON, ApiError, doc, invalid, json_response
from opd_fallback.domain.contract import (
    API_PREFIX,
    PatientChanges,
    Reconciliation,
    ReconciliationOps,
    SampleState,
)

router = APIRouter(prefix=API_PREFIX)
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"


def _day(value: str) -> str:
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise invalid(("query", "date"), "must be a real date written YYYY-MM-DD") from None


@router.get("/patients/changes", response_model=PatientChanges, responses=COMMON)
def patient_changes(
    dev: Device,
    central: CentralDep,
    cursor: Annotated[str | None, Query(pattern=r"^\d{1,18}$")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> Response:
    with central.reader() as conn:
        return json_response(reads.patient_changes(conn, int(cursor or 0), limit))


@router.get("/samples/{sample_id}", response_model=SampleState,
            responses={**COMMON, **doc(404, "No applied lab order has this tube")})
def sample(sample_id: str, dev: Device, central: CentralDep) -> Response:
    """One tube of any device's order (1.2): a lab reads its state by the scanned id."""
    with central.reader() as conn:  # no tube has an id with a NUL byte (PostgreSQL text cannot hold one)
        out = None if "\x00" in sample_id else reads.sample(conn, sample_id)
    if out is None:
        raise ApiError(404, "not_found", f"no applied lab order has a tube {sample_id[:64]}")
    return json_response(out)


@router.get("/reconciliation", response_model=Reconciliation, responses=COMMON)
def reconciliation(
    dev: Device,
    central: CentralDep,
    date: Annotated[str, Query(pattern=DATE_PATTERN)],
    device_id: Annotated[str, Query(min_length=1, max_length=32)],
) -> Response:
    with central.reader() as conn:
        return json_response(reads.reconciliation(conn, _day(date), device_id))


@router.get("/reconciliation/ops", response_model=ReconciliationOps, responses=COMMON)
def reconciliation_ops(
    dev: Device,
    central: CentralDep,
    date: Annotated[str, Query(pattern=DATE_PATTERN)],
    device_id: Annotated[str, Query(min_length=1, max_length=32)],
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = reads.RECON_PAGE,
) -> Response:
    with central.reader() as conn:
        return json_response(reads.reconciliation_ops(conn, _day(date), device_id, cursor, limit))
