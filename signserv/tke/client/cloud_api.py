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
from urllib.parse import quote, urlsplit

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from signserv.tke.client.http_answers import json_object, masked
from signserv.tke.client.iam import AccessTokenSource
from signserv.tke.client.targeting import CloudTarget, tke_host_pattern
from signserv.tke.errors import TKEError
from signserv.tke_http import send_like_the_tke_client

MAX_TKE_RESPONSE_BYTES = 1 << 20
USER_AGENT = f"signserv-tke/{metadata.version('signserv')}"
# §3.3: the SDK concatenates the HTPRequest into the JSON body; it never needs escaping.
_HTP_REQUEST_TEXT = re.compile(r"[0-9A-Za-z ;]+")
_QUERY_FAILED = "Error querying crypto units."
_SEND_FAILED = "Error sending HTPRequest to target service instance."
_ADVICE_401 = (
    "The access token was refused: check the IBM Cloud API key (IBMCLOUD_API_KEY) or "
    "get a fresh access token; it must belong to an account with access to the instance."
)
_ADVICE_500 = (
    "The TKE API reported an internal error: try again later; if it persists, "
    "contact IBM Cloud support."
)
# §3.2-§3.3: a GET names only the instance; a POST also names a crypto unit (hsm_id), so its
# 404 may mean either is unknown.
_ADVICE = {
    "GET": {
        401: _ADVICE_401,
        404: "The service instance was not found: check the instance id and the region "
        "(or --api-endpoint) it was created in.",
        500: _ADVICE_500,
    },
    "POST": {
        401: _ADVICE_401,
        404: "The crypto unit (hsm_id) or the service instance was not found: check the "
        "instance id and region, and list the instance's crypto units again with "
        "'signserv-tke cryptounits'.",
        500: _ADVICE_500,
    },
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


def _refusal(method: str, summary: str, status: int, body: str) -> TkeApiRefused:
    advice = _ADVICE[method].get(status)
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
            raise _refusal("GET", _QUERY_FAILED, status, body)
        document = json_object(
            body, error=TkeApiError, what=f"{_QUERY_FAILED} The answer of GET {url}"
        )
        return document

    def send(self, hsm_id: str, htp_request: str) -> str:
        """``POST <base>/v1/tke/<instance>/hsms/<hsm_id>`` with ``{"request": ...}`` (§3.3)."""
        if not _HTP_REQUEST_TEXT.fullmatch(htp_request):
            raise TkeApiError("an HTPRequest holds only letters, digits, spaces and ';'")
        if not hsm_id:
            raise TkeApiError("an empty hsm_id cannot name a crypto unit")
        # One path segment whatever the id holds: a '/' or '?' must not change the route.
        url = f"{self.target.instance_url}/hsms/{quote(hsm_id, safe='')}"
        body = ('{"request":"' + htp_request + '"}').encode("ascii")
        status, text = self._request("POST", url, body, summary=_SEND_FAILED)
        if not 200 <= status < 300:
            raise _refusal("POST", _SEND_FAILED, status, text)
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
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            # The status line and headers came, the body did not (cut off, timed out):
            # the server had the whole request.
            raise self._answer_cut_off(method, url, exc, summary=summary) from None
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
            return TkeApiError(f"{summary}\n{failure}: no such host. {self._host_hint()}")
        if method == "POST" and not _never_sent(exc):
            return _answer_lost(summary, f"{failure} after the request was sent")
        return TkeApiError(
            f"{summary}\n{failure}: is the TKE API reachable at {self.target.base_url}? "
            "Check the network, the URL (http or https) and the CA bundle."
        )

    def _answer_cut_off(
        self, method: str, url: str, exc: Exception, *, summary: str
    ) -> TkeApiError:
        failure = f"the answer of {method} {url} was cut off ({type(exc).__name__})"
        if method == "POST":
            return _answer_lost(summary, failure)
        return TkeApiError(f"{summary}\n{failure}; nothing was changed: try again.")

    def _host_hint(self) -> str:
        """Where to look when the TKE API's host name does not resolve (§3.3's region hint)."""
        host = urlsplit(self.target.base_url).hostname or self.target.base_url
        pattern = tke_host_pattern(host)
        if pattern is None:
            return f"Check the host {host} of --api-endpoint."
        return (
            f"Check the region: {host} is not known; the instance's TKE API host is "
            f"{pattern} for the region it was created in."
        )


def _answer_lost(summary: str, failure: str) -> CommandAnswerLost:
    return CommandAnswerLost(
        f"{summary}\n{failure}. The command was NOT re-sent: if it was a signed command it "
        "may already have run. Re-run the signserv-tke command; it reads the unit's state and "
        "transaction counter afresh, so a re-run is safe."
    )
