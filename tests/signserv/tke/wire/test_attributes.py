"""DomainAttributes: the one type the emulator answers with and the client reads (§5)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signserv.tke.errors import MalformedTKEMessage
from signserv.tke.wire.attributes import DomainAttributes, encode_attribute_pairs


@given(
    st.integers(0, 8),
    st.integers(0, 8),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
)
def test_domain_attributes_decode_what_a_query_answers(sig, rev, permissions, mode, standards):
    """The emulator answers with pairs(); the client decodes the same values back."""
    attributes = DomainAttributes(sig, rev, permissions, mode, standards)
    assert DomainAttributes.decode(encode_attribute_pairs(attributes.pairs())) == attributes


def test_domain_attributes_without_thresholds_are_malformed() -> None:
    with pytest.raises(MalformedTKEMessage, match="SIGNATURE_THRESHOLD"):
        DomainAttributes.decode(encode_attribute_pairs([(3, 0x81FF0011)]))
