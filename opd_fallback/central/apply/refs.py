"""Checks shared by the handlers: dependencies, references (local_ref /
central_id), the device's own local_refs and reserved block ids. Each raises
``_Outcome`` before the op's first write."""

from __future__ import annotations

from opd_fallback.central.apply.base import ApplierBase
from opd_fallback.central.apply.common import _REF_TABLES, ID_PATTERNS, _field_reject, _Outcome
from opd_fallback.domain.contract import OpEnvelope
from opd_fallback.domain.payloads import Ref


class RefChecks(ApplierBase):
    def _deps(self, env: OpEnvelope) -> None:
        outcomes = self._b.outcomes
        for dep in env.depends_on:
            row = outcomes.get(dep)
            if row is None or row[3] != "applied":
                raise _Outcome("deferred", "dependency_missing", f"op {dep} is not applied yet", op_id=dep,
                               waiting_for={"op_id": dep})

    def _known(self, local_ref: str) -> tuple[str, str, str] | None:
        refs = self._b.refs
        if local_ref in refs:
            return refs[local_ref]
        row = self._q(
            "SELECT kind, central_id, op_id FROM ref_map WHERE local_ref=?", (local_ref,)
        ).fetchone()
        refs[local_ref] = known = None if row is None else (row[0], row[1], row[2])
        return known

    def _own_ref(self, env: OpEnvelope, local_ref: str) -> None:
        if not local_ref.startswith(env.device_id + "-"):
            raise _field_reject("validation_failed", "local_ref", "not_own_device",
                                f"must begin with this device's id ({env.device_id}-)")
        known = self._known(local_ref)
        if known is not None:
            raise _field_reject("validation_failed", "local_ref", "already_used",
                                f"{local_ref} already names a record made by op {known[2]}")

    def _ref(self, ref: Ref, kind: str, field: str, *, missing: str = "unknown_reference") -> str:
        if ref.central_id is not None:
            table, col = _REF_TABLES[kind]
            if self._q(f"SELECT 1 FROM {table} WHERE {col}=?", (ref.central_id,)).fetchone() is None:
                raise _field_reject(missing, field, "not_found", f"no {kind} with central id {ref.central_id}")
            return ref.central_id
        assert ref.local_ref is not None
        known = self._known(ref.local_ref)
        if known is None:
            raise _Outcome("deferred", "reference_pending",
                           f"{field}: {ref.local_ref} is not known here yet", local_ref=ref.local_ref,
                           waiting_for={"local_ref": ref.local_ref})
        if known[0] != kind:
            raise _field_reject(missing, field, "wrong_kind", f"{ref.local_ref} is a {known[0]}, not a {kind}")
        return known[1]

    def _map(self, local_ref: str, kind: str, central_id: str, op_id: str) -> None:
        self._wrote = True
        self._b.refs[local_ref] = (kind, central_id, op_id)
        self._b.new_refs.append((local_ref, kind, central_id, op_id))

    def _reserved(self, env: OpEnvelope, kind: str, value: str, field: str) -> bool:
        """True if ``value`` is a central block id (then it must be this device's, unused).
        The caller marks it used with ``_use_reserved`` once every check has passed."""
        if not ID_PATTERNS[kind].match(value):
            return False
        row = self._q(
            f"SELECT device_id, used_by_op FROM issued_id WHERE id=? AND kind=?{self.conn.for_update}",
            (value, kind),
        ).fetchone()
        if row is None or row[0] != env.device_id:
            raise _field_reject("reserved_id_not_owned", field, "not_owned",
                                f"{value} was not issued to device {env.device_id}")
        if row[1] is not None and row[1] != env.op_id:
            raise _field_reject("reserved_id_not_owned", field, "already_used",
                                f"{value} was already used by op {row[1]}")
        return True

    def _use_reserved(self, value: str, op_id: str) -> None:
        self._w("UPDATE issued_id SET used_by_op=? WHERE id=?", (op_id, value))

    def _no_resolution(self, env: OpEnvelope) -> None:
        if env.resolution is not None:
            raise _field_reject("validation_failed", "resolution", "not_allowed",
                                f"a {env.kind} op takes no resolution")

