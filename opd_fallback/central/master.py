"""Master data served to counters and used to check ops (departments, tests, fees).

Loaded once from a JSON or TOML file and validated with the contract's
``MasterData`` model; the serialized body and its ETag are computed once so a
counter polling for changes costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import orjson

from opd_fallback.central.jsontypes import JSONObject
from opd_fallback.domain.contract import MasterData

DEMO_FILE = "demo_master_data.json"


def _read(path: Path | None) -> JSONObject:  # as the file has it: MasterData checks it
    if path is None:
        text = resources.files("opd_fallback.central").joinpath(DEMO_FILE).read_text("utf-8")
        data: JSONObject = json.loads(text)
        return data
    raw = Path(path).read_bytes()
    if Path(path).suffix.lower() == ".toml":
        return tomllib.loads(raw.decode("utf-8"))
    loaded: JSONObject = json.loads(raw)
    return loaded


@dataclass(slots=True)
class MasterIndex:
    """The master data plus the lookups the apply path needs, built once."""

    data: MasterData
    body: bytes
    etag: str
    units: dict[str, set[str]] = field(default_factory=dict)  # department -> unit codes
    tests: dict[str, int] = field(default_factory=dict)  # code -> price_paise
    fees: dict[str, int] = field(default_factory=dict)
    exempt: dict[str, set[str]] = field(default_factory=dict)  # category -> fee codes

    def price(self, code: str) -> int | None:
        if code in self.fees:
            return self.fees[code]
        return self.tests.get(code)


def load_master(path: Path | str | None = None) -> MasterIndex:
    """Read and check a master data file (the shipped demo file when ``path`` is None)."""
    raw = _read(Path(path) if path is not None else None)
    if "version" not in raw:
        raw["version"] = hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()[:12]
    data = MasterData.model_validate(raw)
    body = orjson.dumps(data.model_dump(mode="json", exclude_none=True))
    etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
    idx = MasterIndex(data=data, body=body, etag=etag)
    for d in data.departments:
        idx.units[d.code.upper()] = {u.code.upper() for u in d.units}
    for t in data.tests:
        idx.tests[t.code.upper()] = t.price_paise
    for f in data.fees:
        idx.fees[f.code.upper()] = f.price_paise
    for e in data.exemptions or []:
        idx.exempt.setdefault(e.category, set()).update(c.upper() for c in e.fee_codes)
    return idx


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison over a comma-separated If-None-Match list."""
    if not if_none_match:
        return False
    for tag in if_none_match.split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False
