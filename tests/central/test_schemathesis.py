"""Property-based fuzzing of the server's own OpenAPI document (schemathesis),
over real HTTP, with a bounded number of examples per operation: no 5xx from
the app, documented status codes and content types, bodies match their schema."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.helpers.central import CentralHandle

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]

OWN_CENTRAL = True  # a server of its own (tests/central/conftest.py): this module runs the whole API on it


@pytest.fixture(scope="module")
def api_schema(central: CentralHandle):
    return schemathesis.openapi.from_url(central.url + "/openapi.json", headers=central.headers("C07"))


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True)
def test_api_conforms_to_its_openapi(case, central: CentralHandle) -> None:
    """A few examples per operation in the normal suite; ``make chaos`` runs 30 (below)."""
    case.call_and_validate(base_url=central.url, headers=central.headers("C07"), checks=CHECKS)


@pytest.mark.chaos
@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True)
def test_api_conforms_to_its_openapi_soak(case, central: CentralHandle) -> None:
    case.call_and_validate(base_url=central.url, headers=central.headers("C07"), checks=CHECKS)
