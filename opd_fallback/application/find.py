"""Find anyone, anywhere: one query over this counter's patients, the LAN's
(other counters' patients pulled from the hub) and central's patient index.

A query is an offline number (typed, or scanned from the slip's QR code), a
uhid, a mobile number, or a name: names match fuzzily (rapidfuzz) in Latin or
local script, so "Sita Devi", "sita devee" and "सीता देवी" all find the patient.
Every hit says where it came from: this counter, another counter and when
("C03 at 09:14"), or central. Nothing here touches the network: the LAN's
records are those the last share pulled.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from rapidfuzz import fuzz
from sqlalchemy import text

from opd_fallback.domain import rules
from opd_fallback.store.engine import Store

_REF_IN_TEXT = re.compile(r"[A-Z0-9]{1,16}-\d{6}-\d{6,}")
NAME_SCORE_MIN = 75.0
CANDIDATES = 5000  # name candidates read per source before scoring


@dataclass(frozen=True)
class Hit:
    source: str  # this_counter | lan | central
    where: str  # "this counter" | "C03 at 09:14" | "central"
    name: str
    local_ref: str | None
    uhid: str | None
    sex: str | None
    age_years: int | None
    mobile: str | None
    device_id: str | None
    recorded_at: str | None
    match: str  # offline_no | uhid | mobile | name
    score: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _hhmm(at: str | None) -> str:
    return at[11:16] if at and len(at) >= 16 else "?"


_OWN = ("SELECT local_ref, uhid, name, name_local, sex, age_years, mobile, NULL, created_at FROM patient")
_LAN = ("SELECT local_ref, central_id, name, json_extract(detail, '$.name_local'), json_extract(detail, '$.sex'), "
        "json_extract(detail, '$.age_years'), mobile, device_id, recorded_at FROM shared_record "
        "WHERE kind='patient'")
_IDX = "SELECT NULL, uhid, name, NULL, sex, age_years, mobile, NULL, updated_at FROM patient_index"


def _hit(source: str, row: Any, match: str, score: float) -> Hit:
    local_ref, uhid, name, _name_local, sex, age, mobile, device, at = row
    where = {"this_counter": "this counter", "central": "central"}.get(source) or f"{device} at {_hhmm(at)}"
    return Hit(source, where, name or "", local_ref, uhid, sex, None if age is None else int(age), mobile,
               device, at, match, score)


def find(store: Store, query: str, *, limit: int = 20) -> list[Hit]:
    q = rules.clean_text(query or "")
    if not q:
        return []
    hits: list[Hit] = []
    up = q.upper()
    sources = (("this_counter", _OWN, "WHERE"), ("lan", _LAN, "AND"), ("central", _IDX, "WHERE"))
    with store.read() as s:
        def rows(sql: str, glue: str, cond: str, **params: Any) -> list[Any]:
            return list(s.execute(text(f"{sql} {glue} {cond} LIMIT :lim"), {**params, "lim": CANDIDATES}).all())

        refs = _REF_IN_TEXT.findall(up)
        for ref in refs or [up]:
            for source, sql, glue in sources:
                cond = {"this_counter": "(local_ref = :r OR uhid = :r)",
                        "lan": "(local_ref = :r OR central_id = :r)",
                        # contract 1.1: central's index knows every offline number mapped to a patient
                        "central": "(uhid = :r OR uhid IN (SELECT uhid FROM patient_index_ref WHERE local_ref = :r))",
                        }[source]
                for row in rows(sql, glue, cond, r=ref):
                    hits.append(_hit(source, row, "uhid" if row[1] == ref else "offline_no", 100.0))
        digits = re.sub(r"[\s\-+]", "", q)
        mobile = None
        if digits.isdigit() and len(digits) >= 10:
            try:
                mobile = rules.mobile(digits)
            except ValueError:
                mobile = None
        if mobile:
            for source, sql, glue in sources:
                for row in rows(sql, glue, "mobile = :m", m=mobile):
                    hits.append(_hit(source, row, "mobile", 100.0))
        words = [w for w in re.split(r"[\s,.;:/()\[\]\"']+", q.lower()) if w]
        if words and not digits.isdigit() and not refs:
            needle = " ".join(words)
            for source, sql, glue in sources:
                if source == "central":
                    # central's index may be large: let FTS pick candidates by each word's first letters
                    fts = " OR ".join('"' + w[:3].replace('"', "") + '"*' for w in words)
                    cands = rows(sql, glue, "id IN (SELECT rowid FROM patient_index_fts WHERE "
                                 "patient_index_fts MATCH :f)", f=fts)
                else:
                    cands = rows(sql, glue, "1=1 ORDER BY 9 DESC")
                for row in cands:
                    score = max(fuzz.WRatio(needle, (row[2] or "").lower()),
                                fuzz.WRatio(needle, (row[3] or "").lower()) if row[3] else 0.0)
                    if score >= NAME_SCORE_MIN:
                        hits.append(_hit(source, row, "name", round(float(score), 1)))
    order = {"this_counter": 0, "lan": 1, "central": 2}
    hits.sort(key=lambda h: (-h.score, order[h.source]))
    seen: set[tuple[str, str | None]] = set()
    out: list[Hit] = []
    for h in hits:
        keys = {("ref", h.local_ref)} if h.local_ref else set()
        if h.uhid:
            keys.add(("uhid", h.uhid))
        if keys & seen:
            continue
        seen |= keys
        out.append(h)
        if len(out) >= limit:
            break
    return out
