"""Hostile input to every parser is parsed or refused with that module's own error, never another.

Each file-based parser gets a fresh temporary directory per example: hypothesis does not reset
function-scoped fixtures between examples.
"""

from __future__ import annotations

import base64
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signserv import der
from signserv.host import key_import
from signserv.host.audit_log import AuditError, AuditEvent, AuditLog, verify_log
from signserv.host.config import ConfigError, Settings, load_settings
from signserv.secret import Secret
from signserv.tke.client.hsm_config import HsmConfig, HsmConfigError, load_hsm_config

MAC_KEY = b"m" * 32
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
# YAML scalars safe_dump writes and safe_load reads back as themselves.
yaml_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)


@contextmanager
def file_holding(content: bytes, name: str) -> Iterator[Path]:
    """A file holding ``content`` in a directory of its own, removed afterwards."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / name
        path.write_bytes(content)
        yield path


# --- signserv.host.audit_log -------------------------------------------------------------------------

audit_events = st.builds(
    AuditEvent,
    request_id=st.text(max_size=40),
    client=st.text(max_size=40),
    key=st.text(max_size=40),
    operation=st.text(max_size=20),
    status=st.integers(100, 599),
    outcome=st.text(max_size=20),
    input_sha512=st.none() | st.text(alphabet="0123456789abcdef", min_size=128, max_size=128),
    input_length=st.none() | st.integers(min_value=0),
    latency_ms=st.floats(min_value=0, allow_nan=False, allow_infinity=False),
)


@FAST
@given(st.binary(max_size=2000))
def test_audit_verifier_refuses_arbitrary_bytes_only_with_audit_errors(content: bytes) -> None:
    """Any file content: verify_log returns or raises an AuditError, never another exception."""
    with file_holding(content, "audit.log") as path, suppress(AuditError):
        verify_log(path, MAC_KEY)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(audit_events, max_size=8))
def test_appended_events_verify_as_that_many_records(events: list[AuditEvent]) -> None:
    """N events appended with AuditLog verify as a chain of exactly N records."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "audit.log"
        log = AuditLog.in_file(path, MAC_KEY, fsync=False)
        for event in events:
            log.append(event)
        if events:
            assert verify_log(path, MAC_KEY).records == len(events)
        else:
            assert not path.exists()


# --- signserv.host.key_import --------------------------------------------------------------------

tke_members = st.sampled_from(["keyType", "enckey", "seaSalt", "ski", "name"]) | st.text(max_size=8)
tke_values = (
    st.just(key_import.TKE_P521_KEY_TYPE)
    | st.binary(max_size=80).map(bytes.hex)
    | st.text(alphabet="0123456789abcdefABCDEFg ", max_size=80)
    | json_values
)


def assert_tke_parse_or_refusal(content: bytes) -> None:
    """parse_tke_key_file gives a TkeKeyFile or raises a KeyImportError, nothing else."""
    try:
        parsed = key_import.parse_tke_key_file(content)
    except key_import.KeyImportError:
        return
    assert isinstance(parsed, key_import.TkeKeyFile)


@FAST
@given(st.binary(max_size=500))
def test_tke_key_file_parser_refuses_arbitrary_bytes_only_with_key_import_errors(
    content: bytes,
) -> None:
    """Arbitrary bytes: parse_tke_key_file parses or raises a KeyImportError."""
    assert_tke_parse_or_refusal(content)


@FAST
@given(st.text(max_size=500))
def test_tke_key_file_parser_refuses_arbitrary_text_only_with_key_import_errors(
    text: str,
) -> None:
    """Arbitrary text: parse_tke_key_file parses or raises a KeyImportError."""
    assert_tke_parse_or_refusal(text.encode("utf-8", "surrogatepass"))


@FAST
@given(json_values | st.dictionaries(tke_members, tke_values, max_size=6))
def test_tke_key_file_parser_refuses_arbitrary_json_only_with_key_import_errors(
    document: object,
) -> None:
    """Arbitrary JSON documents, mostly objects with TKE members: parsed or a KeyImportError."""
    assert_tke_parse_or_refusal(json.dumps(document).encode("utf-8"))


def pem_armored(der_bytes: bytes, label: bytes = b"PRIVATE KEY") -> bytes:
    """``der_bytes`` inside a PEM block labelled ``label``."""
    body = base64.encodebytes(der_bytes)
    return b"-----BEGIN " + label + b"-----\n" + body + b"-----END " + label + b"-----\n"


pem_contents = (
    st.binary(max_size=600)
    | st.builds(pem_armored, st.binary(max_size=300))
    | st.builds(pem_armored, st.binary(max_size=300), st.sampled_from([b"EC PRIVATE KEY", b"X"]))
)


@FAST
@given(pem_contents, st.none() | st.text(max_size=12).map(Secret))
def test_pem_loader_refuses_arbitrary_bytes_only_with_key_import_errors(
    content: bytes, password: Secret[str] | None
) -> None:
    """Arbitrary bytes, bare or PEM-armored, with or without a password: a KeyImportError."""
    with suppress(key_import.KeyImportError):
        key_import.load_pem_private_key(content, password)


# --- signserv.tke.client.hsm_config ----------------------------------------------------------------


def load_hsm_config_text(text: str) -> HsmConfig | HsmConfigError:
    """The parsed config, or the HsmConfigError it was refused with."""
    with file_holding(text.encode("utf-8"), "hsm_config.yaml") as path:
        try:
            return load_hsm_config(path)
        except HsmConfigError as exc:
            return exc


plain_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
utf8_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=400)


@FAST
@given(utf8_text)
def test_hsm_config_refuses_arbitrary_text_only_with_hsm_config_errors(text: str) -> None:
    """Arbitrary text: load_hsm_config returns an HsmConfig or raises HsmConfigError."""
    assert isinstance(load_hsm_config_text(text), (HsmConfig, HsmConfigError))


hsm_members = st.sampled_from(
    ["signature_threshold", "revocation_threshold", "admins", "name", "key", "token", "token_file"]
)
hsm_values = st.recursive(
    yaml_scalars | plain_names,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(hsm_members | st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=12,
)
hsm_admin_lists = st.lists(st.dictionaries(hsm_members, hsm_values, max_size=4), max_size=3)


@FAST
@given(
    st.dictionaries(hsm_members | st.text(max_size=8), hsm_values, max_size=5)
    | st.fixed_dictionaries(
        {"admins": hsm_admin_lists},
        optional={"signature_threshold": hsm_values, "revocation_threshold": hsm_values},
    )
)
def test_hsm_config_refuses_arbitrary_mappings_only_with_hsm_config_errors(
    document: dict[object, object],
) -> None:
    """Arbitrary YAML mappings of hsm_config members: an HsmConfig or an HsmConfigError."""
    text = yaml.safe_dump(document, allow_unicode=True)
    assert isinstance(load_hsm_config_text(text), (HsmConfig, HsmConfigError))


# A token nobody could mistake for anything else in a message: digits and a hyphen make it a
# value that is never shown as a member name either.
tokens = st.uuids().map(lambda value: f"tok-{value.hex}")
admin_entries = st.fixed_dictionaries(
    {"token": tokens},
    optional={
        "name": plain_names | yaml_scalars,
        "key": plain_names | yaml_scalars,
        "token_file": st.sampled_from(["alice.token", "missing.token"]),
        "extra": yaml_scalars,
    },
)
hsm_documents_with_tokens = st.fixed_dictionaries(
    {"admins": st.lists(admin_entries, min_size=1, max_size=4)},
    optional={
        "signature_threshold": yaml_scalars,
        "revocation_threshold": yaml_scalars,
        "unknown": yaml_scalars,
    },
)


@FAST
@given(hsm_documents_with_tokens, st.sampled_from(["", "\n]", "\n  - {token: [", "\x07"]))
def test_hsm_config_errors_never_echo_an_inline_token(
    document: dict[str, Any], damage: str
) -> None:
    """Wrong members, types or YAML syntax around inline tokens: the error never shows a token."""
    outcome = load_hsm_config_text(yaml.safe_dump(document) + damage)
    if isinstance(outcome, HsmConfigError):
        for admin in document["admins"]:
            assert admin["token"] not in str(outcome)


# --- signserv.der ---------------------------------------------------------------------------


@FAST
@given(st.binary(max_size=300), st.booleans())
def test_der_decoders_refuse_arbitrary_bytes_only_with_der_errors(
    blob: bytes, lenient_lengths: bool
) -> None:
    """Arbitrary bytes to each DER decoder: a value or a DERError, never another exception."""
    decoders = (
        lambda: der.read_tlv(blob, lenient_lengths=lenient_lengths),
        lambda: der.split_elements(blob, lenient_lengths=lenient_lengths),
        lambda: der.decode_positive_integer(blob, what="n"),
        lambda: der.decode_integer_pair(blob, names=("r", "s"), allow_trailing=lenient_lengths),
    )
    for decode in decoders:
        with suppress(der.DERError):
            decode()


single_byte_tags = st.integers(0, 255).filter(lambda tag: tag & 0x1F != 0x1F)
# Long contents (two- and three-octet lengths) are one repeated byte: random ones are slow to draw.
long_contents = st.builds(
    lambda size, byte: bytes([byte]) * size, st.integers(128, 70000), st.integers(0, 255)
)
contents = st.binary(max_size=300) | long_contents


@FAST
@given(st.integers(min_value=1, max_value=2**1100))
def test_der_integer_encoding_round_trips(value: int) -> None:
    """encode_integer then read_tlv and decode_positive_integer give back the value."""
    encoded = der.encode_integer(value)
    element = der.read_tlv(encoded)
    assert (element.tag, element.end) == (der.TAG_INTEGER, len(encoded))
    assert der.decode_positive_integer(element.content, what="n") == value


@FAST
@given(st.lists(st.tuples(single_byte_tags, contents), max_size=4))
def test_der_tlv_encoding_round_trips(elements: list[tuple[int, bytes]]) -> None:
    """encode_tlv then read_tlv (and split_elements over several) give back tags and contents."""
    for tag, content in elements:
        encoded = der.encode_tlv(tag, content)
        assert der.read_tlv(encoded) == der.TLV(tag=tag, content=content, end=len(encoded))
    joined = b"".join(der.encode_tlv(tag, content) for tag, content in elements)
    decoded = der.split_elements(joined)
    assert [(element.tag, element.content) for element in decoded] == elements


# --- signserv.host.config ------------------------------------------------------------------------

config_names = st.sampled_from(
    [
        "keystore",
        "kdf",
        "server",
        "lockout",
        "audit",
        "tls",
        "path",
        "master_key_file",
        "time_cost",
        "memory_cost_kib",
        "parallelism",
        "max_concurrent",
        "bind",
        "workers",
        "max_request_bytes",
        "rate_limit_burst",
        "fsync",
        "certfile",
        "keyfile",
        "client_ca_file",
        "window_seconds",
    ]
)
yaml_keys = config_names | st.none() | st.booleans() | st.integers() | st.text(max_size=10)
yaml_documents = st.recursive(
    yaml_scalars | config_names,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(yaml_keys, children, max_size=5)
    ),
    max_leaves=15,
)


@FAST
@given(yaml_documents | st.dictionaries(config_names, yaml_documents, max_size=4))
def test_settings_loader_refuses_arbitrary_yaml_only_with_config_errors(document: object) -> None:
    """Any YAML document as the config file: load_settings returns Settings or a ConfigError."""
    text = yaml.safe_dump(document, allow_unicode=True)
    with file_holding(text.encode("utf-8"), "config.yaml") as path:
        try:
            loaded = load_settings(path.parent / "home", path)
        except ConfigError:
            return
    assert isinstance(loaded, Settings)


# Inputs the property runs and a hand search found to escape with a foreign exception; each is
# now refused with the parser's own error.
_UNKNOWN_PKCS8 = der.encode_sequence(
    der.encode_integer(0),
    der.encode_sequence(der.encode_tlv(der.TAG_OID, bytes([0x2A, 0x03, 0x04]))),  # 1.2.3.4
    der.encode_octet_string(bytes([0x04, 0x00])),
)


def _pem(der_bytes: bytes) -> bytes:
    body = base64.encodebytes(der_bytes).decode("ascii")
    return f"-----BEGIN PRIVATE KEY-----\n{body}-----END PRIVATE KEY-----\n".encode("ascii")


def test_audit_record_with_a_non_ascii_mac_is_a_broken_chain(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_text('{"mac":"\\u00e9","seq":1,"prev":"x"}\n')
    with pytest.raises(AuditError):
        verify_log(log, b"k" * 32)


def test_deep_nesting_is_refused_by_each_parser(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(b"[" * 100_000 + b"\n")
    with pytest.raises(AuditError):
        verify_log(log, b"k" * 32)
    with pytest.raises(key_import.KeyImportError):
        key_import.parse_tke_key_file(b"[" * 100_000)
    config = tmp_path / "hsm.yaml"
    config.write_text("[" * 10_000)
    with pytest.raises(HsmConfigError):
        load_hsm_config(config)


@pytest.mark.parametrize("password", [None, Secret("password-0123456789")])
def test_pkcs8_key_of_an_unknown_algorithm_is_a_key_import_error(password) -> None:
    with pytest.raises(key_import.KeyImportError):
        key_import.load_pem_private_key(_pem(_UNKNOWN_PKCS8), password)


@pytest.mark.parametrize(
    "text",
    [
        "signature_threshold: 2001-13-45\n",
        "signature_threshold: 1\nrevocation_threshold: 1\n"
        'admins:\n  - {name: a, key: k, token_file: "a\\0b"}\n',
    ],
)
def test_impossible_dates_and_nul_paths_are_hsm_config_errors(tmp_path: Path, text: str) -> None:
    hsm = tmp_path / "hsm.yaml"
    hsm.write_text(text)
    with pytest.raises(HsmConfigError):
        load_hsm_config(hsm)


@pytest.mark.parametrize("content", [b"server: {bind: 2001-13-45}\n", b"\xff\n"])
def test_impossible_dates_and_non_utf8_are_config_errors(tmp_path: Path, content: bytes) -> None:
    settings_file = tmp_path / "config.yaml"
    settings_file.write_bytes(content)
    with pytest.raises(ConfigError):
        load_settings(tmp_path / "home", settings_file)
