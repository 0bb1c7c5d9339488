"""Signed checkpoints of the audit chain: a C2SP tlog-checkpoint body in a C2SP signed note.

A checkpoint says "this chain held N records and its hash after record N was H, at time T",
signed with the Ed25519 checkpoint key. Shipped outside the service, it lets anyone holding only
the public key notice a cut-off tail, a rollback or a rewritten chain later. The text is
(https://c2sp.org/tlog-checkpoint, https://c2sp.org/signed-note)::

    <origin>
    <record count, decimal>
    <base64 of the 32-byte hash of record N: the next record's ``prev``>
    time <ISO 8601 UTC>

    — <key name> <base64(4-byte key id || 64-byte Ed25519 signature)>

The key id is the first four bytes of SHA-256(key name || 0x0A || 0x01 || public key); the
verifier key is the vkey line ``<name>+<hex key id>+<base64(0x01 || public key)>``. The key
name is the origin. Pure: no I/O; parsing untrusted text raises only this package's errors.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from keystore.errors import CheckpointSignatureInvalid, CheckpointUnreadable, VerifierKeyInvalid

SIGNATURE_PREFIX = "\u2014 "
"""Every signature line starts with an em dash and a space (signed-note)."""

TIME_EXTENSION = "time "
ED25519_SEED_BYTES = 32
_ED25519_TYPE = b"\x01"
_KEY_ID_BYTES = 4
_HEAD_BYTES = 32
_MAX_SIGNATURES = 16
_MAX_RECORDS = 2**63 - 1
_DECIMAL = re.compile(r"(0|[1-9][0-9]*)")
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")


def _is_valid_key_name(name: str) -> bool:
    """signed-note: a key name is non-empty and holds no whitespace and no ``+``."""
    return bool(name) and "+" not in name and not any(char.isspace() for char in name)


def require_origin(origin: str) -> str:
    """``origin`` if it can name a checkpoint log and its key; ValueError naming the rule otherwise."""
    if not _is_valid_key_name(origin) or _CONTROL_CHARACTERS.search(origin):
        raise ValueError(
            f"the checkpoint origin {origin!r} must be non-empty, without spaces, control "
            "characters or '+' (it is also the checkpoint key's name)"
        )
    return origin


def _strict_base64(text: str, what: str) -> bytes:
    try:
        decoded = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise CheckpointUnreadable(f"{what} is not base64") from None
    if base64.b64encode(decoded).decode("ascii") != text:
        raise CheckpointUnreadable(f"{what} is not canonical base64")
    return decoded


@dataclass(frozen=True)
class Checkpoint:
    """What one checkpoint states about the chain: record count and head hash (hex)."""

    origin: str
    records: int
    head: str
    extensions: tuple[str, ...] = ()

    @property
    def time(self) -> str | None:
        """The time the checkpoint was taken, from its ``time`` extension line (None without)."""
        for line in self.extensions:
            if line.startswith(TIME_EXTENSION):
                return line[len(TIME_EXTENSION) :]
        return None

    def describe(self) -> str:
        """One line for people: count, and when."""
        return f"the checkpoint of {self.time or 'unknown time'} ({self.records} records)"

    def body(self) -> str:
        """The note text the signature covers."""
        head = base64.b64encode(bytes.fromhex(self.head)).decode("ascii")
        lines = [require_origin(self.origin), str(self.records), head, *self.extensions]
        return "".join(f"{line}\n" for line in lines)


def parse_checkpoint_body(body: str) -> Checkpoint:
    """The checkpoint in a note's text (signature not checked here); raises CheckpointUnreadable."""
    lines = body.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise CheckpointUnreadable("a checkpoint needs origin, record count and head lines")
    origin, count, head, *extensions = lines[:-1]
    if not origin:
        raise CheckpointUnreadable("the checkpoint's origin line is empty")
    if not _DECIMAL.fullmatch(count) or int(count) > _MAX_RECORDS:
        raise CheckpointUnreadable("the checkpoint's record count is not a decimal number")
    head_bytes = _strict_base64(head, "the checkpoint's head hash")
    if len(head_bytes) != _HEAD_BYTES:
        raise CheckpointUnreadable("the checkpoint's head hash is not 32 bytes")
    if any(not line for line in extensions):
        raise CheckpointUnreadable("the checkpoint holds an empty line in its body")
    return Checkpoint(origin, int(count), head_bytes.hex(), tuple(extensions))


@dataclass(frozen=True)
class _SignatureLine:
    name: str
    key_id: bytes
    signature: bytes


def _split_note(note: str) -> tuple[str, list[_SignatureLine]]:
    """A signed note's text and its signature lines; raises CheckpointUnreadable."""
    if _CONTROL_CHARACTERS.search(note):
        raise CheckpointUnreadable("the note holds control characters")
    cut = note.rfind("\n\n")
    if cut < 0 or not note.endswith("\n"):
        raise CheckpointUnreadable(
            "the note has no signature block (a blank line, then signatures)"
        )
    text, block = note[: cut + 1], note[cut + 2 : -1]
    signatures = [_signature_line(line) for line in block.split("\n")]
    if len(signatures) > _MAX_SIGNATURES:
        raise CheckpointUnreadable(f"the note carries more than {_MAX_SIGNATURES} signatures")
    return text, signatures


def _signature_line(line: str) -> _SignatureLine:
    if not line.startswith(SIGNATURE_PREFIX):
        raise CheckpointUnreadable("a signature line does not start with '\u2014 '")
    name, space, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
    if not space or not _is_valid_key_name(name):
        raise CheckpointUnreadable("a signature line does not name a valid key")
    raw = _strict_base64(encoded, "a signature")
    if len(raw) <= _KEY_ID_BYTES:
        raise CheckpointUnreadable("a signature is too short to hold a key id and a signature")
    return _SignatureLine(name, raw[:_KEY_ID_BYTES], raw[_KEY_ID_BYTES:])


@dataclass(frozen=True)
class CheckpointVerifier:
    """The public half of the checkpoint key: all a third party needs to check checkpoints."""

    name: str
    public_key: bytes

    @property
    def key_id(self) -> bytes:
        """signed-note: SHA-256(name || 0x0A || 0x01 || public key), first four bytes."""
        material = self.name.encode("utf-8") + b"\n" + _ED25519_TYPE + self.public_key
        return hashlib.sha256(material).digest()[:_KEY_ID_BYTES]

    def vkey(self) -> str:
        """The verifier key line, ``<name>+<hex key id>+<base64(0x01 || public key)>``."""
        encoded = base64.b64encode(_ED25519_TYPE + self.public_key).decode("ascii")
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    @classmethod
    def from_vkey(cls, vkey: str) -> CheckpointVerifier:
        """Read a vkey line; raises :class:`VerifierKeyInvalid` naming what is wrong with it."""
        name, _, rest = vkey.strip().partition("+")
        key_id_hex, _, encoded = rest.partition("+")
        if not _is_valid_key_name(name) or not re.fullmatch(r"[0-9a-f]{8}", key_id_hex):
            raise VerifierKeyInvalid("a verifier key reads <name>+<8 hex digits>+<base64 key>")
        try:
            raw = _strict_base64(encoded, "the verifier key")
        except CheckpointUnreadable as exc:
            raise VerifierKeyInvalid(str(exc)) from None
        if len(raw) != 1 + ED25519_SEED_BYTES or raw[:1] != _ED25519_TYPE:
            raise VerifierKeyInvalid("the verifier key is not an Ed25519 key (type 0x01, 32 bytes)")
        verifier = cls(name, raw[1:])
        if verifier.key_id.hex() != key_id_hex:
            raise VerifierKeyInvalid("the verifier key's id does not match its name and key")
        return verifier

    def open(self, note: str) -> Checkpoint:
        """The checkpoint in ``note`` once its signature by this key verifies.

        Raises :class:`CheckpointUnreadable` for garbled text and
        :class:`CheckpointSignatureInvalid` when no signature of this key verifies (the note was
        altered, forged, or signed by another key). Other keys' signatures are ignored.
        """
        text, signatures = _split_note(note)
        ours = [line for line in signatures if (line.name, line.key_id) == (self.name, self.key_id)]
        if not ours:
            others = ", ".join(sorted({f"{line.name}+{line.key_id.hex()}" for line in signatures}))
            raise CheckpointSignatureInvalid(
                f"the checkpoint is not signed by the checkpoint key {self.name}+"
                f"{self.key_id.hex()} (signed by {others})"
            )
        public_key = Ed25519PublicKey.from_public_bytes(self.public_key)
        for line in ours:
            try:
                public_key.verify(line.signature, text.encode("utf-8"))
            except InvalidSignature:
                continue
            checkpoint = parse_checkpoint_body(text)
            if checkpoint.origin != self.name:
                raise CheckpointSignatureInvalid(
                    f"the checkpoint names the origin {checkpoint.origin!r}, not {self.name!r}"
                )
            return checkpoint
        raise CheckpointSignatureInvalid(
            f"the checkpoint's signature by {self.name} does not verify: it was altered or forged"
        )


class CheckpointSigner:
    """The Ed25519 checkpoint key, made from the 32-byte seed sealed under the master key."""

    def __init__(self, name: str, seed: bytes) -> None:
        self._private_key = Ed25519PrivateKey.from_private_bytes(seed)
        self.verifier = CheckpointVerifier(require_origin(name), _raw_public_key(self._private_key))

    def __repr__(self) -> str:
        return f"CheckpointSigner({self.verifier.vkey()!r})"

    def sign(self, checkpoint: Checkpoint) -> str:
        """The signed note of ``checkpoint``, whose origin must be this key's name."""
        if checkpoint.origin != self.verifier.name:
            raise ValueError("a checkpoint's origin is the name of the key that signs it")
        text = checkpoint.body()
        signature = self._private_key.sign(text.encode("utf-8"))
        encoded = base64.b64encode(self.verifier.key_id + signature).decode("ascii")
        return f"{text}\n{SIGNATURE_PREFIX}{self.verifier.name} {encoded}\n"


def _raw_public_key(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def public_key_fingerprint(seed: bytes) -> str:
    """16 hex digits naming the checkpoint key made from ``seed`` (for a default origin)."""
    public = _raw_public_key(Ed25519PrivateKey.from_private_bytes(seed))
    return hashlib.sha256(public).hexdigest()[:16]


def split_notes(text: str) -> Iterator[str]:
    """The signed notes in ``text`` (one after another, blank lines between them allowed).

    A note is its text lines, one blank line, then its signature lines; raises
    :class:`CheckpointUnreadable` for a note that ends without signatures.
    """
    pieces = text.split("\n")
    lines = [f"{piece}\n" for piece in pieces[:-1]] + ([f"{pieces[-1]}\n"] if pieces[-1] else [])
    body: list[str] = []
    signatures: list[str] = []
    for line in lines:
        if signatures and not line.startswith(SIGNATURE_PREFIX):
            yield "".join(body) + "\n" + "".join(signatures)
            body, signatures = [], []
        if signatures:
            signatures.append(line)
        elif body and body[-1] == "\n" and line.startswith(SIGNATURE_PREFIX):
            body.pop()
            signatures.append(line)
        elif line != "\n" or body:
            body.append(line)
    if signatures:
        yield "".join(body) + "\n" + "".join(signatures)
    elif any(line.strip() for line in body):
        raise CheckpointUnreadable("the text ends with a note that carries no signature")
