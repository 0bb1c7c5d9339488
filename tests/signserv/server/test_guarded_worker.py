"""What the guarded worker counts as a request that has arrived whole (no server needed)."""

from __future__ import annotations

import pytest

from signserv.server.guarded_worker import whole_request

HEAD = b"POST /sign/k HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"


@pytest.mark.parametrize(
    ("waiting", "whole"),
    [
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", True),
        (HEAD + b"hello", True),
        (HEAD + b"hell", False),  # hostile: the body trickles after a whole head
        (HEAD[:-2], False),  # hostile: the head trickles
        (b"", False),
        (b"POST / HTTP/1.1\r\ncontent-length:\t3\r\n\r\nabc", True),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", True),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", False),
    ],
)
def test_a_request_is_whole_only_with_its_head_and_declared_body(
    waiting: bytes, whole: bool
) -> None:
    assert whole_request(waiting) is whole
