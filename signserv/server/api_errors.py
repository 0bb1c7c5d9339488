"""The typed HTTP error the routes raise; one handler turns it into the contract's JSON body."""

from __future__ import annotations

from collections.abc import Mapping

from signserv.errors import SignservError


class APIError(SignservError):
    """An HTTP error answer: status, machine-readable code, human message (no secrets, no internals).

    ``fields`` are further members of the JSON body (a policy refusal names its ``rule``).
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        fields: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.fields = dict(fields or {})

    def body(self) -> dict[str, str]:
        """The JSON body: ``error``, ``message`` and the further fields."""
        return {**self.fields, "error": self.code, "message": self.message}


def unauthorized() -> APIError:
    """The one answer for a missing or wrong token and for an unknown key (no enumeration)."""
    return APIError(401, "unauthorized", "the token is missing or wrong, or there is no such key")
