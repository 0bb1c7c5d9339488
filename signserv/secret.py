"""A value that must not leak: masked in ``repr``/``str``, handed out only by ``reveal()``."""

from __future__ import annotations

from typing import Generic, NoReturn, TypeVar

SecretValue = TypeVar("SecretValue", str, bytes)

MASK = "<hidden>"


class Secret(Generic[SecretValue]):
    """Hold a token, password or key so that printing, logging or formatting shows ``<hidden>``."""

    __slots__ = ("_value",)
    _value: SecretValue

    def __init__(self, value: SecretValue) -> None:
        self._value = value

    def reveal(self) -> SecretValue:
        """The secret itself; call it only where the value is actually used."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, format_spec: str) -> str:
        return MASK

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret is not picklable: reveal it explicitly where it must travel")
