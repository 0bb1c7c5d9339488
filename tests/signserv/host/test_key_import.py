"""`keys import`: TKE CLI key files (TKE-REFERENCE §8, §10 items 24-25) and PEM keys keep their SKI.

Key files are built here independently of signserv (hashlib's PBKDF2, AES-GCM, SEC1 DER), as
the TKE CLI writes them. AES-GCM cannot tell a wrong password from an altered ciphertext byte,
so those two share one message; every other refusal has its own.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keystore import KeyExists
from signserv.cli.key_import import import_key
from signserv.cli.keys import keys_group
from signserv.client import SigningServiceClient
from signserv.host.config import Settings, load_settings
from signserv.host.home import open_keystore
from signserv.host.key_import import (
    KeyFileDecryptionFailed,
    MalformedKeyFile,
    SkiMismatch,
    UnsupportedKeyType,
    decrypt_tke_key_file,
    load_pem_private_key,
    parse_tke_key_file,
    tke_key_encryption_key,
)
from signserv.secret import Secret

from ...conftest import RunningService, make_home

# TKE-REFERENCE §10 item 25: made by the TKE CLI's SDK, which signs with it.
REFERENCE_PASSWORD = "Passw0rd!"
REFERENCE_SCALAR = 0x1234567890ABCDEF
REFERENCE_SKI = "d5e9bd6698efcd48d796e21708e425975b2ed9d39f681538f9ffe0030aa9bd69"
REFERENCE_KEY_FILE = {
    "keyType": "p521ec",
    "enckey": "000102030405060708090a0b7001b621d76b4cb2ab0631de155ac5cfe3be1fdea63504b3a4a2b7a0faa27"
    "cf0ae035b0e9f60af91721c91d60336be3c57a304c9bb32be9e2cd1042f0fd291ccd7b8a1257e323d8e05d42423d158af"
    "4d31156e31b84ed3c5db2ce41bf15f0bd03402860474b000ef1a915974dbb38314fb1e777f429c05c4f8bf075709c71e"
    "eb9b11f8f4bd358890c4d9260e6a796195112e80d1877037759376aa9c201d22710a179a48e690ffb0c13d9ee38baa4b"
    "f6bf83d47e26b6c95f4e5063bd85a308f4e13a6b1359f4502135113d408e554f19f630bbf71b6bb9014132d707263e62"
    "538dc0a485f144ebeeb9e6c5242e58cda4d627e825719a52dd0f30bae5a50413139f044adc568542cf704f33a6305b71"
    "412591caaa354753ad4e24c97670bf99f64a752302726a9c342b92c1e0d0fde5188a258126595fff022ca4da618f432a"
    "e4359a1fa83e320c4b0bd31993d3bff3ba30b1f858096da675a4290c2c5fa47eaacae3f34926e72b8d1694df61ece9f3"
    "ba81be8611a27b72",
    "seaSalt": "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
    "ski": REFERENCE_SKI,
}
FRESH_PASSWORD = "another pass phrase, ünïcode"
AUTHENTICATION_FAILURE = "wrong password, or the enckey was altered"


def expected_ski(private_key: ec.EllipticCurvePrivateKey) -> str:
    """TKE-REFERENCE §2.1, computed here without signserv."""
    numbers = private_key.public_key().public_numbers()
    point = b"\x04" + numbers.x.to_bytes(66, "big") + numbers.y.to_bytes(66, "big")
    return hashlib.sha256(point).hexdigest()


def pem_block(der: bytes, label: str = "PRIVATE KEY") -> bytes:
    body = base64.encodebytes(der).decode("ascii")
    return f"-----BEGIN {label}-----\n{body}-----END {label}-----\n".encode("ascii")


def sec1_der(private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    """SEC1 for an EC key, PKCS#1 for RSA: what a TKE key file's PEM block holds (§8.3)."""
    return private_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def tke_key_file(
    plaintext: bytes, password: str, ski: str, key_type: str | None = "p521ec"
) -> dict[str, str]:
    """A key file as the TKE CLI creates one (§8.2): random salt and nonce, no associated data."""
    salt, nonce = os.urandom(32), os.urandom(12)
    kek = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, 4096, 32)
    members = {
        "enckey": (nonce + AESGCM(kek).encrypt(nonce, plaintext, None)).hex(),
        "seaSalt": salt.hex(),
        "ski": ski,
    }
    if key_type is not None:
        members["keyType"] = key_type
    return members


@pytest.fixture(scope="module")
def fresh_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP521R1())


@pytest.fixture(scope="module")
def fresh_key_file(fresh_key: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    return tke_key_file(pem_block(sec1_der(fresh_key)), FRESH_PASSWORD, expected_ski(fresh_key))


def decrypt(members: dict[str, str], password: str) -> ec.EllipticCurvePrivateKey:
    parsed = parse_tke_key_file(json.dumps(members).encode("utf-8"))
    return decrypt_tke_key_file(parsed, Secret(password))


def altered(members: dict[str, str], **changes: str) -> dict[str, str]:
    return {**members, **changes}


def flip_byte(hex_text: str, index: int) -> str:
    raw = bytearray(bytes.fromhex(hex_text))
    raw[index] ^= 0x01
    return raw.hex()


# --- the key-file format -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "salt", "expected"),
    [
        ("password", bytes(32), "799cf3fd5cb3c39c61fffcfda1084b5c4c7bc55fa17a63211733f280977506a6"),
        (
            "Passw0rd!",
            bytes(range(32)),
            "510a9755bf2f81e12224d8b1cc5bb75ed4ab7007efe66996c5057e2289dc990d",
        ),
    ],
)
def test_key_encryption_key_matches_the_reference_vectors(
    password: str, salt: bytes, expected: str
) -> None:
    """TKE-REFERENCE §10 item 24."""
    assert tke_key_encryption_key(Secret(password), salt).hex() == expected


def test_reference_key_file_yields_its_scalar_and_ski() -> None:
    """TKE-REFERENCE §10 item 25: the SDK's own file, SEC1 inside a PRIVATE KEY PEM."""
    private_key = decrypt(REFERENCE_KEY_FILE, REFERENCE_PASSWORD)
    assert private_key.private_numbers().private_value == REFERENCE_SCALAR
    assert expected_ski(private_key) == REFERENCE_SKI


def test_fresh_key_file_yields_its_key(
    fresh_key: ec.EllipticCurvePrivateKey, fresh_key_file: dict[str, str]
) -> None:
    imported = decrypt(fresh_key_file, FRESH_PASSWORD)
    assert imported.private_numbers() == fresh_key.private_numbers()


@pytest.mark.parametrize(
    "plaintext_of",
    [
        pytest.param(lambda der: b"leading junk\n" + pem_block(der), id="junk-before-the-block"),
        pytest.param(lambda der: pem_block(der, "EC PRIVATE KEY"), id="ec-private-key-label"),
    ],
)
def test_lenient_plaintext_forms_are_accepted(
    fresh_key: ec.EllipticCurvePrivateKey, plaintext_of: Callable[[bytes], bytes]
) -> None:
    """§8.3: the first PEM block counts, whatever precedes it; SEC1 and PKCS#8 under any label."""
    members = tke_key_file(plaintext_of(sec1_der(fresh_key)), "pw", expected_ski(fresh_key))
    assert decrypt(members, "pw").private_numbers() == fresh_key.private_numbers()


def test_pkcs8_inside_a_key_file_is_accepted(fresh_key: ec.EllipticCurvePrivateKey) -> None:
    pkcs8 = fresh_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    members = tke_key_file(pem_block(pkcs8), "pw", expected_ski(fresh_key))
    assert decrypt(members, "pw").private_numbers() == fresh_key.private_numbers()


def test_upper_case_ski_is_compared_case_insensitively_on_import() -> None:
    """§8.4: the SDK would refuse to sign with it, but the key is the same; we store lowercase."""
    members = altered(REFERENCE_KEY_FILE, ski=REFERENCE_SKI.upper())
    assert expected_ski(decrypt(members, REFERENCE_PASSWORD)) == REFERENCE_SKI


# --- refusals --------------------------------------------------------------------------------


def test_wrong_password_is_refused() -> None:
    with pytest.raises(KeyFileDecryptionFailed, match=AUTHENTICATION_FAILURE):
        decrypt(REFERENCE_KEY_FILE, "Passw0rd?")


@pytest.mark.parametrize(
    "byte_index", [0, 12, 100, -1], ids=["nonce", "first-ciphertext-byte", "middle", "tag"]
)
def test_altered_enckey_byte_reads_as_an_authentication_failure(byte_index: int) -> None:
    """A flipped bit anywhere is indistinguishable from a wrong password; the message says both."""
    members = altered(
        REFERENCE_KEY_FILE, enckey=flip_byte(REFERENCE_KEY_FILE["enckey"], byte_index)
    )
    with pytest.raises(KeyFileDecryptionFailed, match=AUTHENTICATION_FAILURE):
        decrypt(members, REFERENCE_PASSWORD)


@pytest.mark.parametrize(
    ("enckey", "message"),
    [
        ("zz" + REFERENCE_KEY_FILE["enckey"][2:], "'enckey' of the key file is not hexadecimal"),
        (REFERENCE_KEY_FILE["enckey"][:-1], "'enckey' of the key file is not hexadecimal"),
        (REFERENCE_KEY_FILE["enckey"][:56], "'enckey' of the key file is too short"),
        ("", "the key file has no 'enckey'"),
    ],
    ids=["non-hex", "odd-length", "truncated", "empty"],
)
def test_malformed_enckey_has_its_own_message(enckey: str, message: str) -> None:
    with pytest.raises(MalformedKeyFile, match=message):
        decrypt(altered(REFERENCE_KEY_FILE, enckey=enckey), REFERENCE_PASSWORD)


def test_mismatched_ski_is_refused(fresh_key: ec.EllipticCurvePrivateKey) -> None:
    members = altered(REFERENCE_KEY_FILE, ski=expected_ski(fresh_key))
    with pytest.raises(SkiMismatch, match=f"is not the SKI of the key it holds \\({REFERENCE_SKI}"):
        decrypt(members, REFERENCE_PASSWORD)


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.mark.parametrize("key_type", [None, "rsa", "RSA-2048"])
def test_rsa_key_file_is_refused_before_any_password(
    rsa_key: rsa.RSAPrivateKey, key_type: str | None
) -> None:
    """§8.1: any keyType but p521ec is RSA-2048; the contract is P-521 only."""
    members = tke_key_file(pem_block(sec1_der(rsa_key)), "pw", "ab" * 32, key_type)
    with pytest.raises(UnsupportedKeyType, match="signing-service contract is ECDSA P-521 only"):
        parse_tke_key_file(json.dumps(members).encode("utf-8"))


def test_rsa_key_inside_a_p521ec_file_is_refused(rsa_key: rsa.RSAPrivateKey) -> None:
    members = tke_key_file(pem_block(sec1_der(rsa_key)), "pw", "ab" * 32)
    with pytest.raises(UnsupportedKeyType, match="this is an RSA key"):
        decrypt(members, "pw")


def test_the_four_refusals_read_differently(
    fresh_key: ec.EllipticCurvePrivateKey, rsa_key: rsa.RSAPrivateKey
) -> None:
    """Wrong password (or altered enckey), malformed enckey, mismatched ski and RSA: four messages."""
    cases = [
        (REFERENCE_KEY_FILE, "wrong"),
        (altered(REFERENCE_KEY_FILE, enckey="not hex"), REFERENCE_PASSWORD),
        (altered(REFERENCE_KEY_FILE, ski=expected_ski(fresh_key)), REFERENCE_PASSWORD),
        (tke_key_file(pem_block(sec1_der(rsa_key)), "pw", "ab" * 32, None), "pw"),
    ]
    messages = set()
    for members, password in cases:
        with pytest.raises(ValueError) as refused:
            decrypt(members, password)
        messages.add(str(refused.value))
    assert len(messages) == len(cases)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (json.dumps({**REFERENCE_KEY_FILE, "name": 7}).encode(), "member 'name' .* not a string"),
        (
            json.dumps(altered(REFERENCE_KEY_FILE, seaSalt="")).encode(),
            "the key file has no 'seaSalt'",
        ),
        (json.dumps(altered(REFERENCE_KEY_FILE, ski="abc")).encode(), "'ski' .* 64 hexadecimal"),
    ],
    ids=["binary", "array", "non-string-member", "no-salt", "short-ski"],
)
def test_malformed_key_files_are_refused(content: bytes, message: str) -> None:
    with pytest.raises(MalformedKeyFile, match=message):
        parse_tke_key_file(content)


def test_decrypted_plaintext_without_a_pem_block_is_refused() -> None:
    members = tke_key_file(b"just text", "pw", "ab" * 32)
    with pytest.raises(MalformedKeyFile, match="no PEM block"):
        decrypt(members, "pw")


def test_messages_never_hold_the_password() -> None:
    password = "a-distinctive-password-1234"
    for members in (REFERENCE_KEY_FILE, altered(REFERENCE_KEY_FILE, ski="ab" * 32)):
        with pytest.raises(ValueError) as refused:
            decrypt(members, password)
        assert password not in str(refused.value) + repr(refused.value)


# --- PEM keys ----------------------------------------------------------------------------------


def pkcs8_pem(
    private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, password: bytes | None = None
) -> bytes:
    encryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def test_pem_forms_load(fresh_key: ec.EllipticCurvePrivateKey) -> None:
    sec1 = pem_block(sec1_der(fresh_key), "EC PRIVATE KEY")
    for content in (pkcs8_pem(fresh_key), sec1):
        assert load_pem_private_key(content).private_numbers() == fresh_key.private_numbers()
    encrypted = pkcs8_pem(fresh_key, b"pem-password")
    loaded = load_pem_private_key(encrypted, Secret("pem-password"))
    assert loaded.private_numbers() == fresh_key.private_numbers()
    with pytest.raises(KeyFileDecryptionFailed, match="wrong password"):
        load_pem_private_key(encrypted, Secret("not-it"))


def test_pem_keys_other_than_p521_are_refused(rsa_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(UnsupportedKeyType, match="RSA key; the signing-service contract"):
        load_pem_private_key(pkcs8_pem(rsa_key))
    with pytest.raises(UnsupportedKeyType, match="secp256r1 key"):
        load_pem_private_key(pkcs8_pem(ec.generate_private_key(ec.SECP256R1())))
    with pytest.raises(MalformedKeyFile, match="no PEM block"):
        load_pem_private_key(b"not a pem file")


# --- the command -----------------------------------------------------------------------------


def write_json(path: Path, members: dict[str, str]) -> Path:
    path.write_text(json.dumps(members))
    return path


def run_import(settings: Settings, *arguments: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(keys_group, ["import", *arguments], obj=settings, input=stdin)


def import_tke(settings: Settings, name: str, key_file: Path, password: str, *extra: str) -> Result:
    """`keys import NAME --tke-file KEY_FILE --password-file -`, the password on stdin."""
    arguments = ["--tke-file", str(key_file), "--password-file", "-", *extra]
    return run_import(settings, name, *arguments, stdin=password + "\n")


def test_import_prints_the_files_ski_and_a_token_once(settings: Settings, tmp_path: Path) -> None:
    key_file = write_json(tmp_path / "admin1.json", REFERENCE_KEY_FILE)
    result = import_tke(settings, "admin1", key_file, REFERENCE_PASSWORD, "--json")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert printed["ski"] == REFERENCE_SKI
    assert REFERENCE_PASSWORD not in result.output
    store = open_keystore(settings)
    unlocked = store.unlock("admin1", printed["token"])
    assert unlocked.signing_key.private_key.private_numbers().private_value == REFERENCE_SCALAR


def test_import_with_a_chosen_token_never_prints_it(settings: Settings, tmp_path: Path) -> None:
    key_file = write_json(tmp_path / "k.json", REFERENCE_KEY_FILE)
    (tmp_path / "password").write_text(REFERENCE_PASSWORD + "\n")
    token = "a-chosen-token-0123456789"
    result = run_import(
        settings,
        "chosen",
        "--tke-file",
        str(key_file),
        "--password-file",
        str(tmp_path / "password"),
        "--token-file",
        "-",
        stdin=token + "\n",
    )
    assert result.exit_code == 0, result.output
    assert token not in result.output and REFERENCE_SKI in result.output
    open_keystore(settings).unlock("chosen", token)


def test_imported_key_is_not_in_clear_on_disk(settings: Settings, tmp_path: Path) -> None:
    key_file = write_json(tmp_path / "k.json", REFERENCE_KEY_FILE)
    result = import_tke(settings, "sealed", key_file, REFERENCE_PASSWORD)
    assert result.exit_code == 0, result.output
    scalar = REFERENCE_SCALAR.to_bytes(66, "big").lstrip(b"\x00")
    for stored in settings.home.iterdir():
        assert scalar not in stored.read_bytes(), stored.name


def test_rsa_file_is_refused_without_asking_for_a_password(
    settings: Settings, tmp_path: Path, rsa_key: rsa.RSAPrivateKey
) -> None:
    members = tke_key_file(pem_block(sec1_der(rsa_key)), "pw", "ab" * 32, None)
    result = run_import(
        settings, "rsa", "--tke-file", str(write_json(tmp_path / "r.json", members))
    )
    assert isinstance(result.exception, UnsupportedKeyType)
    assert "P-521 only" in str(result.exception)


def test_existing_name_is_refused_before_the_key_file_is_read(
    settings: Settings, tmp_path: Path
) -> None:
    open_keystore(settings).create_key("taken", "token-of-taken-0123456789")
    key_file = write_json(tmp_path / "k.json", REFERENCE_KEY_FILE)
    result = run_import(settings, "taken", "--tke-file", str(key_file))
    assert isinstance(result.exception, KeyExists)


@pytest.mark.parametrize(
    "arguments",
    [[], ["--tke-file", "{file}", "--pem", "{file}"]],
    ids=["no-key", "two-keys"],
)
def test_exactly_one_key_source_is_needed(
    settings: Settings, tmp_path: Path, arguments: list[str]
) -> None:
    key_file = str(write_json(tmp_path / "k.json", REFERENCE_KEY_FILE))
    result = run_import(settings, "k", *(item.format(file=key_file) for item in arguments))
    assert result.exit_code == 2 and "--tke-file" in result.output


def test_pem_import_keeps_the_ski(
    settings: Settings, tmp_path: Path, fresh_key: ec.EllipticCurvePrivateKey
) -> None:
    pem_file = tmp_path / "key.pem"
    pem_file.write_bytes(pkcs8_pem(fresh_key, b"pem-password"))
    result = run_import(
        settings,
        "from-pem",
        "--pem",
        str(pem_file),
        "--password-file",
        "-",
        "--json",
        stdin="pem-password\n",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["ski"] == expected_ski(fresh_key)


def test_import_is_registered_on_the_keys_group() -> None:
    assert keys_group.commands["import"] is import_key


def test_imported_keys_sign_through_the_service_under_their_ski(
    tmp_path: Path,
    fresh_key: ec.EllipticCurvePrivateKey,
    fresh_key_file: dict[str, str],
    start_signserv: Callable[..., RunningService],
) -> None:
    """The reference file and a fresh one: GET /keys yields the file's SKI, /sign verifies."""
    home = make_home(tmp_path / "signserv")
    settings = load_settings(home.home, home.config)
    imports = {
        "reference": (REFERENCE_KEY_FILE, REFERENCE_PASSWORD, REFERENCE_SKI),
        "fresh": (fresh_key_file, FRESH_PASSWORD, expected_ski(fresh_key)),
    }
    tokens = {}
    for name, (members, password, _) in imports.items():
        key_file = write_json(tmp_path / f"{name}.json", members)
        result = import_tke(settings, name, key_file, password, "--json")
        assert result.exit_code == 0, result.output
        tokens[name] = Secret(json.loads(result.output)["token"])
    service = start_signserv(home)
    with SigningServiceClient(service.url) as client:
        for name, (_, _, ski) in imports.items():
            assert client.public_key(name, tokens[name]).ski_hex() == ski
            client.sign(name, tokens[name], b"admin command block")  # the client verifies it


@pytest.mark.parametrize(
    ("members", "password", "message"),
    [
        (REFERENCE_KEY_FILE, "not-the-password", AUTHENTICATION_FAILURE),
        (altered(REFERENCE_KEY_FILE, enckey="0x12"), REFERENCE_PASSWORD, "not hexadecimal"),
        (altered(REFERENCE_KEY_FILE, ski="ab" * 32), REFERENCE_PASSWORD, "is not the SKI"),
        ({**REFERENCE_KEY_FILE, "keyType": "rsa"}, REFERENCE_PASSWORD, "P-521 only"),
    ],
    ids=["wrong-password", "malformed-enckey", "mismatched-ski", "rsa"],
)
def test_refusals_through_the_installed_command(
    tmp_path: Path, members: dict[str, str], password: str, message: str
) -> None:
    """`signserv keys import` as a script calls it: `error: ...`, exit 1, no password echoed."""
    home = make_home(tmp_path / "signserv")
    key_file = write_json(tmp_path / "key.json", members)
    result = home.run(
        "keys",
        "import",
        "admin",
        "--tke-file",
        str(key_file),
        "--password-file",
        "-",
        stdin=password + "\n",
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert password not in result.stdout + result.stderr
    assert "no keys" in home.run("keys", "list").stdout
