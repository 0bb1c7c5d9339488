"""Master-key part files: sealed, 0600, never overwritten, tamper-evident, value never shown."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from foundation.argon2id import Argon2Parameters
from signserv.secret import Secret
from signserv.tke.client.key_part_files import (
    InvalidKeyPart,
    KeyPartFile,
    MalformedKeyPartFile,
    WrongKeyPartPassword,
    create_key_part_file,
    key_part_from_hex,
    list_key_part_files,
    open_key_part_file,
    random_key_part,
    read_key_part_file,
    remove_key_part_file,
)
from signserv.tke.wire.verification_pattern import calc_vp

FAST_KDF = Argon2Parameters(time_cost=1, memory_cost_kib=8192, parallelism=1)
PASSWORD = Secret("part owner's password")
VALUE = bytes(range(32))


def write_part(directory: Path, value: bytes = VALUE, description: str = "alice") -> KeyPartFile:
    """A key-part file sealed with the test password at a test cost."""
    return create_key_part_file(
        directory, Secret(value), description=description, password=PASSWORD, cost=FAST_KDF
    )


def test_a_part_round_trips_and_is_described_without_its_password(tmp_path: Path) -> None:
    """The file names the part by description and VP (§6.4); the password opens the value."""
    part = write_part(tmp_path)
    assert stat.S_IMODE(part.path.stat().st_mode) == 0o600
    assert read_key_part_file(part.path) == part
    assert part.verification_pattern == calc_vp(VALUE)
    assert open_key_part_file(part, PASSWORD).reveal() == VALUE
    assert VALUE.hex() not in part.path.read_text()


def test_parts_are_listed_oldest_first_and_never_overwritten(tmp_path: Path) -> None:
    """Each part gets its own file; a listing shows every one of them."""
    first, second = write_part(tmp_path, description="one"), write_part(tmp_path, description="two")
    assert first.path != second.path
    assert [part.description for part in list_key_part_files(tmp_path)] == ["one", "two"]
    remove_key_part_file(first)
    assert list_key_part_files(tmp_path) == [second]
    assert not list(tmp_path.glob(".mkpart-*"))


def test_wrong_password_is_refused(tmp_path: Path) -> None:
    """AES-GCM under a key derived from another password does not open."""
    with pytest.raises(WrongKeyPartPassword, match="alice"):
        open_key_part_file(write_part(tmp_path), Secret("another password"))


@pytest.mark.parametrize("member", ["description", "verification_pattern", "kdf", "salt"])
def test_tampered_header_is_detected(tmp_path: Path, member: str) -> None:
    """Every header member is associated data of the seal."""
    part = write_part(tmp_path)
    document = json.loads(part.path.read_text())
    replacement = {
        "description": "mallory",
        "verification_pattern": calc_vp(bytes(32)).hex(),
        "kdf": "argon2id:t=2,m=8192,p=1",
        "salt": "00" * 16,
    }
    document[member] = replacement[member]
    part.path.write_text(json.dumps(document))
    with pytest.raises(WrongKeyPartPassword):
        open_key_part_file(read_key_part_file(part.path), PASSWORD)


@pytest.mark.parametrize(
    "hostile_document",
    [[], {"format": "x"}, {"format": 1}],
    ids=["not_an_object", "missing_members", "non_string_member"],
)
def test_malformed_files_are_named(tmp_path: Path, hostile_document: object) -> None:
    """A file that is not a key-part file is an error naming it."""
    path = tmp_path / "mkpart-0000000000000000.json"
    path.write_text(json.dumps(hostile_document))
    with pytest.raises(MalformedKeyPartFile, match=path.name):
        list_key_part_files(tmp_path)


@pytest.mark.parametrize(
    ("text", "problem"),
    [("zz" * 32, "hexadecimal"), ("00" * 31, "not 31"), ("00" * 33, "not 33")],
)
def test_typed_values_must_be_32_bytes_of_hex(text: str, problem: str) -> None:
    """``mk-add --value`` takes exactly 64 hex digits; the error never repeats the value."""
    with pytest.raises(InvalidKeyPart, match=problem) as raised:
        key_part_from_hex(Secret(text))
    assert text not in str(raised.value)


def test_typed_value_with_spaces(tmp_path: Path) -> None:
    """Groups of hex digits may be separated by spaces."""
    spaced = " ".join(VALUE.hex()[i : i + 8] for i in range(0, 64, 8))
    assert key_part_from_hex(Secret(spaced)).reveal() == VALUE


@pytest.mark.parametrize(
    ("description", "password"),
    [("", "long enough"), ("x" * 65, "long enough"), ("tab\there", "long enough"), ("ok", "short")],
)
def test_descriptions_and_passwords_are_checked(
    tmp_path: Path, description: str, password: str
) -> None:
    """Printable descriptions of 1-64 characters; passwords of at least 8 characters."""
    with pytest.raises(InvalidKeyPart):
        create_key_part_file(
            tmp_path, random_key_part(), description=description, password=Secret(password)
        )
    assert not list(tmp_path.iterdir())


def test_random_parts_are_secret_and_distinct() -> None:
    """A random part is 32 fresh bytes that print as <hidden>."""
    first, second = random_key_part(), random_key_part()
    assert len(first.reveal()) == 32 and first.reveal() != second.reveal()
    assert "<hidden>" in repr(first)


descriptions = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp", "Cf", "Co", "Cn", "Zs")),
    min_size=1,
    max_size=64,
)


@settings(max_examples=25, deadline=None)
@given(value=st.binary(min_size=32, max_size=32), description=descriptions)
def test_any_part_and_description_round_trip(
    tmp_path_factory: pytest.TempPathFactory, value: bytes, description: str
) -> None:
    """Whatever the value and (printable) description, the file gives both back."""
    directory = tmp_path_factory.mktemp("parts")
    part = write_part(directory, value, description)
    assert list_key_part_files(directory) == [part]
    assert open_key_part_file(part, PASSWORD).reveal() == value
    assert key_part_from_hex(Secret(value.hex())).reveal() == value
