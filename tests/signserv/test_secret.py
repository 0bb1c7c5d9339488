"""Secret keeps its value out of every printed form."""

from __future__ import annotations

import logging
import pickle

import pytest

from signserv.secret import Secret

VALUE = "tok-3f9a-very-secret"


@pytest.mark.parametrize("render", [repr, str, "{}".format, "{!r}".format, "%s".__mod__])
def test_every_printed_form_is_masked(render: object) -> None:
    """repr, str, format and %-formatting show <hidden>, never the value."""
    assert callable(render)
    shown = render(Secret(VALUE))
    assert VALUE not in shown
    assert "<hidden>" in shown


def test_reveal_returns_the_value() -> None:
    """The value is available only when asked for explicitly."""
    assert Secret(VALUE).reveal() == VALUE
    assert Secret(b"\x00\x01").reveal() == b"\x00\x01"


def test_a_container_of_secrets_prints_masked() -> None:
    """Secrets inside a dict or list stay masked when the container is printed."""
    shown = repr({"token": Secret(VALUE), "others": [Secret(VALUE)]})
    assert VALUE not in shown


def test_logging_a_secret_shows_it_masked(caplog: pytest.LogCaptureFixture) -> None:
    """A log record that formats a Secret carries the mask only."""
    with caplog.at_level(logging.INFO):
        logging.getLogger("signserv.test").info("token is %s / %r", Secret(VALUE), Secret(VALUE))
    assert VALUE not in caplog.text
    assert "<hidden>" in caplog.text


def test_a_secret_cannot_be_pickled() -> None:
    """Pickling would write the value somewhere; it is refused."""
    with pytest.raises(TypeError):
        pickle.dumps(Secret(VALUE))
