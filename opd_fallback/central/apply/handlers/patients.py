"""``patient.register`` (with the dedupe index of the batch) and ``patient.update``."""

from __future__ import annotations

import orjson

from opd_fallback.central.apply.common import (
    _DEDUPE_KEYS,
    _HANDLERS,
    _INSERT_PATIENT,
    _MOBILE_LIMIT,
    _REQUIRED_PATIENT,
    CANDIDATE_KEYS,
    ID_FORMATS,
    PATIENT_COLUMNS,
    PatientRow,
    Result,
    _field_reject,
    _Outcome,
)
from opd_fallback.central.apply.prefetch import Prefetch
from opd_fallback.central.apply.refs import RefChecks
from opd_fallback.domain import identity
from opd_fallback.domain.contract import OpEnvelope
from opd_fallback.domain.payloads import PatientRegister, PatientUpdate


class PatientHandlers(RefChecks, Prefetch):
    @_HANDLERS.register("patient.register")
    def _patient_register(self, env: OpEnvelope, p: PatientRegister) -> Result:
        self._own_ref(env, p.local_ref)
        res = env.resolution
        if res is not None and res.action == "apply":
            raise _field_reject("validation_failed", "resolution.action", "not_allowed",
                                "patient.register takes link or create_new")
        if res is not None and res.action == "link" and not res.uhid:
            raise _field_reject("validation_failed", "resolution.uhid", "required", "is required to link")
        reserved = p.uhid is not None and self._reserved(env, "uhid", p.uhid, "uhid")
        if p.uhid is not None and not reserved:
            raise _field_reject("reserved_id_not_owned", "uhid", "not_issued",
                                f"{p.uhid} is not a central uhid issued to device {env.device_id}")
        self._deps(env)
        if res is not None and res.action == "link":
            linked = res.uhid
            assert linked is not None  # required above
            if self._q("SELECT 1 FROM patient WHERE uhid=?", (linked,)).fetchone() is None:
                raise _field_reject("unknown_reference", "resolution.uhid", "not_found",
                                    f"no patient with uhid {linked}")
            self._map(p.local_ref, "patient", linked, env.op_id)
            # the patient gained a local_ref: counters read it from /patients/changes
            self._w("UPDATE patient SET change_seq=? WHERE uhid=?", (self._next("change"), linked))
            self._b.changed.append(linked)
            return {"uhid": linked, "linked": True}
        rec = p.model_dump(mode="json", include=set(PATIENT_COLUMNS))
        if res is None:
            candidates = self._candidates(rec)
            if candidates:
                raise _Outcome("conflict", "possible_duplicate",
                               f"{len(candidates)} existing patient(s) may be the same person",
                               candidates=candidates)
        if reserved:
            assert p.uhid is not None
            self._use_reserved(p.uhid, env.op_id)
        uhid = p.uhid or ID_FORMATS["uhid"].format(self._next("uhid"))
        change = self._next("change")
        vals = (uhid, *(rec[k] for k in PATIENT_COLUMNS), 1, change, self._now, self._now, env.device_id, env.op_id)
        self._w(_INSERT_PATIENT, vals)
        self._b.categories[uhid] = rec["category"]
        self._b.changed.append(uhid)
        self._index_patient(uhid, rec)
        self._version(uhid, 1, rec, env.op_id)
        self._map(p.local_ref, "patient", uhid, env.op_id)
        return {"uhid": uhid, "linked": False}

    def _candidates(self, rec: PatientRow) -> list[PatientRow]:
        found: dict[str, PatientRow] = {}
        if rec.get("abha_number"):
            for old in self._patients_by("abha_number", rec["abha_number"]):
                found[old["uhid"]] = old
        if rec.get("mobile"):
            for old in self._patients_by("mobile", rec["mobile"])[:_MOBILE_LIMIT]:
                if old["uhid"] not in found and identity.judge(rec, old) is not None:
                    found[old["uhid"]] = old
        return [{k: v[k] for k in CANDIDATE_KEYS} for v in found.values()]

    def _patients_by(self, column: str, value: str) -> list[PatientRow]:
        """Patients whose ``column`` (mobile / abha_number) is ``value``: from the batch's
        index (prefetched, kept up to date by the batch's own writes), else one query."""
        index = self._b.patients_by[column]
        if value not in index:
            self._load_patients(self._b, column, [value])
        return list(index[value].values())

    def _index_patient(self, uhid: str, rec: PatientRow) -> None:
        """A patient written by this batch: what later ops of the batch must find by mobile / ABHA."""
        row = {"uhid": uhid, **{k: rec.get(k) for k in _DEDUPE_KEYS[1:]}}
        for column, index in self._b.patients_by.items():
            for bucket in index.values():
                bucket.pop(uhid, None)
            if rec.get(column) in index:
                index[rec[column]][uhid] = row

    def _version(self, uhid: str, version: int, rec: PatientRow, op_id: str) -> None:
        self._b.new_versions.append((uhid, version, orjson.dumps(rec).decode(), op_id, self._now))

    def patient_record(self, uhid: str, *, for_update: bool = False) -> PatientRow | None:
        cols = ("uhid", *PATIENT_COLUMNS, "version", "updated_at")
        lock = self.conn.for_update if for_update else ""
        row = self._q(f"SELECT {','.join(cols)} FROM patient WHERE uhid=?{lock}", (uhid,)).fetchone()
        return None if row is None else dict(zip(cols, row))

    @_HANDLERS.register("patient.update")
    def _patient_update(self, env: OpEnvelope, p: PatientUpdate) -> Result:
        res = env.resolution
        if res is not None and res.action != "apply":
            raise _field_reject("validation_failed", "resolution.action", "not_allowed",
                                "patient.update takes the resolution apply")
        if res is not None and res.base_version is None:
            raise _field_reject("validation_failed", "resolution.base_version", "required",
                                "is required with the resolution apply")
        for key in _REQUIRED_PATIENT:
            if key in p.changes and p.changes[key] is None:
                raise _field_reject("validation_failed", f"changes.{key}", "required", "cannot be removed")
        self._deps(env)
        uhid = self._ref(p.patient, "patient", "patient")
        current = self.patient_record(uhid, for_update=True)
        assert current is not None
        base = res.base_version if res is not None and res.base_version is not None else p.base_version
        if current["version"] > max(base, 1):
            raise _Outcome("conflict", "stale_update",
                           f"the patient is at version {current['version']} centrally, not {base}",
                           current=current)
        version = current["version"] + 1
        sets = ",".join(f"{k}=?" for k in p.changes)
        self._w(
            f"UPDATE patient SET {sets}{',' if sets else ''} version=?, change_seq=?, updated_at=? WHERE uhid=?",
            (*p.changes.values(), version, self._next("change"), self._now, uhid),
        )
        rec = {k: v for k, v in (self.patient_record(uhid) or {}).items() if k in PATIENT_COLUMNS}
        self._b.categories[uhid] = rec["category"]
        self._b.changed.append(uhid)
        self._index_patient(uhid, rec)
        self._version(uhid, version, rec, env.op_id)
        return {"uhid": uhid, "version": version}

