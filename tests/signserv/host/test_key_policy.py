"""The policy language: canonical encoding, strict reading, and what each rule refuses."""

from __future__ import annotations

import contextlib
import json

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signserv.host.key_policy import (
    ClientCertificateBinding,
    ClientCertificateRequired,
    KeyPolicy,
    PolicyInvalid,
    PolicyRefused,
    certificate_fingerprint,
)
from signserv.tke.wire.signed_input import InputKind, SignedInput

from ...tls_certificates import self_signed_certificate

ADMINS_ON_ONE_MODULE = KeyPolicy.build(
    {InputKind.ADMINISTRATORS, InputKind.QUERY}, modules={"93aabc12"}, domains={3}
)


def _command(kind: InputKind, module: str = "93AABC12", domain: int = 3) -> SignedInput:
    return SignedInput(kind, command="some command", domain=domain, module=module, counter=1)


def _certificate_der(common_name: str) -> bytes:
    return self_signed_certificate(common_name).public_bytes(Encoding.DER)


def test_the_encoding_is_canonical_json_with_sorted_keys_and_lists() -> None:
    assert ADMINS_ON_ONE_MODULE.to_bytes() == (
        b'{"allow":["administrators","queries"],"domains":[3],"modules":["93AABC12"],"version":1}'
    )


policies = st.builds(
    KeyPolicy.build,
    st.sets(st.sampled_from(list(InputKind)), min_size=1),
    st.sets(st.text("0123456789ABCDEFabcdef", min_size=1, max_size=12), max_size=3),
    st.sets(st.integers(0, 255), max_size=3),
    st.one_of(
        st.none(),
        st.binary(min_size=1).map(
            lambda der: ClientCertificateBinding.for_fingerprint(certificate_fingerprint(der))
        ),
        st.sampled_from(["CN=admin 1", "CN=a\\,b,O=IBM"]).map(ClientCertificateBinding.for_subject),
    ),
)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(policies)
def test_every_policy_reads_back_as_itself(policy: KeyPolicy) -> None:
    assert KeyPolicy.from_bytes(policy.to_bytes()) == policy


@given(st.binary(max_size=200))
def test_hostile_stored_bytes_read_as_a_policy_or_policy_invalid(data: bytes) -> None:
    with contextlib.suppress(PolicyInvalid):
        KeyPolicy.from_bytes(data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(["sha256", "subject", "x"]), children, max_size=2)
    ),
    max_leaves=6,
)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["allow", "modules", "domains", "client_certificate", "version"]),
        json_values,
    )
)
def test_hostile_policy_documents_read_as_a_policy_or_policy_invalid(document: dict) -> None:
    with contextlib.suppress(PolicyInvalid):
        KeyPolicy.from_bytes(json.dumps({"version": 1, **document}).encode())


@pytest.mark.parametrize(
    "stored",
    [
        pytest.param(b'{"allow":["queries"]}', id="no-version"),
        pytest.param(b'{"allow":["queries"],"version":2}', id="newer-version"),
        pytest.param(b'{"allow":[],"version":1}', id="allows-nothing"),
        pytest.param(b'{"allow":["everything"],"version":1}', id="unknown-kind"),
        pytest.param(b'{"allow":["queries"],"deny":["zeroize"],"version":1}', id="unknown-rule"),
        pytest.param(b'{"allow":["queries"],"domains":[256],"version":1}', id="domain-too-big"),
        pytest.param(b'{"allow":["queries"],"domains":[true],"version":1}', id="domain-bool"),
        pytest.param(b'{"allow":["queries"],"modules":[7],"version":1}', id="module-number"),
        pytest.param(
            b'{"allow":["queries"],"client_certificate":{"sha256":"00"},"version":1}',
            id="short-fingerprint",
        ),
        pytest.param(
            b'{"allow":["queries"],"client_certificate":{},"version":1}', id="empty-binding"
        ),
    ],
)
def test_a_stored_policy_this_signserv_cannot_read_fully_is_refused(stored: bytes) -> None:
    with pytest.raises(PolicyInvalid):
        KeyPolicy.from_bytes(stored)


@pytest.mark.parametrize(
    ("bad_build", "message"),
    [
        (lambda: KeyPolicy.build(set()), "at least one kind"),
        (lambda: KeyPolicy.build({InputKind.QUERY}, domains={-1}), "domain index"),
        (lambda: KeyPolicy.build({InputKind.QUERY}, modules={"93 AA"}), "serial"),
        (lambda: ClientCertificateBinding.for_fingerprint("xyz"), "64"),
        (lambda: ClientCertificateBinding.for_subject("not a subject"), "RFC 4514"),
    ],
)
def test_bad_rules_are_refused_by_name(bad_build, message: str) -> None:
    with pytest.raises(PolicyInvalid, match=message):
        bad_build()


def test_a_listed_kind_on_a_listed_module_and_domain_is_allowed() -> None:
    ADMINS_ON_ONE_MODULE.check_input(_command(InputKind.ADMINISTRATORS, module="93aabc12"))


@pytest.mark.parametrize(
    ("signed", "rule"),
    [
        (_command(InputKind.ZEROIZE), "kind zeroize not allowed"),
        (_command(InputKind.ADMINISTRATORS, module="93AABEC2"), "module 93AABEC2 not allowed"),
        (_command(InputKind.ADMINISTRATORS, domain=4), "domain 4 not allowed"),
        (SignedInput(InputKind.CERTIFICATE), "kind certificates not allowed"),
        (SignedInput(InputKind.OPAQUE), "kind opaque not allowed"),
    ],
)
def test_inputs_outside_the_policy_are_refused_naming_the_rule(
    signed: SignedInput, rule: str
) -> None:
    with pytest.raises(PolicyRefused) as refused:
        ADMINS_ON_ONE_MODULE.check_input(signed)
    assert refused.value.rule == rule


def test_certificates_carry_no_module_or_domain_so_only_their_kind_is_judged() -> None:
    policy = KeyPolicy.build({InputKind.CERTIFICATE}, modules={"93AABC12"}, domains={3})
    policy.check_input(SignedInput(InputKind.CERTIFICATE))


def test_a_fingerprint_binding_accepts_only_that_certificate() -> None:
    bound, other = _certificate_der("admin 1"), _certificate_der("admin 1")
    policy = KeyPolicy.build(
        set(InputKind),
        client_certificate=ClientCertificateBinding.for_fingerprint(
            ":".join(f"{byte:02X}" for byte in bytes.fromhex(certificate_fingerprint(bound)))
        ),
    )
    policy.check_client(bound)
    for refused in (None, other):
        with pytest.raises(ClientCertificateRequired):
            policy.check_client(refused)


def test_a_subject_binding_accepts_any_certificate_with_that_subject() -> None:
    policy = KeyPolicy.build(
        set(InputKind), client_certificate=ClientCertificateBinding.for_subject("CN=admin 1")
    )
    policy.check_client(_certificate_der("admin 1"))
    with pytest.raises(ClientCertificateRequired):
        policy.check_client(_certificate_der("admin 2"))
    with pytest.raises(ClientCertificateRequired):
        policy.check_client(b"not a certificate")


def test_an_unbound_policy_needs_no_certificate() -> None:
    ADMINS_ON_ONE_MODULE.check_client(None)
