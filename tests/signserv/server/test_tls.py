"""TLS and client certificates (mTLS) through config, served by real gunicorn."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from signserv.host.config import ConfigError, load_settings

from ...conftest import make_home


@dataclass
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client: tuple[str, str]
    other_client: tuple[str, str]
    """Another operator's certificate from the same CA."""
    rogue_client: tuple[str, str]


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> str:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    return str(path)


def _certificate(subject: str, key, issuer_name: str, issuer_key, *, ca: bool, usage, san=None):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write_cert(certificate: x509.Certificate, path: Path) -> str:
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return str(path)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A test CA, a server certificate for 127.0.0.1, a client certificate, and a rogue one."""
    directory = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("test CA", ca_key, "test CA", ca_key, ca=True, usage=None)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _certificate(
        "127.0.0.1",
        server_key,
        "test CA",
        ca_key,
        ca=False,
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        san=[x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
    )
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = _certificate(
        "operator", client_key, "test CA", ca_key, ca=False, usage=ExtendedKeyUsageOID.CLIENT_AUTH
    )
    other_key = ec.generate_private_key(ec.SECP256R1())
    other = _certificate(
        "operator 2", other_key, "test CA", ca_key, ca=False, usage=ExtendedKeyUsageOID.CLIENT_AUTH
    )
    rogue_ca_key = ec.generate_private_key(ec.SECP256R1())
    rogue_key = ec.generate_private_key(ec.SECP256R1())
    rogue = _certificate(
        "operator",
        rogue_key,
        "rogue CA",
        rogue_ca_key,
        ca=False,
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
    )
    return Pki(
        ca=Path(_write_cert(ca, directory / "ca.pem")),
        server_cert=Path(_write_cert(server, directory / "server.pem")),
        server_key=Path(_write_key(server_key, directory / "server.key")),
        client=(
            _write_cert(client, directory / "client.pem"),
            _write_key(client_key, directory / "client.key"),
        ),
        other_client=(
            _write_cert(other, directory / "other.pem"),
            _write_key(other_key, directory / "other.key"),
        ),
        rogue_client=(
            _write_cert(rogue, directory / "rogue.pem"),
            _write_key(rogue_key, directory / "rogue.key"),
        ),
    )


def tls_home(directory: Path, pki: Pki, client_ca: bool, client_certificates: str = "required"):
    config = f"tls:\n  certfile: {pki.server_cert}\n  keyfile: {pki.server_key}\n"
    if client_ca:
        config += f"  client_ca_file: {pki.ca}\n  client_certificates: {client_certificates}\n"
    return make_home(directory, config)


def test_tls_serves_https_with_hsts(start_signserv, tmp_path, pki: Pki) -> None:
    home = tls_home(tmp_path / "tls", pki, client_ca=False)
    token = home.create_key("admin")
    service = start_signserv(home, scheme="https", verify=str(pki.ca))
    response = requests.get(
        f"{service.url}/keys/admin",
        headers={"Authorization": token},
        verify=str(pki.ca),
        timeout=10,
    )
    assert response.status_code == 200
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    with pytest.raises(requests.ConnectionError):
        requests.get(service.url.replace("https", "http") + "/healthz", timeout=5)


def test_mtls_requires_a_client_certificate_from_the_configured_ca(start_signserv, tmp_path, pki):
    home = tls_home(tmp_path / "mtls", pki, client_ca=True)
    token = home.create_key("admin")
    service = start_signserv(home, scheme="https", verify=str(pki.ca), cert=pki.client)
    url = f"{service.url}/keys/admin"
    headers = {"Authorization": token}
    assert requests.get(url, headers=headers, verify=str(pki.ca), cert=pki.client, timeout=10).ok
    for cert in (None, pki.rogue_client):
        with pytest.raises((requests.exceptions.SSLError, requests.ConnectionError)):
            requests.get(url, headers=headers, verify=str(pki.ca), cert=cert, timeout=10)


@pytest.mark.parametrize(
    "binding",
    [
        pytest.param(lambda pki: ("--client-cert-file", pki.client[0]), id="fingerprint"),
        pytest.param(lambda pki: ("--client-cert-subject", "CN=operator"), id="subject"),
    ],
)
def test_a_bound_key_needs_its_token_and_its_client_certificate(
    start_signserv, tmp_path, pki: Pki, binding
) -> None:
    """Over real mTLS with optional client certificates: the right token alone, or with another
    operator's valid certificate, is refused 403; with the bound certificate it is served."""
    home = tls_home(tmp_path / "bound", pki, client_ca=True, client_certificates="optional")
    token, free_token = home.create_key("bound"), home.create_key("free")
    home.run("keys", "policy", "bound", "--allow", "any", *binding(pki))
    service = start_signserv(home, scheme="https", verify=str(pki.ca))

    def answers(name: str, key_token: str, cert: tuple[str, str] | None) -> list[requests.Response]:
        headers = {"Authorization": key_token}
        body = {"hash_algorithm": "sha2-512", "input": "aGVsbG8="}
        return [
            requests.get(
                f"{service.url}/keys/{name}", headers=headers, verify=str(pki.ca), cert=cert,
                timeout=10,
            ),
            requests.post(
                f"{service.url}/sign/{name}", json=body, headers=headers, verify=str(pki.ca),
                cert=cert, timeout=10,
            ),
        ]  # fmt: skip

    for cert in (None, pki.other_client):
        for response in answers("bound", token, cert):
            assert response.status_code == 403
            assert response.json()["error"] == "client_certificate_required"
    assert [response.status_code for response in answers("bound", token, pki.client)] == [200, 200]
    assert [response.status_code for response in answers("free", free_token, None)] == [200, 200]
    wrong = answers("bound", "wrong-token-0123456789", pki.client)
    assert [response.status_code for response in wrong] == [401, 401]


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("tls:\n  certfile: a.pem\n", "go together"),
        ("tls:\n  client_ca_file: ca.pem\n", "needs"),
        (
            "tls:\n  certfile: a.pem\n  keyfile: a.key\n  client_certificates: sometimes\n",
            "one of required, optional",
        ),
    ],
)
def test_incomplete_tls_config_is_refused(tmp_path, yaml_text: str, message: str) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(yaml_text)
    with pytest.raises(ConfigError, match=message):
        load_settings(tmp_path, config)
