"""The exception base of the ``signserv`` package; each module defines its subclasses beside it."""

from __future__ import annotations


class SignservError(Exception):
    """Base of every error signserv raises on purpose; the message is safe to show a user."""
