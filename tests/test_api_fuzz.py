"""schemathesis over the whole API, in-process, authenticated: no server error, schema conformance."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from backend.config.asgi import django_asgi_app
from tests.conftest import profile_payload, wechat_login

schema = schemathesis.openapi.from_asgi("/api/openapi.json", django_asgi_app)
PLACEHOLDER = "not-logged-in-yet"  # cases generated at collection, before any database exists
_current: dict[str, str] = {}


@schema.auth(refresh_interval=None)
class FuzzerBearer:
    """schemathesis applies (and, for its auth checks, withholds) the fuzzer's real token."""

    def get(self, case, context):
        return _current.get("token", PLACEHOLDER)

    def set(self, case, data, context):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@pytest.fixture
def fuzzer(db, sandboxes):
    """A logged-in account with one real 就诊人, so PATCH/DELETE/verify reach the services."""
    who = wechat_login(sandboxes, "oFUZZER")
    created = who.post("/api/patients", profile_payload())
    assert created.status_code == 201
    _current["token"] = who.access_token
    return created.json()["id"]


@pytest.mark.django_db(transaction=True)
@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_has_no_server_errors(case, fuzzer):
    if case.path_parameters and "profile_id" in case.path_parameters:
        case.path_parameters["profile_id"] = fuzzer
    if PLACEHOLDER in (case.headers or {}).get("Authorization", ""):
        case.headers["Authorization"] = f"Bearer {_current['token']}"
    # Two checks do not fit and are excluded; every other check runs:
    # - positive_data_acceptance: domain rules the schema cannot express (a resident ID's check
    #   digit, an expired WeChat code) answer 422 by design;
    # - negative_data_rejection: unknown query parameters are ignored by design.
    case.call_and_validate(excluded_checks=[positive_data_acceptance, negative_data_rejection])
