"""Crypto-unit locations ``[zone].[host].[module].[domain]`` (TKE-REFERENCE §3.6)."""

from __future__ import annotations

from dataclasses import dataclass

from signserv.tke.errors import InvalidLocation


@dataclass(frozen=True)
class Location:
    """Where a crypto unit lives: availability zone, host, crypto-module index, domain index."""

    zone: str
    host: str
    crypto_module: int
    domain: int

    def encode(self) -> str:
        """The location string, indexes written with two digits as the service does."""
        return f"[{self.zone}].[{self.host}].[{self.crypto_module:02d}].[{self.domain:02d}]"

    @property
    def partial(self) -> str:
        """The first three parts: they identify the crypto module (one OA chain per module)."""
        return self.encode().rsplit(".", 1)[0]


def _unbracket(part: str, location: str) -> str:
    if len(part) < 2 or part[0] != "[" or part[-1] != "]":
        raise InvalidLocation(f"location {location!r}: part {part!r} is not wrapped in brackets")
    return part[1:-1]


def _index(part: str, location: str) -> int:
    digits = _unbracket(part, location)
    if not digits.isdigit() or not digits.isascii():
        raise InvalidLocation(f"location {location!r}: {part!r} is not a decimal index")
    return int(digits)


def parse_location(location: str) -> Location:
    """Parse a location; parts must not contain dots and indexes are decimal (§3.6)."""
    parts = location.split(".")
    if len(parts) != 4:
        raise InvalidLocation(
            f"location {location!r} does not have four dot-separated parts "
            "[zone].[host].[module].[domain]"
        )
    return Location(
        zone=_unbracket(parts[0], location),
        host=_unbracket(parts[1], location),
        crypto_module=_index(parts[2], location),
        domain=_index(parts[3], location),
    )
