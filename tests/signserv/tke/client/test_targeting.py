"""Which TKE API a command talks to: the SDK's endpoint/region table (§3.1) and its refusals."""

from __future__ import annotations

import pytest

from signserv.tke.client.targeting import (
    InvalidTarget,
    resolve_target,
    tke_base_url,
    tke_host_pattern,
)

INSTANCE = "11111111-2222-3333-4444-555555555555"


@pytest.mark.parametrize(
    ("api_endpoint", "base_url"),
    [
        ("cloud.ibm.com", "https://tke.us-south.hs-crypto.cloud.ibm.com"),
        ("test.cloud.ibm.com", "https://tke.us-south.hs-crypto.test.cloud.ibm.com"),
        ("private.cloud.ibm.com", "https://tke.private.us-south.hs-crypto.cloud.ibm.com"),
        (
            "private.test.cloud.ibm.com",
            "https://tke.private.us-south.hs-crypto.test.cloud.ibm.com",
        ),
    ],
)
@pytest.mark.parametrize("prefix", ["", "https://"])
def test_each_api_endpoint_maps_to_the_sdks_base_url(
    api_endpoint: str, base_url: str, prefix: str
) -> None:
    """§3.1's table, with or without ``https://`` as the SDK accepts it."""
    assert tke_base_url(prefix + api_endpoint, "us-south") == base_url
    host = base_url.removeprefix("https://")
    assert tke_host_pattern(host) == host.replace("us-south", "<region>")


@pytest.mark.parametrize(
    "hostile_endpoint",
    ["iam.cloud.ibm.com", "cloud.ibm.com.evil.example", "http://cloud.ibm.com", ""],
)
def test_any_other_api_endpoint_is_the_sdks_invalid_api_endpoint(hostile_endpoint: str) -> None:
    with pytest.raises(InvalidTarget, match="Invalid API endpoint") as refused:
        tke_base_url(hostile_endpoint, "us-south")
    assert "IBMCLOUD_HPCS_TKE_ENDPOINT" in str(refused.value)
    assert "--api-endpoint URL" in str(refused.value)


@pytest.mark.parametrize(
    "hostile_region", ["", "us-south.evil.example", "a/b", "x:1", "u@h", "a b"]
)
def test_a_region_that_would_change_the_host_is_refused(hostile_region: str) -> None:
    with pytest.raises(InvalidTarget, match="is not a region name"):
        tke_base_url("cloud.ibm.com", hostile_region)


def test_without_an_instance_id_the_local_emulator_is_meant() -> None:
    assert (
        resolve_target(instance_id=None, region="us-south", api_endpoint=None, base_url=None)
        is None
    )


def test_an_instance_needs_a_region_unless_a_base_url_is_given() -> None:
    with pytest.raises(InvalidTarget, match="IBMCLOUD_REGION"):
        resolve_target(instance_id=INSTANCE, region=None, api_endpoint=None, base_url=None)
    target = resolve_target(
        instance_id=INSTANCE, region=None, api_endpoint=None, base_url="http://127.0.0.1:8700/"
    )
    assert target is not None
    assert target.instance_url == f"http://127.0.0.1:8700/v1/tke/{INSTANCE}"


def test_the_default_api_endpoint_is_the_public_cloud() -> None:
    target = resolve_target(instance_id=INSTANCE, region="eu-de", api_endpoint=None, base_url=None)
    assert target is not None
    assert target.base_url == "https://tke.eu-de.hs-crypto.cloud.ibm.com"


@pytest.mark.parametrize(
    "hostile_url",
    ["ftp://127.0.0.1", "http://user:pw@127.0.0.1", "http://127.0.0.1/?q=1", "127.0.0.1:8700"],
)
def test_a_base_url_must_be_a_plain_http_or_https_url(hostile_url: str) -> None:
    with pytest.raises(InvalidTarget, match="--api-endpoint"):
        resolve_target(instance_id=INSTANCE, region=None, api_endpoint=None, base_url=hostile_url)


def test_a_host_no_template_makes_has_no_pattern() -> None:
    assert tke_host_pattern("127.0.0.1") is None
    assert tke_host_pattern("tke.us-south.hs-crypto.cloud.ibm.com.evil.example") is None
