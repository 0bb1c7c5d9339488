"""Which bearer tokens the served emulator accepts, checked against the local IAM's keys.

IAM's keys are read again for an unknown key id at most once per KEYS_REFETCH_SECONDS (a
flood of made-up key ids must not become a flood of requests to IAM), and a published key
that cannot be used refuses its tokens with a 401 that says so, never a 500.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from signserv.tke.emulator import DEFAULT_STATE_FILENAME
from signserv.tke.emulator.access_control import (
    KEYS_REFETCH_SECONDS,
    AccessDenied,
    IamAccessTokens,
)

from ....iam_token_server import IamTokenServer
from ..emulator_server import start_emulator_server


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def own_iam() -> Iterator[IamTokenServer]:
    """An IAM of this test's own, so its key-fetch count and published keys are the test's."""
    server = IamTokenServer(set()).start()
    yield server
    server.stop()


def _bearer(token: str) -> str:
    return f"Bearer {token}"


def test_tokens_with_made_up_key_ids_refetch_iams_keys_at_most_once_per_interval(
    own_iam: IamTokenServer,
) -> None:
    clock = ManualClock()
    access = IamAccessTokens(own_iam.url, clock=clock)
    access.check(_bearer(own_iam.issue_token(300)))
    assert own_iam.key_fetches == 1
    for _ in range(20):
        made_up = own_iam.issue_token(300, kid=f"made-up-{secrets.token_hex(4)}")
        with pytest.raises(AccessDenied, match="a key IAM does not publish"):
            access.check(_bearer(made_up))
    assert own_iam.key_fetches == 1, "within the interval, no unknown kid reaches IAM"
    access.check(_bearer(own_iam.issue_token(300)))  # the known key still works
    clock.now += KEYS_REFETCH_SECONDS
    with pytest.raises(AccessDenied):
        access.check(_bearer(own_iam.issue_token(300, kid="made-up-later")))
    assert own_iam.key_fetches == 2, "after the interval, one fetch for a new kid"


def test_a_key_iam_adds_later_is_picked_up_after_the_interval(own_iam: IamTokenServer) -> None:
    clock = ManualClock()
    access = IamAccessTokens(own_iam.url, clock=clock)
    access.check(_bearer(own_iam.issue_token(300)))
    published = own_iam._published_keys()["keys"][0]
    own_iam.extra_jwks.append({**published, "kid": "rotated-in"})
    rotated = own_iam.issue_token(300, kid="rotated-in")
    clock.now += KEYS_REFETCH_SECONDS
    access.check(_bearer(rotated))


@pytest.mark.parametrize(
    ("broken_jwk", "reason"),
    [
        ({"kty": "RSA", "n": "AA", "e": "AQAB"}, "not a valid RSA public key"),
        ({"kty": "RSA", "n": "!!not base64!!", "e": "AQAB"}, "'n' is not base64url"),
        ({"kty": "RSA", "e": "AQAB"}, "'n' is missing"),
        ({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}, "not an RSA key"),
        ({"kty": "RSA", "n": "AQAB" * 20, "e": "AQAB"}, "shorter than 2048 bits"),
    ],
    ids=["modulus_zero", "bogus_base64", "no_modulus", "not_rsa", "short_modulus"],
)
def test_an_unusable_published_key_refuses_its_tokens_and_spoils_no_other(
    own_iam: IamTokenServer, broken_jwk: dict[str, str], reason: str
) -> None:
    own_iam.extra_jwks.append({**broken_jwk, "kid": "broken"})
    access = IamAccessTokens(own_iam.url, clock=ManualClock())
    with pytest.raises(
        AccessDenied, match="a key IAM publishes in a form that cannot be used"
    ) as e:
        access.check(_bearer(own_iam.issue_token(300, kid="broken")))
    assert reason in str(e.value)
    access.check(_bearer(own_iam.issue_token(300)))


def test_emulator_serve_answers_401_json_for_a_token_of_an_unusable_key(
    tmp_path: Path, own_iam: IamTokenServer
) -> None:
    """Over HTTP: the broken key's token gets a 401 that says why; a good token still works."""
    own_iam.extra_jwks.append({"kty": "RSA", "kid": "broken", "n": "AA", "e": "AQAB"})
    server = start_emulator_server(tmp_path / DEFAULT_STATE_FILENAME, own_iam.url, workers=1)
    try:
        url = f"{server.base_url}/v1/tke/{server.instance_id}/hsms"
        broken = requests.get(
            url,
            headers={"Authorization": _bearer(own_iam.issue_token(300, kid="broken"))},
            timeout=10,
        )
        good = requests.get(
            url, headers={"Authorization": _bearer(own_iam.issue_token(300))}, timeout=10
        )
    finally:
        server.stop()
    assert broken.status_code == 401
    error = broken.json()["errors"][0]
    assert error["code"] == "unauthorized"
    assert "a key IAM publishes in a form that cannot be used" in error["message"]
    assert good.status_code == 200
    assert "Traceback" not in server.log.read_text()
