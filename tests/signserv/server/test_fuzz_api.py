"""Schema-driven fuzzing of the HTTP API from its own OpenAPI description (schemathesis).

The requests go over real HTTP to a real gunicorn. Every generated request, valid or not, with
or without the right token, must get a documented status and a body matching the description;
a 5xx, a crash or an undocumented answer is a failure.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings

from signserv.server.openapi import openapi_document

from ...conftest import RunningService, make_home, start_service

schema = schemathesis.openapi.from_dict(openapi_document())
FUZZ_SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def fuzzed_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    """A service of its own, lockout out of reach: it has its own tests, here auth is fuzzed."""
    unreachable = "lockout:\n  pair_threshold: 1000000\n  key_threshold: 1000000\n"
    home = make_home(tmp_path_factory.mktemp("fuzz"), unreachable)
    token = home.create_key("admin1")
    service = start_service(home)
    service.tokens["admin1"] = token
    yield service
    service.stop()
    assert "Traceback" not in service.log.read_text(), "the fuzz run crashed a request"


@schema.parametrize()
@FUZZ_SETTINGS
def test_generated_requests_get_documented_answers(case, fuzzed_service) -> None:
    """Requests as generated, including wrong, missing and odd Authorization headers."""
    case.call_and_validate(base_url=fuzzed_service.url)


@schema.parametrize()
@FUZZ_SETTINGS
def test_generated_requests_with_the_right_token_get_documented_answers(case, fuzzed_service):
    """The same with a valid token, so generated bodies reach parsing and signing."""
    case.call_and_validate(
        base_url=fuzzed_service.url, headers={"Authorization": fuzzed_service.tokens["admin1"]}
    )


def test_openapi_document_is_served(fuzzed_service) -> None:
    document = requests.get(f"{fuzzed_service.url}/openapi.json", timeout=10).json()
    assert document == openapi_document()
