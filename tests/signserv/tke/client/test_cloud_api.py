"""The cloud TKE API transport against local servers that misbehave on purpose (§3.3).

A POST whose answer is lost is never re-sent, a redirect is never followed (it would carry
the access token elsewhere), and ``emulator serve --access-token-file`` accepts exactly that
token.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from signserv.secret import Secret
from signserv.tke.client.cloud_api import (
    CloudTkeApi,
    CommandAnswerLost,
    TkeApiError,
    TkeApiRefused,
    tke_api_session,
)
from signserv.tke.client.iam import IssuedAccessToken
from signserv.tke.client.targeting import CloudTarget, resolve_target
from signserv.tke.emulator import DEFAULT_STATE_FILENAME

from ..emulator_server import start_emulator_server
from .cut_answer_server import LossMode, cut_answer_server

ACCESS_TOKEN = "test-access-token-7f3a"
INSTANCE = "11111111-2222-3333-4444-555555555555"
# A well-formed HTPRequest (TKE-REFERENCE §10 vector 13).
HTP_REQUEST = (
    "181;PCI request;XPNUM   ;1;        ;0020040000805434000000000000000F000000000000000000000000"
    "0000002A302804040001002904040000000F0418301604040001000A04080000000F000000000400040004000400"
)


def api_at(base_url: str) -> CloudTkeApi:
    """A client of ``base_url`` with a fixed access token."""
    return CloudTkeApi(
        CloudTarget(base_url, INSTANCE),
        IssuedAccessToken(Secret(ACCESS_TOKEN)),
        session=tke_api_session(),
        timeout=5,
    )


def test_a_post_whose_answer_is_lost_is_sent_once_and_the_user_is_told_to_re_run() -> None:
    """The unit got the command; its answer never came. No retry: a re-run reads the counter."""
    with cut_answer_server("drop") as server, pytest.raises(CommandAnswerLost) as lost:
        api_at(server.base_url).send("hsm-1", HTP_REQUEST)
    assert len(server.requests) == 1
    assert HTP_REQUEST.encode() in server.requests[0]
    message = str(lost.value)
    assert "The command was NOT re-sent" in message
    assert "Re-run the signserv-tke command" in message
    assert ACCESS_TOKEN not in message


@dataclass
class RecordingServer:
    """An HTTP server that records each request's path and headers and answers ``reply``."""

    server: ThreadingHTTPServer
    seen: list[tuple[str, dict[str, str]]]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


def start_recording_server(status: int, headers: dict[str, str]) -> RecordingServer:
    seen: list[tuple[str, dict[str, str]]] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            seen.append((self.path, dict(self.headers.items())))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the test reads ``seen``, not a log."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return RecordingServer(server, seen)


@pytest.fixture
def redirect_target() -> Iterator[RecordingServer]:
    server = start_recording_server(200, {"Content-Type": "application/json"})
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.mark.parametrize("status", [301, 302, 307, 308])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_redirect_is_not_followed_and_carries_no_credentials(
    redirect_target: RecordingServer, status: int, method: str
) -> None:
    """A 3xx is an error naming where it pointed; the other host never sees a request."""
    location = f"{redirect_target.base_url}/v1/tke/{INSTANCE}/hsms"
    redirecting = start_recording_server(status, {"Location": location})
    try:
        api = api_at(redirecting.base_url)
        with pytest.raises(TkeApiError) as refused:
            if method == "GET":
                api.list_crypto_units()
            else:
                api.send("hsm-1", HTP_REQUEST)
    finally:
        redirecting.server.shutdown()
        redirecting.server.server_close()
    assert len(redirecting.seen) == 1
    assert redirect_target.seen == []
    message = str(refused.value)
    assert f"redirecting to {location}" in message
    assert "redirects are not followed" in message
    assert ACCESS_TOKEN not in message


def test_emulator_serve_with_access_token_file_accepts_exactly_that_token(
    tmp_path: Path,
) -> None:
    """``--access-token-file``: that token lists the units; another token gets the SDK's 401."""
    token_file = tmp_path / "access-token"
    token_file.write_text(ACCESS_TOKEN + "\n")
    server = start_emulator_server(
        tmp_path / DEFAULT_STATE_FILENAME, None, access_token_file=token_file
    )
    try:
        api = CloudTkeApi(
            CloudTarget(server.base_url, server.instance_id),
            IssuedAccessToken(Secret(ACCESS_TOKEN)),
            session=tke_api_session(),
            timeout=10,
        )
        assert api.list_crypto_units()["source_hsms"]
        other = CloudTkeApi(
            CloudTarget(server.base_url, server.instance_id),
            IssuedAccessToken(Secret("some-other-token")),
            session=tke_api_session(),
            timeout=10,
        )
        with pytest.raises(TkeApiRefused) as refused:
            other.list_crypto_units()
        assert refused.value.status == 401
        unauthenticated = requests.get(
            f"{server.base_url}/v1/tke/{server.instance_id}/hsms", timeout=10
        )
        assert unauthenticated.status_code == 401
    finally:
        server.stop()
    assert ACCESS_TOKEN not in server.log.read_text()


@pytest.mark.parametrize("mode", ["cut", "stall"])
def test_a_post_whose_answer_body_is_cut_off_is_an_answer_lost_not_a_traceback(
    mode: LossMode,
) -> None:
    """Headers came, the body did not: the unit had the command; it is not sent again."""
    with cut_answer_server(mode) as server:
        api = CloudTkeApi(
            CloudTarget(server.base_url, INSTANCE),
            IssuedAccessToken(Secret(ACCESS_TOKEN)),
            session=tke_api_session(),
            timeout=1,
        )
        with pytest.raises(CommandAnswerLost) as lost:
            api.send("hsm-1", HTP_REQUEST)
    assert len(server.requests) == 1
    message = str(lost.value)
    assert message.startswith("Error sending HTPRequest to target service instance.\n")
    assert "was cut off" in message
    assert "The command was NOT re-sent" in message
    assert "Re-run the signserv-tke command" in message
    assert "transaction counter" in message
    assert ACCESS_TOKEN not in message


def test_a_get_whose_answer_body_is_cut_off_says_try_again() -> None:
    """A query changes nothing, so losing its answer is an ordinary error, not an answer lost."""
    with cut_answer_server("cut") as server, pytest.raises(TkeApiError) as failed:
        api_at(server.base_url).list_crypto_units()
    assert not isinstance(failed.value, CommandAnswerLost)
    assert str(failed.value).startswith("Error querying crypto units.\n")
    assert "was cut off" in str(failed.value)
    assert "try again" in str(failed.value)


def test_instance_and_hsm_ids_are_each_one_quoted_path_segment() -> None:
    """An id holding '/', '?' or '%' cannot reach another route (urllib.parse.quote, safe="")."""
    recording = start_recording_server(404, {})
    try:
        api = CloudTkeApi(
            CloudTarget(recording.base_url, "inst/../x?y"),
            IssuedAccessToken(Secret(ACCESS_TOKEN)),
            session=tke_api_session(),
            timeout=5,
        )
        with pytest.raises(TkeApiRefused):
            api.list_crypto_units()
        with pytest.raises(TkeApiRefused):
            api.send("hsm/1%2F", HTP_REQUEST)
    finally:
        recording.server.shutdown()
        recording.server.server_close()
    assert [path for path, _ in recording.seen] == [
        "/v1/tke/inst%2F..%2Fx%3Fy/hsms",
        "/v1/tke/inst%2F..%2Fx%3Fy/hsms/hsm%2F1%252F",
    ]


def test_a_404_advises_by_method_instance_for_get_crypto_unit_for_post() -> None:
    """§3.2-§3.3: a GET names only the instance; a POST's 404 may be the unit (hsm_id)."""
    recording = start_recording_server(404, {})
    try:
        api = api_at(recording.base_url)
        with pytest.raises(TkeApiRefused) as get_refused:
            api.list_crypto_units()
        with pytest.raises(TkeApiRefused) as post_refused:
            api.send("hsm-1", HTP_REQUEST)
    finally:
        recording.server.shutdown()
        recording.server.server_close()
    assert str(get_refused.value).endswith(
        "The service instance was not found: check the instance id and the region "
        "(or --api-endpoint) it was created in."
    )
    post_message = str(post_refused.value)
    assert "The crypto unit (hsm_id) or the service instance was not found" in post_message
    assert post_message.endswith("'signserv-tke cryptounits'.")


@pytest.mark.parametrize(
    ("endpoint", "pattern"),
    [
        ("cloud.ibm.com", "tke.<region>.hs-crypto.cloud.ibm.com"),
        ("test.cloud.ibm.com", "tke.<region>.hs-crypto.test.cloud.ibm.com"),
        ("private.cloud.ibm.com", "tke.private.<region>.hs-crypto.cloud.ibm.com"),
        ("https://private.test.cloud.ibm.com", "tke.private.<region>.hs-crypto.test.cloud.ibm.com"),
    ],
)
def test_an_unknown_host_hint_names_the_host_actually_used(endpoint: str, pattern: str) -> None:
    """DNS says no such host: the region hint names that host and its endpoint's pattern."""
    region = f"no-such-region-{secrets.token_hex(4)}"
    target = resolve_target(
        instance_id=INSTANCE, region=region, api_endpoint=endpoint, base_url=None
    )
    assert target is not None
    host = pattern.replace("<region>", region)
    assert target.base_url == f"https://{host}"
    api = CloudTkeApi(
        target, IssuedAccessToken(Secret(ACCESS_TOKEN)), session=tke_api_session(), timeout=5
    )
    with pytest.raises(TkeApiError) as failed:
        api.list_crypto_units()
    message = str(failed.value)
    assert "no such host" in message
    assert f"Check the region: {host} is not known" in message
    assert f"the instance's TKE API host is {pattern}" in message


def test_an_unknown_emulator_host_names_the_api_endpoint_option() -> None:
    api = api_at(f"http://no-such-host-{secrets.token_hex(4)}.invalid:8700")
    with pytest.raises(TkeApiError, match=r"no such host\. Check the host .* of --api-endpoint"):
        api.list_crypto_units()
