"""Prefetching a batch: one query each for the remembered outcomes, the
local_refs and the patients sharing a mobile / ABHA number with a new one."""

from __future__ import annotations

from collections.abc import Sequence

from opd_fallback.central.apply.base import ApplierBase
from opd_fallback.central.apply.common import _DEDUPE_KEYS, _REF_KEYS, _chunks
from opd_fallback.central.apply.state import _BatchState


class Prefetch(ApplierBase):
    def _prefetch(self, ops: Sequence[object]) -> _BatchState:
        """One query each for the remembered outcomes and the local_refs this batch mentions."""
        b = _BatchState()
        op_ids: set[str] = set()
        refs: set[str] = set()
        dedupe_keys: dict[str, list[str]] = {"mobile": [], "abha_number": []}
        for raw in ops:
            if not isinstance(raw, dict):
                continue
            if isinstance(raw.get("op_id"), str):
                op_ids.add(raw["op_id"])
            deps = raw.get("depends_on")
            if isinstance(deps, list):
                op_ids.update(d for d in deps if isinstance(d, str))
            payload = raw.get("payload")
            if isinstance(payload, dict):
                if raw.get("kind") == "patient.register":
                    for column, values in dedupe_keys.items():
                        if isinstance(payload.get(column), str):
                            values.append(payload[column])
                if isinstance(payload.get("local_ref"), str):
                    refs.add(payload["local_ref"])
                for key in _REF_KEYS:
                    ref = payload.get(key)
                    if isinstance(ref, dict) and isinstance(ref.get("local_ref"), str):
                        refs.add(ref["local_ref"])
        for chunk in _chunks(sorted(op_ids)):
            for row in self._q(
                "SELECT op_id, kind, device_id, payload_hash, status, result, error FROM op_outcome "
                f"WHERE op_id IN ({','.join('?' * len(chunk))})", chunk,
            ):
                b.outcomes[row[0]] = row[1:]
        b.refs = dict.fromkeys(refs)
        for column, values in dedupe_keys.items():
            self._load_patients(b, column, values)
        for chunk in _chunks(sorted(refs)):
            for row in self._q(
                f"SELECT local_ref, kind, central_id, op_id FROM ref_map WHERE local_ref IN ({','.join('?' * len(chunk))})",
                chunk,
            ):
                b.refs[row[0]] = (row[1], row[2], row[3])
        return b

    def _load_patients(self, b: _BatchState, column: str, values: list[str]) -> None:
        index = b.patients_by[column]
        for chunk in _chunks(sorted(set(values))):
            for v in chunk:
                index[v] = {}
            for row in self._q(
                f"SELECT {','.join(_DEDUPE_KEYS)} FROM patient WHERE {column} IN ({','.join('?' * len(chunk))})",
                chunk,
            ).fetchall():
                old = dict(zip(_DEDUPE_KEYS, row))
                index[old[column]][old["uhid"]] = old

