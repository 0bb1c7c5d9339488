"""``signserv-tke`` against ``emulator serve`` over real HTTP(S): credentials, targeting, refusals.

Every refusal is checked to change nothing: the state file is compared byte for byte.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import Result

from signserv.secret import Secret
from signserv.tke.client.cloud_api import CloudTkeApi, TkeApiRefused, tke_api_session
from signserv.tke.client.iam import ApiKeyExchange
from signserv.tke.client.targeting import CloudTarget
from signserv.tke.emulator import DEFAULT_STATE_FILENAME

from ....iam_token_server import IamTokenServer
from ....tls_certificates import write_self_signed_localhost
from ..conftest import IAM_API_KEY
from ..emulator_server import SIGNSERV_TKE, RunningEmulatorServer, start_emulator_server
from .test_master_key_cli import cli_runner, succeeded

# TKE-REFERENCE §10 vector 13: Query Domain Attributes of CM 1, domain 15 (the emulator's
# first operational unit sits at that location).
QUERY_DOMAIN_ATTRIBUTES = (
    "181;PCI request;XPNUM   ;1;        ;0020040000805434000000000000000F000000000000000000000000"
    "0000002A302804040001002904040000000F0418301604040001000A04080000000F000000000400040004000400"
)


@pytest.fixture(scope="module")
def service_keys(signserv_server: Any) -> dict[str, str]:
    prefix = f"api-{secrets.token_hex(4)}"
    return {f"{prefix}-{n}": signserv_server.home.create_key(f"{prefix}-{n}") for n in "ab"}


@pytest.fixture(scope="module")
def workstation(tmp_path_factory: pytest.TempPathFactory, service_keys: dict[str, str]) -> Path:
    directory = tmp_path_factory.mktemp("cloud-workstation")
    entries = [{"key": name, "token": token} for name, token in service_keys.items()]
    (directory / "SIGNSERVKEYS").write_text(json.dumps(entries))
    return directory


@pytest.fixture(scope="module")
def served(workstation: Path, iam_server: IamTokenServer) -> Iterator[RunningEmulatorServer]:
    """One ``emulator serve`` for the module, its state under the workstation."""
    server = start_emulator_server(workstation / DEFAULT_STATE_FILENAME, iam_server.url)
    yield server
    server.stop()


@pytest.fixture
def run_with(
    signserv_server: Any, workstation: Path, served: RunningEmulatorServer, iam_server: Any
) -> Callable[..., Result]:
    """``signserv-tke`` with the served instance's environment, ``changes`` applied on top."""

    def invoke(*args: str, **changes: str | None) -> Result:
        env: dict[str, str | None] = {**served.client_env(iam_server.url, IAM_API_KEY)}
        env.update(changes)
        run = cli_runner(signserv_server.url, workstation, env)  # type: ignore[arg-type]
        return run(*args)

    return invoke


def refused_unchanged(run_with: Callable[..., Result], served: Any, **changes: Any) -> str:
    """Try to add an administrator; it must fail and leave the state file byte for byte."""
    before = served.state.read_bytes()
    key = json.loads((served.state.parent / "SIGNSERVKEYS").read_text())[0]["key"]
    result = run_with("cryptounit-admin-add", "--key", key, "--name", "x", **changes)
    assert result.exit_code == 1, result.output
    assert served.state.read_bytes() == before
    return f"{result.output}{result.exception}"


def test_cryptounits_names_the_instance_and_endpoint(run_with: Any, served: Any) -> None:
    output = succeeded(run_with("cryptounits"))
    assert f"service instance {served.instance_id} at {served.base_url}" in output
    assert "recovery" in output


def test_wrong_api_key_is_refused_by_iam_and_changes_nothing(run_with: Any, served: Any) -> None:
    wrong_key = f"wrong-{secrets.token_hex(8)}"
    output = refused_unchanged(run_with, served, IBMCLOUD_API_KEY=wrong_key)
    assert "BXNIM0415E" in output
    assert wrong_key not in output


def test_expired_access_token_gets_401_and_changes_nothing(
    run_with: Any, served: Any, iam_server: IamTokenServer
) -> None:
    expired = iam_server.issue_token(lifetime_seconds=-60)
    output = refused_unchanged(run_with, served, IBMCLOUD_API_KEY=None, IBMCLOUD_IAM_TOKEN=expired)
    assert "Error querying crypto units.\nStatus code: 401" in output
    assert "has expired" in output
    assert expired not in output


def test_unknown_instance_gets_404_and_changes_nothing(run_with: Any, served: Any) -> None:
    output = refused_unchanged(run_with, served, IBMCLOUD_HPCS_INSTANCE_ID="no-such-instance")
    assert "Status code: 404" in output
    assert "check the instance id and the region" in output


def test_unknown_hsm_id_gets_404_and_changes_nothing(
    served: RunningEmulatorServer, iam_server: IamTokenServer
) -> None:
    session = tke_api_session()
    tokens = ApiKeyExchange(
        Secret(IAM_API_KEY), iam_endpoint=iam_server.url, session=session, timeout=10
    )
    api = CloudTkeApi(
        CloudTarget(served.base_url, served.instance_id), tokens, session=session, timeout=10
    )
    before = served.state.read_bytes()
    with pytest.raises(TkeApiRefused) as refused:
        api.send("no-such-hsm", QUERY_DOMAIN_ATTRIBUTES)
    assert refused.value.status == 404
    assert str(refused.value).startswith(
        "Error sending HTPRequest to target service instance.\nStatus code: 404"
    )
    assert served.state.read_bytes() == before


def test_a_chain_ending_at_the_emulator_root_is_refused_unless_trusted(
    run_with: Any, served: Any
) -> None:
    output = refused_unchanged(run_with, served, SIGNSERV_TKE_TRUST_OA_ROOT=None)
    assert "which is not a trusted root" in output


# --- credentials and targeting: where they come from, what an error may say ---------------------


def test_cryptounits_json_names_the_instance_and_endpoint(run_with: Any, served: Any) -> None:
    document = json.loads(succeeded(run_with("cryptounits", "--json")))
    assert document["instance_id"] == served.instance_id
    assert document["endpoint"] == served.base_url
    assert document["emulator_state"] is None
    assert [unit["type"] for unit in document["crypto_units"]] == [
        "operational",
        "operational",
        "recovery",
    ]


def test_cryptounits_json_of_the_local_emulator_names_its_state_file(
    run_with: Any, served: Any
) -> None:
    local = {"IBMCLOUD_HPCS_INSTANCE_ID": None, "SIGNSERV_TKE_API_ENDPOINT": None}
    document = json.loads(
        succeeded(run_with("cryptounits", "--json", IBMCLOUD_API_KEY=None, **local))
    )
    assert document["instance_id"] is None
    assert document["endpoint"] is None
    assert document["emulator_state"] == str(served.state)


def test_the_terraform_providers_ic_api_key_is_accepted(
    run_with: Any, served: Any, iam_server: IamTokenServer
) -> None:
    before = iam_server.exchanges
    output = succeeded(run_with("cryptounits", IBMCLOUD_API_KEY=None, IC_API_KEY=IAM_API_KEY))
    assert f"service instance {served.instance_id}" in output
    assert iam_server.exchanges == before + 1


def test_the_terraform_providers_ic_iam_token_is_accepted(
    run_with: Any, served: Any, iam_server: IamTokenServer
) -> None:
    token = iam_server.issue_token(lifetime_seconds=300)
    output = succeeded(run_with("cryptounits", IBMCLOUD_API_KEY=None, IC_IAM_TOKEN=token))
    assert f"service instance {served.instance_id}" in output


@pytest.mark.parametrize(
    ("option", "what"),
    [("--api-key-file", "IBM Cloud API key"), ("--access-token-file", "IAM access token")],
)
def test_an_unreadable_credential_file_is_named_by_its_option_not_its_path(
    run_with: Any, served: Any, option: str, what: str
) -> None:
    """The "path" may be the key itself, pasted in the wrong place: it is never echoed."""
    pasted_key = f"hostile-pasted-key-{secrets.token_hex(8)}"
    before = served.state.read_bytes()
    result = run_with(option, pasted_key, "cryptounits", IBMCLOUD_API_KEY=None)
    output = f"{result.output}{result.exception}"
    assert result.exit_code == 1, output
    assert f"cannot read the {what} file given with {option}" in output
    assert pasted_key not in output
    assert served.state.read_bytes() == before


def test_without_a_key_or_terminal_the_error_names_every_way_to_give_one(
    run_with: Any, served: Any
) -> None:
    output = refused_unchanged(run_with, served, IBMCLOUD_API_KEY=None)
    assert "stdin is not a terminal" in output
    for way in ("IBMCLOUD_API_KEY", "--api-key-file", "IBMCLOUD_IAM_TOKEN", "--access-token-file"):
        assert way in output


def test_cloud_settings_without_an_instance_id_warn_that_the_local_emulator_is_used(
    run_with: Any, served: Any
) -> None:
    local = {"IBMCLOUD_HPCS_INSTANCE_ID": None, "SIGNSERV_TKE_API_ENDPOINT": None}
    result = run_with("cryptounits", IBMCLOUD_API_KEY=None, IC_API_KEY=IAM_API_KEY, **local)
    succeeded(result)
    assert "warning: IC_API_KEY set but no service instance id" in result.stderr
    assert "using the local emulator" in result.stderr
    assert IAM_API_KEY not in result.output
    quiet = run_with("cryptounits", IBMCLOUD_API_KEY=None, **local)
    assert "warning" not in succeeded(quiet) + quiet.stderr


def test_ibmcloud_hpcs_tke_endpoint_picks_the_host_and_the_hint_names_it(
    run_with: Any, served: Any
) -> None:
    """A private test endpoint and an unknown region: the DNS hint names that very host."""
    region = f"no-such-region-{secrets.token_hex(4)}"
    output = refused_unchanged(
        run_with,
        served,
        SIGNSERV_TKE_API_ENDPOINT=None,
        IBMCLOUD_REGION=region,
        IBMCLOUD_HPCS_TKE_ENDPOINT="private.test.cloud.ibm.com",
    )
    host = f"tke.private.{region}.hs-crypto.test.cloud.ibm.com"
    assert f"GET https://{host}/v1/tke/{served.instance_id}/hsms failed" in output
    assert f"Check the region: {host} is not known" in output
    assert "tke.private.<region>.hs-crypto.test.cloud.ibm.com" in output


def test_an_unknown_ibmcloud_hpcs_tke_endpoint_is_the_sdks_invalid_api_endpoint(
    run_with: Any, served: Any
) -> None:
    output = refused_unchanged(
        run_with,
        served,
        SIGNSERV_TKE_API_ENDPOINT=None,
        IBMCLOUD_REGION="us-south",
        IBMCLOUD_HPCS_TKE_ENDPOINT="example.com",
    )
    assert "Invalid API endpoint 'example.com'" in output


# --- the HTTP API as an independent TKE client sends it (TKE-REFERENCE §3.2-§3.3) -----------


def _headers(token: str | None) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if token is not None:
        headers["Authorization"] = token
    return headers


def test_the_sdks_exact_requests_are_answered(
    served: RunningEmulatorServer, iam_server: IamTokenServer
) -> None:
    """GET /hsms and a raw POST body built by concatenation, as §3.2-§3.3 describe them."""
    token = "Bearer " + iam_server.issue_token(lifetime_seconds=300)
    instance = f"{served.base_url}/v1/tke/{served.instance_id}"
    listing = requests.get(f"{instance}/hsms", headers=_headers(token), timeout=10)
    assert listing.status_code == 200
    document = listing.json()
    unit = document["hsms"][0]
    assert {"hsm_id", "location", "serial_number"} <= set(unit)
    assert document["source_hsms"]

    body = '{"request":"' + QUERY_DOMAIN_ATTRIBUTES + '"}'
    answer = requests.post(
        f"{instance}/hsms/{unit['hsm_id']}", data=body, headers=_headers(token), timeout=10
    )
    assert answer.status_code == 200
    members = answer.json()
    assert all(isinstance(value, str) for value in members.values())
    assert members["response"].split(";")[1].startswith("00" + "0" * 16)


@pytest.mark.parametrize(
    "authorization",
    [None, "Basic dXNlcjpwYXNz", "Bearer not-a-jwt", "Bearer "],
    ids=["missing", "basic_credentials", "garbage_bearer", "empty_bearer"],
)
def test_requests_without_a_valid_bearer_token_get_401_json(
    served: RunningEmulatorServer, authorization: str | None
) -> None:
    answer = requests.get(
        f"{served.base_url}/v1/tke/{served.instance_id}/hsms",
        headers=_headers(authorization),
        timeout=10,
    )
    assert answer.status_code == 401
    error = answer.json()
    assert error["status_code"] == 401
    assert error["errors"][0]["code"] == "unauthorized"


@pytest.mark.parametrize(
    "body",
    ["not json", '{"request": 5}', "[]", '{"other":"x"}'],
    ids=["not_json", "request_not_a_string", "array", "no_request_member"],
)
def test_malformed_post_bodies_get_400_and_change_nothing(
    served: RunningEmulatorServer, iam_server: IamTokenServer, body: str
) -> None:
    token = "Bearer " + iam_server.issue_token(lifetime_seconds=300)
    hsm_id = requests.get(
        f"{served.base_url}/v1/tke/{served.instance_id}/hsms", headers=_headers(token), timeout=10
    ).json()["hsms"][0]["hsm_id"]
    before = served.state.read_bytes()
    answer = requests.post(
        f"{served.base_url}/v1/tke/{served.instance_id}/hsms/{hsm_id}",
        data=body,
        headers=_headers(token),
        timeout=10,
    )
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["code"] == "bad_request"
    assert served.state.read_bytes() == before


# --- TLS ---------------------------------------------------------------------------------------


def test_admin_ceremony_over_tls_with_a_ca_bundle(
    signserv_server: Any, service_keys: dict[str, str], tmp_path: Path, iam_server: Any
) -> None:
    """Over https, a TLS certificate not in --api-ca-bundle is refused; with it, admins change."""
    entries = [{"key": name, "token": token} for name, token in service_keys.items()]
    (tmp_path / "SIGNSERVKEYS").write_text(json.dumps(entries))
    certfile, keyfile = write_self_signed_localhost(tmp_path, "emulator")
    server = start_emulator_server(
        tmp_path / DEFAULT_STATE_FILENAME,
        iam_server.url,
        tls=(certfile, keyfile),
        ca_bundle=certfile,
    )
    try:
        run = cli_runner(
            signserv_server.url, tmp_path, server.client_env(iam_server.url, IAM_API_KEY)
        )
        untrusted = run("cryptounits")
        assert untrusted.exit_code == 1
        assert "SSLError" in str(untrusted.exception)
        assert "CA bundle" in str(untrusted.exception)
        alice = next(iter(service_keys))
        succeeded(
            run(
                "--api-ca-bundle",
                str(certfile),
                "cryptounit-admin-add",
                "--key",
                alice,
                "--name",
                "Alice",
            )
        )
        admins = json.loads(
            succeeded(run("--api-ca-bundle", str(certfile), "cryptounit-admins", "--json"))
        )
        assert {admin["name"] for unit in admins for admin in unit["administrators"]} == {"Alice"}
    finally:
        server.stop()


SERVER_SIDE_PACKAGES = {"flask", "werkzeug", "gunicorn"}


def test_a_client_command_over_http_imports_no_flask_werkzeug_gunicorn_or_server(
    workstation: Path, served: RunningEmulatorServer, iam_server: IamTokenServer
) -> None:
    """The real console script runs ``cryptounits`` against ``emulator serve``; -X importtime
    lists every module it imported, and none is a server's."""
    env = {
        **os.environ,
        **served.client_env(iam_server.url, IAM_API_KEY),
        "CLOUDTKEFILES": str(workstation),
    }
    run = subprocess.run(
        [sys.executable, "-X", "importtime", SIGNSERV_TKE, "cryptounits"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert f"service instance {served.instance_id} at {served.base_url}" in run.stdout
    imported = {
        line.rpartition("|")[2].strip()
        for line in run.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "signserv.tke.client.cloud_api" in imported, "the HTTP transport was used"
    top_level = {name.partition(".")[0] for name in imported}
    assert not SERVER_SIDE_PACKAGES & top_level
    assert not {
        name
        for name in imported
        if name.startswith(
            (
                "signserv.server",
                "signserv.tke.emulator.http_api",
                "signserv.tke.emulator.gunicorn_runner",
            )
        )
    }
