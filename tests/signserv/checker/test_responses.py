"""Reading answers as the TKE client does, with errors that say what is wrong."""

from __future__ import annotations

import pytest

from signserv.checker.errors import ContractViolation
from signserv.checker.probe import Exchange
from signserv.checker.responses import (
    decode_base64_member,
    require_refused,
    signature_pair,
    string_member,
)
from signserv.checker.results import Outcome


def answer(body: bytes, status: int = 200, location: str | None = None) -> Exchange:
    """A GET /keys/k exchange with this answer."""
    return Exchange("GET", "/keys/k", status, body, location, 0.001)


def test_leniencies_of_the_go_client_are_kept() -> None:
    """Leading whitespace, extra members and bytes after the JSON value are all accepted."""
    body = b' {"publickey": "AAAA", "extra": 1} trailing'
    assert string_member(answer(body), "publickey") == "AAAA"


@pytest.mark.parametrize(
    ("exchange", "complaint"),
    [
        (answer(b""), "empty response body"),
        (answer(b"<html>"), "not JSON"),
        (answer(b'{"key": "AAAA"}'), "publickey not found"),
        (answer(b'{"publickey": 123}'), "publickey is not a string"),
        (answer(b'{"error": "nope"}', status=403), "refused the TKE client's request"),
        (answer(b"", status=301, location="https://elsewhere/"), "must answer directly"),
    ],
)
def test_unusable_answers_are_explained(exchange: Exchange, complaint: str) -> None:
    with pytest.raises(ContractViolation, match=complaint):
        string_member(exchange, "publickey")


@pytest.mark.parametrize(
    ("text", "hint"),
    [("ab-_", "URL-safe alphabet"), ("AAAAAA", "padding is missing"), ("AA A=", "")],
)
def test_non_standard_base64_gets_a_hint(text: str, hint: str) -> None:
    with pytest.raises(ContractViolation, match=f"not standard base64 with padding.*{hint}"):
        decode_base64_member(text, "publickey")


def test_raw_r_s_is_recognised() -> None:
    raw = "AQ" * 88  # 132 bytes of base64, not DER
    exchange = answer(b'{"signature": "' + raw.encode() + b'"}')
    with pytest.raises(ContractViolation, match=r"look like raw r\|\|s"):
        signature_pair(exchange)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(400, Outcome.PASS), (401, Outcome.PASS), (200, None), (500, None), (302, None)],
)
def test_only_a_4xx_counts_as_refused(status: int, outcome: Outcome | None) -> None:
    exchange = answer(b"{}", status=status)
    if outcome is None:
        with pytest.raises(ContractViolation):
            require_refused(exchange, "a wrong token")
    else:
        assert require_refused(exchange, "a wrong token").outcome is outcome
