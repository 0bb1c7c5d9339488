"""Which TKE API a command talks to: a service instance at an API endpoint and region (§3.1).

The names follow the SDK and the Terraform provider: ``ApiEndpoint`` is one of four IBM Cloud
domains (``IBMCLOUD_HPCS_TKE_ENDPOINT``), the region picks the TKE host. A full base URL may
be given instead, for an emulator served by ``signserv-tke emulator serve``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from signserv.tke.errors import TKEError

DEFAULT_API_ENDPOINT = "cloud.ibm.com"
# §3.1: the SDK's table from ApiEndpoint to the TKE host of a region.
_TKE_HOSTS = {
    "cloud.ibm.com": "tke.{region}.hs-crypto.cloud.ibm.com",
    "test.cloud.ibm.com": "tke.{region}.hs-crypto.test.cloud.ibm.com",
    "private.cloud.ibm.com": "tke.private.{region}.hs-crypto.cloud.ibm.com",
    "private.test.cloud.ibm.com": "tke.private.{region}.hs-crypto.test.cloud.ibm.com",
}


class InvalidTarget(TKEError, ValueError):
    """The instance id, region or API endpoint cannot name a TKE API."""


@dataclass(frozen=True)
class CloudTarget:
    """A service instance reachable at ``<base_url>/v1/tke/<instance_id>`` (§3.2-§3.3)."""

    base_url: str
    instance_id: str

    @property
    def instance_url(self) -> str:
        # One path segment whatever the id holds: a '/' or '?' must not change the route.
        return f"{self.base_url}/v1/tke/{quote(self.instance_id, safe='')}"


def tke_base_url(api_endpoint: str, region: str) -> str:
    """The SDK's base URL for an ``ApiEndpoint`` (with or without ``https://``) and a region."""
    domain = api_endpoint.strip().removeprefix("https://").rstrip("/")
    template = _TKE_HOSTS.get(domain)
    if template is None:
        raise InvalidTarget(
            f"Invalid API endpoint {api_endpoint!r}: IBMCLOUD_HPCS_TKE_ENDPOINT must be one of "
            f"{', '.join(_TKE_HOSTS)}; pass --api-endpoint URL for any other TKE API"
        )
    if not region or any(separator in region for separator in "./:@ "):
        raise InvalidTarget(f"region {region!r} is not a region name such as us-south")
    return "https://" + template.format(region=region)


def tke_host_pattern(host: str) -> str | None:
    """``host`` as the §3.1 template it comes from, the region shown as ``<region>``.

    ``None`` for a host no template makes (an emulator's, given with ``--api-endpoint``).
    """
    for template in _TKE_HOSTS.values():
        pattern = re.escape(template).replace(re.escape("{region}"), "[^.]+")
        if re.fullmatch(pattern, host.lower()):
            return template.format(region="<region>")
    return None


def _checked_base_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidTarget(f"--api-endpoint {url!r} must be an http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        raise InvalidTarget("--api-endpoint must not carry credentials")
    if parts.query or parts.fragment:
        raise InvalidTarget(f"--api-endpoint {url!r} must not have a query or fragment")
    return url.rstrip("/")


def resolve_target(
    *,
    instance_id: str | None,
    region: str | None,
    api_endpoint: str | None,
    base_url: str | None,
) -> CloudTarget | None:
    """The cloud target the options name, or ``None`` for the local emulator (no instance id)."""
    if not instance_id:
        if base_url:
            raise InvalidTarget("--api-endpoint needs --instance-id (IBMCLOUD_HPCS_INSTANCE_ID)")
        return None
    if not instance_id.strip():
        raise InvalidTarget(f"instance id {instance_id!r} is not a service instance GUID")
    if base_url:
        return CloudTarget(_checked_base_url(base_url), instance_id)
    if not region:
        raise InvalidTarget(
            "a service instance needs its region: pass --region or set IBMCLOUD_REGION"
        )
    return CloudTarget(tke_base_url(api_endpoint or DEFAULT_API_ENDPOINT, region), instance_id)
