"""IAM API-key exchange against the local IAM: caching, refresh before expiry, refusals."""

from __future__ import annotations

import time

import pytest
import requests

from signserv.secret import Secret
from signserv.tke.client.iam import REFRESH_MARGIN_SECONDS, ApiKeyExchange, IamError, bearer

from ....iam_token_server import IamTokenServer
from ..conftest import IAM_API_KEY
from .cut_answer_server import LossMode, cut_answer_server


class ManualClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_token_is_reused_until_shortly_before_it_expires(iam_server: IamTokenServer) -> None:
    clock = ManualClock(time.time())
    exchange = ApiKeyExchange(
        Secret(IAM_API_KEY),
        iam_endpoint=iam_server.url,
        session=requests.Session(),
        timeout=10,
        clock=clock,
    )
    before = iam_server.exchanges
    first = exchange.authorization()
    assert first.reveal().startswith("Bearer ")
    assert exchange.authorization() is first
    assert iam_server.exchanges == before + 1
    clock.now += iam_server.token_lifetime_seconds - REFRESH_MARGIN_SECONDS
    assert exchange.authorization() is not first
    assert iam_server.exchanges == before + 2


def test_an_unknown_api_key_names_iams_error_but_not_the_key(iam_server: IamTokenServer) -> None:
    exchange = ApiKeyExchange(
        Secret("hostile-unknown-key"),
        iam_endpoint=iam_server.url,
        session=requests.Session(),
        timeout=10,
    )
    with pytest.raises(IamError) as refused:
        exchange.authorization()
    assert "BXNIM0415E: Provided API key could not be found." in str(refused.value)
    assert "hostile-unknown-key" not in str(refused.value)


def test_an_unreachable_iam_says_which_endpoint_to_check() -> None:
    exchange = ApiKeyExchange(
        Secret("k"), iam_endpoint="http://127.0.0.1:9", session=requests.Session(), timeout=2
    )
    with pytest.raises(IamError, match="IBMCLOUD_IAM_API_ENDPOINT"):
        exchange.authorization()


@pytest.mark.parametrize("mode", ["cut", "stall"])
def test_an_iam_answer_cut_off_mid_body_is_an_iam_error_not_a_traceback(
    mode: LossMode,
) -> None:
    """Headers came, the token did not: say so, and that nothing reached the TKE API."""
    with cut_answer_server(mode) as server:
        token_url = f"{server.base_url}/identity/token"
        exchange = ApiKeyExchange(
            Secret("hostile-key-in-flight"),
            iam_endpoint=server.base_url,
            session=requests.Session(),
            timeout=1,
        )
        with pytest.raises(IamError) as failed:
            exchange.authorization()
    assert len(server.requests) == 1
    message = str(failed.value)
    assert f"the answer of IAM at {token_url} was cut off" in message
    assert "nothing was sent to the TKE API" in message
    assert "hostile-key-in-flight" not in message


@pytest.mark.parametrize(
    ("token", "authorization"),
    [("abc", "Bearer abc"), ("Bearer abc", "Bearer abc"), ("bearer abc", "bearer abc")],
)
def test_bearer_prefix_is_added_once(token: str, authorization: str) -> None:
    assert bearer(token).reveal() == authorization
