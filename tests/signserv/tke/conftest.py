"""Fixtures shared by the crypto-unit tests."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from signserv.contract import PublicPoint
from signserv.tke.emulator import DEFAULT_STATE_FILENAME

from ...iam_token_server import IamTokenServer
from .emulator_server import start_emulator_server

IAM_API_KEY = f"test-api-key-{secrets.token_hex(8)}"


@pytest.fixture
def generator_point() -> PublicPoint:
    """The public key of private scalar 1: the P-521 generator G (TKE-REFERENCE §10 vector 1)."""
    numbers = ec.derive_private_key(1, ec.SECP521R1()).public_key().public_numbers()
    return PublicPoint(x=numbers.x, y=numbers.y)


@pytest.fixture(scope="session")
def iam_server() -> Iterator[IamTokenServer]:
    """The session's local IAM; it knows :data:`IAM_API_KEY`."""
    server = IamTokenServer({IAM_API_KEY}).start()
    yield server
    server.stop()


@pytest.fixture
def tke_api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Extra environment for ``signserv-tke``: none for the local emulator, or, with
    ``indirect`` param ``"http"``, the emulator under $CLOUDTKEFILES served over the TKE API
    (real gunicorn) and an API key exchanged at the local IAM.
    """
    if getattr(request, "param", "local") == "local":
        yield {}
        return
    iam = request.getfixturevalue("iam_server")
    server = start_emulator_server(tmp_path / DEFAULT_STATE_FILENAME, iam.url)
    yield server.client_env(iam.url, IAM_API_KEY)
    server.stop()


over_both_transports = pytest.mark.parametrize(
    "tke_api", ["local", "http"], indirect=True, ids=["local-emulator", "tke-api-over-http"]
)
"""Run a flow test against the in-process emulator and against ``emulator serve`` over HTTP."""
