"""The RFC 8785 fast path (domain/canonical.py) gives exactly the library's bytes
and errors: on every op kind's payload (valid ones, and each field of the kind's
payload model given odd values), on whole envelopes' idempotency input, and on
arbitrary JSON values (floats, -0.0, big integers, non-ASCII and astral keys,
control characters, lone surrogates). And it is the path a day of OPD takes."""

from __future__ import annotations

from typing import Any

import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opd_fallback.central.sample_ops import OpFactory
from opd_fallback.domain import canonical, registry
from opd_fallback.domain import payloads as P
from opd_fallback.domain.contract import canonical_op, drop_nulls


def _outcome(fn: Any, value: Any) -> tuple[str, bytes | str]:
    try:
        return "ok", fn(value)
    except Exception as exc:  # the same error type, or the same bytes
        return "error", type(exc).__name__


def assert_same(value: Any) -> None:
    assert _outcome(canonical.dumps, value) == _outcome(rfc8785.dumps, value)


def _base_payloads() -> dict[str, list[dict[str, Any]]]:
    """Real payloads of every op kind, as the counter sends them."""
    f = OpFactory(device_id="C07")
    ops = f.day_of_opd(12, lab_share=1.0)
    reg = next(o for o in ops if o["kind"] == "patient.register")
    pay = next(o for o in ops if o["kind"] == "payment.record")
    lab = next(o for o in ops if o["kind"] == "lab.order")
    patient = {"local_ref": reg["payload"]["local_ref"]}
    ops += [f.void({"local_ref": pay["payload"]["local_ref"]}),
            f.update(patient, {"mobile": "9876543210", "name_local": None, "address_line": "गाँव सराय"}),
            f.collect((lab["payload"].get("samples") or [{"sample_id": "KS000000001"}])[0]["sample_id"]),
            f.collect("KS000000002", status="rejected", reason="haemolysed")]
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for op in ops:
        by_kind.setdefault(op["kind"], []).append(op["payload"])
    return by_kind


BASES = _base_payloads()

TEXT = st.text(st.characters(codec=None, categories=None), max_size=12)  # surrogates and controls too
INTS = (st.integers() | st.sampled_from([2**53 - 1, 2**53, -(2**53) + 1, -(2**53), 2**63, 0, -1])
        | st.integers(min_value=-(2**54), max_value=2**54))
FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([-0.0, 0.0, 1.0, 1e21, 1e-7, 5e-324])
KEYS = st.text(max_size=6) | st.sampled_from(["a", "\ue000", "\U0001f600", "é", "Z", "\u0000", ""])
SCALARS = st.none() | st.booleans() | INTS | FLOATS | TEXT
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=12,
)


def test_every_kind_has_base_payloads() -> None:
    assert set(BASES) == set(registry.NAMES)


@pytest.mark.parametrize("kind", registry.NAMES)
def test_real_payloads_are_the_library_s_bytes_on_the_fast_path(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A day of OPD never reaches the library (fails where the fast path is missing)."""
    expected = {i: rfc8785.dumps(drop_nulls(p)) for i, p in enumerate(BASES[kind])}
    calls: list[object] = []
    real = rfc8785.dumps

    def counting(v: Any) -> bytes:
        calls.append(v)
        return real(v)

    monkeypatch.setattr(rfc8785, "dumps", counting)
    for i, p in enumerate(BASES[kind]):
        assert canonical.dumps(drop_nulls(p)) == expected[i]
        P.validate_payload(kind, p)  # they are valid payloads of the kind
    assert calls == []


@pytest.mark.parametrize("kind", registry.NAMES)
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=st.data())
def test_each_field_of_each_kind_with_any_value(kind: str, data: st.DataObject) -> None:
    base = data.draw(st.sampled_from(BASES[kind]))
    fields = list(P.PAYLOAD_MODELS[kind].model_fields)
    changed = data.draw(st.fixed_dictionaries({}, optional={k: JSON for k in fields}))
    payload = {**base, **changed}
    assert_same(payload)
    assert_same(drop_nulls(payload))
    origin = data.draw(st.none() | st.fixed_dictionaries({"device_id": TEXT, "seq": INTS}))
    fast = _outcome(lambda p: canonical_op(p, origin, kind), payload)
    body = drop_nulls(origin) if isinstance(origin, dict) else origin
    keep = "changes" if kind == "patient.update" else None
    ref_value = drop_nulls(payload, keep_in=keep) if not body else {
        "origin": body, "payload": drop_nulls(payload, keep_in=keep)}
    assert fast == _outcome(rfc8785.dumps, ref_value)


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(value=JSON)
def test_arbitrary_json_values(value: Any) -> None:
    assert_same(value)
    assert_same({"payload": value, "k": [value, {"x": value}]})


DEEP: Any = "deep"
for _ in range(70):
    DEEP = [DEEP]


@pytest.mark.parametrize("value", [
    -0.0, 1.0, 1e21, 2**53, -(2**53), 2**64, "\ud800", {"\ud800": 1}, {"\U0001f600": 1, "\ue000": 2},
    (1, 2), {1: "a"}, True, {"a": [None, False, 0, ""]}, "\u2028\u2029\x7f\x1f\"\\/",
    DEEP,
])
def test_the_edges_named_in_the_decision(value: Any) -> None:
    assert_same(value)
