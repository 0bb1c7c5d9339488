"""The cloud TKE API over HTTPS: the SDK's two requests, its headers and its error texts (§3.2-§3.3).

One ``requests.Session`` carries every request with an explicit timeout; redirects are never
followed (the Authorization header would travel with them); TLS is verified against the
system store or a given CA bundle. Nothing is ever re-sent: a signed command whose answer was
lost may have run, so the user is told to re-run it, and the re-run reads the unit's
transaction counter afresh.
"""

from __future__ import annotations

import os
import re
from importlib import metadata

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from signserv.tke.client.http_answers import json_object, masked
from signserv.tke.client.iam import AccessTokenSource
from signserv.tke.client.targeting import CloudTarget
from signserv.tke.errors import TKEError
from signserv.tke_http import send_like_the_tke_client

MAX_TKE_RESPONSE_BYTES = 1 << 20
USER_AGENT = f"signserv-tke/{metadata.version('signserv')}"
# §3.3: the SDK concatenates the HTPRequest into the JSON body; it never needs escaping.
_HTP_REQUEST_TEXT = re.compile(r"[0-9A-Za-z ;]+")
_QUERY_FAILED = "Error querying crypto units."
_SEND_FAILED = "Error sending HTPRequest to target service instance."
_ADVICE = {
    401: "The access token was refused: check the IBM Cloud API key (IBMCLOUD_API_KEY) or "
    "get a fresh access token; it must belong to an account with access to the instance.",
    404: "The service instance was not found: check the instance id and the region "
    "(or --api-endpoint) it was created in.",
    500: "The TKE API reported an internal error: try again later; if it persists, "
    "contact IBM Cloud support.",
}


class TkeApiError(TKEError):
    """The TKE API could not be used: unreachable, refused, or an answer the client cannot read."""


class TkeApiRefused(TkeApiError):
    """The TKE API answered with a non-2xx status; ``status`` keeps it."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class CommandAnswerLost(TkeApiError):
    """A request reached the TKE API but its answer did not come back; it was not re-sent."""


def _refusal(summary: str, status: int, body: str) -> TkeApiRefused:
    advice = _ADVICE.get(status)
    message = f"{summary}\nStatus code: {status}\nMessage: {body}"
    return TkeApiRefused(f"{message}\n{advice}" if advice else message, status)


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the request cannot have reached the server (no connection, no TLS session)."""
    if isinstance(exc, requests.ConnectTimeout | requests.exceptions.SSLError):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


def _host_not_found(exc: requests.RequestException) -> bool:
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, urllib3.exceptions.NameResolutionError)


def tke_api_session() -> requests.Session:
    """The one session for IAM and the TKE API: our User-Agent, and no automatic retries.

    urllib3 would otherwise be free to retry, and a retried POST re-sends a signed command.
    """
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    for scheme in ("https://", "http://"):
        session.mount(scheme, HTTPAdapter(max_retries=0))
    return session


class CloudTkeApi:
    """The crypto units of one service instance, reached over the cloud TKE API (§3.2-§3.3)."""

    def __init__(
        self,
        target: CloudTarget,
        tokens: AccessTokenSource,
        *,
        session: requests.Session,
        timeout: float,
        ca_bundle: str | os.PathLike[str] | None = None,
    ) -> None:
        self.target = target
        self._tokens = tokens
        self._session = session
        self._timeout = timeout
        # Passed on every request: a session-level setting would lose to REQUESTS_CA_BUNDLE.
        self._tls_verify: bool | str = True if ca_bundle is None else os.fspath(ca_bundle)

    def list_crypto_units(self) -> dict[str, object]:
        """``GET <base>/v1/tke/<instance>/hsms`` (§3.2)."""
        url = f"{self.target.instance_url}/hsms"
        status, body = self._request("GET", url, None, summary=_QUERY_FAILED)
        if not 200 <= status < 300:
            raise _refusal(_QUERY_FAILED, status, body)
        document = json_object(
            body, error=TkeApiError, what=f"{_QUERY_FAILED} The answer of GET {url}"
        )
        return document

    def send(self, hsm_id: str, htp_request: str) -> str:
        """``POST <base>/v1/tke/<instance>/hsms/<hsm_id>`` with ``{"request": ...}`` (§3.3)."""
        if not _HTP_REQUEST_TEXT.fullmatch(htp_request):
            raise TkeApiError("an HTPRequest holds only letters, digits, spaces and ';'")
        if not hsm_id or "/" in hsm_id:
            raise TkeApiError(f"hsm_id {hsm_id!r} cannot be part of a URL path")
        url = f"{self.target.instance_url}/hsms/{hsm_id}"
        body = ('{"request":"' + htp_request + '"}').encode("ascii")
        status, text = self._request("POST", url, body, summary=_SEND_FAILED)
        if not 200 <= status < 300:
            raise _refusal(_SEND_FAILED, status, text)
        document = json_object(
            text, error=TkeApiError, what=f"{_SEND_FAILED} The answer of POST {url}"
        )
        if not all(isinstance(value, str) for value in document.values()):
            raise TkeApiError(f"{_SEND_FAILED} The answer of POST {url} is not a map of strings")
        response = document.get("response")
        if not response:
            raise TkeApiError("No HPTResponse returned.")  # [sic], the SDK's text (§3.3)
        return str(response)

    def _request(
        self, method: str, url: str, body: bytes | None, *, summary: str
    ) -> tuple[int, str]:
        """Send once; return the status and the body text, the access token masked in it."""
        authorization = self._tokens.authorization()
        try:
            with send_like_the_tke_client(
                self._session,
                method,
                url,
                authorization,
                body,
                timeout=self._timeout,
                verify=self._tls_verify,
            ) as response:
                content = response.raw.read(MAX_TKE_RESPONSE_BYTES + 1, decode_content=True)
        except requests.RequestException as exc:
            raise self._transport_failure(method, url, exc, summary=summary) from None
        if len(content) > MAX_TKE_RESPONSE_BYTES:
            raise TkeApiError(
                f"{summary} The answer of {method} {url} is over {MAX_TKE_RESPONSE_BYTES} bytes"
            )
        if 300 <= response.status_code < 400:
            raise TkeApiError(
                f"{summary}\n{method} {url} answered {response.status_code} redirecting to "
                f"{response.headers.get('Location', '(no Location header)')}; redirects are not "
                "followed with an access token: use the final URL"
            )
        # An API or a proxy may echo the Authorization header into an error body.
        return response.status_code, masked(content.decode("utf-8", "replace"), authorization)

    def _transport_failure(
        self, method: str, url: str, exc: requests.RequestException, *, summary: str
    ) -> TkeApiError:
        failure = f"{method} {url} failed ({type(exc).__name__})"
        if _host_not_found(exc):
            return TkeApiError(
                f"{summary}\n{failure}: no such host. Check the region: the instance's TKE API "
                "host is tke.<region>.hs-crypto.cloud.ibm.com for the region it was created in."
            )
        if method == "POST" and not _never_sent(exc):
            return CommandAnswerLost(
                f"{summary}\n{failure} after the request was sent. It was not re-sent: if it "
                "was a signed command it may already have run. Re-run the signserv-tke command; "
                "it reads the unit's state and transaction counter afresh, so a re-run is safe."
            )
        return TkeApiError(
            f"{summary}\n{failure}: is the TKE API reachable at {self.target.base_url}? "
            "Check the network, the URL (http or https) and the CA bundle."
        )
