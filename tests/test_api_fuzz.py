"""schemathesis over the whole API, in-process, authenticated: no server error, schema conformance."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from backend.config.asgi import django_asgi_app
from tests.conftest import wechat_login

schema = schemathesis.openapi.from_asgi("/api/openapi.json", django_asgi_app)


@pytest.fixture
def bearer(db, sandboxes):
    return wechat_login(sandboxes, "oFUZZER").access_token


@pytest.mark.django_db(transaction=True)
@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_has_no_server_errors(case, bearer):
    # Two checks do not fit and are excluded; every other check runs:
    # - positive_data_acceptance: domain rules the schema cannot express (a resident ID's check
    #   digit, an expired WeChat code) answer 422 by design;
    # - negative_data_rejection: the bearer token is injected here, so a case generated "without
    #   Authorization" still carries it, and unknown query parameters are ignored by design.
    case.call_and_validate(headers={"Authorization": f"Bearer {bearer}"},
                           excluded_checks=[positive_data_acceptance, negative_data_rejection])
