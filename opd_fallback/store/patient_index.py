"""Central's patients at this counter (from /patients/changes), for lookup while
offline, and the one row type every patient search returns (:class:`PatientHit`).
The search itself, over these and this counter's and the LAN's patients, is
``store/search.py``.

Central sends each patient's ``local_refs`` (contract 1.1): every offline
number any counter printed for that patient. They are kept in
``patient_index_ref``, so a slip from another counter (``C03-261130-000042``)
finds the patient here while offline."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import text
from sqlmodel import Session

from opd_fallback.domain import rules


@dataclass(frozen=True, slots=True)
class PatientHit:
    """One lookup result. ``uhid`` is None for a local registration not yet synced."""

    uhid: str | None
    local_ref: str | None
    name: str
    sex: str | None
    age_years: int | None
    guardian_name: str | None
    mobile: str | None
    district: str | None
    source: str  # "index" | "local" | "lan" (another counter's, from the LAN hub)
    version: int = 0
    age_months: int | None = None
    age_days: int | None = None
    # how store/search.py found it
    name_local: str | None = None
    device_id: str | None = None  # the counter that registered it (a LAN patient)
    recorded_at: str | None = None
    match: str = ""  # offline_no | uhid | visit_no | order_no | receipt_no | sample_id | mobile | mobile_start | ...
    score: float = 0.0

    @property
    def age_sex(self) -> str:
        """``42/M`` for an age in years; ``8M/F`` or ``1Y 6M/F`` when months or
        days are known (an 8-month-old is not ``?``), as the papers print it."""
        if self.age_years is not None and not self.age_months and not self.age_days:
            return f"{self.age_years}/{self.sex or '?'}"
        return f"{rules.age_label(self.age_years, self.age_months, self.age_days)}/{self.sex or '?'}"


_UPSERT = text(
    "INSERT INTO patient_index(uhid, name, sex, age_years, guardian_name, mobile, district, version, updated_at) "
    "VALUES (:uhid, :name, :sex, :age_years, :guardian_name, :mobile, :district, :version, :updated_at) "
    "ON CONFLICT(uhid) DO UPDATE SET name=excluded.name, sex=excluded.sex, age_years=excluded.age_years, "
    "guardian_name=excluded.guardian_name, mobile=excluded.mobile, district=excluded.district, "
    "version=excluded.version, updated_at=excluded.updated_at "
    "WHERE excluded.version >= patient_index.version"
)


_UPSERT_REF = text(
    "INSERT INTO patient_index_ref(local_ref, uhid) VALUES (:local_ref, :uhid) "
    "ON CONFLICT(local_ref) DO UPDATE SET uhid=excluded.uhid"
)


def _local_refs(p: Mapping[str, object]) -> Iterable[object]:
    refs = p.get("local_refs")
    return refs if isinstance(refs, Iterable) and refs else ()


def upsert_many(session: Session, patients: Iterable[Mapping[str, object]]) -> int:
    """Insert or refresh index rows (a newer version wins) and their offline
    numbers, in the caller's transaction."""
    patients = list(patients)
    rows = [
        {
            "uhid": p["uhid"],
            "name": p.get("name") or "",
            "sex": p.get("sex"),
            "age_years": p.get("age_years"),
            "guardian_name": p.get("guardian_name"),
            "mobile": p.get("mobile"),
            "district": p.get("district"),
            "version": p.get("version") or 1,
            "updated_at": str(p["updated_at"]) if p.get("updated_at") else None,
        }
        for p in patients
    ]
    if rows:
        session.execute(_UPSERT, rows)
    refs = [
        {"local_ref": str(ref).strip().upper(), "uhid": p["uhid"]}
        for p in patients
        for ref in _local_refs(p)
        if ref
    ]
    if refs:
        session.execute(_UPSERT_REF, refs)
    return len(rows)


def uhid_for_local_ref(session: Session, local_ref: str) -> str | None:
    """The uhid central maps an offline number to, as last refreshed (None if unknown)."""
    row = session.execute(
        text("SELECT uhid FROM patient_index_ref WHERE local_ref = :r"), {"r": local_ref.strip().upper()}
    ).first()
    return None if row is None else str(row[0])


def with_mobile(session: Session, source: str, mobile: str, *, limit: int = 50) -> list[PatientHit]:
    """The patients of one source ("local": this counter's, "index": central's,
    "lan": other counters') with this mobile (indexed): the candidates of the
    duplicate check before a registration (application/matching.py)."""
    from opd_fallback.store import search  # the one place the three sources' SQL lives

    src = {s.name: s for s in search.SOURCES}[source]
    rows = session.execute(text(f"{src.select}mobile = :m LIMIT :lim"), {"m": mobile, "lim": limit}).all()
    return [search.row_hit(source, r, "mobile", 100.0) for r in rows]


def count(session: Session) -> int:
    return int(session.execute(text("SELECT count(*) FROM patient_index")).scalar() or 0)
