"""The one patient search of a counter: this counter's registrations
(``patient``), the other counters' of the LAN as the last share pulled them
(``shared_record``) and central's patients (``patient_index``), by every key a
clerk has in hand:

- an offline number (typed, or inside a slip's QR text) or a uhid;
- the number of something made for the patient: a visit or lab order's offline
  number, a receipt number, a tube's sample id (a scanned barcode) - the
  patient it was made for is returned;
- a mobile number, whole (any spelling ``rules.mobile`` accepts) or a part of it:
  its first or its last 4 to 9 digits;
- a name: the start of each word first (FTS5 over the index, fast at millions
  of rows), then, when nothing starts so, names spelt differently ("suneeta"
  finds Sunita) ranked with rapidfuzz among names sharing the first letters; a
  Hindi name as registered (``name_local``) matches too.

The UI's search, the duplicate check before a registration and
``opd-fallback find`` all call :func:`search`: one engine, so what one finds the
others find.

Last digits of a mobile are found through an index on ``substr(mobile, -4)``
(schema 8) on each of the three tables: the last four digits pick a few dozen
rows at a million patients, and a longer tail is checked among those. First
digits are a range on the ordinary mobile index. ``benchmarks/patient_search.py``
measures both at a million patients.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from sqlalchemy import Row, text
from sqlmodel import Session

from opd_fallback.domain import rules
from opd_fallback.store.patient_index import PatientHit

# The same 14 columns from each source; each SELECT ends so that a condition follows.
_COLS = ("uhid, local_ref, name, name_local, sex, age_years, age_months, age_days, guardian_name, mobile, "
         "district, version, device_id, recorded_at")


@dataclass(frozen=True)
class Source:
    name: str  # PatientHit.source: local | lan | index
    select: str  # ends in WHERE (or AND): the caller's condition follows
    uhid: str  # the column holding the patient's uhid
    ref: str  # the condition "this offline number or uhid" (parameter :r)


LOCAL = Source(
    "local",
    "SELECT uhid, local_ref, name, name_local, sex, age_years, age_months, age_days, guardian_name, mobile, "
    "district, version, NULL, created_at FROM patient WHERE ",
    "uhid", "(local_ref = :r OR uhid = :r)")
LAN = Source(
    "lan",
    "SELECT coalesce(central_id, uhid), local_ref, name, json_extract(detail, '$.name_local'), "
    "json_extract(detail, '$.sex'), json_extract(detail, '$.age_years'), json_extract(detail, '$.age_months'), "
    "json_extract(detail, '$.age_days'), json_extract(detail, '$.guardian_name'), mobile, "
    "json_extract(detail, '$.district'), 0, device_id, recorded_at FROM shared_record WHERE +kind = 'patient' AND ",  # + : the planner takes the key's index, not kind's
    # central_id holds the uhid a patient was registered with (store/shared.py)
    "central_id", "(local_ref = :r OR central_id = :r)")
INDEX = Source(
    "index",
    "SELECT uhid, NULL, name, NULL, sex, age_years, NULL, NULL, guardian_name, mobile, district, version, NULL, "
    "updated_at FROM patient_index WHERE ",
    "uhid",
    # contract 1.1: central's index knows every offline number it mapped to a patient
    "(uhid = :r OR uhid IN (SELECT uhid FROM patient_index_ref WHERE local_ref = :r))")
SOURCES = (LOCAL, LAN, INDEX)
_ORDER = {s.name: i for i, s in enumerate(SOURCES)}

# every table with a mobile gets this index (store/migrations.py, schema 8); the
# queries below must spell the expression exactly so for SQLite to use it
TAIL = "substr(mobile, -4)"
# another counter's tube and receipt numbers, indexed (schema 8)
SHARED_SAMPLE = "json_extract(detail, '$.sample_id')"
SHARED_RECEIPT = "json_extract(detail, '$.receipt_no')"
TAIL_INDEXES = {"patient": "ix_patient_mobile_tail", "patient_index": "ix_patient_index_mobile_tail",
                "shared_record": "ix_shared_record_mobile_tail"}

_REF_IN_TEXT = re.compile(r"[A-Z0-9]{1,16}-\d{6}-\d{6,}")
_ID_LIKE = re.compile(r"^[A-Z0-9][A-Z0-9\-/]{3,63}$")
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


def _fts_query(words: list[str]) -> str:
    return " ".join('"' + w.replace('"', "") + '"*' for w in words)


# one row of a source's SELECT: uhid, local_ref, name, name_local, sex, age_years,
# age_months, age_days, guardian_name, mobile, district, version, device_id, recorded_at
# (the LAN's ages come out of JSON, so they may be text)
HitRow = Row[str | None, str | None, str | None, str | None, str | None, int | str | None, int | str | None,
             int | str | None, str | None, str | None, str | None, int | None, str | None, str | None]
SqlParam = str | int


def row_hit(source: str, r: HitRow, match: str, score: float) -> PatientHit:
    """A hit from one row of a source's SELECT."""
    return PatientHit(
        r[0], r[1], r[2] or "", r[4], None if r[5] is None else int(r[5]), r[8], r[9], r[10], source,
        int(r[11] or 0), None if r[6] is None else int(r[6]), None if r[7] is None else int(r[7]),
        name_local=r[3], device_id=r[12], recorded_at=r[13], match=match, score=score)


class _Search:
    def __init__(self, session: Session, limit: int) -> None:
        self.s = session
        self.limit = limit
        self.hits: list[PatientHit] = []

    def rows(self, src: Source, cond: str, **params: SqlParam) -> list[HitRow]:
        return list(self.s.execute(text(f"{src.select}{cond} LIMIT :lim"), {**params, "lim": self.limit}).all())

    def add(self, src: Source, cond: str, match: str, score: float = 100.0, **params: SqlParam) -> int:
        found = self.rows(src, cond, **params)
        self.hits += [row_hit(src.name, r, match, score) for r in found]
        return len(found)

    # --------------------------------------------------------------- keys
    def by_ref(self, ref: str) -> int:
        n = 0
        for src in SOURCES:
            for r in self.rows(src, src.ref, r=ref):
                self.hits.append(row_hit(src.name, r, "uhid" if r[0] == ref else "offline_no", 100.0))
                n += 1
        return n

    def by_record(self, key: str) -> int:
        """The patient of a visit, lab order, receipt or tube numbered ``key``."""
        s = self.s
        found: tuple[str, str] | None = None
        for match, sql in (
                ("visit_no", "SELECT coalesce(patient_uhid, patient_local_ref) FROM visit WHERE local_ref = :k"),
                ("order_no", "SELECT coalesce(patient_uhid, patient_local_ref) FROM lab_order WHERE local_ref = :k"),
                ("sample_id", "SELECT coalesce(patient_uhid, patient_local_ref) FROM lab_order WHERE sample_id = :k"),
                ("receipt_no", "SELECT coalesce(patient_uhid, patient_local_ref) FROM payment "
                               "WHERE receipt_no = :k OR local_ref = :k"),
                # another counter's (each term has its index; schema 8 for the sample id and the receipt)
                ("record", "SELECT patient_ref, CASE WHEN local_ref = :k OR central_id = :k THEN kind "
                           f"WHEN {SHARED_SAMPLE} = :k THEN 'sample' ELSE 'payment' END FROM shared_record "
                           f"WHERE (local_ref = :k OR central_id = :k OR {SHARED_SAMPLE} = :k OR {SHARED_RECEIPT} = :k) "
                           "AND +kind IN ('visit', 'lab_order', 'payment')"),
        ):
            row = s.execute(text(sql + " LIMIT 1"), {"k": key}).first()
            if row is not None and row[0]:
                found = (str(row[0]), match if match != "record" else _RECORD_MATCH[str(row[1])])
                break
        if found is None and "-" in key:
            # the second and later tubes of an order: their ids are in its op's samples
            quoted = f'%"{key}"%'
            row = s.execute(text(
                "SELECT coalesce(l.patient_uhid, l.patient_local_ref) FROM op JOIN lab_order l ON l.op_id = op.op_id "
                "WHERE op.kind = 'lab.order' AND op.payload LIKE :q LIMIT 1"), {"q": quoted}).first()
            if row is None:
                row = s.execute(text("SELECT patient_ref FROM shared_record WHERE kind = 'lab_order' "
                                     "AND detail LIKE :q LIMIT 1"), {"q": quoted}).first()
            if row is not None and row[0]:
                found = (str(row[0]), "sample_id")
        if found is None:
            return 0
        patient, match = found
        before = len(self.hits)
        n = self.by_ref(patient)
        self.hits[before:] = [replace(h, match=match) for h in self.hits[before:]]
        return n

    def by_mobile(self, mobile: str) -> int:
        return sum(self.add(src, "mobile = :m", "mobile", m=mobile) for src in SOURCES)

    def by_mobile_part(self, digits: str) -> int:
        """First digits (a range on the mobile index) or last digits (the tail index)."""
        hi = digits[:-1] + chr(ord(digits[-1]) + 1)
        n = 0
        for src in SOURCES:
            n += self.add(src, "mobile >= :lo AND mobile < :hi", "mobile_start", 90.0, lo=digits, hi=hi)
            n += self.add(src, f"{TAIL} = :t AND mobile LIKE :s", "mobile_end", 90.0, t=digits[-4:],
                          s="%" + digits)
        return n

    def by_name(self, q: str, words: list[str], fuzzy: bool) -> int:
        like = q.lower() + "%"
        n = 0
        for src in (LOCAL, LAN):
            local = "name_local" if src is LOCAL else "json_extract(detail, '$.name_local')"
            for r in self.rows(src, f"(lower(name) LIKE :p OR {local} LIKE :p) ORDER BY id DESC", p=like):
                self.hits.append(row_hit(src.name, r, "name", max(name_score(q, r[2] or ""), 95.0)))
                n += 1
        for r in self.rows(INDEX, "id IN (SELECT rowid FROM patient_index_fts WHERE patient_index_fts MATCH :q "
                                  "LIMIT :lim)", q=_fts_query(words)):
            self.hits.append(row_hit(INDEX.name, r, "name", max(name_score(q, r[2] or ""), 95.0)))
            n += 1
        if fuzzy and not n and len(q) >= 3 and not any(c.isdigit() for c in q):  # a misspelling?
            n += self.fuzzy(q, words)
        return n

    def fuzzy(self, q: str, words: list[str]) -> int:
        """Names spelt differently: candidates share the first two letters of a typed word."""
        pool: list[tuple[str, HitRow]] = []
        heads = sorted({w[:2].lower() for w in words if len(w) >= 2})
        for head in heads:
            for src in (LOCAL, LAN):
                pool += [(src.name, r) for r in self.s.execute(text(
                    f"{src.select}(lower(name) LIKE :p OR lower(name) LIKE :w) ORDER BY id DESC LIMIT :l"),
                    {"p": head + "%", "w": "% " + head + "%", "l": _FUZZY_POOL}).all()]
            pool += [(INDEX.name, r) for r in self.s.execute(text(
                f"{INDEX.select}id IN (SELECT rowid FROM patient_index_fts WHERE patient_index_fts MATCH :q "
                "LIMIT :l)"), {"q": _fts_query([head]), "l": _FUZZY_POOL}).all()]
        scored = []
        for i, (name, r) in enumerate(pool):
            score = name_score(q, r[2] or "")
            if score >= FUZZY_MIN_SCORE:
                scored.append((-score, i, name, r))
        scored.sort(key=lambda s: (s[0], s[1]))
        for neg, _i, name, r in scored[: self.limit * 2]:
            self.hits.append(row_hit(name, r, "name", round(-neg, 1)))
        return len(scored)

    # ------------------------------------------------------------ answer
    def best(self) -> list[PatientHit]:
        """Best first (this counter, then the LAN, then central for equal scores), each patient once."""
        ranked = sorted(enumerate(self.hits), key=lambda ih: (-ih[1].score, _ORDER[ih[1].source], ih[0]))
        seen: set[tuple[str, str]] = set()
        out: list[PatientHit] = []
        for _, h in ranked:
            keys = {("ref", h.local_ref)} if h.local_ref else set()
            if h.uhid:
                keys.add(("uhid", h.uhid))
            if not keys or keys & seen:
                continue
            seen |= keys
            out.append(h)
            if len(out) >= self.limit:
                break
        return out


_RECORD_MATCH = {"visit": "visit_no", "lab_order": "order_no", "payment": "receipt_no", "sample": "sample_id",
                 "patient": "offline_no"}


def mobile_part(query: str) -> str | None:
    """The digits of ``query`` if it is a part of a mobile (4 to 9 digits; spaces, dashes allowed)."""
    digits = re.sub(r"[\s\-]", "", query)
    return digits if digits.isdigit() and 4 <= len(digits) < 10 else None


def search(session: Session, query: str, *, limit: int = 20, fuzzy: bool = True) -> list[PatientHit]:
    """Patients matching ``query`` (see the module's words), best first, each once.
    ``fuzzy=False`` leaves out misspelt names (the duplicate check wants likely ones only)."""
    q = rules.clean_text(query or "")
    if not q:
        return []
    run = _Search(session, limit)
    up = q.upper()
    refs = _REF_IN_TEXT.findall(up)
    keys = refs or ([up] if _ID_LIKE.match(up) else [])
    for key in keys:
        if not run.by_ref(key) and any(c.isdigit() for c in key):
            run.by_record(key)
    digits = re.sub(r"[\s\-+()]", "", q)
    if digits.isdigit() and len(digits) >= 10:
        try:
            m = rules.mobile(digits)
        except ValueError:
            m = None
        if m:
            run.by_mobile(m)
    elif (part := mobile_part(q)) is not None:
        run.by_mobile_part(part)
    words = [w for w in re.split(r"[^\w]+", q) if w]
    if words and not digits.isdigit() and not refs and not run.hits:
        run.by_name(q, words, fuzzy)
    return run.best()


__all__ = ["INDEX", "LAN", "LOCAL", "SOURCES", "TAIL", "TAIL_INDEXES", "Source", "mobile_part", "name_score",
           "search"]
