"""What a /sign input is: each command the TKE client sends, a certificate digest, or opaque."""

from __future__ import annotations

import hashlib
import json

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signserv.contract import KEY_PROBE_INPUT, PublicPoint
from signserv.host.audit_log import record_in_words
from signserv.tke.wire.admin_cert import assemble_admin_certificate, build_admin_tbs
from signserv.tke.wire.admin_messages import AdminBlock, domain_id
from signserv.tke.wire.attributes import DomainAttributes
from signserv.tke.wire.commands import CommandId
from signserv.tke.wire.fields import encode_octet_sequence
from signserv.tke.wire.signed_input import InputKind, SignedInput, describe_signed_input

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MODULE_ID = b"93AABEC1" + bytes.fromhex("a1b2c3d4e5f60718")  # serial, then instance
DOMAIN_3 = domain_id(3, bytes.fromhex("01020304"))
COUNTER_17 = (17).to_bytes(16, "big")


def block(command: int, command_input: bytes = b"", module_id: bytes = MODULE_ID) -> bytes:
    """A signed command's xcpAdminBlk for domain 3 of module 93AABEC1, counter 17."""
    return AdminBlock(command, DOMAIN_3, module_id, COUNTER_17, command_input).encode()


def admin_certificate(name: str) -> tuple[bytes, PublicPoint]:
    """An administrator certificate for ``name`` (TBS and a throwaway signature) and its point."""
    private_key = ec.generate_private_key(ec.SECP521R1())
    point = PublicPoint.of_key(private_key.public_key())
    tbs = build_admin_tbs(name, point)
    signature = private_key.sign(tbs, ec.ECDSA(hashes.SHA512()))
    return assemble_admin_certificate(tbs, signature), point


def test_the_reference_example_block_reads_in_words() -> None:
    """TKE-REFERENCE §4.3's generate-random-WK block, byte for byte."""
    example = bytes.fromhex(
        "3036"
        "04040000000A"
        "04080000000F01020304"
        "04103933414142433132" + "00" * 8 + "0410" + "00" * 15 + "05"
        "0400"
    )
    described = describe_signed_input(example)
    assert described.kind is InputKind.MASTER_KEY
    assert described.in_words() == (
        "generate random master key on domain 15 of module 93AABC12, counter 5"
    )


def test_adding_an_administrator_names_them_and_their_ski() -> None:
    certificate, point = admin_certificate("Admin 2")
    described = describe_signed_input(block(CommandId.ADD_ADMIN, certificate))
    assert described.kind is InputKind.ADMINISTRATORS
    assert (described.administrator, described.ski) == ("Admin 2", point.ski().hex())
    assert described.in_words() == (
        f"add administrator 'Admin 2' (SKI {point.ski().hex()[:8]}…) to domain 3 of module "
        "93AABEC1, counter 17"
    )


def test_removing_an_administrator_names_the_ski() -> None:
    ski = bytes(range(32))
    described = describe_signed_input(block(CommandId.REMOVE_ADMIN, ski))
    assert described.ski == ski.hex()
    assert described.in_words().startswith("remove administrator (SKI 00010203…) from domain 3")


def test_new_thresholds_are_shown() -> None:
    attributes = DomainAttributes(0, 0, 0x81FF0011, 0).with_thresholds(2, 1)
    described = describe_signed_input(block(CommandId.SET_ATTRIBUTES, attributes))
    assert described.kind is InputKind.ATTRIBUTES
    assert described.in_words() == (
        "set attributes signature threshold 2, revocation threshold 1, permissions 0x81FF0011, "
        "mode 0x00000000 on domain 3 of module 93AABEC1, counter 17"
    )


@pytest.mark.parametrize(
    ("command", "kind", "words"),
    [
        (CommandId.ZEROIZE_DOMAIN, InputKind.ZEROIZE, "zeroize on domain 3"),
        (CommandId.GENERATE_IMPORTER_KEY, InputKind.MASTER_KEY, "generate importer key on"),
        (CommandId.EXPORT_WK, InputKind.MASTER_KEY, "export current master key from domain 3"),
        (CommandId.IMPORT_WK, InputKind.MASTER_KEY, "import master-key part into domain 3"),
        (CommandId.CLEAR_PENDING_WK, InputKind.MASTER_KEY, "clear pending master key on"),
        (CommandId.ADD_CONTROL_POINTS, InputKind.ATTRIBUTES, "add control points to domain 3"),
        (CommandId.QUERY_DOMAIN_ATTRIBUTES, InputKind.QUERY, "query attributes on domain 3"),
        (0x00000014, InputKind.OTHER_COMMAND, "command 0x00000014 on domain 3"),
    ],
)
def test_every_command_has_its_kind_and_words(command: int, kind: InputKind, words: str) -> None:
    described = describe_signed_input(block(command))
    assert described.kind is kind
    assert described.in_words().startswith(words)


def test_commit_shows_the_verification_pattern() -> None:
    pattern = hashlib.sha256(b"pending").digest()
    described = describe_signed_input(block(CommandId.COMMIT_WK, pattern))
    assert described.verification_pattern == pattern.hex()
    assert f"(VP {pattern.hex()[:8]}…)" in described.in_words()


def test_a_module_id_that_is_not_a_serial_is_shown_in_hex() -> None:
    module_id = bytes([0x01, 0xFF]) + bytes(14)
    assert describe_signed_input(block(CommandId.ZEROIZE_DOMAIN, module_id=module_id)).module == (
        module_id.hex().upper()
    )


def test_one_sha512_digest_is_the_certificate_case() -> None:
    described = describe_signed_input(hashlib.sha512(b"tbs").digest())
    assert described == SignedInput(InputKind.CERTIFICATE)
    assert described.in_words() == "administrator certificate (SHA-512 of its TBSCertificate)"


def test_the_tke_clients_key_probe_is_recognised() -> None:
    described = describe_signed_input(KEY_PROBE_INPUT)
    assert described == SignedInput(InputKind.KEY_PROBE)
    assert described.in_words().startswith("key probe")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello",
        bytes(99),
        bytes(101),
        bytes(63),
        bytes(65),
        b"\x30\x00",
        block(CommandId.ZEROIZE_DOMAIN) + b"\x00",
    ],
    ids=[
        "empty",
        "text",
        "99-zeros",
        "101-zeros",
        "63-bytes",
        "65-bytes",
        "empty-sequence",
        "trailing-byte",
    ],
)
def test_anything_else_is_opaque(data: bytes) -> None:
    assert describe_signed_input(data) == SignedInput(InputKind.OPAQUE)


def padded_block(command: int, command_input: bytes, size: int) -> bytes:
    """A signed command's block grown to ``size`` bytes by long-form lengths, which the shared
    decoder (and a crypto unit) reads as the same block (§3.7: lengths are read leniently)."""
    fields = [command.to_bytes(4, "big"), DOMAIN_3, MODULE_ID, COUNTER_17, command_input]
    extra = size - len(encode_octet_sequence(*fields))
    encoded = b""
    for field in fields:
        length_bytes = min(extra, 4)
        extra -= length_bytes
        if length_bytes:
            length = len(field).to_bytes(length_bytes, "big")
            encoded += bytes([0x04, 0x80 | length_bytes]) + length + field
        else:
            encoded += bytes([0x04, len(field)]) + field
    assert extra == 0 and len(encoded) + 2 == size
    return bytes([0x30, len(encoded)]) + encoded


def test_a_64_byte_set_attributes_block_is_judged_as_its_command() -> None:
    """One attribute pair makes a Set Attributes block exactly as long as a SHA-512 digest: it
    must be described (and judged by a policy) as the command, not as a certificate."""
    one_pair = (1).to_bytes(4, "big") + (1).to_bytes(4, "big")
    data = block(CommandId.SET_ATTRIBUTES, one_pair)
    assert len(data) == 64
    described = describe_signed_input(data)
    assert (described.kind, described.attributes) == (
        InputKind.ATTRIBUTES,
        (("signature threshold", 1),),
    )


@pytest.mark.parametrize(
    ("command", "kind"),
    [
        (CommandId.ZEROIZE_DOMAIN, InputKind.ZEROIZE),
        (CommandId.CLEAR_CURRENT_WK, InputKind.MASTER_KEY),
        (CommandId.GENERATE_RANDOM_WK, InputKind.MASTER_KEY),
    ],
    ids=["zeroize", "clear-current", "generate-random"],
)
def test_a_block_padded_to_64_bytes_is_still_its_command(command: int, kind: InputKind) -> None:
    data = padded_block(command, b"", 64)
    assert describe_signed_input(data).kind is kind
    assert describe_signed_input(data).module == "93AABEC1"


@pytest.mark.parametrize(
    ("module_id", "counter"),
    [(MODULE_ID + bytes(1900), COUNTER_17), (MODULE_ID, bytes(1900) + COUNTER_17)],
    ids=["huge-module-id", "huge-counter"],
)
def test_a_block_with_fields_no_unit_accepts_is_opaque(module_id: bytes, counter: bytes) -> None:
    """Unbounded fields must not reach the audit log (a 1,900-byte counter is a 4,500-digit
    integer) nor a policy: a crypto unit takes 16-byte module ids and counters only."""
    data = AdminBlock(CommandId.ZEROIZE_DOMAIN, DOMAIN_3, module_id, counter, b"").encode()
    assert describe_signed_input(data) == SignedInput(InputKind.OPAQUE)


def test_a_set_attributes_block_with_too_many_pairs_is_described_without_them() -> None:
    pairs = b"".join(
        attribute.to_bytes(4, "big") + (0).to_bytes(4, "big") for attribute in range(100, 400)
    )
    described = describe_signed_input(block(CommandId.SET_ATTRIBUTES, pairs))
    assert (described.kind, described.attributes) == (InputKind.ATTRIBUTES, ())


def test_a_hostile_administrator_name_is_cut_and_escaped() -> None:
    """A certificate's name is any bytes (§2.3): it must not run on, nor drive a terminal."""
    certificate, _ = admin_certificate("Eve\x1b[2J\nroot")
    described = describe_signed_input(block(CommandId.ADD_ADMIN, certificate))
    assert "\x1b" not in described.in_words() and "\n" not in described.in_words()
    assert "'Eve\\x1b[2J\\nroot'" in described.in_words()


def test_an_unreadable_certificate_still_describes_the_command() -> None:
    described = describe_signed_input(block(CommandId.ADD_ADMIN, b"not a certificate"))
    assert (described.kind, described.administrator) == (InputKind.ADMINISTRATORS, None)


# --- hostile input: parsed or opaque, never an exception ------------------------------------------

command_ids = st.sampled_from([int(command) for command in CommandId]) | st.integers(0, 2**32 - 1)


@FAST
@given(st.binary(max_size=600))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    described = describe_signed_input(data)
    assert isinstance(described.in_words(), str)
    assert SignedInput.from_record(json.loads(json.dumps(described.as_record()))) == described


@FAST
@given(
    command_ids,
    st.binary(max_size=12),
    st.binary(max_size=20),
    st.binary(max_size=20),
    st.binary(max_size=300),
)
def test_blocks_with_any_fields_never_raise(
    command: int, domain: bytes, module_id: bytes, counter: bytes, command_input: bytes
) -> None:
    """Well-formed SEQUENCEs with any field contents, including wrong-sized ones."""
    data = encode_octet_sequence(
        command.to_bytes(4, "big"), domain, module_id, counter, command_input
    )
    described = describe_signed_input(data)
    assert described.kind in set(InputKind)
    assert SignedInput.from_record(json.loads(json.dumps(described.as_record()))) == described


ADD_ADMIN_2 = block(CommandId.ADD_ADMIN, admin_certificate("Admin 2")[0])


@FAST
@given(st.data())
def test_damaged_command_blocks_never_raise(data: st.DataObject) -> None:
    """Real blocks with a byte changed or cut off: parsed or opaque."""
    original = bytearray(ADD_ADMIN_2)
    position = data.draw(st.integers(0, len(original) - 1))
    original[position] = data.draw(st.integers(0, 255))
    damaged = bytes(original[: data.draw(st.integers(0, len(original)))])
    assert isinstance(describe_signed_input(damaged).in_words(), str)


@FAST
@given(
    st.binary(max_size=200)
    | st.builds(
        lambda value: json.dumps(value).encode(),
        st.dictionaries(
            st.text(max_size=10),
            st.none()
            | st.integers()
            | st.text(max_size=10)
            | st.dictionaries(st.text(max_size=6), st.integers() | st.text(max_size=6), max_size=4),
            max_size=6,
        ),
    )
)
def test_any_stored_record_reads_as_one_escaped_line(line: bytes) -> None:
    """`audit tail` shows whatever a (possibly tampered) log holds, on one line."""
    text = record_in_words(line)
    assert text.isprintable()
