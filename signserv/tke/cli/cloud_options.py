"""The options that point ``signserv-tke`` at a service instance, and its IAM credentials.

Named as ``ibmcloud`` and the Terraform provider name them: ``IBMCLOUD_API_KEY`` (or the
provider's ``IC_API_KEY``), ``IBMCLOUD_IAM_TOKEN`` (``IC_IAM_TOKEN``), ``IBMCLOUD_REGION``
(``IC_REGION``), ``IBMCLOUD_HPCS_TKE_ENDPOINT``, ``IBMCLOUD_IAM_API_ENDPOINT``; the instance
id is ``IBMCLOUD_HPCS_INSTANCE_ID``. Without an instance id the local emulator is used. The
API key and access tokens come from the environment, a file or a no-echo prompt, never from
the command line; a file that cannot be read is named by its option, not its path (a key
pasted where the path goes must not be echoed).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import click
import requests

from signserv.secret import Secret
from signserv.secret_input import read_secret
from signserv.tke.client.iam import (
    DEFAULT_IAM_ENDPOINT,
    AccessTokenSource,
    ApiKeyExchange,
    IssuedAccessToken,
)
from signserv.tke.errors import TKEError

API_KEY_VARIABLE = "IBMCLOUD_API_KEY"
ACCESS_TOKEN_VARIABLE = "IBMCLOUD_IAM_TOKEN"  # noqa: S105 (the name of a variable)
# The Terraform provider's names for the same values; ours are read first.
API_KEY_VARIABLES = (API_KEY_VARIABLE, "IC_API_KEY")
ACCESS_TOKEN_VARIABLES = (ACCESS_TOKEN_VARIABLE, "IC_IAM_TOKEN")
REGION_VARIABLES = ("IBMCLOUD_REGION", "IC_REGION")
TKE_ENDPOINT_VARIABLE = "IBMCLOUD_HPCS_TKE_ENDPOINT"
INSTANCE_ID_VARIABLE = "IBMCLOUD_HPCS_INSTANCE_ID"
# Set without an instance id, these suggest the user meant the cloud, not the local emulator.
CLOUD_VARIABLES = (
    *API_KEY_VARIABLES,
    *ACCESS_TOKEN_VARIABLES,
    *REGION_VARIABLES,
    TKE_ENDPOINT_VARIABLE,
)


class CredentialUnavailable(TKEError):
    """No IBM Cloud API key or access token could be read; the message says where to put one."""


def _from_environment(names: tuple[str, ...]) -> str | None:
    return next((os.environ[name] for name in names if os.environ.get(name)), None)


@dataclass
class CloudOptions:
    """What the targeting and credential options said."""

    instance_id: str | None = None
    region: str | None = None
    tke_endpoint: str | None = None
    api_endpoint: str | None = None
    iam_endpoint: str = DEFAULT_IAM_ENDPOINT
    api_key_file: str | None = None
    access_token_file: str | None = None
    api_ca_bundle: Path | None = None
    trusted_roots: tuple[Path, ...] = field(default_factory=tuple)

    def access_tokens(
        self, session: requests.Session, *, timeout: float, interactive: bool
    ) -> AccessTokenSource:
        """An issued access token from a file, an API key from a file, the environment's API
        key, then its access token, and last a no-echo prompt for an API key."""
        if self.access_token_file is not None:
            return IssuedAccessToken(
                read_secret(
                    self.access_token_file, "IAM access token", option="--access-token-file"
                )
            )
        if self.api_key_file is not None:
            api_key = read_secret(self.api_key_file, "IBM Cloud API key", option="--api-key-file")
        elif api_key_text := _from_environment(API_KEY_VARIABLES):
            api_key = Secret(api_key_text)
        elif token := _from_environment(ACCESS_TOKEN_VARIABLES):
            return IssuedAccessToken(Secret(token))
        elif not interactive:
            raise CredentialUnavailable(
                "an IBM Cloud API key or IAM access token is needed and stdin is not a "
                f"terminal to ask for one: set {API_KEY_VARIABLE} (or IC_API_KEY), pass "
                f"--api-key-file PATH, set {ACCESS_TOKEN_VARIABLE} (or IC_IAM_TOKEN), or "
                "pass --access-token-file PATH"
            )
        else:
            api_key = read_secret(None, "IBM Cloud API key", interactive=True)
        return ApiKeyExchange(
            api_key, iam_endpoint=self.iam_endpoint, session=session, timeout=timeout
        )

    def cloud_settings_without_instance(self) -> list[str]:
        """The cloud options and variables given although no instance id was: likely a mistake."""
        given = [name for name in CLOUD_VARIABLES if os.environ.get(name)]
        options = {
            "--api-key-file": self.api_key_file,
            "--access-token-file": self.access_token_file,
            "--api-ca-bundle": self.api_ca_bundle,
        }
        return given + [option for option, value in options.items() if value is not None]


# click options: each stores its value on the CloudOptions of the invocation.
TARGET_OPTIONS = (
    click.option(
        "--instance-id",
        envvar=INSTANCE_ID_VARIABLE,
        metavar="GUID",
        help="Service instance to administer [env IBMCLOUD_HPCS_INSTANCE_ID]; "
        "without it, the local emulator.",
    ),
    click.option(
        "--region",
        envvar=list(REGION_VARIABLES),
        metavar="REGION",
        help="Region of the instance, e.g. us-south [env IBMCLOUD_REGION or IC_REGION].",
    ),
    click.option(
        "--tke-endpoint",
        envvar=TKE_ENDPOINT_VARIABLE,
        metavar="DOMAIN",
        help="cloud.ibm.com (default), private.cloud.ibm.com, test.cloud.ibm.com or "
        "private.test.cloud.ibm.com [env IBMCLOUD_HPCS_TKE_ENDPOINT].",
    ),
    click.option(
        "--api-endpoint",
        envvar="SIGNSERV_TKE_API_ENDPOINT",
        metavar="URL",
        help="Base URL of a TKE API, e.g. an emulator's; overrides region and "
        "--tke-endpoint [env SIGNSERV_TKE_API_ENDPOINT].",
    ),
    click.option(
        "--iam-endpoint",
        envvar="IBMCLOUD_IAM_API_ENDPOINT",
        metavar="URL",
        default=DEFAULT_IAM_ENDPOINT,
        show_default=True,
        help="IAM to exchange the API key at [env IBMCLOUD_IAM_API_ENDPOINT].",
    ),
    click.option(
        "--api-key-file",
        metavar="PATH",
        help=f"File holding the IBM Cloud API key, or - for stdin; default env "
        f"{API_KEY_VARIABLE} or IC_API_KEY, else a prompt.",
    ),
    click.option(
        "--access-token-file",
        metavar="PATH",
        help=f"File holding an issued IAM access token instead of an API key "
        f"[or env {ACCESS_TOKEN_VARIABLE} or IC_IAM_TOKEN].",
    ),
    click.option(
        "--api-ca-bundle",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        help="CA certificates for the TKE API's TLS certificate (default: system store).",
    ),
    click.option(
        "--trust-oa-root",
        "trusted_roots",
        envvar="SIGNSERV_TKE_TRUST_OA_ROOT",
        multiple=True,
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        metavar="FILE",
        help="Also trust this OA root (a file from 'emulator serve --export-oa-root'); "
        "the IBM roots are always trusted [env SIGNSERV_TKE_TRUST_OA_ROOT].",
    ),
)
