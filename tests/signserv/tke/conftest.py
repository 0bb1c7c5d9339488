"""Fixtures shared by the crypto-unit tests."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from signserv.contract import PublicPoint


@pytest.fixture
def generator_point() -> PublicPoint:
    """The public key of private scalar 1: the P-521 generator G (TKE-REFERENCE §10 vector 1)."""
    numbers = ec.derive_private_key(1, ec.SECP521R1()).public_key().public_numbers()
    return PublicPoint(x=numbers.x, y=numbers.y)
