"""An HTTP request to a signing service exactly as the TKE client sends it (TKE-REFERENCE §1.3).

Shared by the client and the conformance checker: the same headers, the token raw in
``Authorization``, no redirect followed, an explicit timeout and TLS verification passed on
every request (so ``REQUESTS_CA_BUNDLE`` cannot override a chosen CA bundle), a streamed body.
"""

from __future__ import annotations

from importlib import metadata

import requests

from signserv.secret import Secret

TKE_CLIENT_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
MAX_RESPONSE_BYTES = 1 << 20  # the most of an answer either the client or the checker reads


def session_for(program: str) -> requests.Session:
    """A session whose User-Agent is ``<program>/<signserv version>``."""
    session = requests.Session()
    session.headers["User-Agent"] = f"{program}/{metadata.version('signserv')}"
    return session


class RawTokenAuth(requests.auth.AuthBase):
    """``Authorization: <token>`` verbatim, or no header at all for ``None``.

    Passing it as ``auth`` also keeps requests from adding ``~/.netrc`` credentials.
    """

    def __init__(self, token: Secret[str] | None) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if self._token is None:
            request.headers.pop("Authorization", None)
        else:
            request.headers["Authorization"] = self._token.reveal()
        return request


def send_like_the_tke_client(
    session: requests.Session,
    method: str,
    url: str,
    token: Secret[str] | None,
    body: bytes | None,
    *,
    timeout: float,
    verify: bool | str,
) -> requests.Response:
    """Send one request; the caller reads the streamed body (and closes the response)."""
    return session.request(
        method,
        url,
        data=body,
        headers=TKE_CLIENT_HEADERS,
        auth=RawTokenAuth(token),
        timeout=timeout,
        verify=verify,
        allow_redirects=False,
        stream=True,
    )
