"""Hostile master key files are read or refused with the keystore's own errors, never echoed."""

from __future__ import annotations

import base64
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keystore import MasterKey, MasterKeyInvalid, MasterKeyMissing, read_master_key

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

master_key_contents = (
    st.binary(max_size=200)
    | st.binary(max_size=40).map(base64.b64encode)
    | st.builds(
        lambda key, before, after: before + base64.b64encode(key) + after,
        st.binary(min_size=32, max_size=32),
        st.sampled_from([b"", b" ", b"\n", b"\xef\xbb\xbf", b"\xff"]),
        st.sampled_from([b"", b"\n", b"\r\n", b"=", b"\x00", b"\xe9"]),
    )
)


def read_or_refusal(content: bytes) -> MasterKey | MasterKeyInvalid | MasterKeyMissing:
    """What read_master_key makes of a file holding ``content``: a key or the refusal."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "master.key"
        path.write_bytes(content)
        try:
            return read_master_key(path)
        except (MasterKeyInvalid, MasterKeyMissing) as exc:
            return exc


@FAST
@given(master_key_contents)
def test_master_key_file_is_read_or_refused_with_keystore_errors_only(content: bytes) -> None:
    """Any file content: a MasterKey (exactly when it is base64 of 32 bytes) or a keystore error."""
    outcome = read_or_refusal(content)
    if isinstance(outcome, MasterKey):
        assert base64.b64decode(outcome.to_text()) == base64.b64decode(content.strip())


@FAST
@given(master_key_contents)
def test_master_key_refusal_never_quotes_the_file_bytes(content: bytes) -> None:
    """A refused file's first bytes never appear in the message, raw or escaped."""
    outcome = read_or_refusal(content)
    head = content[:8]
    if isinstance(outcome, Exception) and not head.isascii():
        message = str(outcome)
        assert repr(head)[2:-1] not in message
        assert head.decode("latin-1") not in message
        for byte in head:
            if byte >= 0x80:
                assert f"\\x{byte:02x}" not in message
                assert f"0x{byte:02x}" not in message
