"""The options that point ``signserv-tke`` at a service instance, and its IAM credentials.

Named as ``ibmcloud`` and the Terraform provider name them: ``IBMCLOUD_API_KEY``,
``IBMCLOUD_REGION``, ``IBMCLOUD_HPCS_TKE_ENDPOINT``, ``IBMCLOUD_IAM_API_ENDPOINT``; the
instance id is ``IBMCLOUD_HPCS_INSTANCE_ID``. Without an instance id the local emulator
is used. The API key and access tokens come from the environment, a file or a no-echo
prompt, never from the command line.
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

API_KEY_VARIABLE = "IBMCLOUD_API_KEY"
ACCESS_TOKEN_VARIABLE = "IBMCLOUD_IAM_TOKEN"  # noqa: S105 (the name of a variable)


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
        """An issued access token (file, then env) or an API key (file, env, then a prompt)."""
        if self.access_token_file is not None:
            return IssuedAccessToken(read_secret(self.access_token_file, "IAM access token"))
        api_key = self._api_key(interactive=interactive)
        if api_key is None:
            return IssuedAccessToken(Secret(os.environ[ACCESS_TOKEN_VARIABLE]))
        return ApiKeyExchange(
            api_key, iam_endpoint=self.iam_endpoint, session=session, timeout=timeout
        )

    def _api_key(self, *, interactive: bool) -> Secret[str] | None:
        if self.api_key_file is not None:
            return read_secret(self.api_key_file, "IBM Cloud API key")
        from_environment = os.environ.get(API_KEY_VARIABLE)
        if from_environment:
            return Secret(from_environment)
        if os.environ.get(ACCESS_TOKEN_VARIABLE):
            return None
        return read_secret(None, "IBM Cloud API key", interactive=interactive)


# click options: each stores its value on the CloudOptions of the invocation.
TARGET_OPTIONS = (
    click.option(
        "--instance-id",
        envvar="IBMCLOUD_HPCS_INSTANCE_ID",
        metavar="GUID",
        help="Service instance to administer [env IBMCLOUD_HPCS_INSTANCE_ID]; "
        "without it, the local emulator.",
    ),
    click.option(
        "--region",
        envvar=["IBMCLOUD_REGION", "IC_REGION"],
        metavar="REGION",
        help="Region of the instance, e.g. us-south [env IBMCLOUD_REGION].",
    ),
    click.option(
        "--tke-endpoint",
        envvar="IBMCLOUD_HPCS_TKE_ENDPOINT",
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
        f"{API_KEY_VARIABLE}, else a prompt.",
    ),
    click.option(
        "--access-token-file",
        metavar="PATH",
        help=f"File holding an issued IAM access token instead of an API key "
        f"[or env {ACCESS_TOKEN_VARIABLE}].",
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
