"""argon2id, the one place it is called: a cost that travels with what it protects, and the run.

The keystore derives token keys with it and the TKE client seals master-key part files with it;
both store :meth:`Argon2Parameters.as_record` beside the salt, so a file or record made under
one cost still opens after the configured cost changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from argon2.low_level import Type, hash_secret_raw


class UnknownKeyDerivation(ValueError):
    """A stored cost record that is not argon2id with exactly t, m and p."""


@dataclass(frozen=True)
class Argon2Parameters:
    """argon2id cost; the defaults are RFC 9106 §4's second recommended option (64 MiB, t=3, p=4)."""

    time_cost: int = 3
    memory_cost_kib: int = 65536
    parallelism: int = 4

    def __post_init__(self) -> None:
        if not (
            1 <= self.time_cost <= 64
            and 1 <= self.parallelism <= 64
            and 8 * self.parallelism <= self.memory_cost_kib <= 4 * 1024 * 1024
        ):
            raise ValueError(
                "argon2id needs 1 <= time_cost <= 64, 1 <= parallelism <= 64 and "
                "8 x parallelism <= memory_cost_kib <= 4194304"
            )

    def as_record(self) -> str:
        """The compact form stored with each record, so old records open after a config change."""
        return f"argon2id:t={self.time_cost},m={self.memory_cost_kib},p={self.parallelism}"

    @classmethod
    def from_record(cls, text: str) -> Argon2Parameters:
        """Parse :meth:`as_record` output; anything else is :class:`UnknownKeyDerivation`."""
        try:
            algorithm, fields = text.split(":", 1)
            values = dict(item.split("=", 1) for item in fields.split(","))
            if algorithm != "argon2id" or set(values) != {"t", "m", "p"}:
                raise ValueError(text)
            return cls(int(values["t"]), int(values["m"]), int(values["p"]))
        except ValueError:
            raise UnknownKeyDerivation(f"unknown key-derivation function {text[:40]!r}") from None


def derive_key(secret: bytes, salt: bytes, parameters: Argon2Parameters, *, length: int) -> bytes:
    """argon2id of ``secret`` under ``salt`` at ``parameters``: ``length`` bytes of key."""
    return hash_secret_raw(
        secret=secret,
        salt=salt,
        time_cost=parameters.time_cost,
        memory_cost=parameters.memory_cost_kib,
        parallelism=parameters.parallelism,
        hash_len=length,
        type=Type.ID,
    )
