"""`signserv keys policy NAME ...`: set, show or clear a key's signing policy (docs/policy.md).

Setting or clearing needs the master key (this host's), never a token: the policy is bound into
the key's master-share seal, so nobody with only database access can write or remove one.
"""

from __future__ import annotations

from pathlib import Path

import click
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from keystore import KeyStore, MasterShareMismatch
from signserv.cli.context import pass_settings
from signserv.cli.home_state import open_home_keystore
from signserv.host.config import Settings
from signserv.host.key_policy import (
    ClientCertificateBinding,
    KeyPolicy,
    PolicyInvalid,
    certificate_fingerprint,
)
from signserv.tke.wire.signed_input import InputKind

ANY_KIND = "any"
_ALTERED = "altered without the master key: the key is refused until its record is restored"


def stored_policy(store: KeyStore, name: str) -> KeyPolicy | None:
    """``name``'s policy as the master key proves it (None: the key has none)."""
    encoded = store.policy(name)
    return None if encoded is None else KeyPolicy.from_bytes(encoded)


def policy_record(store: KeyStore, name: str) -> object:
    """The policy as `keys show/list --json` print it: its rules, null, or what is wrong."""
    try:
        policy = stored_policy(store, name)
    except (MasterShareMismatch, PolicyInvalid) as exc:
        return {"error": _ALTERED if isinstance(exc, MasterShareMismatch) else str(exc)}
    return None if policy is None else policy.as_record()


def policy_lines(store: KeyStore, name: str) -> list[str]:
    """The policy in words, one rule a line, for `keys show` and `keys policy --show`."""
    try:
        policy = stored_policy(store, name)
    except MasterShareMismatch:
        return [_ALTERED]
    except PolicyInvalid as exc:
        return [f"unreadable: {exc}"]
    return ["none: signs any input for its token"] if policy is None else policy.in_words()


def _certificate_file_fingerprint(path: Path) -> str:
    """The SHA-256 of the DER of the PEM (or DER) certificate in ``path``."""
    data = path.read_bytes()
    try:
        certificate = (
            x509.load_pem_x509_certificate(data)
            if b"-----BEGIN" in data
            else x509.load_der_x509_certificate(data)
        )
    except ValueError:
        raise click.BadParameter(
            f"{path} holds no X.509 certificate", param_hint="--client-cert-file"
        ) from None
    return certificate_fingerprint(certificate.public_bytes(Encoding.DER))


def _binding(
    fingerprint: str | None, subject: str | None, certificate_file: Path | None
) -> ClientCertificateBinding | None:
    given = [option for option in (fingerprint, subject, certificate_file) if option is not None]
    if len(given) > 1:
        raise click.UsageError(
            "bind to one certificate: --client-cert-fingerprint, --client-cert-subject or "
            "--client-cert-file"
        )
    if certificate_file is not None:
        return ClientCertificateBinding.for_fingerprint(
            _certificate_file_fingerprint(certificate_file)
        )
    if fingerprint is not None:
        return ClientCertificateBinding.for_fingerprint(fingerprint)
    if subject is not None:
        return ClientCertificateBinding.for_subject(subject)
    return None


def _policy_from_options(
    allow: tuple[str, ...],
    modules: tuple[str, ...],
    domains: tuple[int, ...],
    binding: ClientCertificateBinding | None,
) -> KeyPolicy:
    if not allow:
        raise click.UsageError(
            f"name what the key may sign with --allow KIND (or --allow {ANY_KIND}), or use "
            "--show or --clear"
        )
    kinds = set(InputKind) if ANY_KIND in allow else {InputKind(word) for word in allow}
    return KeyPolicy.build(kinds, modules, domains, binding)


@click.command("policy")
@click.argument("name")
@click.option(
    "--allow",
    multiple=True,
    type=click.Choice([kind.value for kind in InputKind] + [ANY_KIND]),
    help="A kind of input the key may sign (repeat for several): queries, administrators, "
    "attributes, master-key, zeroize, other-commands (commands signserv does not name), "
    "certificates (administrator certificates), key-probe (the test signature of "
    "`signserv-tke apply` and `signserv check`), opaque (anything else); any: every kind.",
)
@click.option(
    "--module",
    "modules",
    multiple=True,
    metavar="SERIAL",
    help="A crypto module commands may target, by serial (e.g. 93AABC12); repeat for several. "
    "Default: any module.",
)
@click.option(
    "--domain",
    "domains",
    multiple=True,
    type=click.IntRange(0, 255),
    metavar="N",
    help="A domain index (0-255) commands may target; repeat for several. Default: any domain.",
)
@click.option(
    "--client-cert-fingerprint",
    metavar="SHA256HEX",
    help="Bind the key to the TLS client certificate whose DER has this SHA-256.",
)
@click.option(
    "--client-cert-subject",
    metavar="RFC4514",
    help="Bind the key to client certificates with this subject (e.g. 'CN=admin 1') issued "
    "by tls.client_ca_file.",
)
@click.option(
    "--client-cert-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Bind the key to this certificate (PEM or DER); its SHA-256 is stored.",
)
@click.option("--clear", is_flag=True, help="Remove the policy: the key signs any input again.")
@click.option("--show", is_flag=True, help="Print the policy and change nothing.")
@pass_settings
def policy_command(
    settings: Settings,
    name: str,
    allow: tuple[str, ...],
    modules: tuple[str, ...],
    domains: tuple[int, ...],
    client_cert_fingerprint: str | None,
    client_cert_subject: str | None,
    client_cert_file: Path | None,
    clear: bool,
    show: bool,
) -> None:
    """Set, show (--show) or remove (--clear) NAME's signing policy; needs the master key.

    A new policy replaces the old one whole. Commands outside the listed modules or domains are
    refused with 403 'policy_refused' naming the rule; a key bound to a client certificate
    answers 403 'client_certificate_required' to its token sent without that certificate.
    """
    rules_given = (
        bool(allow or modules or domains or client_cert_fingerprint or client_cert_subject)
        or client_cert_file is not None
    )
    if show + clear + rules_given > 1:
        raise click.UsageError("use --show, --clear or the policy's rules, one at a time")
    store = open_home_keystore(settings)
    store.info(name)
    if show or not (clear or rules_given):
        for line in policy_lines(store, name):
            click.echo(line)
        return
    if clear:
        store.set_policy(name, None)
        click.echo(f"policy of key {name} removed: it signs any input for its token")
        return
    binding = _binding(client_cert_fingerprint, client_cert_subject, client_cert_file)
    policy = _policy_from_options(allow, modules, domains, binding)
    store.set_policy(name, policy.to_bytes())
    click.echo(f"policy of key {name} set:")
    for line in policy.in_words():
        click.echo(f"  {line}")
