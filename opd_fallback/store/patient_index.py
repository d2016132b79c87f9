"""Offline patient lookup: central's patients (from /patients/changes) plus this
counter's own registrations, searchable by uhid, offline number, mobile (whole,
or its first or last digits) and name: prefix first (FTS5, fast at millions of
rows), then spelled-differently names ("suneeta" finds Sunita) ranked with
rapidfuzz among the names that share the first letters.

Central sends each patient's ``local_refs`` (contract 1.1): every offline
number any counter printed for that patient. They are kept in
``patient_index_ref``, so a slip from another counter (``C03-261130-000042``)
finds the patient here while offline."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

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


def upsert_many(session: Session, patients: Iterable[dict[str, Any]]) -> int:
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
        for ref in (p.get("local_refs") or ())
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


_COLS_INDEX = "uhid, NULL, name, sex, age_years, guardian_name, mobile, district, 'index', version, NULL, NULL"
_COLS_LOCAL = ("uhid, local_ref, name, sex, age_years, guardian_name, mobile, district, 'local', version, "
               "age_months, age_days")
# another counter's patient pulled from the LAN hub (store/shared.py)
_LAN = ("SELECT central_id, local_ref, name, json_extract(detail, '$.sex'), json_extract(detail, '$.age_years'), "
        "json_extract(detail, '$.guardian_name'), mobile, json_extract(detail, '$.district'), 'lan', 0, "
        "json_extract(detail, '$.age_months'), json_extract(detail, '$.age_days') "
        "FROM shared_record WHERE kind = 'patient' AND ")
# for the duplicate check before a registration (application/matching.py): each selects the same
# twelve columns and ends in WHERE, for the caller's condition
LOCAL_PATIENTS = f"SELECT {_COLS_LOCAL} FROM patient WHERE "
INDEX_PATIENTS = f"SELECT {_COLS_INDEX} FROM patient_index WHERE "
LAN_PATIENTS = _LAN
_PATIENTS_OF = {"local": LOCAL_PATIENTS, "index": INDEX_PATIENTS, "lan": LAN_PATIENTS}


def with_mobile(session: Session, source: str, mobile: str, *, limit: int = 50) -> list[PatientHit]:
    """The patients of one source ("local": this counter's, "index": central's,
    "lan": other counters') with this mobile (indexed): the candidates of the
    duplicate check before a registration (application/matching.py)."""
    rows = session.execute(text(f"{_PATIENTS_OF[source]} mobile = :m LIMIT :lim"), {"m": mobile, "lim": limit}).all()
    return [PatientHit(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], source, int(r[9] or 0), r[10], r[11])
            for r in rows]


def _fts_query(words: list[str]) -> str:
    return " ".join('"' + w.replace('"', "") + '"*' for w in words)


FUZZY_MIN_SCORE = 70  # out of 100: a misspelt name ("suneeta" / "Sunita" scores 77)
_FUZZY_POOL = 3000  # names sharing the first letters, ranked by similarity


def name_score(query: str, name: str) -> float:
    """How alike a typed name is to a patient's: each typed word against its
    best-matching word of the name (rapidfuzz), averaged; 0-100."""
    from rapidfuzz import fuzz, utils  # only when a name is compared (status and sync never do)

    q_words = [w for w in utils.default_process(query).split() if w]
    n_words = [w for w in utils.default_process(name).split() if w]
    if not q_words or not n_words:
        return 0.0
    return sum(max(fuzz.ratio(q, n) for n in n_words) for q in q_words) / len(q_words)


def _fuzzy_rows(session: Session, q: str, words: list[str], limit: int) -> list[Any]:
    """Names spelt differently: candidates share the first two letters of a typed word."""
    pool: list[Any] = []
    heads = sorted({w[:2].lower() for w in words if len(w) >= 2})
    for head in heads:
        pool += session.execute(
            text(f"SELECT {_COLS_LOCAL} FROM patient WHERE lower(name) LIKE :p OR lower(name) LIKE :w "
                 "ORDER BY id DESC LIMIT :l"),
            {"p": head + "%", "w": "% " + head + "%", "l": _FUZZY_POOL},
        ).all()
        pool += session.execute(
            text(f"SELECT {_COLS_INDEX} FROM patient_index WHERE id IN "
                 "(SELECT rowid FROM patient_index_fts WHERE patient_index_fts MATCH :q LIMIT :l)"),
            {"q": _fts_query([head]), "l": _FUZZY_POOL},
        ).all()
    scored = [(name_score(q, r[2]), i, r) for i, r in enumerate(pool)]
    scored = [s for s in scored if s[0] >= FUZZY_MIN_SCORE]
    scored.sort(key=lambda s: (-s[0], s[1]))
    return [r for _, _, r in scored[: limit * 2]]


def _mobile_part_rows(session: Session, digits: str, limit: int) -> list[Any]:
    """A part of a mobile number: its first digits (an index range) or its last digits."""
    rows: list[Any] = []
    hi = digits[:-1] + chr(ord(digits[-1]) + 1)
    for table, cols in (("patient", _COLS_LOCAL), ("patient_index", _COLS_INDEX)):
        rows += session.execute(
            text(f"SELECT {cols} FROM {table} WHERE mobile >= :lo AND mobile < :hi LIMIT :l"),
            {"lo": digits, "hi": hi, "l": limit},
        ).all()
        rows += session.execute(
            text(f"SELECT {cols} FROM {table} WHERE mobile LIKE :s LIMIT :l"), {"s": "%" + digits, "l": limit},
        ).all()
    return rows


def search(session: Session, query: str, *, limit: int = 20, fuzzy: bool = True) -> list[PatientHit]:
    """Patients matching ``query``: an exact uhid or offline number, a mobile
    number, or the start of each word of a name. Local registrations first."""
    q = rules.clean_text(query or "")
    if not q:
        return []
    rows: list[Any] = []
    digits = re.sub(r"[\s\-+]", "", q)
    if digits.isdigit() and len(digits) >= 10:
        try:
            m = rules.mobile(digits)
        except ValueError:
            m = None
        if m:
            rows += session.execute(
                text(f"SELECT {_COLS_LOCAL} FROM patient WHERE mobile = :m LIMIT :l"), {"m": m, "l": limit}
            ).all()
            rows += session.execute(text(f"{_LAN} mobile = :m LIMIT :l"), {"m": m, "l": limit}).all()
            rows += session.execute(
                text(f"SELECT {_COLS_INDEX} FROM patient_index WHERE mobile = :m LIMIT :l"),
                {"m": m, "l": limit},
            ).all()
    elif digits.isdigit() and 4 <= len(digits) < 10:
        rows += _mobile_part_rows(session, digits, limit)
    upper = q.upper()
    rows += session.execute(
        text(f"SELECT {_COLS_LOCAL} FROM patient WHERE local_ref = :r OR uhid = :r LIMIT :l"),
        {"r": upper, "l": limit},
    ).all()
    rows += session.execute(
        text(f"{_LAN} (local_ref = :r OR central_id = :r) LIMIT :l"), {"r": upper, "l": limit}
    ).all()
    rows += session.execute(
        text(f"SELECT {_COLS_INDEX} FROM patient_index WHERE uhid = :r OR uhid IN "
             "(SELECT uhid FROM patient_index_ref WHERE local_ref = :r) LIMIT :l"), {"r": upper, "l": limit}
    ).all()
    words = [w for w in re.split(r"[^\w]+", q) if w]
    if words and not digits.isdigit():
        like = q.lower() + "%"
        rows += session.execute(
            text(
                f"SELECT {_COLS_LOCAL} FROM patient WHERE lower(name) LIKE :p OR name_local LIKE :p "
                "ORDER BY id DESC LIMIT :l"
            ),
            {"p": like, "l": limit},
        ).all()
        rows += session.execute(
            text(f"{_LAN} (lower(name) LIKE :p OR json_extract(detail, '$.name_local') LIKE :p) "
                 "ORDER BY id DESC LIMIT :l"), {"p": like, "l": limit},
        ).all()
        rows += session.execute(
            text(
                f"SELECT {_COLS_INDEX} FROM patient_index WHERE id IN "
                "(SELECT rowid FROM patient_index_fts WHERE patient_index_fts MATCH :q LIMIT :l)"
            ),
            {"q": _fts_query(words), "l": limit},
        ).all()
        if fuzzy and not rows and len(q) >= 3 and not any(c.isdigit() for c in q):  # nothing by prefix: a misspelling?
            rows += _fuzzy_rows(session, q, words, limit)
    seen: set[tuple[str | None, str | None]] = set()
    hits: list[PatientHit] = []
    for r in rows:
        key = (r[0], r[1])
        if key in seen or (r[0] and (r[0], None) in seen):
            continue
        seen.add(key)
        if r[0]:
            seen.add((r[0], None))
        hits.append(PatientHit(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], int(r[9] or 0), r[10], r[11]))
        if len(hits) >= limit:
            break
    return hits


def count(session: Session) -> int:
    return int(session.execute(text("SELECT count(*) FROM patient_index")).scalar() or 0)
