"""Property-based API fuzzing from the OpenAPI schema (schemathesis): no 5xx, no response violating the schema,
with a bounded number of examples per operation."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from tests.api_support import make_world

pytestmark = pytest.mark.slow  # the fast tier: python -m pytest -m "not slow"

WORLD = make_world(Path(tempfile.mkdtemp(prefix="forewarn-fuzz-")))
# the endless event stream is exercised against a real server in tests/test_server.py
schema = schemathesis.openapi.from_asgi("/openapi.json", WORLD.client.app).exclude(path="/v1/stream")
TOKEN = WORLD.token("admin")


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_never_fails_and_keeps_its_schema(case: schemathesis.Case) -> None:
    response = case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"},
                                      checks=[not_a_server_error, response_schema_conformance])
    if response.status_code >= 400:
        error = response.json()["error"]
        assert set(error) == {"code", "message", "details", "request_id"}
