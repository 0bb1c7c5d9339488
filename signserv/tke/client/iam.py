"""IAM access tokens for the cloud TKE API (TKE-REFERENCE §3.9a).

An IBM Cloud API key is exchanged at the IAM token endpoint (API-key grant) for an access
token, kept until shortly before it expires, then exchanged again. An access token issued
elsewhere can be used instead. Neither the key nor a token ever appears in an error message.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Protocol

import requests
import urllib3.exceptions

from signserv.secret import Secret
from signserv.tke.client.http_answers import json_object, masked
from signserv.tke.errors import TKEError

DEFAULT_IAM_ENDPOINT = "https://iam.cloud.ibm.com"
IAM_TOKEN_ROUTE = "/identity/token"  # noqa: S105 (a URL path, not a secret)
API_KEY_GRANT = "urn:ibm:params:oauth:grant-type:apikey"
# Exchange again this long before the token's expiration, so a command never starts with a
# token that lapses on the way.
REFRESH_MARGIN_SECONDS = 60.0
MAX_IAM_RESPONSE_BYTES = 1 << 16


class IamError(TKEError):
    """IAM did not issue an access token: unreachable, key refused, or an unusable answer."""


class AccessTokenSource(Protocol):
    """Where the ``Authorization`` value for the TKE API comes from."""

    def authorization(self) -> Secret[str]:
        """``Bearer <access token>``, valid for at least the next request (§3.1)."""
        ...


def bearer(token: str) -> Secret[str]:
    """The Authorization value for an access token, whether or not it already says ``Bearer``."""
    scheme, _, rest = token.strip().partition(" ")
    return Secret(
        token.strip() if scheme.lower() == "bearer" and rest else f"Bearer {token.strip()}"
    )


class IssuedAccessToken:
    """An access token obtained elsewhere (``ibmcloud iam oauth-tokens``); used until refused."""

    def __init__(self, token: Secret[str]) -> None:
        self._authorization = bearer(token.reveal())

    def authorization(self) -> Secret[str]:
        return self._authorization


class ApiKeyExchange:
    """Access tokens for one API key from one IAM endpoint, refreshed before they expire."""

    def __init__(
        self,
        api_key: Secret[str],
        *,
        iam_endpoint: str,
        session: requests.Session,
        timeout: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._api_key = api_key
        self.token_url = iam_endpoint.rstrip("/") + IAM_TOKEN_ROUTE
        self._session = session
        self._timeout = timeout
        self._clock = clock
        self._authorization: Secret[str] | None = None
        self._refresh_at = 0.0

    def authorization(self) -> Secret[str]:
        if self._authorization is None or self._clock() >= self._refresh_at:
            self._authorization, expires_at = self._exchange()
            self._refresh_at = expires_at - REFRESH_MARGIN_SECONDS
        return self._authorization

    def _exchange(self) -> tuple[Secret[str], float]:
        """POST the API-key grant; return the Authorization value and its expiry (Unix time)."""
        try:
            with self._session.post(
                self.token_url,
                data={"grant_type": API_KEY_GRANT, "apikey": self._api_key.reveal()},
                headers={"Accept": "application/json"},
                timeout=self._timeout,
                allow_redirects=False,
                stream=True,
            ) as response:
                body = response.raw.read(MAX_IAM_RESPONSE_BYTES + 1, decode_content=True)
        except requests.RequestException as exc:
            raise IamError(
                f"cannot reach IAM at {self.token_url} ({type(exc).__name__}): check the IAM "
                "endpoint (--iam-endpoint / IBMCLOUD_IAM_API_ENDPOINT) and the network"
            ) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            # Headers came, the body did not: nothing was sent to the TKE API yet.
            raise IamError(
                f"the answer of IAM at {self.token_url} was cut off ({type(exc).__name__}); "
                "nothing was sent to the TKE API: try again"
            ) from None
        text = masked(body[:MAX_IAM_RESPONSE_BYTES].decode("utf-8", "replace"), self._api_key)
        if response.status_code != 200:
            raise IamError(
                f"IAM at {self.token_url} refused the API key exchange (status "
                f"{response.status_code}): {_iam_error_text(text)}; check IBMCLOUD_API_KEY "
                "or the API key file"
            )
        return self._read_token(text)

    def _read_token(self, text: str) -> tuple[Secret[str], float]:
        document = json_object(text, what=f"The answer of IAM at {self.token_url}", error=IamError)
        token = document.get("access_token")
        if not isinstance(token, str) or not token:
            raise IamError(f"IAM at {self.token_url} answered without an access_token")
        expiration = document.get("expiration")
        expires_in = document.get("expires_in")
        if isinstance(expiration, int | float) and not isinstance(expiration, bool):
            expires_at = float(expiration)
        elif isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
            expires_at = self._clock() + float(expires_in)
        else:
            raise IamError(f"IAM at {self.token_url} answered without expiration or expires_in")
        return bearer(token), expires_at


def _iam_error_text(text: str) -> str:
    """IAM's ``errorCode: errorMessage`` when the body has them, else the body itself."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        return text.strip() or "(empty body)"
    if isinstance(document, dict) and "errorMessage" in document:
        return f"{document.get('errorCode', '')}: {document['errorMessage']}".lstrip(": ")
    return text.strip()
