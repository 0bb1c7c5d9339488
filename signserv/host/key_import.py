"""Loading existing private keys for `signserv keys import`: TKE CLI key files and PEM files.

TKE-REFERENCE §8. A TKE CLI signature-key file is JSON whose members are all strings; its
``enckey`` is AES-256-GCM (no associated data) under PBKDF2-HMAC-SHA256(password, ``seaSalt``,
4096 iterations), and decrypts to a PEM block labelled ``PRIVATE KEY`` that holds SEC1 DER.
Only ``p521ec`` files can be imported: the signing-service contract is P-521 only. Pure
functions: bytes in, a private key out, and one typed error per refusal. No message ever holds
a password or key material.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from signserv.contract import PublicPoint
from signserv.errors import SignservError
from signserv.secret import Secret

TKE_P521_KEY_TYPE = "p521ec"
PBKDF2_ITERATIONS = 4096
AES_KEY_BYTES = 32
GCM_NONCE_BYTES = 12
GCM_TAG_BYTES = 16
SKI_HEX_CHARACTERS = 64
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)
_ENCRYPTED_PEM_MARKERS = (b"-----BEGIN ENCRYPTED PRIVATE KEY-----", b"Proc-Type: 4,ENCRYPTED")


class KeyImportError(SignservError, ValueError):
    """A key file that cannot be imported; the message says why and never shows a secret."""


class MalformedKeyFile(KeyImportError):
    """The file is not a well-formed TKE key file or PEM private key."""


class UnsupportedKeyType(KeyImportError):
    """The key is not a P-521 EC key (an RSA key file, another curve)."""


class KeyFileDecryptionFailed(KeyImportError):
    """AES-GCM authentication failed: a wrong password, or an altered ``enckey``."""


class SkiMismatch(KeyImportError):
    """The key file's ``ski`` is not the SKI of the key it holds."""


@dataclass(frozen=True)
class TkeKeyFile:
    """The parsed, still encrypted members of a P-521 TKE key file."""

    salt: bytes
    nonce: bytes
    ciphertext: bytes
    ski: str

    def __repr__(self) -> str:
        return f"TkeKeyFile(ski={self.ski})"


def tke_key_encryption_key(password: Secret[str], salt: bytes) -> bytes:
    """The AES-256 key of a TKE key file: PBKDF2-HMAC-SHA256, 4096 iterations (§8.2)."""
    return PBKDF2HMAC(
        algorithm=hashes.SHA256(), length=AES_KEY_BYTES, salt=salt, iterations=PBKDF2_ITERATIONS
    ).derive(password.reveal().encode("utf-8"))


def ski_of(private_key: ec.EllipticCurvePrivateKey) -> str:
    """The lowercase hex SKI the crypto units know the key by (TKE-REFERENCE §2.1)."""
    return PublicPoint.of_key(private_key.public_key()).ski_hex()


def _string_members(content: bytes) -> dict[str, str]:
    try:
        document = json.loads(content)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise MalformedKeyFile("the key file is not JSON (expected a TKE CLI key file)") from None
    if not isinstance(document, dict):
        raise MalformedKeyFile("the key file is not a JSON object (expected a TKE CLI key file)")
    for member, value in document.items():
        if not isinstance(value, str):
            # TKE-REFERENCE §8.1: the SDK reads every member as a string and fails otherwise.
            raise MalformedKeyFile(f"member {member!r} of the key file is not a string")
    return document


def _hex_member(members: dict[str, str], member: str) -> bytes:
    value = members.get(member, "")
    if not value:
        raise MalformedKeyFile(f"the key file has no {member!r}")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise MalformedKeyFile(f"{member!r} of the key file is not hexadecimal") from None


def parse_tke_key_file(content: bytes) -> TkeKeyFile:
    """Check a TKE key file's shape and type without decrypting it, so RSA files need no password."""
    members = _string_members(content)
    key_type = members.get("keyType")
    if key_type != TKE_P521_KEY_TYPE:
        # §8.1: the SDK treats any keyType but p521ec (or none) as RSA-2048.
        shown = "no keyType" if key_type is None else f"keyType {key_type!r}"
        raise UnsupportedKeyType(
            f"the key file holds an RSA-2048 key ({shown}); only {TKE_P521_KEY_TYPE!r} files can "
            "be imported, because the signing-service contract is ECDSA P-521 only. Create a P-521 "
            "key (signserv keys create) and add it as a new administrator instead"
        )
    encrypted = _hex_member(members, "enckey")
    if len(encrypted) <= GCM_NONCE_BYTES + GCM_TAG_BYTES:
        raise MalformedKeyFile(
            f"'enckey' of the key file is too short ({len(encrypted)} bytes) to hold a nonce, "
            "a ciphertext and a tag: the file is truncated or damaged"
        )
    ski = members.get("ski", "")
    if len(ski) != SKI_HEX_CHARACTERS or not re.fullmatch("[0-9a-fA-F]+", ski):
        raise MalformedKeyFile(
            f"'ski' of the key file is not {SKI_HEX_CHARACTERS} hexadecimal characters"
        )
    return TkeKeyFile(
        salt=_hex_member(members, "seaSalt"),
        nonce=encrypted[:GCM_NONCE_BYTES],
        ciphertext=encrypted[GCM_NONCE_BYTES:],
        ski=ski.lower(),
    )


def _first_pem_block(text: bytes) -> bytes:
    """The DER inside the first PEM block; whatever precedes it is skipped, as the SDK does."""
    match = _PEM_BLOCK.search(text)
    if match is None:
        raise MalformedKeyFile("no PEM block found where a private key was expected")
    try:
        return base64.b64decode(b"".join(match.group(2).split()), validate=True)
    except binascii.Error:
        raise MalformedKeyFile("the PEM block is not valid base64") from None


def _require_p521(private_key: object) -> ec.EllipticCurvePrivateKey:
    if isinstance(private_key, rsa.RSAPrivateKey):
        raise UnsupportedKeyType(
            "this is an RSA key; the signing-service contract is ECDSA P-521 only"
        )
    if not isinstance(private_key, ec.EllipticCurvePrivateKey):
        raise UnsupportedKeyType(
            "this is not an EC key; the signing-service contract is ECDSA P-521 only"
        )
    if not isinstance(private_key.curve, ec.SECP521R1):
        raise UnsupportedKeyType(
            f"this is a {private_key.curve.name} key; the signing-service contract is P-521 only"
        )
    return private_key


def _load_der(der: bytes) -> ec.EllipticCurvePrivateKey:
    """SEC1, PKCS#8 or PKCS#1 DER, whatever the PEM label said (§8.3)."""
    try:
        private_key = serialization.load_der_private_key(der, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise MalformedKeyFile("the PEM block does not hold a private key") from None
    return _require_p521(private_key)


def decrypt_tke_key_file(key_file: TkeKeyFile, password: Secret[str]) -> ec.EllipticCurvePrivateKey:
    """Decrypt a parsed TKE key file and return its key, proven to match the file's ``ski``."""
    try:
        plaintext = AESGCM(tke_key_encryption_key(password, key_file.salt)).decrypt(
            key_file.nonce, key_file.ciphertext, None
        )
    except InvalidTag:
        # AES-GCM cannot tell a wrong password from a changed ciphertext byte: say both.
        raise KeyFileDecryptionFailed(
            "cannot decrypt the key file: wrong password, or the enckey was altered"
        ) from None
    private_key = _load_der(_first_pem_block(plaintext))
    computed = ski_of(private_key)
    if computed != key_file.ski:
        raise SkiMismatch(
            f"the key file's ski {key_file.ski} is not the SKI of the key it holds ({computed}); "
            "refusing to import a key under an identity it does not have"
        )
    return private_key


def pem_is_encrypted(content: bytes) -> bool:
    """True for an encrypted PKCS#8 PEM or a legacy OpenSSL encrypted PEM, which need a password."""
    return any(marker in content for marker in _ENCRYPTED_PEM_MARKERS)


def load_pem_private_key(
    content: bytes, password: Secret[str] | None = None
) -> ec.EllipticCurvePrivateKey:
    """A P-521 key from PEM: PKCS#8 or SEC1, encrypted when ``password`` is given."""
    if password is None:
        return _load_der(_first_pem_block(content))
    try:
        private_key = serialization.load_pem_private_key(
            content, password=password.reveal().encode("utf-8")
        )
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise KeyFileDecryptionFailed(
            "cannot decrypt the PEM file: wrong password, or the file was altered"
        ) from None
    return _require_p521(private_key)
