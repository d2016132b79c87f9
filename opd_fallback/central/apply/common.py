"""What every part of the applier shares: id formats, the ending of an op
(``_Outcome``), result rows, the handler table (one function per op kind,
``domain/registry.py``'s kinds) and small helpers."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypedDict

import orjson

from opd_fallback.domain import registry
from opd_fallback.domain.clock import IST
from opd_fallback.domain.contract import CANDIDATE_FIELDS
from opd_fallback.domain.payloads import PatientFields

ID_FORMATS = {"uhid": "KGMU{:09d}", "receipt": "KR{:09d}", "sample": "KS{:09d}"}
ID_PATTERNS = {k: re.compile("^" + v.replace("{:09d}", r"\d{9}") + "$") for k, v in ID_FORMATS.items()}
PATIENT_COLUMNS = tuple(PatientFields.model_fields)
_PATIENT_COLS = ("uhid", *PATIENT_COLUMNS, "version", "change_seq", "created_at", "updated_at", "device_id", "op_id")
_INSERT_PATIENT = f"INSERT INTO patient({','.join(_PATIENT_COLS)}) VALUES ({','.join('?' * len(_PATIENT_COLS))})"
CANDIDATE_KEYS = CANDIDATE_FIELDS
_REQUIRED_PATIENT = ("name", "sex", "category")
# record kind -> (its table, its central id column): named as the kind that creates it
# (domain/registry.py: the record kind, and the result key holding its central id)
_REF_TABLES = {registry.CREATES[k]: (registry.CREATES[k], col) for k, col in registry.CENTRAL_ID_KEYS.items()}


Result = dict[str, object]  # an applied op's result (the kinds' keys: docs/central-api.md)
Params = tuple[object, ...]  # one statement's parameters
# A patient's fields, column -> value (PatientFields' columns dumped in JSON mode, or a
# row as the driver gives it, with uhid, version, updated_at): str, int or None each
PatientRow = dict[str, Any]


class OpResult(TypedDict):
    """One entry of ``results`` in the answer to ``POST /ops:batch``."""

    op_id: str
    status: str
    result: object
    error: object


class _Outcome(Exception):
    """Raised inside an op's apply to end it with a non-applied status."""

    def __init__(self, status: str, code: str, message: str, **extra: object) -> None:
        super().__init__(message)
        self.status = status
        self.error: dict[str, object] = {"code": code, "message": message, **extra}


def _reject(code: str, message: str, **extra: object) -> _Outcome:
    return _Outcome("rejected", code, message, **extra)


def _field_reject(code: str, field: str, fcode: str, message: str) -> _Outcome:
    return _reject(code, f"{field}: {message}", fields=[{"field": field, "code": fcode, "message": message}])


def _result(op_id: str, status: str, result: object = None, error: object = None) -> OpResult:
    return {"op_id": op_id, "status": status, "result": result, "error": error}

_REF_KEYS = registry.RECORD_KINDS  # the payload fields that hold a reference
_CHUNK = 900
_MAX_SQL_INT = 2**63 - 1  # SQLite INTEGER and PostgreSQL BIGINT are signed 64-bit numbers
_MOBILE_LIMIT = 200  # a shared phone (a village's, a placeholder) is compared with this many at most
_DEDUPE_KEYS = (*CANDIDATE_KEYS, "age_months", "age_days", "birth_date", "abha_number")

# Which method applies which op kind: each registers in apply/handlers/ (the kinds are domain/registry.py's).
_Handler = Callable[..., "Result"]  # (applier, envelope, its payload model) -> the op's result
_HANDLERS: registry.Handlers[_Handler] = registry.Handlers("central apply (central/apply/handlers/)")


def _chunks(items: list[str]) -> list[list[str]]:
    return [items[i : i + _CHUNK] for i in range(0, len(items), _CHUNK)]


def _local_date(ts: datetime) -> str:
    return ts.astimezone(IST).date().isoformat()


def _loads(text: str | None) -> object:
    return None if text is None else orjson.loads(text)
