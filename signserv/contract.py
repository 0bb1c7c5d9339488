"""Wire formats of the TKE signing-service contract, shared by server, client and checker.

Pure functions, no I/O. TKE-REFERENCE §1 is the spec: key names are RFC 3986 unreserved
characters, the public key is DER ``SEQUENCE{INTEGER X, INTEGER Y}`` with minimal INTEGERs, a
signature is DER ``SEQUENCE{INTEGER R, INTEGER S}``, base64 is the standard alphabet with
padding, and the service signs SHA-512 of the decoded input exactly once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from foundation import KEY_NAME_MAX_LENGTH, is_valid_key_name, key_name_problem
from signserv import der
from signserv.errors import SignservError

__all__ = [
    "HASH_ALGORITHM",
    "KEY_NAME_MAX_LENGTH",
    "P521_COORDINATE_BYTES",
    "P521_GROUP_ORDER",
    "BodyNotJSON",
    "ContractError",
    "InvalidKeyName",
    "MalformedPublicKey",
    "MalformedSignRequest",
    "MalformedSignature",
    "NonStandardBase64",
    "PointNotOnCurve",
    "PublicPoint",
    "SignatureMismatch",
    "UnusableAnswer",
    "b64decode_strict",
    "b64encode",
    "build_sign_request_body",
    "decode_public_key",
    "decode_signature",
    "encode_public_key",
    "encode_signature",
    "is_valid_key_name",
    "parse_sign_request",
    "read_answer_member",
    "require_key_name",
]

HASH_ALGORITHM = "sha2-512"
KEY_PROBE_INPUT = bytes(100)
"""What the TKE client signs to learn whether a key is usable (§1.8); it authorises nothing."""
P521_COORDINATE_BYTES = 66
RAW_SIGNATURE_BYTES = 2 * P521_COORDINATE_BYTES
"""r||s as fixed-width big-endian halves (IEEE P1363): the form an HSM returns, never the contract's."""
# The order n of the P-521 group (SEC 2 §2.6.1): private scalars and signature values lie in [1, n-1].
P521_GROUP_ORDER = int(
    "1fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
    "a51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409",
    16,
)


class ContractError(SignservError, ValueError):
    """Bytes or JSON that do not follow the signing-service contract."""


class MalformedSignRequest(ContractError):
    """A POST /sign body that cannot be signed; ``field`` names the offending member."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class BodyNotJSON(MalformedSignRequest):
    """A POST /sign body that is not JSON at all."""


class MalformedPublicKey(ContractError):
    """A public key that is not DER SEQUENCE{X,Y} of a P-521 point with minimal INTEGERs."""


class PointNotOnCurve(MalformedPublicKey):
    """Coordinates that parse but are not a point on the P-521 curve."""


class MalformedSignature(ContractError):
    """A signature that is not a DER SEQUENCE{R,S} of two positive minimal INTEGERs."""


class SignatureMismatch(ContractError):
    """A well-formed signature that does not verify over SHA-512 of the data with that key."""


class NonStandardBase64(ContractError):
    """Text that is not standard-alphabet base64 with padding."""


class UnusableAnswer(ContractError):
    """A 2xx body the TKE client cannot use; the message is the finding, the caller says where."""


class InvalidKeyName(ContractError):
    """A key name outside the contract's rule (RFC 3986 unreserved, 1..128, not a dot-segment)."""


def require_key_name(name: str) -> str:
    """Return ``name`` unchanged, or raise :class:`InvalidKeyName` saying what is wrong."""
    problem = key_name_problem(name)
    if problem is not None:
        raise InvalidKeyName(problem)
    return name


def b64encode(data: bytes) -> str:
    """Standard-alphabet base64 with padding, one line (TKE-REFERENCE §1.3)."""
    return base64.b64encode(data).decode("ascii")


def b64decode_strict(text: str, *, what: str) -> bytes:
    """Decode standard base64 with padding; URL-safe, unpadded or stray characters are refused."""
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise NonStandardBase64(f"{what} is not standard base64 with padding") from None


# --- public key -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublicPoint:
    """The affine coordinates of a P-521 public key as the TKE client sees them."""

    x: int
    y: int

    @classmethod
    def of_key(cls, key: ec.EllipticCurvePublicKey) -> PublicPoint:
        """The point of a ``cryptography`` P-521 public key."""
        numbers = key.public_numbers()
        return cls(numbers.x, numbers.y)

    @classmethod
    def from_uncompressed(cls, encoded: bytes) -> PublicPoint:
        """Read ``04 || X || Y`` with 66-byte coordinates (the curve is checked by its users)."""
        if len(encoded) != 1 + 2 * P521_COORDINATE_BYTES or encoded[0] != 0x04:
            raise MalformedPublicKey(
                "not an uncompressed P-521 point (04 || X || Y with 66-byte coordinates)"
            )
        y_start = 1 + P521_COORDINATE_BYTES
        return cls(
            x=int.from_bytes(encoded[1:y_start], "big"), y=int.from_bytes(encoded[y_start:], "big")
        )

    def uncompressed(self) -> bytes:
        """``04 || X || Y``, each coordinate left-padded to 66 bytes: the SKI pre-image (§1.5)."""
        return (
            b"\x04"
            + self.x.to_bytes(P521_COORDINATE_BYTES, "big")
            + self.y.to_bytes(P521_COORDINATE_BYTES, "big")
        )

    def ski(self) -> bytes:
        """Subject Key Identifier: SHA-256 of the uncompressed point (TKE-REFERENCE §2.1)."""
        return hashlib.sha256(self.uncompressed()).digest()

    def ski_hex(self) -> str:
        """The SKI as the SDK compares it: 64 lowercase hex characters."""
        return self.ski().hex()

    def verifying_key(self) -> ec.EllipticCurvePublicKey:
        """The point as a P-521 public key; :class:`PointNotOnCurve` when it is not on the curve."""
        try:
            return ec.EllipticCurvePublicNumbers(self.x, self.y, ec.SECP521R1()).public_key()
        except ValueError:
            raise PointNotOnCurve("(X, Y) is not a point on the P-521 curve") from None

    def verify_sha512(self, signature: tuple[int, int], data: bytes) -> None:
        """Raise unless ``(r, s)`` is ECDSA P-521 over SHA-512 of ``data`` by this key."""
        try:
            self.verifying_key().verify(
                encode_dss_signature(*signature), data, ec.ECDSA(hashes.SHA512())
            )
        except InvalidSignature:
            raise SignatureMismatch(
                f"the signature does not verify over SHA-512 of the data with the key of SKI "
                f"{self.ski_hex()}"
            ) from None


def encode_public_key(point: PublicPoint) -> bytes:
    """DER ``SEQUENCE{INTEGER X, INTEGER Y}`` with minimal positive INTEGERs (not padded).

    The shape of an ECDSA-Sig-Value, so cryptography's encoder writes exactly these bytes.
    """
    return encode_dss_signature(point.x, point.y)


def decode_public_key(encoded: bytes) -> PublicPoint:
    """Parse what GET /keys returns, as strictly as the Go client (TKE-REFERENCE §1.5).

    Trailing bytes after the SEQUENCE are ignored, as Go does; SPKI, raw points, padded or
    negative INTEGERs and coordinates over 66 bytes are refused.
    """
    if encoded[:1] == b"\x04":
        raise MalformedPublicKey(
            "public key is a raw uncompressed point, not DER SEQUENCE{INTEGER X, INTEGER Y}"
        )
    try:
        outer = der.expect_tlv(encoded, der.TAG_SEQUENCE, what="public key")
        if outer.content[:1] == bytes([der.TAG_SEQUENCE]):
            raise MalformedPublicKey(
                "public key is a SubjectPublicKeyInfo (SPKI), not DER SEQUENCE{INTEGER X, INTEGER Y}"
            )
        x, y = der.decode_integer_pair(encoded, names=("X", "Y"), allow_trailing=True)
    except der.DERError as exc:
        raise MalformedPublicKey(f"public key is not DER SEQUENCE{{X, Y}}: {exc}") from None
    longest = max(x.bit_length(), y.bit_length())
    if longest > P521_COORDINATE_BYTES * 8:
        raise MalformedPublicKey(
            "public key coordinate is longer than 66 bytes: only P-521 EC keys are supported"
        )
    return PublicPoint(x=x, y=y)


# --- signature --------------------------------------------------------------------------------


def decode_signature(encoded: bytes) -> tuple[int, int]:
    """Parse a DER ECDSA-Sig-Value strictly; raw ``r||s`` and padded INTEGERs are refused."""
    try:
        return der.decode_integer_pair(encoded, names=("R", "S"), allow_trailing=False)
    except der.DERError as exc:
        raise MalformedSignature(f"signature is not DER SEQUENCE{{R, S}}: {exc}") from None


def encode_signature(r: int, s: int) -> bytes:
    """DER ``SEQUENCE{INTEGER R, INTEGER S}`` with minimal INTEGERs (cryptography's encoder)."""
    return encode_dss_signature(r, s)


# --- POST /sign body ------------------------------------------------------------------------


def build_sign_request_body(data: bytes) -> bytes:
    """The POST /sign body exactly as the TKE client concatenates it (TKE-REFERENCE §1.3)."""
    return (
        b'{"hash_algorithm":"'
        + HASH_ALGORITHM.encode()
        + b'","input":"'
        + b64encode(data).encode("ascii")
        + b'"}'
    )


def _refuse_duplicate_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members: dict[str, Any] = {}
    for key, value in pairs:
        if key in members:
            raise MalformedSignRequest(key, f"member {key!r} appears more than once")
        members[key] = value
    return members


def parse_sign_request(body: bytes) -> bytes:
    """Return the bytes a POST /sign body asks to have signed, or raise naming the bad field.

    ``input`` is the contract's field; ``inputs`` (an older IBM page) is accepted as an alias
    when it is the only one present or equal to ``input``. An empty ``input`` is an empty
    message, signed like any other: the contract is "sign arbitrary data".
    """
    try:
        document = json.loads(body, object_pairs_hook=_refuse_duplicate_members)
    except MalformedSignRequest:
        raise
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise BodyNotJSON("body", "request body is not valid JSON") from None
    if not isinstance(document, dict):
        raise MalformedSignRequest("body", "request body must be a JSON object")

    if "hash_algorithm" not in document:
        raise MalformedSignRequest(
            "hash_algorithm", f"hash_algorithm is required ({HASH_ALGORITHM!r})"
        )
    if document["hash_algorithm"] != HASH_ALGORITHM:
        raise MalformedSignRequest(
            "hash_algorithm", f"hash_algorithm must be {HASH_ALGORITHM!r}; no other is supported"
        )

    present = [field for field in ("input", "inputs") if field in document]
    if not present:
        raise MalformedSignRequest("input", "input is required (base64 of the bytes to sign)")
    if len(present) == 2 and document["input"] != document["inputs"]:
        raise MalformedSignRequest("input", "input and inputs are both present and differ")
    field = present[0]
    value = document[field]
    if not isinstance(value, str):
        raise MalformedSignRequest(field, f"{field} must be a string of standard base64")
    try:
        return b64decode_strict(value, what=field)
    except NonStandardBase64 as exc:
        raise MalformedSignRequest(field, str(exc)) from None


# --- 2xx answers -------------------------------------------------------------------------------

_JSON_WHITESPACE = " \t\r\n"


def read_answer_member(body: bytes, member: str) -> str:
    """The string ``member`` of a 2xx body, read the way the Go client reads it (§1.4).

    One JSON value is decoded and whatever follows it is ignored, as Go's ``json.Decoder``
    does; invalid UTF-8 becomes U+FFFD, as in Go. The messages are the Go client's.
    """
    text = body.decode("utf-8", errors="replace").lstrip(_JSON_WHITESPACE)
    if not text:
        raise UnusableAnswer("empty response body")
    try:
        document, _ = json.JSONDecoder().raw_decode(text)
    except (json.JSONDecodeError, RecursionError):
        raise UnusableAnswer("response body is not JSON") from None
    if not isinstance(document, dict):
        raise UnusableAnswer("response body is not a JSON object")
    if member not in document:
        raise UnusableAnswer(f"{member} not found")
    value = document[member]
    if not isinstance(value, str):
        raise UnusableAnswer(f"{member} is not a string")
    return value
