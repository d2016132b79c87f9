"""Small helpers shared by the central contract tests."""

from __future__ import annotations

from typing import Any

import httpx

from opd_fallback.central.sample_ops import OpFactory


def push(http: httpx.Client, *ops: dict[str, Any]) -> list[dict[str, Any]]:
    """POST ops:batch and return the results, checking the shape the contract promises."""
    r = http.post("/ops:batch", json={"ops": list(ops)})
    assert r.status_code == 200, r.text
    assert "date" in r.headers
    results = r.json()["results"]
    assert [x["op_id"] for x in results] == [o.get("op_id", "") for o in ops]
    return results


def one(http: httpx.Client, op: dict[str, Any]) -> dict[str, Any]:
    return push(http, op)[0]


def patient_ref(op: dict[str, Any]) -> dict[str, str]:
    return {"local_ref": op["payload"]["local_ref"]}


def registered(http: httpx.Client, f: OpFactory, **kw: Any) -> tuple[dict[str, Any], str]:
    """Register a patient; return the op and the uhid central gave."""
    op = f.register(**kw)
    res = one(http, op)
    assert res["status"] == "applied", res
    return op, res["result"]["uhid"]


_mobiles = iter(range(10**6))


def unique_mobile() -> str:
    """Mobiles no other test uses, so duplicate detection never fires by accident."""
    return f"6{next(_mobiles):09d}"


_factories = iter(range(1, 10**6))


def factory(device: str = "C07") -> OpFactory:
    """An op factory whose seq (hence local_refs) and random mobiles no other factory shares."""
    import random

    n = next(_factories)
    return OpFactory(device_id=device, seq=n * 10_000, rng=random.Random(n * 7919))
