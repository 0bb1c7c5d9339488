"""What a ``/sign`` input is, in TKE terms: an administrative command, a certificate, or opaque.

The TKE client asks the signing service to sign three kinds of bytes (TKE-REFERENCE §1.7, §1.8,
§2.4, §4.3): the DER of an xcpAdminBlk, whose SHA-512 every administrator signs to authorise one
command on one crypto unit; the 64-byte SHA-512 of an administrator certificate's
TBSCertificate; and, before a change, 100 zero bytes to probe that a key is usable.
:func:`describe_signed_input` recognises which, with the same decoders the client
and the emulator use, and returns a :class:`SignedInput` that the audit log records and a key's
signing policy judges. It never raises: bytes that are not a well-formed block of a known shape
are ``opaque``, and parts of a block that cannot be read are left out of the description.

A description holds no input byte that could be a secret: command ids, domain, module serial,
counter, an administrator's name and SKI, attribute values, a verification pattern. A master-key
part (Import WK) is sealed to the unit's importer key, and its bytes are never described.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import TypeVar

from signserv.contract import KEY_PROBE_INPUT
from signserv.tke.errors import MalformedTKEMessage
from signserv.tke.wire.admin_cert import parse_admin_certificate
from signserv.tke.wire.admin_messages import (
    MODULE_ID_BYTES,
    MODULE_SERIAL_BYTES,
    AdminBlock,
    decode_admin_block,
)
from signserv.tke.wire.attributes import decode_attribute_pairs
from signserv.tke.wire.commands import AttributeId, CommandId
from signserv.tke.wire.counter import COUNTER_BYTES
from signserv.tke.wire.signer_info import SKI_BYTES

T = TypeVar("T")
CERTIFICATE_DIGEST_BYTES = hashlib.sha512().digest_size
MAX_SHOWN_NAME_CHARACTERS = 64
"""An administrator name is at most 30 bytes (§2.3); a hostile certificate's is cut here."""
MAX_DESCRIBED_ATTRIBUTES = 16
"""Set Attributes carries a handful of pairs (§5); a block with more is described without them."""


class InputKind(Enum):
    """The kinds of signed input a key's policy allows or refuses, by the policy's word."""

    QUERY = "queries"
    ADMINISTRATORS = "administrators"
    ATTRIBUTES = "attributes"
    MASTER_KEY = "master-key"
    ZEROIZE = "zeroize"
    OTHER_COMMAND = "other-commands"
    CERTIFICATE = "certificates"
    KEY_PROBE = "key-probe"
    OPAQUE = "opaque"


@dataclass(frozen=True)
class _Command:
    """How one command id reads in words, and the kind of change it makes."""

    action: str
    kind: InputKind
    preposition: str = "on"
    """How the domain follows the action: "add administrator … *to* domain 3"."""


_COMMANDS: dict[CommandId, _Command] = {
    CommandId.QUERY_DOMAIN_ADMINS: _Command("query administrators", InputKind.QUERY),
    CommandId.QUERY_DEVICE_CERT: _Command("query device certificate", InputKind.QUERY),
    CommandId.QUERY_CONTROL_POINTS: _Command("query control points", InputKind.QUERY),
    CommandId.QUERY_DOMAIN_ATTRIBUTES: _Command("query attributes", InputKind.QUERY),
    CommandId.ADD_ADMIN: _Command("add administrator", InputKind.ADMINISTRATORS, "to"),
    CommandId.REMOVE_ADMIN: _Command("remove administrator", InputKind.ADMINISTRATORS, "from"),
    CommandId.SET_ATTRIBUTES: _Command("set attributes", InputKind.ATTRIBUTES),
    CommandId.ADD_CONTROL_POINTS: _Command("add control points", InputKind.ATTRIBUTES, "to"),
    CommandId.GENERATE_IMPORTER_KEY: _Command("generate importer key", InputKind.MASTER_KEY),
    CommandId.GENERATE_RANDOM_WK: _Command("generate random master key", InputKind.MASTER_KEY),
    CommandId.EXPORT_WK: _Command("export current master key", InputKind.MASTER_KEY, "from"),
    CommandId.EXPORT_PENDING_WK: _Command(
        "export pending master key", InputKind.MASTER_KEY, "from"
    ),
    CommandId.IMPORT_WK: _Command("import master-key part", InputKind.MASTER_KEY, "into"),
    CommandId.COMMIT_WK: _Command("commit pending master key", InputKind.MASTER_KEY),
    CommandId.FINALIZE_WK: _Command("finalize master key", InputKind.MASTER_KEY),
    CommandId.CLEAR_CURRENT_WK: _Command("clear current master key", InputKind.MASTER_KEY),
    CommandId.CLEAR_PENDING_WK: _Command("clear pending master key", InputKind.MASTER_KEY),
    CommandId.ZEROIZE_DOMAIN: _Command("zeroize", InputKind.ZEROIZE),
}

_PREPOSITIONS = {command.action: command.preposition for command in _COMMANDS.values()}

_ATTRIBUTE_NAMES = {
    AttributeId.SIGNATURE_THRESHOLD: "signature threshold",
    AttributeId.REVOCATION_THRESHOLD: "revocation threshold",
    AttributeId.PERMISSIONS: "permissions",
    AttributeId.MODE: "mode",
    AttributeId.STANDARDS: "standards",
}
_ATTRIBUTE_RANKS = {name: rank for rank, name in enumerate(_ATTRIBUTE_NAMES.values())}
_HEX_ATTRIBUTE_NAMES = frozenset({"permissions", "mode", "standards"})


@dataclass(frozen=True)
class SignedInput:
    """What one signed input is; the fields beyond ``kind`` are set where the input has them."""

    kind: InputKind
    command: str | None = None
    """The command in words ("add administrator"), or ``command 0x…`` for an unknown id."""
    domain: int | None = None
    module: str | None = None
    """The crypto module's serial as printed by the TKE tools, or its id in hex."""
    counter: int | None = None
    administrator: str | None = None
    ski: str | None = None
    """The administrator's SKI (hex) that the command adds or removes."""
    attributes: tuple[tuple[str, int], ...] = ()
    """Set Attributes: each attribute's name and new value, thresholds first (:func:`_ordered`)."""
    verification_pattern: str | None = None
    """Commit/Finalize: the pending master key's verification pattern (hex)."""

    def in_words(self) -> str:
        """One line for people: "add administrator 'Admin 2' (SKI 5f0c…) to domain 3 …"."""
        if self.kind is InputKind.CERTIFICATE:
            return "administrator certificate (SHA-512 of its TBSCertificate)"
        if self.kind is InputKind.KEY_PROBE:
            return "key probe (100 zero bytes: the TKE client checks the key is usable)"
        if self.command is None:
            return "opaque input"
        words = [self.command]
        if self.administrator is not None:
            words.append(repr(self.administrator))
        if self.ski is not None:
            words.append(f"(SKI {self.ski[:8]}…)")
        if self.attributes:
            words.append(
                ", ".join(f"{name} {_shown(name, value)}" for name, value in self.attributes)
            )
        if self.verification_pattern is not None:
            words.append(f"(VP {self.verification_pattern[:8]}…)")
        preposition = _PREPOSITIONS.get(self.command, "on")
        words.append(f"{preposition} domain {self.domain} of module {self.module}")
        text = " ".join(words)
        return text if self.counter is None else f"{text}, counter {self.counter}"

    def as_record(self) -> dict[str, object]:
        """The description as JSON-ready fields, for the audit log (unset fields left out)."""
        record: dict[str, object] = {"kind": self.kind.value}
        for name in ("command", "domain", "module", "counter", "administrator", "ski"):
            value = getattr(self, name)
            if value is not None:
                record[name] = value
        if self.attributes:
            record["attributes"] = dict(self.attributes)
        if self.verification_pattern is not None:
            record["verification_pattern"] = self.verification_pattern
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, object]) -> SignedInput:
        """Read back :meth:`as_record`'s fields; raises ``ValueError`` on any other shape."""
        attributes = record.get("attributes", {})
        if not isinstance(attributes, dict):
            raise ValueError("attributes is not an object")
        return cls(
            InputKind(record["kind"]),
            command=_optional(record, "command", str),
            domain=_optional(record, "domain", int),
            module=_optional(record, "module", str),
            counter=_optional(record, "counter", int),
            administrator=_optional(record, "administrator", str),
            ski=_optional(record, "ski", str),
            attributes=_ordered((str(name), _integer(value)) for name, value in attributes.items()),
            verification_pattern=_optional(record, "verification_pattern", str),
        )


def _ordered(attributes: Iterable[tuple[str, int]]) -> tuple[tuple[str, int], ...]:
    """Attributes by id (§5), unknown ones last by name; a repeated one keeps its last value.

    The audit log stores them as an object, whose keys come back sorted: this order is what
    both a decoded command and a record read back present.
    """
    unique = dict(attributes)
    return tuple(
        sorted(unique.items(), key=lambda item: (_ATTRIBUTE_RANKS.get(item[0], 99), item[0]))
    )


def _integer(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{value!r} is not an integer")
    return value


def _optional(record: Mapping[str, object], name: str, kind: type[T]) -> T | None:
    """``record[name]`` if present; ``ValueError`` if it is not a ``kind``."""
    value = record.get(name)
    if value is None:
        return None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"{name} is not a {kind.__name__}")
    return value


def _shown(attribute: str, value: int) -> str:
    """Thresholds in decimal; permission, mode and standards bits in hex."""
    return f"0x{value:08X}" if attribute in _HEX_ATTRIBUTE_NAMES else str(value)


def _attribute_name(attribute: int) -> str:
    try:
        return _ATTRIBUTE_NAMES[AttributeId(attribute)]
    except ValueError:
        return f"attribute {attribute}"


def module_serial(module_id: bytes) -> str:
    """A module id as the crypto-unit listing names it: its serial (the first 8 bytes) when
    those are printable ASCII, else the whole id in hex."""
    serial = module_id[:MODULE_SERIAL_BYTES]
    if len(serial) == MODULE_SERIAL_BYTES and all(0x21 <= byte <= 0x7E for byte in serial):
        return serial.decode("ascii")
    return module_id.hex().upper()


def _command(command_id: int) -> _Command:
    """How ``command_id`` reads; an id the catalogue (§5) does not name is an other command."""
    try:
        return _COMMANDS[CommandId(command_id)]
    except ValueError:
        return _Command(f"command 0x{command_id:08X}", InputKind.OTHER_COMMAND)


def _with_payload(described: SignedInput, block: AdminBlock) -> SignedInput:
    """``described`` with the fields the command's input carries, as far as they can be read."""
    command_input = block.command_input
    if block.command == CommandId.ADD_ADMIN:
        try:
            certificate = parse_admin_certificate(command_input)
        except MalformedTKEMessage:
            return described
        return dataclasses.replace(
            described,
            administrator=certificate.name[:MAX_SHOWN_NAME_CHARACTERS],
            ski=certificate.ski.hex(),
        )
    if block.command == CommandId.REMOVE_ADMIN and len(command_input) == SKI_BYTES:
        return dataclasses.replace(described, ski=command_input.hex())
    if block.command == CommandId.SET_ATTRIBUTES:
        try:
            pairs = decode_attribute_pairs(command_input)
        except MalformedTKEMessage:
            return described
        if len(pairs) > MAX_DESCRIBED_ATTRIBUTES:
            return described
        named = _ordered((_attribute_name(attribute), value) for attribute, value in pairs)
        return dataclasses.replace(described, attributes=named)
    if block.command in (CommandId.COMMIT_WK, CommandId.FINALIZE_WK) and len(command_input) == 32:
        return dataclasses.replace(described, verification_pattern=command_input.hex())
    return described


def describe_signed_input(data: bytes) -> SignedInput:
    """Recognise what ``data`` is; never raises (anything unrecognised is ``opaque``).

    A command block is recognised first, whatever its length: a block can be exactly 64 bytes
    (one attribute pair; or a short block with long-form lengths), and must then be judged as
    the command it is, not as a certificate digest. A block whose module id or counter has a
    size no crypto unit accepts (§3.7: empty for queries, 16 bytes for signed commands) is
    opaque, so that no field of unbounded size reaches the audit log or a policy.
    """
    try:
        block = decode_admin_block(data)
    except MalformedTKEMessage:
        if len(data) == CERTIFICATE_DIGEST_BYTES:
            return SignedInput(InputKind.CERTIFICATE)
        if data == KEY_PROBE_INPUT:
            return SignedInput(InputKind.KEY_PROBE)
        return SignedInput(InputKind.OPAQUE)
    if len(block.module_id) not in (0, MODULE_ID_BYTES) or len(block.counter) not in (
        0,
        COUNTER_BYTES,
    ):
        return SignedInput(InputKind.OPAQUE)
    command = _command(block.command)
    described = SignedInput(
        command.kind,
        command=command.action,
        domain=block.domain,
        module=module_serial(block.module_id),
        counter=int.from_bytes(block.counter, "big") if block.counter else None,
    )
    return _with_payload(described, block)
