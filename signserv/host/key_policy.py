"""A key's signing policy: what it may sign, where, and whose TLS client certificate must carry
its token.

Opt-in per key (docs/policy.md). The policy names the kinds of input the key may sign (the words
of :class:`signserv.tke.wire.signed_input.InputKind`), optionally the crypto modules (serials)
and domains a command may target, and optionally the client certificate the key is bound to (by
the SHA-256 of its DER, or by its subject). The keystore stores the canonical bytes of
:meth:`KeyPolicy.to_bytes` and binds them under the master key (:mod:`keystore.crypto`), so a
policy read back from an unlocked key is the one an administrator set; this module gives those
bytes their meaning. Checks raise: :class:`PolicyRefused` names the rule that refused,
:class:`ClientCertificateRequired` says only that the certificate is missing or not the one.
"""

from __future__ import annotations

import hashlib
import json
import string
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography import x509

from signserv.errors import SignservError
from signserv.tke.wire.signed_input import InputKind, SignedInput

POLICY_VERSION = 1
MAX_DOMAIN = 255
"""The largest domain index a policy names: crypto units have far fewer domains (TKE-REFERENCE
§3.6 prints an index in two digits), and the block's u32 field is not a reason to accept more."""
MAX_MODULE_CHARACTERS = 64
SHA256_HEX_CHARACTERS = 64
_MODULE_CHARACTERS = frozenset(string.ascii_letters + string.digits + "-_.")


class PolicyError(SignservError):
    """Base of the signing-policy errors."""


class PolicyInvalid(PolicyError, ValueError):
    """A policy that cannot be built or read: an unknown kind, a bad domain, module or binding."""


class PolicyRefused(PolicyError):
    """The key's policy does not allow this input; ``rule`` names the rule that refused it."""

    def __init__(self, rule: str) -> None:
        super().__init__(f"the key's signing policy refuses this input: {rule}")
        self.rule = rule


class ClientCertificateRequired(PolicyError):
    """The key is bound to a TLS client certificate, and the request did not come with it."""

    def __init__(self) -> None:
        super().__init__(
            "this key is bound to a TLS client certificate: send its token over mutual TLS "
            "with that certificate"
        )


def certificate_fingerprint(certificate_der: bytes) -> str:
    """The SHA-256 of a certificate's DER, lowercase hex: what a fingerprint binding names."""
    return hashlib.sha256(certificate_der).hexdigest()


def _normalised_subject(subject: str) -> str:
    try:
        return x509.Name.from_rfc4514_string(subject).rfc4514_string()
    except ValueError:
        raise PolicyInvalid(
            f"{subject!r} is not an RFC 4514 subject such as 'CN=admin 1'"
        ) from None


@dataclass(frozen=True)
class ClientCertificateBinding:
    """The one client certificate a key's token must come with: by fingerprint or by subject.

    A subject binding trusts every certificate the configured client CA issues under that
    subject; a fingerprint binding names exactly one certificate.
    """

    sha256: str | None = None
    subject: str | None = None

    def __post_init__(self) -> None:
        if (self.sha256 is None) == (self.subject is None):
            raise PolicyInvalid("a client-certificate binding names a fingerprint or a subject")
        if self.sha256 is not None and (
            len(self.sha256) != SHA256_HEX_CHARACTERS
            or not set(self.sha256) <= set(string.hexdigits.lower())
        ):
            raise PolicyInvalid(
                "a certificate fingerprint is the SHA-256 of its DER: 64 lowercase hex digits"
            )
        if self.subject is not None and _normalised_subject(self.subject) != self.subject:
            raise PolicyInvalid(f"the subject {self.subject!r} is not in RFC 4514 normal form")

    @classmethod
    def for_fingerprint(cls, fingerprint: str) -> ClientCertificateBinding:
        """A binding to the certificate whose DER has this SHA-256 (hex; ``:`` allowed)."""
        return cls(sha256=fingerprint.replace(":", "").strip().lower())

    @classmethod
    def for_subject(cls, subject: str) -> ClientCertificateBinding:
        """A binding to any certificate of the client CA with this subject (RFC 4514)."""
        return cls(subject=_normalised_subject(subject))

    def matches(self, certificate_der: bytes) -> bool:
        """True when ``certificate_der`` (already verified by TLS) is the bound certificate."""
        if self.sha256 is not None:
            return certificate_fingerprint(certificate_der) == self.sha256
        try:
            certificate = x509.load_der_x509_certificate(certificate_der)
        except ValueError:
            return False
        return certificate.subject.rfc4514_string() == self.subject

    def as_record(self) -> dict[str, str]:
        """The binding as JSON fields."""
        return (
            {"sha256": self.sha256} if self.sha256 is not None else {"subject": str(self.subject)}
        )


def _require_module(module: str) -> str:
    if not 0 < len(module) <= MAX_MODULE_CHARACTERS or not set(module) <= _MODULE_CHARACTERS:
        raise PolicyInvalid(
            f"{module!r} is not a crypto-module serial (such as 93AABC12) or module id in hex"
        )
    return module.upper()


def _require_domain(domain: object) -> int:
    if isinstance(domain, bool) or not isinstance(domain, int) or not 0 <= domain <= MAX_DOMAIN:
        raise PolicyInvalid(f"{domain!r} is not a domain index (0 to {MAX_DOMAIN})")
    return domain


@dataclass(frozen=True)
class KeyPolicy:
    """What one key may sign; empty ``modules`` or ``domains`` mean any module or domain."""

    kinds: frozenset[InputKind]
    modules: frozenset[str] = frozenset()
    domains: frozenset[int] = frozenset()
    client_certificate: ClientCertificateBinding | None = field(default=None)

    def __post_init__(self) -> None:
        if not self.kinds:
            raise PolicyInvalid(
                "a policy allows at least one kind of input (disable the key to refuse all)"
            )
        for module in self.modules:
            if _require_module(module) != module:
                raise PolicyInvalid(f"module {module!r} must be written in upper case")
        for domain in self.domains:
            _require_domain(domain)

    @classmethod
    def build(
        cls,
        kinds: Iterable[InputKind],
        modules: Iterable[str] = (),
        domains: Iterable[int] = (),
        client_certificate: ClientCertificateBinding | None = None,
    ) -> KeyPolicy:
        """A policy from what an administrator typed: module serials in any case."""
        return cls(
            frozenset(kinds),
            frozenset(_require_module(module) for module in modules),
            frozenset(_require_domain(domain) for domain in domains),
            client_certificate,
        )

    # --- encoding ----------------------------------------------------------------------------

    def as_record(self) -> dict[str, object]:
        """The policy as JSON fields (what `keys show --json` prints); unset rules left out."""
        record: dict[str, object] = {"allow": sorted(kind.value for kind in self.kinds)}
        if self.modules:
            record["modules"] = sorted(self.modules)
        if self.domains:
            record["domains"] = sorted(self.domains)
        if self.client_certificate is not None:
            record["client_certificate"] = self.client_certificate.as_record()
        return record

    def to_bytes(self) -> bytes:
        """The canonical encoding: JSON, sorted keys and lists, no spaces; what is sealed."""
        document = {"version": POLICY_VERSION, **self.as_record()}
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> KeyPolicy:
        """Read :meth:`to_bytes`; anything else (a field or version this one does not know)
        raises :class:`PolicyInvalid`, so an unknown rule is never ignored."""
        try:
            document = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise PolicyInvalid("a stored policy is not JSON") from None
        if not isinstance(document, dict) or document.get("version") != POLICY_VERSION:
            raise PolicyInvalid(f"a stored policy is not a version {POLICY_VERSION} policy")
        unknown = set(document) - {"version", "allow", "modules", "domains", "client_certificate"}
        if unknown:
            raise PolicyInvalid(
                f"a stored policy has rules this signserv does not know: {sorted(unknown)}"
            )
        return cls(
            frozenset(_kind(word) for word in _list(document, "allow")),
            frozenset(_stored_module(module) for module in _list(document, "modules")),
            frozenset(_require_domain(domain) for domain in _list(document, "domains")),
            _binding(document.get("client_certificate")),
        )

    # --- checking ----------------------------------------------------------------------------

    def check_input(self, signed: SignedInput) -> None:
        """Raise :class:`PolicyRefused` unless the policy allows signing ``signed``.

        Certificates and opaque inputs target no module or domain: only their kind is judged.
        """
        if signed.kind not in self.kinds:
            raise PolicyRefused(f"kind {signed.kind.value} not allowed")
        if signed.command is None:
            return
        if self.modules and (signed.module or "").upper() not in self.modules:
            raise PolicyRefused(f"module {signed.module} not allowed")
        if self.domains and signed.domain not in self.domains:
            raise PolicyRefused(f"domain {signed.domain} not allowed")

    def check_client(self, certificate_der: bytes | None) -> None:
        """Raise :class:`ClientCertificateRequired` unless the key is unbound or
        ``certificate_der`` (the TLS peer's verified certificate) is the bound one."""
        if self.client_certificate is None:
            return
        if certificate_der is None or not self.client_certificate.matches(certificate_der):
            raise ClientCertificateRequired

    def in_words(self) -> list[str]:
        """One line per rule, for `keys show` and `keys policy --show`."""
        lines = ["may sign: " + ", ".join(sorted(kind.value for kind in self.kinds))]
        lines.append("modules: " + (", ".join(sorted(self.modules)) or "any"))
        lines.append("domains: " + (", ".join(map(str, sorted(self.domains))) or "any"))
        binding = self.client_certificate
        if binding is None:
            lines.append("client certificate: not bound (the token alone)")
        elif binding.sha256 is not None:
            lines.append(f"client certificate: SHA-256 {binding.sha256}")
        else:
            lines.append(f"client certificate: subject {binding.subject}")
        return lines


def _list(document: dict[str, object], name: str) -> list[object]:
    value = document.get(name, [])
    if not isinstance(value, list):
        raise PolicyInvalid(f"a stored policy's {name!r} is not a list")
    return value


def _stored_module(module: object) -> str:
    if not isinstance(module, str):
        raise PolicyInvalid(f"{module!r} is not a crypto-module serial")
    return module


def _kind(word: object) -> InputKind:
    try:
        return InputKind(word)
    except ValueError:
        raise PolicyInvalid(f"{word!r} is not a kind of input a policy names") from None


def _binding(value: object) -> ClientCertificateBinding | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not set(value) <= {"sha256", "subject"}:
        raise PolicyInvalid("a stored policy's client_certificate is not a binding")
    sha256, subject = value.get("sha256"), value.get("subject")
    if not isinstance(sha256, str | None) or not isinstance(subject, str | None):
        raise PolicyInvalid("a stored policy's client_certificate is not a binding")
    return ClientCertificateBinding(sha256=sha256, subject=subject)
