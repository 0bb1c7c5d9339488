"""Readable messages for EP11 return/reason codes (TKE-REFERENCE §3.10)."""

from __future__ import annotations

from signserv.tke.wire import CryptoUnitRefused, describe_refusal, refusal


def test_reason_specific_message_wins() -> None:
    """209/78 explains the missing 'threshold 1' permission, not just 'attributes refused'."""
    assert "threshold 1" in describe_refusal(209, 78)


def test_unknown_reason_falls_back_to_return_code() -> None:
    """An unlisted reason still gets the return code's meaning."""
    assert describe_refusal(208, 12345) == describe_refusal(208, None)


def test_refusal_carries_codes_and_message() -> None:
    """The error keeps rc, reason and the readable text for the client to show."""
    error = refusal(261, 39)
    assert isinstance(error, CryptoUnitRefused)
    assert (error.return_code, error.reason) == (261, 39)
    assert str(error).endswith("(rc 261, reason 39)")


def test_generic_text_for_return_code_32_matches_the_sdk() -> None:
    """rc 32 is EP11's "data invalid"; 32 with reason 32 stays "administrator not found"."""
    assert describe_refusal(32, None) == (
        "Invalid data was provided for the command.  The format or value of the data is incorrect."
    )
    assert describe_refusal(32, 32) != describe_refusal(32, None)
